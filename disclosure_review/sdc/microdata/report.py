"""The risk report of a dataset or record-level output: text, JSON-ready dict, plot."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm  # a text bar: tqdm.auto wants ipywidgets in a notebook (TqdmWarning: IProgress not found)

import pyarrow as pa
import pyarrow.compute as pc

from ._data import check_k, load_keys
from ._params import whole_number
from .combinations import KeyCombinations, combinations_of_keys, key_combinations
from .ldiversity import l_diversity
from .risk import GlobalRisk, RiskMethod, global_risk
from .suda2 import suda2_codes

log = logging.getLogger(__name__)

REPORT_VERSION = 1


_FK_CLASSES = {"1": (0, 2), "2": (2, 3), "3": (3, 4), "4": (4, 5), "5-9": (5, 10), ">=10": (10, np.inf)}


def _fk_classes(fk: np.ndarray, records: np.ndarray) -> dict[str, int]:
    """Records per f_k class: 1, 2, 3, 4, 5-9, >=10."""
    return {name: int(records[(fk >= low) & (fk < high)].sum()) for name, (low, high) in _FK_CLASSES.items()}


@dataclass(frozen=True)
class RiskyCombination:
    """A key combination below k: its values (None = missing), f_k, F_k and risk."""

    values: dict[str, Any]
    fk: float
    Fk: float
    risk: float
    records: int

    def to_dict(self) -> dict[str, Any]:
        return {"values": {k: (None if v is None else str(v)) for k, v in self.values.items()},
                "fk": self.fk, "Fk": self.Fk, "risk": self.risk, "records": self.records}


@dataclass(frozen=True)
class RiskReport:
    """Record-level risk of one dataset or output under given key variables.

    Results are kept per key combination (`combinations`, with `risk` per
    combination): every record of a combination shares its f_k, F_k and risk.
    They serve plots and checks but are not part of `to_dict()`.
    """

    keys: tuple[str, ...]
    weight: str | None
    household: str | None
    k: int
    n: int
    combinations: KeyCombinations = field(repr=False)
    risk: np.ndarray = field(repr=False)
    global_risk: GlobalRisk
    k_violations: dict[int, int]  # k → records with f_k < k (2, 3 and the report's k)
    weighted_k_violations: int | None  # records with F_k < k
    risky_combinations: tuple[RiskyCombination, ...]
    combinations_below_k: int
    l_diversity: dict[str, dict[str, float]]  # sensitive → min distinct/entropy/recursive, records with distinct < 2
    suda2: dict[str, Any] | None

    @property
    def records_below_k(self) -> int:
        return self.k_violations[self.k]

    @property
    def max_risk(self) -> float:
        return float(self.risk.max())

    def records_above_risk(self, threshold: float) -> int:
        """Records whose individual risk exceeds `threshold`."""
        return self.combinations.records_where(self.risk > threshold)

    def records_below_weighted_k(self, k: float) -> int:
        """Records whose weighted frequency F_k is below `k`."""
        return self.combinations.violations(k, weighted=True)

    def to_dict(self) -> dict[str, Any]:
        g = self.global_risk
        records = self.combinations.records
        hist, edges = np.histogram(self.risk, bins=np.linspace(0.0, 1.0, 21), weights=records)
        fk_classes = _fk_classes(self.combinations.fk, records)
        return {
            "version": REPORT_VERSION,
            "keys": list(self.keys),
            "weight": self.weight,
            "household": self.household,
            "records": self.n,
            "k": self.k,
            "k_anonymity": {str(k): v for k, v in sorted(self.k_violations.items())},
            "weighted_k_violations": self.weighted_k_violations,
            "combinations_below_k": self.combinations_below_k,
            "expected_reidentifications": g.expected_reidentifications,
            "global_risk": g.global_risk,
            "risky_records": g.risky_records,
            "max_individual_risk": self.max_risk,
            "household_expected_reidentifications": g.household_expected_reidentifications,
            "household_risk": g.household_risk,
            "risk_histogram": {"edges": edges.tolist(), "records": [int(h) for h in hist]},
            "fk_classes": fk_classes,
            "risky_combinations": [c.to_dict() for c in self.risky_combinations],
            "l_diversity": self.l_diversity,
            "suda2": self.suda2,
        }

    def to_text(self) -> str:
        g = self.global_risk
        pct = lambda x: 100.0 * x / self.n  # noqa: E731
        lines = [
            f"Record-level risk: {self.n:,} records, key variables {', '.join(self.keys)}"
            + (f", weight {self.weight}" if self.weight else "") + (f", household {self.household}" if self.household else ""),
            "",
            "k-anonymity (missing key values match any value):",
        ]
        for kk, v in sorted(self.k_violations.items()):
            lines.append(f"  records in combinations of fewer than {kk}: {v:,} ({pct(v):.2f}%)")
        if self.weighted_k_violations is not None:
            lines.append(f"  records with weighted frequency F_k < {self.k}: {self.weighted_k_violations:,}")
        lines += [
            f"  key combinations below k={self.k}: {self.combinations_below_k:,}",
            "",
            "Individual risk" + (" (Benedetti-Franconi, weighted)" if self.weight else " (1/f_k, no weight)") + ":",
            f"  expected re-identifications: {g.expected_reidentifications:,.2f} ({100 * g.global_risk:.2f}% of records)",
            f"  highest individual risk: {self.max_risk:.4f}",
            f"  records above median + 2 MAD and above 0.1: {g.risky_records:,}",
        ]
        if g.household_expected_reidentifications is not None:
            lines.append(f"  household risk: {g.household_expected_reidentifications:,.2f} expected re-identifications "
                         f"({100 * g.household_risk:.2f}%)")
        if self.risky_combinations:
            lines += ["", f"Riskiest key combinations below k={self.k} (of {self.combinations_below_k:,}):"]
            for c in self.risky_combinations:
                values = ", ".join(f"{k}={'(missing)' if v is None else v}" for k, v in c.values.items())
                lines.append(f"  {values}: f_k={c.fk:g}, F_k={c.Fk:,.1f}, risk={c.risk:.4f}, records={c.records}")
        for s, ld in self.l_diversity.items():
            lines += ["", f"l-diversity of {s}: smallest distinct {ld['min_distinct']:g}, entropy {ld['min_entropy']:.3f}, "
                      f"recursive {ld['min_recursive']:g}; records with fewer than 2 distinct values: {ld['records_below_2']:,}"]
        if self.suda2:
            s = self.suda2
            contrib = ", ".join(f"{k} {v:.1f}%" for k, v in s["attribute_contributions"].items())
            lines += ["", f"SUDA2: {s['records_with_msu']:,} records with minimal sample uniques; "
                      f"DIS-SUDA > 0.1: {s['dis_above_0_1']:,}; contributions: {contrib}"]
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path, *, lang: str = "en") -> Path:
        """Write a PNG: histogram of individual risk and records per f_k class (lang "en" or "ja")."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: matplotlib loads only when a report is plotted
        from matplotlib.figure import Figure  # heavy: matplotlib loads only when a report is plotted

        text = _LABELS[lang]
        font = _cjk_font() if lang == "ja" else None
        fig = Figure(figsize=(9, 3.8), layout="constrained")
        FigureCanvasAgg(fig)
        left, right = fig.subplots(1, 2)
        records = self.combinations.records
        left.hist(self.risk, bins=np.linspace(0, max(self.max_risk, 1e-9), 41), weights=records, color="#4a7ab5")
        left.set_yscale("log")
        left.set_xlabel(text["risk"], fontproperties=font)
        left.set_ylabel(text["records"], fontproperties=font)
        left.set_title(text["risk_title"].format(er=self.global_risk.expected_reidentifications), fontproperties=font)
        classes = _fk_classes(self.combinations.fk, records)
        colours = ["#c0392b" if _class_below(name, self.k) else "#7f8c8d" for name in classes]
        right.bar(list(classes), list(classes.values()), color=colours)
        right.set_xlabel("f_k", fontproperties=font)
        right.set_ylabel(text["records"], fontproperties=font)
        right.set_title(text["fk_title"].format(k=self.k), fontproperties=font)
        path = Path(path)
        fig.savefig(path, format="png", dpi=100)
        return path


