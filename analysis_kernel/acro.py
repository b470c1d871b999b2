"""ACRO's notebook API (acro 1.0.x) on Onsite: an ACRO notebook runs with its import line changed.

    from analysis_kernel.acro import ACRO           # was: from acro import ACRO
    acro = ACRO(suppress=True)
    df = acro.db.sql("SELECT * FROM nursery").df()  # was: df = pd.read_csv("nursery.csv")
    table = acro.crosstab(df.recommend, df.parents)
    acro.add_comments("output_0", "recommendation by parents' occupation")
    acro.finalise("outputs", "json")                # a release request, not a folder

Every method computes and returns what ACRO returns (a pandas table, a fitted
statsmodels model, a figure's file name), and builds the matching Onsite output
with `analysis_kernel.outputs`, so the review service recomputes tables from their
query as it does for Onsite's own outputs.

Provenance: importing this module makes a DuckDB relation's `.df()` record the
relation's SQL in the frame (`DataFrame.attrs["onsite_query"]`; pandas carries it to
the frame's columns). A table whose data carry one query becomes a declarative
table over that query, once the table computed from the frame is found equal, cell
by cell, to the table computed from the query: a pandas filter or a changed column
(which pandas also tags) makes them differ. A table that fails this, or whose data
have no query, is sent as a file (the CSV of the table): verdict `review`,
unverified, and the notebook says how to keep provenance.

The verdicts shown are Onsite's, per cell, in ACRO's outcome table: ACRO's check
names where ACRO runs the same check, `onsite:<rule>` where Onsite is stricter
(docs/acro-differences.md, the D-number shown).
"""
from __future__ import annotations

import dataclasses
import html
import inspect
import io
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from matplotlib.figure import Figure

from analysis_kernel import outputs
from analysis_kernel.connection import AnalysisConnection, connect
from analysis_kernel.outputs import FileOutput, ModelOutput, Output, OutputInvalid, TableOutput
from analysis_kernel.release import request_release
from analysis_kernel.verdicts import badge
from disclosure_review import acro_format, wire
from disclosure_review.sdc import MARGIN_LABEL, CheckReport, InvalidSpec, Statistic, TableKind, TableSpec, Verdict
from disclosure_review.sdc import check_table, histogram_table_spec, load_preset, shadow_from_frame
from disclosure_review.sdc.spec import quote_identifier

QUERY_ATTR = "onsite_query"
"""Key of `DataFrame.attrs` holding the SQL of the relation a frame was made from."""

STATISTICS = {"count": None, "sum": Statistic.SUM, "mean": Statistic.MEAN, "median": Statistic.MEDIAN,
              "std": Statistic.STD, "var": Statistic.VAR, "min": Statistic.MIN, "max": Statistic.MAX,
              "mode": Statistic.MODE}
"""ACRO's aggregation functions -> Onsite statistics (None: a frequency table)."""
ROUNDABLE = (None, Statistic.SUM)
"""Statistics Onsite can round (their margins are sums of cells); record deletion, ACRO's suppression, fits all."""
MITIGATIONS = ("none", "suppress", "round")
SURVIVAL_OUTPUTS = ("table", "plot")
NOTICES = {
    "unverified": {
        "en": "{uid} is unverified ({why}): its verdict is review, a reviewer judges it. To keep provenance, read the "
              "data with db.sql(\"SELECT ... FROM <dataset>\").df() and select, rename and filter columns in the SQL "
              "(or with the relation's methods) rather than in pandas.",
        "ja": "{uid} は未検証です（{why}）。判定は要審査で、審査者が判断します。データの出所を保つには "
              "db.sql(\"SELECT ... FROM <データセット>\").df() で読み、列の選択・名前の変更・絞り込みは pandas ではなく "
              "SQL（またはリレーションのメソッド）で行ってください。",
    },
    "not_rounded": {
        "en": "{uid}: Onsite rounds counts and sums only; this {statistic} table is sent as computed, and its checks "
              "decide. Round the count or sum table instead, or turn on suppression.",
        "ja": "{uid}: Onsite が丸められるのは度数と合計だけです。この {statistic} の表は計算したまま送られ、"
              "チェックの結果で判定されます。度数または合計の表を丸めるか、秘匿を使ってください。",
    },
    "finalise": {
        "en": "Onsite writes no folder ({path} was not created): the outputs, comments and exceptions were sent to "
              "disclosure review. Released outputs are collected from the request's page.",
        "ja": "Onsite はフォルダを作りません（{path} は作成していません）。出力・コメント・例外申請は審査に送られました。"
              "公表された出力は申請のページから受け取ります。",
    },
}


class AcroError(OutputInvalid, ValueError):
    """An ACRO call Onsite cannot serve as asked; the message says what to do instead. A ValueError too, as ACRO's
    and pandas' errors for bad arguments are, so a notebook's `except ValueError` still catches it."""


# ---------------------------------------------------------------- provenance of frames made by `.df()`


def _tagging(method: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
    def frame_with_query(self: duckdb.DuckDBPyRelation, *args: Any, **kwargs: Any) -> pd.DataFrame:
        frame = method(self, *args, **kwargs)
        try:
            frame.attrs[QUERY_ATTR] = self.sql_query()
        except duckdb.Error:  # a relation without SQL text: the frame has no provenance, .df() still works
            pass
        return frame

    frame_with_query.onsite_tagging = True  # type: ignore[attr-defined]
    return frame_with_query


for _name in ("df", "to_df"):
    if not getattr(getattr(duckdb.DuckDBPyRelation, _name), "onsite_tagging", False):
        setattr(duckdb.DuckDBPyRelation, _name, _tagging(getattr(duckdb.DuckDBPyRelation, _name)))


def query_of(*data: Any) -> str | None:
    """The one SQL query all of `data` (relations, frames or columns made by `.df()`) come from, or None."""
    queries = {d.sql_query() if isinstance(d, duckdb.DuckDBPyRelation) else getattr(d, "attrs", {}).get(QUERY_ATTR)
               for d in data}
    return queries.pop() if len(queries) == 1 and None not in queries else None


# ---------------------------------------------------------------- ACRO's records


@dataclasses.dataclass
class Record:
    """One output as ACRO records it (acro.record.Record's fields), with the Onsite outputs behind it."""

    uid: str
    status: str
    output_type: str
    properties: dict[str, Any]
    command: str
    summary: str
    outcome: pd.DataFrame
    output: list[Any]
    onsite: list[Output]
    verified: bool
    comments: list[str] = dataclasses.field(default_factory=list)
    exception: str = ""
    fair: dict[str, Any] = dataclasses.field(default_factory=dict)
    """ACRO's FAIR summary: the checks run and their verdicts, the dependent and independent variables."""
    name: str = ""
    """The name its Onsite outputs are sent under: the uid, or a renamed uid as a file name allows."""

    def __post_init__(self) -> None:
        self.name = self.name or self.uid

    def _repr_html_(self) -> str:
        """The status and ACRO's outcome table, failing cells red, cells only to review yellow."""
        esc = html.escape
        shade = {"fail": "#ffebe9", "review": "#fff8c5"}

        def cell(tags: Any) -> str:
            text = str(tags)
            kind = "" if text == "ok" else "review" if all("review" in t for t in text.split("; ") if t) else "fail"
            return f"<td style='background:{shade.get(kind, 'none')}'>{esc(text)}</td>"

        rows = "".join(f"<tr><th>{esc(str(label))}</th>{''.join(cell(v) for v in values)}</tr>"
                       for label, values in zip(self.outcome.index, self.outcome.to_numpy()))
        header = "".join(f"<th>{esc(str(c))}</th>" for c in self.outcome.columns)
        table = f"<table><thead><tr><th></th>{header}</tr></thead><tbody>{rows}</tbody></table>" if rows else ""
        return (f"<div><b>{esc(self.uid)}</b> ({esc(self.output_type)}) — "
                f"{badge(Verdict(self.status), 'en')} <small>{esc(self.summary)}</small>{table}</div>")

    def __str__(self) -> str:
        return (f"uid: {self.uid}\nstatus: {self.status}\ntype: {self.output_type}\nproperties: {self.properties}\n"
                f"command: {self.command}\nsummary: {self.summary}\noutcome: {self.outcome}\noutput: {self.output}\n"
                f"comments: {self.comments}\nexception: {self.exception}\nfair: {self.fair}\n")


class Records:
    """The session's outputs, keyed by uid (output_0, output_1, … unless renamed), as acro.record.Records."""

    def __init__(self) -> None:
        self.results: dict[str, Record] = {}
        self.output_id = 0
        self.answer: dict[str, Any] | None = None
        """The review service's answer to `finalise()` (request id, status, verdicts)."""

    def add(self, record: Record) -> Record:
        self.results[record.uid] = record
        self.output_id += 1
        return record

    def get(self, key: str) -> Record:
        if key not in self.results:
            raise AcroError(f"no output {key!r}; outputs: {', '.join(self.results) or '(none)'}")
        return self.results[key]

    def get_keys(self) -> list[str]:
        return list(self.results)

    def get_index(self, index: int) -> Record:
        return list(self.results.values())[index]

    def print(self) -> str:
        text = "".join(f"{record}\n" for record in self.results.values())
        print(text)
        return text

    def validate_outputs(self) -> None:
        """As ACRO's `finalise(..., interactive=True)`: ask for the reason of an exception for every output that
        did not pass and has none."""
        for record in self.results.values():
            if record.status != "pass" and not record.exception:
                print(f"{record}\nThe status of the record above is: {record.status}.\n"
                      "Please explain why an exception should be granted.")
                record.exception = input("")


# ---------------------------------------------------------------- tables: cells, checks, ACRO's outcome table


def _tuple(label: Any) -> tuple:
    return label if isinstance(label, tuple) else (label,)


class _Margin:
    """The margin in a cell key of this module. Not a text: a level may be named "Total" (Onsite's usual margin
    label, which the table then brackets: `shadow.margin_label`) or "All" (pandas')."""

    def __repr__(self) -> str:
        return "(margin)"

    __str__ = __repr__


MARGIN = _Margin()
CellKey = tuple[Any, ...]
"""A cell's labels as text, MARGIN where the cell is a margin of that variable."""


def _key(row: Any, columns: tuple, margins_name: str) -> CellKey:
    """A pandas cell's labels (its row label, its column labels) as a cell key: ACRO's margin name, and the blank
    levels pandas gives a margin of several variables ("All", "") too, are MARGIN."""
    def axis(labels: tuple) -> CellKey:
        margin = any(str(v) == margins_name for v in labels)
        return tuple(MARGIN if str(v) == margins_name or (margin and str(v) == "") else _text(v) for v in labels)

    return axis(_tuple(row)) + axis(columns)


def _onsite_key(labels: Sequence[Any], margin_label: str) -> CellKey:
    """An Onsite cell's labels as a cell key (its table's `margin_label` is MARGIN)."""
    return tuple(MARGIN if v == margin_label else str(v) for v in labels)


def _shown(key: CellKey) -> str:
    return "/".join(map(str, key))


def _text(label: Any) -> str:
    """A level as text; a missing level (pandas' NaN, Onsite's NULL) is "None" on both sides."""
    return "None" if label is None or (isinstance(label, float) and math.isnan(label)) else str(label)


def onsite_cells(table: TableOutput) -> dict[CellKey, Any]:
    """The released cells of an Onsite table by their cell keys."""
    k, margin_label = len(table.shadow.dimensions), table.shadow.margin_label
    return {_onsite_key(row[:k], margin_label): row[-1] for row in table.table.iter_rows()}


def _same(theirs: Any, ours: Any) -> bool:
    empty = theirs is None or (isinstance(theirs, float) and math.isnan(theirs))
    if empty or ours is None:
        return empty and ours in (None, 0)  # an empty cell: pandas says NaN (or 0), Onsite None (or 0)
    try:
        return math.isclose(float(theirs), float(ours), rel_tol=1e-9, abs_tol=1e-9)
    except (TypeError, ValueError):
        return str(theirs) == str(ours)


def _tags(rules: list[tuple[str, Verdict]]) -> str:
    """One cell of ACRO's outcome table: "ok", or the checks it fails ("NKCheck; PPercentCheck; ")."""
    return "".join(dict.fromkeys(acro_format.tag(rule, verdict is Verdict.REVIEW) for rule, verdict in rules)) or "ok"


def cell_rules(report: CheckReport, margin_label: str) -> dict[CellKey, list[tuple[str, Verdict]]]:
    """Each flagged cell of a table whose margins are labelled `margin_label` -> the rules that did not pass it,
    with their verdicts."""
    flagged: dict[tuple[str, ...], list[tuple[str, Verdict]]] = {}
    for result in report.results:
        if result.verdict is Verdict.PASS:
            continue
        for cell in result.cells:
            key = _onsite_key(cell, margin_label)
            flagged.setdefault(key, []).append((result.rule, result.verdict))
    return flagged


@dataclasses.dataclass
class _Part:
    """One statistic of one value variable of a pandas table, and what Onsite made of it."""

    statistic: Statistic | None
    value: str | None
    prefix: tuple  # the table's column levels naming this part (aggregation function, value variable)
    report: CheckReport  # the checks of the table as computed (ACRO's outcome table shows them, before protection)
    margin_label: str = MARGIN_LABEL  # how the report labels margins (its table's shadow.margin_label)
    variables: tuple[str, ...] = ()  # the row and column variables
    table: TableOutput | None = None  # None: unverified
    why: str = ""
    modes: dict[CellKey, set] | None = None  # a mode table: every mode of each cell (ties: any is right)


def _parts_of(columns: pd.Index, parts: list[_Part]) -> dict[Any, tuple[_Part, tuple]]:
    """Each column of a pandas table -> its part and the remaining (column variable) labels."""
    found = {}
    for column in columns:
        labels = _tuple(column)
        for part in parts:
            if labels[:len(part.prefix)] == part.prefix:
                found[column] = (part, labels[len(part.prefix):])
                break
    return found


def outcome_table(table: pd.DataFrame, parts: list[_Part], margins_name: str) -> pd.DataFrame:
    """ACRO's outcome table for `table`: per cell "ok" or the checks that did not pass it."""
    outcome = pd.DataFrame("ok", index=table.index, columns=table.columns, dtype=object)
    where = _parts_of(table.columns, parts)
    flagged = {id(part): cell_rules(part.report, part.margin_label) for part in parts}
    for column, (part, rest) in where.items():
        for row in table.index:
            rules = flagged[id(part)].get(_key(row, rest, margins_name), [])
            outcome.loc[row, column] = _tags(rules)
    return outcome


def _mismatch(table: pd.DataFrame, part: _Part, onsite: TableOutput, margins_name: str) -> str:
    """Why the pandas table's cells of `part` differ from the Onsite table's ("" when every inner cell is equal)."""
    ours = {key: value for key, value in onsite_cells(onsite).items() if MARGIN not in key}
    seen = set()
    for column, (_, rest) in _parts_of(table.columns, [part]).items():
        for row in table.index:
            key = _key(row, rest, margins_name)
            if MARGIN in key:
                continue
            seen.add(key)
            if key not in ours:
                return f"cell {_shown(key)} is not in the table computed from the query"
            if not (ours[key] in part.modes.get(key, ()) if part.modes is not None and ours[key] is not None
                    else _same(table.loc[row, column], ours[key])):
                return (f"cell {_shown(key)} is {table.loc[row, column]} here but {ours[key]} from the query: "
                        "the data were changed or filtered after the query")
    if missing := sorted(set(ours) - seen, key=_shown):  # e.g. rows filtered out in pandas
        return f"the table computed from the query also has cell {_shown(missing[0])}, which the data here lack"
    return ""


def _released(table: pd.DataFrame, parts: list[_Part], margins_name: str, blank_failing: bool) -> pd.DataFrame:
    """`table` with the values Onsite releases: protected cells from its tables, failing cells blank where asked."""
    shown = table.copy().astype(object)
    for column, (part, rest) in _parts_of(table.columns, parts).items():
        # a protected table's cells, and a mode's (which of tied modes is Onsite's choice), are Onsite's
        use_ours = part.table is not None and (part.table.spec.protection or part.statistic is Statistic.MODE)
        ours = onsite_cells(part.table) if use_ours else None
        failing = {k for k, rules in cell_rules(part.report, part.margin_label).items() if any(v is Verdict.FAIL for _, v in rules)}
        for row in table.index:
            key = _key(row, rest, margins_name)
            if ours is not None:  # a cell the protected table lacks (its level's records all deleted) is not released
                shown.loc[row, column] = np.nan if ours.get(key) is None else ours[key]
            elif blank_failing and key in failing:
                shown.loc[row, column] = np.nan
    return shown.infer_objects()


# ---------------------------------------------------------------- the ACRO object


def _command(default: str) -> str:
    """The notebook line that called the ACRO method (ACRO records it as the output's command)."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    context = inspect.getframeinfo(frame, context=1).code_context if frame is not None else None
    return "".join(context or []).strip() or default


def mode(values: pd.Series) -> Any:
    """The smallest mode (pandas has no mode aggregation; ACRO picks one of tied modes at random)."""
    modes = values.mode()
    return modes.iloc[0] if len(modes) else np.nan


def _pandas(aggfunc: Any) -> Any:
    """`aggfunc` as pandas takes it: "mode" is the function above (named mode, so tables label it so)."""
    if isinstance(aggfunc, list):
        return [_pandas(f) for f in aggfunc]
    return mode if aggfunc == "mode" else aggfunc


def _functions(aggfunc: Any) -> list[str]:
    """ACRO's aggregation functions by name (count when none is given); anything else is refused."""
    functions = _names(aggfunc) or ["count"]
    for function in functions:
        if not isinstance(function, str) or function not in STATISTICS:
            raise AcroError(f"aggfunc {function!r}: give one of {', '.join(STATISTICS)} (by name)")
    return functions


def _names(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


class ACRO:
    """ACRO's API (acro 1.0.x) whose outputs are Onsite outputs: checked under the project's rule preset here,
    recomputed and checked again by the review service when `finalise()` asks for their release."""

    def __init__(self, config: str = "default", suppress: bool = False, mitigation: str | None = None,
                 round_base: int | None = None, federated: bool | None = None, *,
                 db: AnalysisConnection | None = None) -> None:
        if config != "default":
            raise AcroError(f"config={config!r}: Onsite checks with the project's rule preset (acro-default has "
                            "ACRO's numbers); ACRO configuration files are not read")
        if federated:
            raise AcroError("federated mode is not available: outputs leave Onsite only through disclosure review")
        mitigation = mitigation or ("suppress" if suppress else "none")
        if mitigation not in MITIGATIONS:
            raise AcroError(f"mitigation must be one of {', '.join(MITIGATIONS)} (got {mitigation!r})")
        self.mitigation = mitigation
        self.round_base = round_base
        self.results = Records()
        self._db = db

    # -- settings, as ACRO

    @property
    def suppress(self) -> bool:
        return self.mitigation == "suppress"

    @suppress.setter
    def suppress(self, value: bool) -> None:
        if value:
            self.mitigation = "suppress"
        elif self.mitigation == "suppress":
            self.mitigation = "none"

    def enable_suppression(self) -> None:
        self.suppress = True

    def disable_suppression(self) -> None:
        self.suppress = False

    def enable_rounding(self, base: int | None = None) -> None:
        self.round_base = base if base is not None else self.round_base
        self.mitigation = "round"

    def disable_rounding(self) -> None:
        if self.mitigation == "round":
            self.mitigation = "none"

    @property
    def config(self) -> MappingProxyType:
        """ACRO's settings under ACRO's names, read from the project's rule preset, which every check here and the
        review service's recomputation use. Read-only: ACRO reads its YAML once, so changing `config` afterwards
        changes no check there either; here the preset is the project's, set by administrators."""
        rules = load_preset(self.db.preset)
        return MappingProxyType({
            "safe_threshold": rules.threshold, "safe_dof_threshold": rules.dof_threshold,
            "safe_nk_n": rules.nk_n, "safe_nk_k": rules.nk_k, "safe_pratio_p": rules.p_ratio,
            "check_missing_values": rules.check_missing, "survival_safe_threshold": rules.threshold,
            "zeros_are_disclosive": rules.zeros_disclosive,
            "safe_round_base": self.round_base if self.round_base is not None else rules.round_base,
            "federated": False,
        })

    @property
    def db(self) -> AnalysisConnection:
        """The connection to the project's datasets (`analysis_kernel.connect()` unless one was given)."""
        if self._db is None:
            self._db = connect()
        return self._db

    @property
    def _lang(self) -> str:
        return "ja" if getattr(self.db.manifest, "language", "en") == "ja" else "en"

    def _say(self, code: str, **args: Any) -> None:
        print(NOTICES[code][self._lang].format(**args))

    # -- tables

    def crosstab(self, index: Any, columns: Any, values: Any = None, rownames: Any = None, colnames: Any = None,
                 aggfunc: str | list[str] | None = None, margins: bool = False, margins_name: str = "All",
                 dropna: bool = True, normalize: bool | str = False, show_suppressed: bool = False) -> pd.DataFrame:
        """pandas.crosstab of the factors (counts, or `aggfunc` of `values`), checked; ACRO's return value."""
        del dropna, show_suppressed  # ACRO ignores both (dropna is forced False)
        command = _command("crosstab()")
        if normalize:
            raise AcroError("normalize: Onsite releases counts, not shares; ask for the counts (normalize=False) "
                            "and compute the shares from the released table")
        index_s, columns_s = _names(index), _names(columns)
        if aggfunc is not None and values is None:
            raise AcroError("If you pass an aggregation function to crosstab you must also specify a single values "
                            "column to aggregate over.")
        functions = _functions(aggfunc)
        series = [*index_s, *columns_s] + ([values] if values is not None else [])
        query = query_of(*series)
        row_vars = [str(s.name) for s in index_s]
        column_vars = [str(s.name) for s in columns_s]
        value = None if values is None else str(getattr(values, "name", None) or "dependent_var")
        table = pd.crosstab(index_s, columns_s, values=values, rownames=rownames, colnames=colnames,
                            aggfunc=_pandas(aggfunc), margins=margins, margins_name=margins_name, dropna=False)
        frame = pd.concat([pd.Series(np.asarray(s), name=n) for s, n in
                           zip(series, [*row_vars, *column_vars] + ([value] if value else []))], axis=1)
        parts = [self._part(query, frame, row_vars, column_vars, f, value if aggfunc else None,
                            prefix=(f,) if isinstance(aggfunc, list) else ()) for f in functions]
        return self._table("crosstab", command, table, parts, margins_name)

    def pivot_table(self, data: Any, values: Any = None, index: Any = None, columns: Any = None,
                    aggfunc: str | list[str] = "mean", fill_value: Any = None, margins: bool = False,
                    dropna: bool = True, margins_name: str = "All", observed: bool = False, sort: bool = True,
                    **kwargs: Any) -> pd.DataFrame:
        """pandas.pivot_table of `data` (a frame made by `.df()`, or a relation), checked; ACRO's return value."""
        del dropna  # ACRO forces dropna=False
        command = _command("pivot_table()")
        query = query_of(data)
        frame = data.df() if isinstance(data, duckdb.DuckDBPyRelation) else data
        functions = _functions(aggfunc)
        row_vars, column_vars = [str(v) for v in _names(index)], [str(v) for v in _names(columns)]
        value_vars = [str(v) for v in _names(values)]
        if not value_vars:
            raise AcroError("give values=: the variable whose statistics the pivot table shows")
        table = pd.pivot_table(frame, values=values, index=_names(index), columns=_names(columns) or None,
                               aggfunc=_pandas(aggfunc), fill_value=fill_value, margins=margins, dropna=False,
                               margins_name=margins_name, observed=observed, sort=sort, **kwargs)
        parts = [self._part(query, frame, row_vars, column_vars, f, v,
                            prefix=((f,) if isinstance(aggfunc, list) else ())
                            + ((v,) if isinstance(values, list) or not column_vars else ()))
                 for f in functions for v in value_vars]
        return self._table("pivot_table", command, table, parts, margins_name)

    def _part(self, query: str | None, frame: pd.DataFrame, rows: list[str], columns: list[str], function: Any,
              value: str | None, prefix: tuple) -> _Part:
        statistic = STATISTICS[function] if value is not None else None
        kind = TableKind.FREQUENCY if statistic is None else TableKind.MAGNITUDE
        try:
            spec = TableSpec(kind, "SELECT * FROM data", rows=tuple(rows), columns=tuple(columns),
                             value=None if statistic is None else value, statistic=statistic or Statistic.COUNT)
        except InvalidSpec as exc:  # e.g. one variable on both axes, which pandas allows
            raise AcroError(f"Onsite cannot check this table: {exc}") from None
        part = _Part(statistic, value, prefix, CheckReport.from_results("table", self.db.preset, []),
                     variables=(*rows, *columns))
        used = [*rows, *columns] + ([value] if statistic is not None else [])
        found = self._columns_of(query) if query is not None else None
        if query is None:
            part.why = "its data do not come from a query over the project's datasets"
        elif missing := [v for v in used if found is not None and v not in found]:
            part.why = (f"{', '.join(missing)} is not in the result of the data's query (made in pandas?): derive it "
                        "in the SQL")
        else:
            try:
                part.table = self._onsite_table(query, rows, columns, statistic, value)
            except OutputInvalid as exc:
                part.why = f"the query cannot be re-run by the review service: {exc}"
        if part.table is not None:
            part.report, part.margin_label = part.table.report, part.table.shadow.margin_label
            if statistic is Statistic.MODE:
                grouped = frame.groupby([*rows, *columns], dropna=False, observed=True)[value]
                part.modes = {tuple(_text(v) for v in _tuple(key)): set(group.mode()) for key, group in grouped}
        else:  # Onsite's checks on the frame itself, as feedback
            shadow = shadow_from_frame(frame[used], spec)
            part.report, part.margin_label = check_table(shadow, load_preset(self.db.preset)), shadow.margin_label
        return part

    def _columns_of(self, query: str) -> list[str] | None:
        """The columns of the query's result (DuckDB binds it without running it); None when it cannot (the
        builder then says why)."""
        try:
            return list(self.db.duckdb.sql(query).columns)
        except duckdb.Error:
            return None

    def _onsite_table(self, query: str, rows: list[str], columns: list[str], statistic: Statistic | None,
                      value: str | None) -> TableOutput:
        name = f"output_{self.results.output_id}"
        if statistic is None:
            return outputs.frequency_table(self.db, query, rows, columns, name=name)
        return outputs.magnitude_table(self.db, query, rows, columns, value=value, statistic=statistic, name=name)

    def _table(self, method: str, command: str, table: pd.DataFrame, parts: list[_Part],
               margins_name: str) -> pd.DataFrame:
        uid = f"output_{self.results.output_id}"
        for part in parts:
            if part.table is not None and (why := _mismatch(table, part, part.table, margins_name)):
                part.table, part.why = None, why
        verified = all(p.table is not None for p in parts)
        rounding = self.mitigation == "round"
        for part in parts:
            if part.table is not None and (self.suppress or (rounding and part.statistic in ROUNDABLE)):
                # ACRO's suppression deletes the records of failing cells and recomputes the table, whatever its
                # statistic (its issue #198): Onsite's delete_records does the same, again until no cell fails
                part.table = part.table.protect("delete_records" if self.suppress else "round",
                                                base=self.round_base if rounding else None)
            elif rounding and part.table is not None:
                self._say("not_rounded", uid=uid, statistic=part.statistic.value)
        # an unverified table under suppression shows its failing cells blank, as ACRO (the file sent too)
        shown = _released(table, parts, margins_name, blank_failing=self.suppress)
        outcome = outcome_table(table, parts, margins_name)
        onsite: list[Output] = []
        for i, part in enumerate(parts):
            name = uid if len(parts) == 1 else f"{uid}_{i}"
            onsite.append(_renamed(part.table, name) if part.table is not None
                          else self._table_file(name, shown, command, part))
        status = Verdict.combine([o.verdict for o in onsite])
        summary = "; ".join(f"{p.statistic.value if p.statistic else 'count'}: {_summary(p.report)}"
                            + (f" -> {p.table.spec.protection.method.value}: {p.table.verdict.value}"
                               if p.table is not None and p.table.spec.protection else "") for p in parts)
        record = self.results.add(Record(uid, status.value, "table",
                                         {"method": method, "mitigation": self.mitigation}, command, summary,
                                         outcome, [shown], onsite, verified,
                                         fair=_fair([p.report for p in parts], parts[0].value, parts[0].variables,
                                                    ", ".join(p.statistic.value if p.statistic else "count"
                                                              for p in parts))))
        _show(record)
        if not verified:
            self._say("unverified", uid=uid, why="; ".join(dict.fromkeys(p.why for p in parts if p.why)))
        return shown

    def _table_file(self, name: str, shown: pd.DataFrame, command: str, part: _Part) -> FileOutput:
        checks = "\n".join(f"- {r.rule} ({r.verdict.value}): {r.message}" for r in part.report.results)
        return FileOutput(name, f"{name}.csv", shown.to_csv().encode("utf-8"),
                          f"A table made with the ACRO API from data without verified provenance ({part.why}). "
                          f"[checks computed in the session on those data, unverified]\n{checks}", command, self._lang)

    # -- histograms

    def hist(self, data: Any, column: str, by_val: Any = None, grid: bool = True, xlabelsize: int | None = None,
             xrot: float | None = None, ylabelsize: int | None = None, yrot: float | None = None, axis: Any = None,
             sharex: bool = False, sharey: bool = False, figsize: tuple[float, float] | None = None,
             layout: tuple[int, int] | None = None, bins: int | Any = 10, backend: str | None = None,
             legend: bool = False, filename: str = "histogram.png", **kwargs: Any) -> str | None:
        """The histogram of `column`: its bin table is the Onsite output; the figure (drawn from that table) is saved
        as `filename` (a number added when taken) in the working folder, and its name returned, as ACRO does."""
        del by_val, grid, xlabelsize, xrot, ylabelsize, yrot, axis, sharex, sharey, layout, backend, legend, kwargs
        command = _command("hist()")
        if isinstance(column, list):
            raise AcroError("give one column: a histogram of several columns is not supported (ACRO neither)")
        uid = f"output_{self.results.output_id}"
        query = query_of(data)
        frame = data.df() if isinstance(data, duckdb.DuckDBPyRelation) else data
        values = pd.to_numeric(frame[column], errors="coerce").dropna()
        if values.empty:
            raise AcroError(f"{column} has no non-missing values")
        edges = list(bins) if not isinstance(bins, int) else None
        counts, numpy_edges = np.histogram(values, bins=edges if edges is not None else bins)
        table, why = None, "its data do not come from a query over the project's datasets"
        if query is not None:
            try:
                table = outputs.histogram(self.db, query, column, bins=bins if edges is None else 10, edges=edges,
                                          name=uid)
                ours = _by_bin(onsite_cells(table), numpy_edges)
                if [int(c) for c in counts] != [int(c or 0) for c in ours]:
                    table, why = None, "the bin counts from the data differ from those from the query"
            except OutputInvalid as exc:
                why = f"the query cannot be re-run by the review service: {exc}"
        path = _unique(Path(filename))
        heights = counts.astype(float)
        if table is not None and table.spec.protection is None and self.suppress and table.verdict is Verdict.FAIL:
            heights[:] = np.nan  # ACRO draws nothing for a disclosive histogram under suppression
        _draw(numpy_edges, heights, column, figsize, path)
        if table is not None:
            onsite: Output = table
            report, margin_label = table.report, table.shadow.margin_label
        else:
            spec = histogram_table_spec("SELECT * FROM data", column, tuple(float(e) for e in numpy_edges),
                                                name=uid)
            shadow = shadow_from_frame(frame[[column]], spec)
            report, margin_label = check_table(shadow, load_preset(self.db.preset)), shadow.margin_label
            onsite = FileOutput(uid, path.name, path.read_bytes(), f"A histogram made with the ACRO API from data "
                                f"without verified provenance ({why}).", command, self._lang)
        flagged = cell_rules(report, margin_label)
        outcome = pd.DataFrame({"low": numpy_edges[:-1], "high": numpy_edges[1:],
                                "count": [_tags(rules or []) for rules in _by_bin(flagged, numpy_edges)]})
        record = self.results.add(Record(uid, onsite.verdict.value, "histogram", {"method": "histogram"}, command,
                                         _summary(report), outcome, [str(path)], [onsite], table is not None,
                                         fair=_fair([report], None, [column], "histogram")))
        _show(record)
        if table is None:
            self._say("unverified", uid=uid, why=why)
        return str(path)

    def pie(self, data: Any, column: str, filename: str = "pie.png", **kwargs: Any) -> str | None:
        """A pie chart of `column`'s categories: the Onsite output is their frequency table (verified like any
        table); the chart, drawn from it, is saved as `filename` (a number added when taken) and its name returned.
        Under suppression a failing table's chart shows no proportions, as in ACRO."""
        command = _command("pie()")
        uid = f"output_{self.results.output_id}"
        query = query_of(data)
        frame = data.df() if isinstance(data, duckdb.DuckDBPyRelation) else data
        counts = frame[column].value_counts().sort_index().to_frame("count")
        part = self._part(query, frame, [column], [], "count", None, prefix=("count",))
        if part.table is not None and (why := _mismatch(counts, part, part.table, "All")):
            part.table, part.why = None, why
        if part.table is not None and self.suppress:
            part.table = part.table.protect("delete_records")
        path = _unique(Path(filename))
        shown = counts["count"].astype(float)
        if self.suppress and part.report.verdict is Verdict.FAIL:
            shown[:] = 1.0  # ACRO: the chart redacted
        figure = Figure()
        figure.add_subplot().pie(shown.to_numpy(), labels=[str(v) for v in shown.index], **kwargs)
        figure.savefig(path)
        onsite: Output = (_renamed(part.table, uid) if part.table is not None else
                          FileOutput(uid, path.name, path.read_bytes(), "A pie chart made with the ACRO API from data "
                                     f"without verified provenance ({part.why}).", command, self._lang))
        outcome = outcome_table(counts, [part], "All")
        record = self.results.add(Record(uid, onsite.verdict.value, "pie chart", {"method": "pie"}, command,
                                         _summary(part.report), outcome, [str(path)], [onsite], part.table is not None,
                                         fair=_fair([part.report], None, [column], "pie")))
        _show(record)
        if part.table is None:
            self._say("unverified", uid=uid, why=part.why)
        return str(path)

    def surv_func(self, time: Any, status: Any, output: str, entry: Any = None, title: Any = None,
                  freq_weights: Any = None, exog: Any = None, bw_factor: float = 1.0,
                  filename: str = "kaplan-meier.png") -> Any:
        """The Kaplan-Meier survival function of `time` (status 1: the event, 0: censored), as ACRO: its table
        (output="table", statsmodels' SurvfuncRight summary) or its plot saved as `filename` (output="plot",
        returns (axes, file name)); any other `output` returns None and records nothing.

        The Onsite output is the table of events and censorings by time (time x status counts), from which the
        survival table follows: verified from the data's query as any crosstab, and checked as a frequency table.
        Under suppression the times are grouped into bands (in the SQL too), each closing once it holds at least
        the threshold number of events and of censorings; the returned table gains ACRO's rounded_survival_fun,
        here the survival function over those bands."""
        command = _command("surv_func()")
        if output not in SURVIVAL_OUTPUTS:
            return None
        uid = f"output_{self.results.output_id}"
        fitted = sm.SurvfuncRight(time, status, entry, title, freq_weights, exog, bw_factor)
        survival = fitted.summary()
        time_var, status_var = (str(getattr(s, "name", None) or n) for s, n in ((time, "time"), (status, "status")))
        if time_var == status_var:
            raise AcroError("time and status are the same variable: give the time and the event indicator")
        frame = pd.DataFrame({time_var: np.asarray(time), status_var: np.asarray(status)})
        query = query_of(time, status)
        if self.suppress:
            bands = _survival_bands(frame, time_var, status_var, load_preset(self.db.preset).threshold or 10)
            frame[time_var] = frame[time_var].map(bands)
            survival["rounded_survival_fun"] = _banded_survival(frame, time_var, status_var, survival.index)
            query = query and _banded_query(query, time_var, status_var, sorted(set(bands.values())))
        counts = pd.crosstab(frame[time_var], frame[status_var], dropna=False)
        part = self._part(query, frame, [time_var], [status_var], "count", None, prefix=())
        if part.table is not None and any(v is not None for v in (entry, freq_weights, exog)):
            part.table, part.why = None, "entry times, weights or exog change the survival table beyond its counts"
        if part.table is not None and (why := _mismatch(counts, part, part.table, "All")):
            part.table, part.why = None, why
        if output == "plot":
            path = _unique(Path(filename))
            figure = Figure()
            axes = figure.add_subplot()
            if self.suppress:
                axes.step(survival.index, survival["rounded_survival_fun"], where="post")
            else:
                fitted.plot(ax=axes)
            figure.savefig(path)
        onsite: Output = (_renamed(part.table, uid) if part.table is not None
                          else self._table_file(uid, survival, command, part))
        record = self.results.add(Record(
            uid, onsite.verdict.value, "table" if output == "table" else "survival plot",
            {"method": "surv func" if output == "table" else "surv_func"}, command, _summary(part.report),
            outcome_table(counts, [part], "All"), [survival] if output == "table" else [str(path)], [onsite],
            part.table is not None, fair=_fair([part.report], status_var, [time_var], "survival")))
        _show(record)
        if part.table is None:
            self._say("unverified", uid=uid, why=part.why)
        return survival if output == "table" else (axes, str(path))

    # -- regressions: fitted as ACRO fits them, checked by Onsite's model checks; always judged by a reviewer

    def ols(self, endog: Any, exog: Any = None, missing: str = "none", hasconst: bool | None = None,
            **kwargs: Any) -> Any:
        return self._model("ols", sm.OLS(endog, exog=exog, missing=missing, hasconst=hasconst, **kwargs).fit())

    def olsr(self, formula: str, data: Any, subset: Any = None, drop_cols: Any = None, *args: Any,
             **kwargs: Any) -> Any:
        return self._model("olsr", smf.ols(formula=formula, data=data, subset=subset, drop_cols=drop_cols).fit())

    def logit(self, endog: Any, exog: Any, missing: str | None = None, check_rank: bool = True) -> Any:
        return self._model("logit", sm.Logit(endog, exog, missing=missing, check_rank=check_rank).fit())

    def logitr(self, formula: str, data: Any, subset: Any = None, drop_cols: Any = None, *args: Any,
               **kwargs: Any) -> Any:
        return self._model("logitr", smf.logit(formula=formula, data=data, subset=subset, drop_cols=drop_cols).fit())

    def probit(self, endog: Any, exog: Any, missing: str | None = None, check_rank: bool = True) -> Any:
        return self._model("probit", sm.Probit(endog, exog, missing=missing, check_rank=check_rank).fit())

    def probitr(self, formula: str, data: Any, subset: Any = None, drop_cols: Any = None, *args: Any,
                **kwargs: Any) -> Any:
        return self._model("probitr",
                           smf.probit(formula=formula, data=data, subset=subset, drop_cols=drop_cols).fit())

    def _model(self, method: str, results: Any) -> Any:
        command = _command(f"{method}()")
        uid = f"output_{self.results.output_id}"
        model = outputs.model_output(self.db, results, name=uid, code=command,
                                     explanation=f"A model fitted with the ACRO API ({method}).")
        summary = _summary(model.report)
        frames = [pd.read_html(io.StringIO(t.as_html()), header=0, index_col=0)[0]
                  for t in results.summary().tables]
        outcome = pd.DataFrame({"check": [r.rule for r in model.report.results],
                                "outcome": [_tags([(r.rule, r.verdict)]) if r.verdict is not Verdict.PASS else "ok"
                                            for r in model.report.results]})
        fair = _fair([model.report], str(results.model.endog_names), list(results.model.exog_names), method)
        record = self.results.add(Record(uid, model.verdict.value, "regression", {"method": method}, command, summary,
                                         outcome, frames, [model], False, fair=fair))
        _show(record, "a reviewer judges every model: the service cannot refit it")
        return results

    # -- managing outputs, as ACRO

    def custom_output(self, filename: str, comment: str = "") -> bool:
        """Add a file made by other code (a figure, a text); a reviewer judges it. False for a type Onsite cannot
        release (allowed: .png, .jpg, .jpeg, .txt, .csv, .md)."""
        path = Path(filename)
        if wire.media_type(path.name) is None:
            print(f"{path.name}: Onsite releases files of these types only: {', '.join(wire.ALLOWED_FILE_TYPES)}")
            return False
        uid = f"output_{self.results.output_id}"
        explanation = comment.strip() or "(no comment given: add one with acro.add_comments)"
        output = outputs.file_output(path, explanation=explanation, code=_command("custom_output()"), name=uid)
        self.results.add(Record(uid, "review", "custom", {"method": "custom"}, output.code, "review",
                                pd.DataFrame(), [str(path)], [output], False, [comment] if comment else []))
        return True

    def rename_output(self, old: str, new: str) -> None:
        record = self.results.get(old)
        if not isinstance(new, str) or not new.strip() or new in self.results.results:
            raise AcroError(f"{new!r} cannot name an output: give a name no other output has")
        # output names become file names in the release package: letters, digits, _ . - (spaces become _)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", new).strip("_.-")[:100]
        if name != new:
            print(f"{new!r} is sent for review as {name or record.name!r} (a file name in the release package)")
        record.uid, record.name = new, name or record.name
        self.results.results = {(new if k == old else k): v for k, v in self.results.results.items()}

    def remove_output(self, key: str) -> None:
        del self.results.results[self.results.get(key).uid]

    def add_comments(self, output: str, comment: str) -> None:
        self.results.get(output).comments.append(comment)

    def add_exception(self, output: str, reason: str) -> None:
        self.results.get(output).exception = reason

    def print_outputs(self) -> str:
        return self.results.print()

    def show_fair_summaries(self) -> str:
        """Each output's uid and FAIR summary (the checks and their verdicts, the variables), as ACRO's text."""
        lines = []
        for uid, record in self.results.results.items():
            lines.append(uid)
            for key, value in record.fair.items():
                lines += ([f"{k} : {v}" for k, v in value.items()] if isinstance(value, dict) else [f"{key}:{value}"])
        return "\n".join(lines) + "\n\n"

    def finalise(self, path: str = "outputs", ext: str = "json", interactive: bool = False, *,
                 title: str | None = None, purpose: str | None = None, project: str | None = None,
                 timeout: float = 60) -> Records | None:
        """Ask for the release of every output (analysis_kernel.request_release): the outputs, their comments and
        exception requests go to disclosure review. Nothing is written to `path`, whatever `ext` ("json" or "xlsx",
        as ACRO; the released package holds ACRO's results.json). `interactive` asks, as ACRO, for the reason of an
        exception for each output that did not pass. Returns the records, with the service's answer in `.answer`."""
        if ext not in ("json", "xlsx"):
            raise AcroError("Invalid file extension. Options: {json, xlsx}")
        if not self.results.results:
            print("no outputs to finalise")
            return None
        if interactive:
            self.results.validate_outputs()
        sent = [_Sent(_renamed(o, _output_name(record.name, i, len(record.onsite))), record)
                for record in self.results.results.values() for i, o in enumerate(record.onsite)]
        notes = "\n".join(
            f"- {record.name} ({record.output_type}, {record.status}): "
            + "; ".join(filter(None, ["comments: " + " | ".join(record.comments) if record.comments else "",
                                      f"exception requested: {record.exception}" if record.exception else ""]))
            for record in self.results.results.values() if record.comments or record.exception)
        text = (purpose or "Outputs made with the ACRO API").strip()
        if notes:
            text += "\n\nThe researcher's comments and exception requests (ACRO):\n" + notes
        self.results.answer = request_release(sent, title=title or f"ACRO outputs ({path})", purpose=text,
                                              project=project, timeout=timeout)
        self._say("finalise", path=path)
        return self.results


def _survival_bands(frame: pd.DataFrame, time_var: str, status_var: str, threshold: int) -> dict[Any, Any]:
    """Each time -> the last time of its band. A band closes once it holds at least `threshold` people of every
    status (events and censorings), so that each of its cells passes the threshold; a remainder that does not
    joins the band before it."""
    counts = pd.crosstab(frame[time_var], frame[status_var]).sort_index()
    bands: list[list[Any]] = []
    members: list[Any] = []
    held = np.zeros(counts.shape[1], dtype=int)
    for time, row in counts.iterrows():
        members.append(time)
        held += row.to_numpy()
        if (held >= threshold).all():
            bands.append(members)
            members, held = [], np.zeros_like(held)
    if members:
        if bands:
            bands[-1] += members
        else:
            bands.append(members)
    return {time: band[-1] for band in bands for time in band}


def _banded_survival(frame: pd.DataFrame, time_var: str, status_var: str, times: pd.Index) -> list[float]:
    """The Kaplan-Meier survival over bands (the frame's times are the bands' last times), at each of `times`:
    the survival after the last band that closed at or before it."""
    events = frame.groupby(time_var)[status_var].sum().sort_index()
    leaving = frame.groupby(time_var).size().sort_index()
    at_risk = len(frame) - leaving.cumsum().shift(fill_value=0)
    survival = (1 - events / at_risk).cumprod()
    return [float(survival[survival.index <= t].iloc[-1]) if (survival.index <= t).any() else 1.0 for t in times]


def _banded_query(query: str, time_var: str, status_var: str, ends: Sequence[Any]) -> str:
    """`query` with its time variable replaced by its band's last time (bands ending at `ends`, ascending)."""
    def literal(value: Any) -> str:
        return str(int(value)) if float(value).is_integer() and not isinstance(value, float) else \
            f"CAST({float(value)!r} AS DOUBLE)"

    time, status = quote_identifier(time_var), quote_identifier(status_var)
    whens = " ".join(f"WHEN {time} <= {literal(end)} THEN {literal(end)}" for end in ends)
    return f"SELECT CASE {whens} END AS {time}, {status} FROM (\n{query}\n) AS survival_data"


add_constant = sm.add_constant
"""statsmodels' add_constant, which ACRO's package exports too (`from acro import ACRO, add_constant`)."""


def add_to_acro(src_path: str, dest_path: str = "sdc_results") -> None:
    """As ACRO's: every file of the folder `src_path` as a custom output named after the file, then `finalise` —
    on Onsite a release request (a reviewer judges each file; types Onsite cannot release are left out, and said)."""
    acro = ACRO()
    for path in sorted(Path(src_path).iterdir()):
        if acro.custom_output(str(path)):
            acro.rename_output(f"output_{acro.results.output_id - 1}", path.name)
    acro.finalise(dest_path, "json")


def _show(record: Record, note: str = "") -> None:
    """What ACRO logs after each output: its status, the checks' summary and the outcome table, cell by cell."""
    print(f"{record.uid} ({record.properties.get('method')}): {record.status} — {record.summary}"
          + (f" ({note})" if note else ""))
    flagged = record.outcome.astype(str).map(lambda tags: tags != "ok") if not record.outcome.empty else None
    if flagged is not None and flagged.to_numpy().any():
        print(f"outcome:\n{record.outcome.to_string()}")
        if record.outcome.astype(str).map(lambda tags: "onsite:" in tags).to_numpy().any():
            print("onsite:… are checks ACRO does not make or makes differently: see docs/acro-differences.md "
                  "(the D-number shown)")


@dataclasses.dataclass(frozen=True)
class _Sent:
    """An output as `finalise` sends it: a table carries what ACRO records of it (`claimed["acro"]`: the command,
    comments and exception, for the package's results.json); a file's explanation gains the comments."""

    output: Output
    record: Record

    @property
    def cells(self) -> int:
        return getattr(self.output, "cells", 0)

    def to_request(self) -> wire.OutputPayload:
        record = self.record
        comments = [c for c in record.comments if c not in getattr(self.output, "explanation", "")]
        if isinstance(self.output, (FileOutput, ModelOutput)) and comments:
            return dataclasses.replace(self.output, explanation=f"{self.output.explanation}\n\n"
                                       + "\n".join(comments)).to_request()
        payload = self.output.to_request()
        if not isinstance(payload, wire.TablePayload):
            return payload
        claim = {"uid": record.uid, "method": record.properties.get("method", "table"), "command": record.command,
                 "comments": list(record.comments), "exception": record.exception}
        return dataclasses.replace(payload, claimed={**(payload.claimed or {}), acro_format.CLAIM: claim})


def _output_name(uid: str, index: int, count: int) -> str:
    return uid if count == 1 else f"{uid}_{index}"


def _renamed(output: Output, name: str) -> Output:
    if isinstance(output, TableOutput):
        return output if output.spec.name == name else dataclasses.replace(
            output, spec=dataclasses.replace(output.spec, name=name))
    if isinstance(output, (FileOutput, ModelOutput)):
        return dataclasses.replace(output, name=name)
    return output


def _by_bin(cells: dict[CellKey, Any], edges: Sequence[float]) -> list[Any]:
    """Each bin's entry of `cells` (keyed by the bin's lower edge as text, as Onsite labels bins), None if absent."""
    lows = {float(key[0]): entry for key, entry in cells.items() if key[0] is not MARGIN}
    return [next((e for low, e in lows.items() if math.isclose(low, edge, rel_tol=1e-9, abs_tol=1e-12)), None)
            for edge in edges[:-1]]


def _fair(reports: Sequence[CheckReport], dependent: str | None, independent: Sequence[str],
          analysis: str) -> dict[str, Any]:
    """ACRO's FAIR summary of an output from Onsite's checks (ACRO's check names where it has the check)."""
    status: dict[str, Verdict] = {}
    for report in reports:
        for result in report.results:
            name = acro_format.check_name(result.rule)
            status[name] = Verdict.combine([status.get(name, Verdict.PASS), result.verdict])
    return {"analysis": analysis, "checks_needed": list(status),
            "check_status": {name: verdict.value for name, verdict in status.items()},
            "dependent": dependent or "unknown", "independent": list(independent)}


def _summary(report: CheckReport) -> str:
    return acro_format.summary(report.verdict.value, [(r.rule, r.verdict.value, len(r.cells)) for r in report.results])


def _unique(path: Path) -> Path:
    """`path`, or `<stem>_<n><suffix>` when it exists (ACRO never overwrites a figure)."""
    n = 0
    candidate = path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
    return candidate


def _draw(edges: Sequence[float], heights: Any, column: str, figsize: Any, path: Path) -> None:
    figure = Figure(figsize=figsize)
    axes = figure.add_subplot()
    axes.stairs(np.nan_to_num(heights), edges, fill=True)
    axes.set_title(column)
    figure.savefig(path)
