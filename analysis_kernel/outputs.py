"""Output builders: tables and files a researcher may ask to release.

    t = outputs.frequency_table(db, "SELECT * FROM lfs_demo", rows="prefecture", columns="sex")
    t                      # the table, failing cells marked, the verdict and its reasons
    request_release([t], title=..., purpose=...)

A table is declarative: its query (SQL over the granted datasets) and spec are
what the review service re-runs; the cells, shadow statistics and verdict shown
here are feedback only (the service computes its own). A file made by arbitrary
code is opaque: verdict `review`, unverified, judged by a person with its code.
"""
from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb
import polars as pl

from analysis_kernel.extracts import ExtractOutput, build_extract
from analysis_kernel.verdicts import (badge, perturbed_loss, reason, reasons_in, service_only_note, translator,
                                      verdict_word)
from dataplane.manifest import session_language
from dataplane.sql import tables_read
from disclosure_review import wire
from disclosure_review.queries import tracker_check
from disclosure_review.sdc import (
    CheckReport,
    InvalidPreset,
    InvalidSpec,
    Rules,
    ShadowError,
    ShadowTable,
    Statistic,
    TableKind,
    TableSpec,
    Verdict,
    check_model,
    data_range,
    equal_width_edges,
    histogram_table_spec,
    load_preset,
)
from disclosure_review.sdc.enums import ProtectionMethod, SecondaryMethod
from disclosure_review.sdc.protect import ProtectedTable, evaluate_table
from disclosure_review.sdc.tracker import with_check
from disclosure_review.sdc.protection import InvalidTable, SolverFailure, SuppressionInfeasible
from disclosure_review.sdc.size import table_cells
from disclosure_review.sdc.spec import Protection
from onsite_base.errors import UserError

HTML_MAX_ROWS = 200
_CELL_BACKGROUNDS = {Verdict.REVIEW: "#fff8c5", Verdict.FAIL: "#ffebe9"}


class OutputInvalid(UserError):
    """An output that cannot be built as asked; the message says what to change."""


class Connection(Protocol):
    """What the builders need of `analysis_kernel.connect()`'s AnalysisConnection."""

    project: str
    manifest: Any

    @property
    def duckdb(self) -> duckdb.DuckDBPyConnection: ...

    @property
    def preset(self) -> str: ...

    @property
    def dataset_ids(self) -> list[str]: ...