_LABELS = {
    "en": {"risk": "individual risk", "records": "records", "risk_title": "Individual risk (ER = {er:.1f})",
           "fk_title": "Records by f_k (red: below k = {k})"},
    "ja": {"risk": "個別リスク", "records": "レコード数", "risk_title": "個別リスクの分布 (期待再識別数 {er:.1f})",
           "fk_title": "f_k 別レコード数 (赤: k = {k} 未満)"},
}


def _class_below(name: str, k: int) -> bool:
    low = int(name.lstrip(">=").split("-")[0])
    return low < k


def _cjk_font() -> Any:
    from matplotlib.font_manager import FontProperties  # heavy: matplotlib loads only when a report is plotted

    folder = Path("/usr/share/fonts/opentype/noto")
    for candidate in (folder / "NotoSansCJK-Regular.ttc", *sorted(folder.glob("NotoSansCJK*.tt*"))):
        if candidate.exists():
            return FontProperties(fname=str(candidate))
    log.warning("no Noto CJK font under /usr/share/fonts/opentype/noto: Japanese labels may not render")
    return None


def risk_report(
    data: Any,
    *,
    keys: Sequence[str],
    weight: str | None = None,
    household: str | None = None,
    sensitive: Sequence[str] = (),
    k: int = 3,
    method: RiskMethod = RiskMethod.APPROX,
    suda: bool = False,
    top: int = 10,
    progress: bool = True,
) -> RiskReport:
    """Compute the record-level risk report of `data` (DuckDB relation, polars/pandas frame, Arrow table).

    Without household risk and SUDA2 the measures are computed per key
    combination (on a DuckDB relation one GROUP BY inside DuckDB); those two
    need every record's key values and read them.
    """
    k = int(check_k(k))
    top = whole_number(top, "top", 0)
    steps = ["frequencies", "risk"] + (["l-diversity"] if sensitive else []) + (["SUDA2"] if suda else [])
    with tqdm(total=len(steps), desc="risk report", unit="step", disable=not progress) as bar:
        key_data = None
        if household or suda:
            key_data = load_keys(data, keys, weight=weight, household=household)
            combos, record_combination = combinations_of_keys(key_data)
        else:
            combos = key_combinations(data, keys, weight=weight)
        bar.update()
        risk = combos.risk(method=method, survey=weight is not None)
        if household:
            g = global_risk(risk[record_combination], household=key_data.household)
        else:
            g = global_risk(risk, records=combos.records)
        bar.update()
        ld: dict[str, dict[str, float]] = {}
        if sensitive:
            for s, res in l_diversity(data, keys, sensitive).items():
                ld[s] = {"min_distinct": float(res.distinct.min()), "min_entropy": float(res.entropy.min()),
                         "min_recursive": float(res.recursive.min()), "records_below_2": res.violations(2)}
            bar.update()
        suda_summary = None
        if suda:
            res = suda2_codes(key_data)
            suda_summary = {
                "records_with_msu": res.records_with_msu,
                "dis_above_0_1": int(np.sum(res.dis_score > 0.1)),
                "max_dis_suda": float(res.dis_score.max()),
                "attribute_contributions": res.attribute_contributions,
            }
            bar.update()
    below = combos.fk < k
    violations = {kk: combos.violations(kk) for kk in sorted({2, 3, k})}
    log.info("risk report: %d records, %d below k=%d", combos.n, violations[k], k)
    return RiskReport(
        combos.keys, weight, household, k, combos.n, combos, risk, g, violations,
        combos.violations(k, weighted=True) if weight else None, _riskiest(combos, risk, below, top),
        int(below.sum()), ld, suda_summary,
    )


def _riskiest(combos: KeyCombinations, risk: np.ndarray, below: np.ndarray, top: int) -> tuple[RiskyCombination, ...]:
    """The `top` riskiest combinations below k; ties in key-value order, so the report is reproducible."""
    rows = np.flatnonzero(below)
    if rows.size == 0:
        return ()
    candidates = combos.values.take(pa.array(rows)).append_column("__onsite_risk", pa.array(-risk[rows]))
    order = pc.sort_indices(candidates, sort_keys=[("__onsite_risk", "ascending"),
                                                   *((key, "ascending") for key in combos.keys)],
                            )
    best = rows[order.to_numpy()[:top]]
    values = combos.values.take(pa.array(best)).to_pylist()
    return tuple(RiskyCombination(v, float(combos.fk[i]), float(combos.Fk[i]), float(risk[i]), int(combos.records[i]))
                 for v, i in zip(values, best))
