"""The risk report of a dataset or record-level output: text, JSON-ready dict, plot."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ._data import check_k, load_keys
from .frequencies import frequencies_of_codes
from .ldiversity import l_diversity
from .risk import GlobalRisk, RiskMethod, global_risk, individual_risk
from .suda2 import suda2_codes

log = logging.getLogger(__name__)

REPORT_VERSION = 1


def _fk_classes(fk: np.ndarray) -> dict[str, int]:
    """Records per f_k class: 1, 2, 3, 4, 5-9, >=10."""
    return {
        "1": int(np.sum(fk < 2)), "2": int(np.sum((fk >= 2) & (fk < 3))), "3": int(np.sum((fk >= 3) & (fk < 4))),
        "4": int(np.sum((fk >= 4) & (fk < 5))), "5-9": int(np.sum((fk >= 5) & (fk < 10))), ">=10": int(np.sum(fk >= 10)),
    }


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

    Per-record arrays (`fk`, `Fk`, `risk`) are kept for plots and checks but are
    not part of `to_dict()`.
    """

    keys: tuple[str, ...]
    weight: str | None
    household: str | None
    k: int
    n: int
    fk: np.ndarray = field(repr=False)
    Fk: np.ndarray = field(repr=False)
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

    def to_dict(self) -> dict[str, Any]:
        g = self.global_risk
        hist, edges = np.histogram(self.risk, bins=np.linspace(0.0, 1.0, 21))
        fk_classes = _fk_classes(self.fk)
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
            "max_individual_risk": float(self.risk.max()),
            "household_expected_reidentifications": g.household_expected_reidentifications,
            "household_risk": g.household_risk,
            "risk_histogram": {"edges": edges.tolist(), "records": hist.tolist()},
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
            f"  highest individual risk: {self.risk.max():.4f}",
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
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        text = _LABELS[lang]
        font = _cjk_font() if lang == "ja" else None
        fig = Figure(figsize=(9, 3.8), layout="constrained")
        FigureCanvasAgg(fig)
        left, right = fig.subplots(1, 2)
        left.hist(self.risk, bins=np.linspace(0, max(float(self.risk.max()), 1e-9), 41), color="#4a7ab5")
        left.set_yscale("log")
        left.set_xlabel(text["risk"], fontproperties=font)
        left.set_ylabel(text["records"], fontproperties=font)
        left.set_title(text["risk_title"].format(er=self.global_risk.expected_reidentifications), fontproperties=font)
        classes = _fk_classes(self.fk)
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
    from matplotlib.font_manager import FontProperties

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
    """Compute the record-level risk report of `data` (DuckDB relation, polars/pandas frame, Arrow table)."""
    check_k(k)
    k = int(np.ceil(k))
    steps = ["read", "frequencies", "risk"] + (["l-diversity"] if sensitive else []) + (["SUDA2"] if suda else [])
    with tqdm(total=len(steps), desc="risk report", unit="step", disable=not progress) as bar:
        key_data, _ = load_keys(data, keys, weight=weight, household=household)
        bar.update()
        freq = frequencies_of_codes(key_data.keys, key_data.codes, key_data.weight)
        bar.update()
        risk = individual_risk(freq, method=method, survey=weight is not None)
        g = global_risk(risk, household=key_data.household)
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
    below = np.flatnonzero(freq.fk < k)
    combos, n_combos = _risky_combinations(key_data, freq.fk, freq.Fk, risk, below, top)
    violations = {kk: freq.violations(kk) for kk in sorted({2, 3, k})}
    log.info("risk report: %d records, %d below k=%d", key_data.n, violations[k], k)
    return RiskReport(
        key_data.keys, weight, household, k, key_data.n, freq.fk, freq.Fk, risk, g, violations,
        freq.violations(k, weighted=True) if weight else None, combos, n_combos, ld, suda_summary,
    )


def _risky_combinations(key_data, fk, Fk, risk, below, top) -> tuple[tuple[RiskyCombination, ...], int]:
    if below.size == 0:
        return (), 0
    codes = key_data.codes[below]
    order = np.lexsort(codes.T[::-1])
    codes, rows = codes[order], below[order]
    starts = np.flatnonzero(np.r_[True, (codes[1:] != codes[:-1]).any(axis=1)])
    counts = np.diff(np.r_[starts, rows.size])
    first = rows[starts]
    best = np.argsort(-risk[first], kind="stable")[:top]
    combos = tuple(
        RiskyCombination(dict(zip(key_data.keys, key_data.decode(key_data.codes[first[i]]))),
                         float(fk[first[i]]), float(Fk[first[i]]), float(risk[first[i]]), int(counts[i]))
        for i in best
    )
    return combos, int(starts.size)