@dataclasses.dataclass(frozen=True, eq=False)
class TableOutput:
    """A declarative table: spec (with its query and protection), shadow statistics and the check report."""

    spec: TableSpec
    shadow: ShadowTable
    report: CheckReport
    protected: ProtectedTable | None = dataclasses.field(default=None, repr=False)
    db: Connection | None = dataclasses.field(default=None, repr=False)
    lang: str = dataclasses.field(default="en", repr=False)
    """Language the verdict and check messages are shown in (the session's; see `session_language`)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def verdict(self) -> Verdict:
        return self.report.verdict

    @property
    def cells(self) -> int:
        """Cells of the table, margins included (what the output limits count)."""
        return self.shadow.frame.height

    @property
    def table(self) -> pl.DataFrame:
        """The table as it would be released (labels and the statistic; null = suppressed or deleted cell)."""
        return self.protected.cells if self.protected else self.shadow.released_view()

    @property
    def intervals(self) -> pl.DataFrame | None:
        """Suppressed cells with their feasible intervals [low, high] (秘匿インターバル); None unless suppressed."""
        audit = (self.protected.protection or {}).get("audit") if self.protected else None
        if audit is None:
            return None
        rows = [{**cell["key"], **{k: cell[k] for k in ("value", "primary", "low", "high", "status")}}
                for cell in audit["cells"]]
        return pl.DataFrame(rows) if rows else pl.DataFrame()

    def protect(self, method: str | ProtectionMethod = "suppress", *, base: int | None = None,
                secondary: str | SecondaryMethod = "hypercube") -> TableOutput:
        """This table protected by `method`: "suppress", "round" (to `base`, default the preset's),
        "redact_round" (failing cells blank, the rest rounded to `base`, totals the sums of the cells shown) or
        "delete_records" (the records of failing cells are deleted and the table recomputed).

        The protection is recorded in the spec: the review service re-applies it to its own
        recomputation and releases its own protected cells. Suppression and rounding need counts or sums;
        delete_records recomputes the table and fits every statistic.
        """
        if self.db is None:
            raise OutputInvalid("this table was not built by an Onsite builder; build it again to protect it")
        try:
            protection = Protection(ProtectionMethod(getattr(method, "value", method)), base=base,
                                    secondary=SecondaryMethod(getattr(secondary, "value", secondary)))
            spec = dataclasses.replace(self.spec, protection=protection)
        except ValueError as exc:  # InvalidSpec too
            choices = "method: suppress, round, redact_round or delete_records; secondary: hypercube or optimal"
            raise OutputInvalid(f"{exc}" if isinstance(exc, InvalidSpec) else f"{exc} ({choices})") from None
        return _evaluated(self.db, spec, rules_for(self.db))

    def to_request(self) -> wire.TablePayload:
        """The table as the review service receives it: the spec it re-runs, and what was computed here as a claim."""
        view = self.table
        claimed = {"cells": {"columns": view.columns, "rows": [list(r) for r in view.iter_rows()]},
                   "shadow": self.shadow.to_dict(), "verdict": self.verdict.value}
        return wire.TablePayload(name=self.name, spec=self.spec, claimed=claimed)

    def released_beside(self, answer: dict[str, Any]) -> PerturbedTable | None:
        """This table's cells beside the cells the review service will release, perturbed by the cell key
        method, from `request_release`'s `answer`; None when the answer holds none for it (not perturbed, or
        not asked from the terminal of this session)."""
        item = next((o for o in answer.get("outputs", []) if o.get("name") == self.name), None)
        released = (item or {}).get("released")
        if not released:
            return None
        return PerturbedTable(self.name, self.table, pl.DataFrame(released["rows"], schema=released["columns"],
                                                                  orient="row"), item.get("cell_key") or {}, self.lang)

    def __repr__(self) -> str:
        reasons = "".join(f"\n  - {r}" for r in reasons_in(self.report, self.lang))
        return (f"<TableOutput {self.name!r}: {verdict_word(self.verdict, self.lang)} ({self.report.preset}){reasons}>\n"
                f"{service_only_note(self.lang)}\n{self.table}")

    def _repr_html_(self) -> str:
        return render_table_html(self)


@dataclasses.dataclass(frozen=True, eq=False)
class PerturbedTable:
    """A table as computed in the session beside the cells the review service will release (perturbed by the cell
    key method, which only the service can apply: it alone reads the record keys), with the information loss."""

    name: str
    computed: pl.DataFrame
    released: pl.DataFrame
    loss: dict[str, Any]
    lang: str = "en"

    @property
    def table(self) -> pl.DataFrame:
        """One row per cell: its levels, the computed value and the released one (null: not released)."""
        keys = self.computed.columns[:-1]
        t = translator(self.lang)
        as_text = [pl.col(k).cast(pl.String) for k in keys]
        computed = self.computed.with_columns(as_text).rename({self.computed.columns[-1]: t("computed")})
        released = self.released.rename(dict(zip(self.released.columns, self.computed.columns)))
        released = released.with_columns(as_text).rename({self.computed.columns[-1]: t("released")})
        return computed.join(released, on=keys, how="left", nulls_equal=True, maintain_order="left")

    def __repr__(self) -> str:
        t = translator(self.lang)
        return f"{t('perturbed_heading', name=self.name)}\n{perturbed_loss(self.loss, self.lang)}\n{self.table}"

    def _repr_html_(self) -> str:
        esc, t, view = html.escape, translator(self.lang), self.table
        header = "".join(f"<th>{esc(c)}</th>" for c in view.columns)
        body = "".join("<tr>" + "".join(f"<td>{esc(_shown(v))}</td>" for v in row[:-2])
                       + "".join(f"<td style='text-align:right'>{esc(_shown(v))}</td>" for v in row[-2:]) + "</tr>"
                       for row in view.head(HTML_MAX_ROWS).iter_rows())
        more = (f"<tr><td colspan='{view.width}'>{t('more_cells', n=view.height - HTML_MAX_ROWS)}</td></tr>"
                if view.height > HTML_MAX_ROWS else "")
        return (f"<div><b>{esc(t('perturbed_heading', name=self.name))}</b><br>"
                f"<small>{esc(perturbed_loss(self.loss, self.lang))}</small>"
                f"<table><thead><tr>{header}</tr></thead><tbody>{body}{more}</tbody></table></div>")


@dataclasses.dataclass(frozen=True, eq=False)
class FileOutput:
    """An opaque file (figure, model summary, …): never verified automatically, a reviewer judges it."""

    name: str
    filename: str
    content: bytes
    explanation: str
    code: str
    lang: str = dataclasses.field(default="en", repr=False)

    verdict = Verdict.REVIEW
    verified = False

    def to_request(self) -> wire.FilePayload:
        return wire.FilePayload(name=self.name, filename=self.filename, content=self.content, code=self.code,
                                explanation=self.explanation)

    def __repr__(self) -> str:
        return (f"<FileOutput {self.name!r} ({self.filename}, {len(self.content)} bytes): "
                f"{verdict_word(Verdict.REVIEW, self.lang)}, unverified>")

    def _repr_html_(self) -> str:
        esc, t = html.escape, translator(self.lang)
        return (
            f"<div><b>{esc(self.name)}</b> <code>{esc(self.filename)}</code> ({t('bytes', n=f'{len(self.content):,}')}) — "
            f"{badge(Verdict.REVIEW, self.lang)} {t('file_unverified')}<br><small>{esc(self.explanation)}</small></div>"
        )


@dataclasses.dataclass(frozen=True, eq=False)
class ModelOutput:
    """A fitted model's summary (text), checked here; sent as an opaque file a reviewer judges.

    The verdict is fail when a session check fails, else review: the service cannot
    refit the model, so it never passes automatically.
    """

    name: str
    summary: str
    report: CheckReport
    explanation: str
    code: str
    lang: str = dataclasses.field(default="en", repr=False)

    verified = False

    @property
    def verdict(self) -> Verdict:
        return Verdict.FAIL if self.report.verdict is Verdict.FAIL else Verdict.REVIEW

    def to_request(self) -> wire.FilePayload:
        checks = "\n".join(f"- {r.rule} ({r.verdict.value}): {r.message}" for r in self.report.results)
        return FileOutput(self.name, f"{self.name}.txt", self.summary.encode("utf-8"),
                          f"{self.explanation}\n\n[checks computed in the session, unverified]\n{checks}",
                          self.code).to_request()

    def __repr__(self) -> str:
        reasons = "".join(f"\n  - {r}" for r in reasons_in(self.report, self.lang))
        return f"<ModelOutput {self.name!r}: {verdict_word(self.verdict, self.lang)}{reasons}>"

    def _repr_html_(self) -> str:
        esc = html.escape
        items = "".join(f"<li>{esc(reason(r, self.lang))}</li>" for r in self.report.results)
        return (f"<div><b>{esc(self.name)}</b> — {badge(self.verdict, self.lang)} {translator(self.lang)('model_unverified')}"
                f"<ul>{items}</ul><pre>{esc(self.summary)}</pre></div>")


Output = TableOutput | FileOutput | ModelOutput


def frequency_table(
    db: Connection,
    source: str | duckdb.DuckDBPyRelation,
    rows: str | Sequence[str],
    columns: str | Sequence[str] = (),
    *,
    weight: str | None = None,
    unit: str | None = None,
    name: str | None = None,
) -> TableOutput:
    """Counts of records (weighted counts with `weight`) by `rows` × `columns`, with margins.

    `source` is SQL over the granted datasets (``"SELECT * FROM lfs_demo WHERE age >= 65"``)
    or a relation from ``db.sql(...)``. `unit` (a household id) makes the threshold count units.
    """
    rows_t, columns_t = _names(rows, "rows"), _names(columns, "columns")
    return _build(db, source, name or _default_name("freq", rows_t, columns_t), TableKind.FREQUENCY, rows_t,
                  columns_t, value=None, statistic=Statistic.COUNT, weight=weight, unit=unit)


def magnitude_table(
    db: Connection,
    source: str | duckdb.DuckDBPyRelation,
    rows: str | Sequence[str],
    columns: str | Sequence[str] = (),
    *,
    value: str,
    statistic: str | Statistic = "sum",
    weight: str | None = None,
    unit: str | None = None,
    name: str | None = None,
) -> TableOutput:
    """`statistic` (sum, mean, median, p10, p25, p75, p90, min, max, mode, std, var) of `value` by `rows` × `columns`.

    Give `unit` (household or enterprise id) when records belong to units: dominance
    is judged on each unit's summed contribution, and thresholds count units.
    """
    try:
        stat = statistic if isinstance(statistic, Statistic) else Statistic(str(statistic).lower())
    except ValueError:
        choices = ", ".join(s.value for s in Statistic if s is not Statistic.COUNT)
        raise OutputInvalid(f"statistic {statistic!r} is not one of {choices}") from None
    rows_t, columns_t = _names(rows, "rows"), _names(columns, "columns")
    return _build(db, source, name or _default_name(f"{stat.value}_{value}", rows_t, columns_t),
                  TableKind.MAGNITUDE, rows_t, columns_t, value=value, statistic=stat, weight=weight, unit=unit)


def extract_output(
    db: Connection, source: str | duckdb.DuckDBPyRelation, *, name: str | None = None, keys: Sequence[str] | None = None
) -> ExtractOutput:
    """A record-level output (every record of the query's result), with its record-level check at once.

    Key variables default to the source datasets' declared key variables that
    appear in the result (weight, household id and sensitive variables likewise);
    `keys` adds more, it never removes a declared one. The verdict follows the
    `record_level:` rules of the project's preset (k-anonymity, individual risk);
    the review service re-runs the query and checks it again itself.
    See analysis_kernel/extracts.py.
    """
    return build_extract(db, source_sql(db, source), name=_safe_name(name or "extract", "extract"),
                         keys=None if keys is None else _names(keys, "keys"), error=OutputInvalid)


def file_output(path: str | Path, *, explanation: str, code: str, name: str | None = None) -> FileOutput:
    """A file made by your code (figure, model summary, …), with the code and why it is safe to release.

    It is never verified automatically: its verdict is `review` and a reviewer reads
    the code and your explanation.
    """
    path = Path(path)
    if not path.is_file():
        raise OutputInvalid(f"no file at {path}")
    if not isinstance(explanation, str) or not explanation.strip():
        raise OutputInvalid("explain what the file shows and why it is safe to release (explanation=...)")
    if not isinstance(code, str) or not code.strip():
        raise OutputInvalid("give the code that made the file (code=...), so a reviewer can judge it")
    content = path.read_bytes()
    if not content:
        raise OutputInvalid(f"{path} is empty")
    return FileOutput(_safe_name(name or path.stem, "file"), path.name, content, explanation.strip(), code,
                      session_language())


def histogram(
    db: Connection,
    source: str | duckdb.DuckDBPyRelation,
    value: str,
    *,
    bins: int = 10,
    edges: Sequence[float] | None = None,
    name: str | None = None,
) -> TableOutput:
    """A histogram of `value` as its bin table (bins [e_i, e_i+1), the last closed).

    Give round `edges` (e.g. ``range(0, 10_000_001, 1_000_000)``): edges taken from the
    data (the default, `bins` equal bins from min to max) reveal the smallest and
    largest values and are sent to review. Empty bins in the tails are fine.
    """
    sql = source_sql(db, source)
    rules = rules_for(db)
    try:
        if edges is None:
            low, high = data_range(db.duckdb, sql, value)
            if low is None:
                raise OutputInvalid(f"{value} has no non-missing values in this query")
            edges = equal_width_edges(low, high, bins)
        spec = histogram_table_spec(sql, value, tuple(edges), name=name or _safe_name(f"hist_{value}", "histogram"))
    except InvalidSpec as exc:
        raise OutputInvalid(str(exc)) from None
    except duckdb.Error as exc:
        raise OutputInvalid(f"the histogram could not be computed: {exc}") from None
    return _evaluated(db, spec, rules)


def model_output(db: Connection, result: Any, *, explanation: str, code: str, name: str = "model") -> ModelOutput:
    """A fitted statsmodels model (OLS, logit, probit, Poisson, GLM): checked now, judged by a reviewer.

    Checks: residual degrees of freedom, observations per categorical level, outcome classes.
    """
    if not isinstance(explanation, str) or not explanation.strip():
        raise OutputInvalid("explain what the model shows and why it is safe to release (explanation=...)")
    if not isinstance(code, str) or not code.strip():
        raise OutputInvalid("give the code that fitted the model (code=...), so a reviewer can judge it")
    summary = getattr(result, "summary", None)
    if summary is None:
        raise OutputInvalid("result must be a fitted statsmodels model (it has .summary())")
    safe = _safe_name(name, "model")
    return ModelOutput(safe, str(summary()), check_model(result, rules_for(db), name=safe), explanation.strip(), code,
                       db.manifest.language)


def rules_for(db: Connection) -> Rules:
    """The rules of the connection's project preset (the one the review service checks with)."""
    try:
        return load_preset(db.preset)
    except InvalidPreset as exc:
        raise OutputInvalid(f"the project's rule preset cannot be used: {exc}") from None


def source_sql(db: Connection, source: str | duckdb.DuckDBPyRelation) -> str:
    """The SQL text the review service will re-run; refused when it reads anything but granted datasets."""
    if isinstance(source, duckdb.DuckDBPyRelation):
        sql, given = source.sql_query(), "this relation"
    elif isinstance(source, str):
        sql, given = source, "this query"
    else:
        raise OutputInvalid("source must be SQL text or a relation from db.sql(...)")
    read = tables_read(sql)
    # approved reference data attached with db.reference(name): the service attaches its own approved copy
    outside = sorted(read - set(db.dataset_ids) - set(getattr(db, "reference_names", ())))
    if outside:
        hint = (" (a Python frame or a table made in this session?): pass the SQL text of a query over "
                "the granted datasets instead" if given == "this relation" else "")
        raise OutputInvalid(
            f"{given} reads {', '.join(outside)}, which the review service cannot re-run{hint}; "
            f"granted datasets: {', '.join(db.dataset_ids) or 'none'} (approved reference data: attach it first "
            "with db.reference(name))"
        )
    return sql


def _build(db: Connection, source: str | duckdb.DuckDBPyRelation, name: str, kind: TableKind,
           rows: tuple[str, ...], columns: tuple[str, ...], *, value: str | None, statistic: Statistic,
           weight: str | None, unit: str | None) -> TableOutput:
    try:
        spec = TableSpec(kind=kind, query=source_sql(db, source), rows=rows, columns=columns, value=value,
                         statistic=statistic, weight=weight, unit=unit, name=name)
    except InvalidSpec as exc:
        raise OutputInvalid(str(exc)) from None
    return _evaluated(db, spec, rules_for(db))


def _evaluated(db: Connection, spec: TableSpec, rules: Rules) -> TableOutput:
    """Cells, checks and the spec's protection, computed as the review service will (sdc.protect).

    The cells are counted first: a table past the output limit is refused before it is built.
    """
    try:
        wire.check_limit("output_cells", table_cells(db.duckdb, spec), wire.MAX_CELLS_PER_OUTPUT, name=spec.name)
        protected = evaluate_table(db.duckdb, spec, rules)
        protected = with_check(protected, tracker_check(db.duckdb, spec.query, db.dataset_ids))  # as the service does
    except wire.LimitExceeded as exc:
        raise OutputInvalid(exc.text(db.manifest.language)) from None
    except (InvalidSpec, ShadowError, InvalidTable, SuppressionInfeasible, SolverFailure) as exc:
        raise OutputInvalid(str(exc)) from None
    except duckdb.Error as exc:
        raise OutputInvalid(f"the table could not be computed: {exc}") from None
    return TableOutput(spec, protected.shadow, protected.report, protected, db, db.manifest.language)


def _names(value: str | Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise OutputInvalid(f"{what} must be a variable name or a list of them")
    return tuple(value)


def _safe_name(text: str, fallback: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:100]
    return name or fallback


def _default_name(prefix: str, rows: tuple[str, ...], columns: tuple[str, ...]) -> str:
    by = "_".join(rows) + (("_by_" + "_".join(columns)) if columns else "")
    return _safe_name(f"{prefix}_{by}", "table")


def _shown(value: object) -> str:
    return "" if value is None else (f"{value:,.6g}" if isinstance(value, float) else str(value))


def _cell_td(value: object, verdict: Verdict | None, checks: list[str], extra: str = "") -> str:
    style = f"background:{_CELL_BACKGROUNDS[verdict]};" if verdict in _CELL_BACKGROUNDS else ""
    return (f"<td style='{style}text-align:right' title='{html.escape(', '.join(checks))}'>"
            f"{html.escape(_shown(value))}{extra}</td>")


def render_table_html(output: TableOutput) -> str:
    """The table with flagged cells marked (red: fail, yellow: review) and the verdict with its reasons.

    One row and one column variable: shown as a cross table (hover a cell for its checks);
    otherwise one line per cell with its contributors and checks.
    """
    esc, lang = html.escape, output.lang
    t = translator(lang)
    shadow, report = output.shadow, output.report
    flagged = report.cell_verdicts()
    rules_by_cell: dict[tuple, list[str]] = {}
    for result in report.results:
        for cell in result.cells:
            rules_by_cell.setdefault(cell, []).append(result.rule)
    view = output.table
    k = len(shadow.dimensions)
    values = {tuple(row[:k]): row[-1] for row in view.iter_rows()}
    column_levels = list(dict.fromkeys(key[-1] for key in values)) if k == 2 else []
    if k == 2 and len(shadow.spec.rows) == 1 and len(column_levels) <= 30 and view.height <= HTML_MAX_ROWS * 30:
        row_levels = list(dict.fromkeys(key[0] for key in values))
        header = (f"<th>{esc(shadow.dimensions[0])} \\ {esc(shadow.dimensions[1])}</th>"
                  + "".join(f"<th>{esc(_shown(c))}</th>" for c in column_levels))
        body = [
            f"<tr><th>{esc(_shown(r))}</th>"
            + "".join(_cell_td(values.get((r, c)), flagged.get((r, c)), rules_by_cell.get((r, c), []))
                      for c in column_levels) + "</tr>"
            for r in row_levels[:HTML_MAX_ROWS]
        ]
    else:
        contributors = shadow.frame.get_column("sdc_units").to_list()
        header = "".join(f"<th>{esc(c)}</th>" for c in view.columns) + f"<th>{t('contributors')}</th><th>{t('checks')}</th>"
        body = []
        for i, key in enumerate(values):
            if i == HTML_MAX_ROWS:
                body.append(f"<tr><td colspan='{k + 3}'>{t('more_cells', n=view.height - i)}</td></tr>")
                break
            checks = rules_by_cell.get(key, [])
            body.append("<tr>" + "".join(f"<td>{esc(_shown(v))}</td>" for v in key)
                        + _cell_td(values[key], flagged.get(key), checks)
                        + f"<td style='text-align:right'>{contributors[i]}</td><td>{esc(', '.join(checks))}</td></tr>")
    reasons = "".join(f"<li>{esc(r)}</li>" for r in reasons_in(report, lang)) or f"<li>{t('every_check_passed')}</li>"
    facts = output.protected.protection if output.protected else None
    if facts:
        note = facts.get("note") or (facts.get("audit") or {}).get("summary", "")
        reasons += f"<li>{t('protection', method=esc(facts['method']), note=esc(note))}</li>"
    intervals = output.intervals
    if intervals is not None and intervals.height:
        reasons += "<li>" + t("intervals", intervals="; ".join(
            f"{esc(' / '.join(str(v) for v in row[:k]))}: [{_shown(row[k + 2])}, {_shown(row[k + 3])}]"
            for row in intervals.iter_rows())) + "</li>"
    return (
        f"<div><b>{esc(output.name)}</b> — {badge(output.verdict, lang)} "
        f"{t('under_preset', preset=f'<code>{esc(report.preset)}</code>')} <small>{t('feedback')}</small>"
        f"<br><small class='onsite-service-only'>{esc(service_only_note(lang))}</small>"
        f"<ul>{reasons}</ul><table><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )
