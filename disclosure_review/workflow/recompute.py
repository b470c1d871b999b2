"""Recompute declarative outputs from the source data; the verdict that counts.

A table's query is researcher input: it runs in a guarded DuckDB connection
holding only the project's currently granted datasets and the approved
reference data it names (`reference.<name>`, each copy checked against its
approved SHA-256; read-only, external access off, configuration locked), under
a memory limit and a time limit. The
shadow statistics and checks are the same `sdc` functions the kernel uses. What
the session claimed is compared and stored beside, never used for the verdict.
Anything that cannot be computed is `fail` with the error shown, never `pass`.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any, TypeVar

import duckdb
import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control.models import Dataset
from dataplane.catalogue import MICRODATA_TABLE, attached_name, guarded_connection
from dataplane.reference import SCHEMA as REFERENCE_SCHEMA, ReferenceFile, ReferenceInvalid, verified_table
from dataplane.sql import parse_tree, tables_read
from disclosure_review.queries import tracker_check
from disclosure_review.sdc import load_preset, records
from disclosure_review.sdc.differencing import RULE as DIFFERENCING
from disclosure_review.sdc.differencing import OtherOutput, check_differencing
from disclosure_review.sdc.enums import Verdict
from disclosure_review.sdc.microdata import ExtractSpec
from disclosure_review.sdc.protect import ProtectedTable, evaluate_table, failing_mask
from disclosure_review.sdc.rules import Rules
from disclosure_review.sdc.shadow import RECORDS, VALUE, ShadowTable
from disclosure_review.sdc.size import table_cells
from disclosure_review.sdc.spec import TableSpec
from disclosure_review.sdc.tracker import with_check
from disclosure_review.wire import LimitExceeded, check_limit
from disclosure_review.workflow import cellkey, messages
from disclosure_review.workflow.policies import ReviewPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_MISMATCHES = 50  # cells listed; the count says how many more differ
RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class CheckedOutput:
    """What the service found for one output."""

    verdict: Verdict
    verified: bool
    recomputed: dict[str, Any] | None = None
    shadow: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    mismatch: list[dict[str, Any]] | None = None
    error: str | None = None  # in English; `error_message` is its message id and arguments (workflow.messages)
    error_message: dict[str, Any] | None = None
    # a record-level output: the file the service rendered from its own re-run (released as is)
    content: bytes | None = None
    filename: str | None = None
    media_type: str | None = None
    cells: int = 0
    """Cells recomputed (a table's with margins, an extract's records × columns): what the output limits count."""
    record_state: bytes | None = None
    """A verified table's `records.RecordState` (None: its rows could not be traced to records), for differencing."""


def opaque_output() -> CheckedOutput:
    """A file made by arbitrary code cannot be recomputed: a human judges it."""
    return CheckedOutput(verdict=Verdict.REVIEW, verified=False)


def not_run(code: str, **args: Any) -> CheckedOutput:
    """A declarative output the service did not recompute: it fails, with the reason (a workflow message) shown."""
    message = messages.msg(code, **args)
    return CheckedOutput(verdict=Verdict.FAIL, verified=False, error=messages.text(message), error_message=message)


def recomputation_failed(exc: Exception) -> CheckedOutput:
    """The query or the checks raised: the output fails, quoting the error (fails closed, never `pass`)."""
    if isinstance(exc, QueryTimeout):
        return not_run("query_timeout", seconds=exc.seconds)
    if isinstance(exc, cellkey.CellKeyFailed):
        return not_run(exc.code, **exc.arguments)
    return not_run("recompute_failed", error=str(exc))


def references_read(spec: TableSpec | ExtractSpec, references: Mapping[str, ReferenceFile]) -> dict[str, ReferenceFile]:
    """The approved reference data a spec's query names (`reference.<name>`): only these are attached."""
    return {name: references[name] for name in sorted(tables_read(spec.query)) if name in references}


def known_dataset_ids(session: Session) -> set[str]:
    return set(session.scalars(select(Dataset.id)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def _frame_json(frame) -> dict[str, Any]:
    return {"columns": list(frame.columns), "rows": [[_jsonable(v) for v in row] for row in frame.iter_rows()]}


def open_guarded(
    load_rules: Callable[[str], T], preset: str, datasets: Mapping[str, str], policy: ReviewPolicy,
    references: Mapping[str, ReferenceFile] | None = None,
) -> tuple[T, duckdb.DuckDBPyConnection] | CheckedOutput:
    """The preset's rules and a guarded connection to `datasets` and `references`, or the failed output saying why."""
    try:
        rules = load_rules(preset)
    except Exception as exc:  # an unknown preset must not let anything pass
        log.error("rule preset %r could not be loaded: %s", preset, exc)
        return not_run("preset_unloadable", preset=preset, error=str(exc))
    try:
        tables = {name: verified_table(ref) for name, ref in (references or {}).items()}
    except ReferenceInvalid as exc:  # a copy changed since approval is never used
        log.error("reference data refused: %s", exc)
        return not_run("reference_refused", error=str(exc))
    try:
        return rules, guarded_connection(dict(datasets), memory_limit=policy.query_memory_limit, references=tables)
    except Exception as exc:
        log.error("guarded connection failed: %s", exc)
        return not_run("datasets_unopened", error=str(exc))


# ---------------------------------------------------------------- record state (differencing)


def _expression(sql: str) -> dict[str, Any]:
    """The parse tree of one select-list expression (DuckDB's own parser)."""
    return _parse_select(f"SELECT {sql}")["select_list"][0]


def _parse_select(sql: str) -> dict[str, Any]:
    tree = parse_tree(sql)
    if tree.get("error") or len(tree["statements"]) != 1:
        raise ValueError("not one statement")
    return tree["statements"][0]["node"]


def _trace(node: dict[str, Any], datasets: Mapping[str, str], depth: int) -> tuple[str, str] | None:
    """Add to a SELECT the row id of the dataset row each of its rows comes from; the column's name and the
    dataset, or None when its rows are not one per dataset row (aggregates, DISTINCT, LIMIT, set operations, CTEs,
    joins of datasets …)."""
    if (node.get("type") != "SELECT_NODE" or node["cte_map"]["map"] or node["group_expressions"]
            or node["group_sets"] or node["having"] or node["qualify"] or node["sample"]
            or node["aggregate_handling"] != "STANDARD_HANDLING"
            or any(m.get("type") != "ORDER_MODIFIER" for m in node["modifiers"])):
        return None
    source = node["from_table"]
    if source.get("sample") or source.get("column_name_alias"):
        return None
    name = f"{records.RECORD_COLUMN}_{depth}" if depth else records.RECORD_COLUMN
    if source["type"] == "SUBQUERY":
        inner = _trace(source["subquery"]["node"], datasets, depth + 1)
        if inner is None or not source["alias"]:
            return None
        node["select_list"].append(_expression(f'{_quoted(source["alias"])}.{inner[0]} AS {name}'))
        return name, inner[1]
    tables = _joined_tables(source)
    if tables is None:
        return None
    from_datasets = [t for t in tables if t.get("schema_name") in ("", "main")]
    if len(from_datasets) != 1 or any(t.get("schema_name") != REFERENCE_SCHEMA for t in tables if t not in from_datasets):
        return None  # one dataset, joined with reference data only (its rows checked one per record later)
    source = from_datasets[0]
    table = source.get("table_name", "")
    if source.get("catalog_name") or source.get("at_clause") or table not in datasets:
        return None
    alias = source["alias"] or table
    # The file's own table, not the view: its row ids are the service's, the query cannot choose them.
    source.update(catalog_name=attached_name(table), schema_name="main", table_name=MICRODATA_TABLE, alias=alias,
                  qualified_name={"path": [attached_name(table), "main", MICRODATA_TABLE]})
    node["select_list"].append(_expression(f"{_quoted(alias)}.rowid AS {name}"))
    return name, table


def _joined_tables(source: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The tables a FROM clause reads, when it is tables and joins of tables only."""
    if source.get("sample") or source.get("column_name_alias"):
        return None
    if source["type"] == "BASE_TABLE":
        return [source]
    if source["type"] != "JOIN":
        return None
    left, right = _joined_tables(source["left"]), _joined_tables(source["right"])
    return None if left is None or right is None else left + right


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def traced_query(con: duckdb.DuckDBPyConnection, query: str, datasets: Mapping[str, str]) -> tuple[str, str] | None:
    """`query` with the column `records.RECORD_COLUMN` (the row id) added, and the dataset whose rows it reads; or
    None when its rows cannot be traced to records.

    Traced: a SELECT (in any depth of subqueries) from one dataset, possibly joined with reference
    data. Whether each record then gives at most one row is checked when the state is computed.

    The row ids are the attached file's: the query can filter on them but not choose them. A dataset with a column named rowid would hide the
    row id: its queries are not traced.
    """
    try:
        node = _parse_select(query)
    except (duckdb.Error, ValueError, KeyError, IndexError):
        return None
    traced = _trace(node, datasets, 0)
    if traced is None:
        return None
    columns = con.execute(f"SELECT lower(column_name) FROM (DESCRIBE {_quoted(attached_name(traced[1]))}.main."
                          f"{MICRODATA_TABLE})").fetchall()
    if ("rowid",) in columns:
        return None
    (text,) = con.execute("SELECT json_deserialize_sql(?::JSON)",
                          [json.dumps({"error": False, "statements": [{"node": node, "named_param_map": []}]})]
                          ).fetchall()[0]
    return text, traced[1]


@dataclass(frozen=True)
class TracedRecords:
    """A table's records, traced to the rows of `dataset` (`records.traced_records`): read once, for the record
    state and the cell key method alike."""

    frame: pl.DataFrame
    dataset: str


def trace_records(con: duckdb.DuckDBPyConnection, protected: ProtectedTable,
                  datasets: Mapping[str, str]) -> TracedRecords | None:
    """The records of a recomputed table's cells (those of cells deleted left out), or None when its query's rows
    cannot be traced to records or tracing fails."""
    spec = protected.shadow.spec
    traced = traced_query(con, spec.query, datasets)
    if traced is None:
        return None
    try:
        return TracedRecords(records.traced_records(con, spec, traced[0], protected.left_out), traced[1])
    except (duckdb.Error, records.NotOneRowPerRecord) as exc:  # an aggregate in the select list, a join that repeats
        log.info("table %s: records not traced (%s)", spec.name, type(exc).__name__)
        return None


def record_state(protected: ProtectedTable, traced: TracedRecords | None,
                 threshold: int | None) -> records.RecordState | None:
    """The record state of a recomputed table's cells (those released blank left out); None when untraced."""
    if traced is None:
        return None
    shadow = protected.shadow
    state = records.state_of_records(shadow, traced.frame, traced.dataset, threshold, protected.held_records)
    shown = protected.cells.get_column(protected.cells.columns[-1]).is_not_null().to_list()
    values = shadow.frame.get_column(VALUE).is_not_null().to_list()
    return state.blanked({label for label, s, v in zip(state.labels, shown, values) if v and not s})


def perturbed(con: duckdb.DuckDBPyConnection, protected: ProtectedTable, traced: TracedRecords | None,
              datasets: Mapping[str, str], policy: ReviewPolicy) -> tuple[Any, dict[str, Any]] | None:
    """The released cells perturbed by the cell key method and its facts, when the policy asks it for a dataset
    the query reads (None otherwise); `cellkey.CellKeyFailed` when it asks and cannot be done (fails closed)."""
    spec = protected.shadow.spec
    if not cellkey.applies(tables_read(spec.query) & set(datasets), list(policy.cell_key_datasets)):
        return None
    if spec.protection is not None and spec.protection.method.rounds:
        raise cellkey.CellKeyFailed("cell_key_rounding")
    if traced is None:
        raise cellkey.CellKeyFailed("cell_key_untraced")
    return cellkey.perturb_table(con, protected.shadow, protected.cells, traced.frame, traced.dataset, datasets,
                                 policy.cell_key_counts, policy.cell_key_magnitudes,
                                 sensitive=failing_mask(protected.shadow, protected.report))


class QueryTimeout(Exception):
    """The recorded query ran past the time limit (`seconds`) and was interrupted."""

    def __init__(self, seconds: float) -> None:
        super().__init__(messages.text(messages.msg("query_timeout", seconds=seconds)))
        self.seconds = seconds


def run_with_limits(con: duckdb.DuckDBPyConnection, compute: Callable[[], T], timeout_s: float) -> T:
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        con.interrupt()  # DuckDB stops the running query

    timer = threading.Timer(timeout_s, stop)
    timer.start()
    try:
        return compute()
    except Exception:
        if fired.is_set():
            raise QueryTimeout(timeout_s) from None
        raise
    finally:
        timer.cancel()


def recompute_table(
    spec: TableSpec,
    claimed: Mapping[str, Any] | None,
    datasets: Mapping[str, str],
    preset: str,
    policy: ReviewPolicy,
    *,
    timeout_s: float | None = None,
    references: Mapping[str, ReferenceFile] | None = None,
) -> CheckedOutput:
    """Re-run `spec` over `datasets` ({dataset id: path}, the project's grants today), check it and keep its
    record state (differencing with the project's other outputs is `with_differencing`, given them).

    `timeout_s`: this query's time limit (default: the policy's).
    `references`: the project's approved reference data ({name: stored copy}); those the query names are attached.
    """
    opened = open_guarded(load_preset, preset, datasets, policy, references_read(spec, references or {}))
    if isinstance(opened, CheckedOutput):
        return opened
    rules, con = opened

    def compute() -> tuple[ProtectedTable, records.RecordState | None, tuple | None]:
        # Counted first: a table past the output limit refuses the request before any cell is built.
        check_limit("output_cells", table_cells(con, spec), policy.max_cells_per_output, name=spec.name)
        # Our own cells, checks and the spec's protection re-applied: the kernel's pattern is never used.
        protected = evaluate_table(con, spec, rules)
        protected = with_check(protected, tracker_check(con, spec.query, datasets))  # does the query single out records?
        traced = trace_records(con, protected, datasets)
        return protected, record_state(protected, traced, rules.threshold), perturbed(con, protected, traced, datasets,
                                                                                      policy)

    try:
        protected, state, noisy = run_with_limits(con, compute, timeout_s or policy.query_timeout_s)
    except LimitExceeded:
        raise
    except Exception as exc:  # any failure fails closed, with the reason shown to reviewers
        log.info("table %s could not be recomputed (%s)", spec.name, type(exc).__name__)  # the message may quote data
        return recomputation_failed(exc)
    finally:
        con.close()
    shadow = protected.shadow
    released, report = protected.cells, protected.report_dict()
    if noisy is not None:  # the cell key method: the released cells are the perturbed ones
        released, report = noisy[0], report | {"cell_key": noisy[1]}
    return CheckedOutput(
        verdict=protected.verdict,
        verified=True,
        recomputed=_frame_json(released),  # the released view: blank where suppressed or deleted, perturbed
        shadow=shadow.to_dict(),
        report=report,
        mismatch=compare_claimed(claimed, shadow, protected.verdict, protected.cells),
        cells=shadow.frame.height,
        record_state=state.to_bytes() if state is not None else None,
    )


def with_differencing(checked: CheckedOutput, name: str, others: Sequence[OtherOutput], rules: Rules) -> CheckedOutput:
    """`checked` (a verified table) with the differencing check against `others` in its report and verdict."""
    state = records.RecordState.from_bytes(checked.record_state) if checked.record_state else None
    result = check_differencing(state, name, others, rules)
    report = dict(checked.report or {})
    kept = [r for r in report.get("results", []) if r.get("rule") != DIFFERENCING]
    verdict = Verdict.combine([Verdict(r["verdict"]) for r in kept] + [result.verdict])
    report.update(results=[*kept, result.to_dict()], verdict=verdict.value)
    return dataclasses.replace(checked, verdict=verdict, report=report)


def other_output(name: str, state: bytes | None) -> OtherOutput:
    """An output of the project as differencing sees it (a state that cannot be read counts as untraced)."""
    try:
        return OtherOutput(name, records.RecordState.from_bytes(state) if state else None)
    except (ValueError, KeyError, zlib.error) as exc:
        log.warning("the record state of %s could not be read: %s", name, exc)
        return OtherOutput(name, None)


def _claimed_shadow(claimed: Mapping[str, Any]) -> Mapping[str, Any] | None:
    inner = claimed.get("shadow")
    if isinstance(inner, Mapping):
        return inner
    return claimed if "columns" in claimed and "rows" in claimed else None


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) > RELATIVE_TOLERANCE * max(1.0, abs(a), abs(b))
    return a != b


def difference(code: str, claimed: Any, recomputed: Any, **args: Any) -> dict[str, Any]:
    """One claimed figure that differs: {"what" (English), "code", "args" (its message), "claimed", "recomputed"}."""
    message = messages.msg(code, **args)
    return {"what": messages.text(message), **message, "claimed": claimed, "recomputed": recomputed}


def _cell(labels) -> str:
    return " / ".join(str(v) for v in labels)


def _released_cell_differences(claimed: Mapping[str, Any], cells) -> list[dict[str, Any]]:
    """Released cells the session shows differently (e.g. a cell it leaves visible that we suppress)."""
    try:
        theirs = {tuple(row[:-1]): row[-1] for row in claimed["cells"]["rows"]}
    except (TypeError, KeyError, IndexError):
        return []
    return [
        difference("claimed_released_cell", theirs[tuple(row[:-1])], row[-1], cell=_cell(row[:-1]))
        for row in cells.iter_rows()
        if tuple(row[:-1]) in theirs and _differs(theirs[tuple(row[:-1])], row[-1])
    ]


def compare_claimed(claimed: Mapping[str, Any] | None, shadow: ShadowTable, verdict: Verdict,
                    cells=None) -> list[dict[str, Any]]:
    """Where the session's claim differs from the recomputation: [`difference`, …].

    `cells`: our released (protected) cells, compared with the session's released cells.
    """
    if not claimed:
        return []
    differences: list[dict[str, Any]] = []
    claimed_verdict = claimed.get("verdict")
    if claimed_verdict is not None and claimed_verdict != verdict.value:
        differences.append(difference("claimed_verdict", claimed_verdict, verdict.value))
    if cells is not None:
        differences += _released_cell_differences(claimed, cells)[:MAX_MISMATCHES]
    claimed_shadow = _claimed_shadow(claimed)
    if claimed_shadow is None:
        return differences
    try:
        columns = list(claimed_shadow["columns"])
        rows = [dict(zip(columns, row)) for row in claimed_shadow["rows"]]
    except (TypeError, KeyError):
        return [*differences, difference("claimed_shadow_unreadable", None, None)]
    dims = shadow.dimensions
    ours = {
        tuple(label): dict(zip(shadow.frame.columns, row))
        for label, row in zip(shadow.labels(), shadow.frame.iter_rows())
    }

    def key(row: Mapping[str, Any]) -> tuple:
        # Claimed rows carry raw levels with a grouping bit set for margins, as ours do.
        grouping = row.get("sdc_grouping") or 0
        k = len(dims)
        return tuple(
            shadow.margin_label if grouping & (1 << (k - 1 - i)) else (None if row.get(d) is None else str(row.get(d)))
            for i, d in enumerate(dims)
        )

    theirs = {key(row): row for row in rows}
    cell_diffs = []
    for cell in sorted(set(ours) | set(theirs), key=lambda c: tuple("" if v is None else v for v in c)):
        mine, claim = ours.get(cell), theirs.get(cell)
        for column in (RECORDS, VALUE):
            a = None if claim is None else claim.get(column)
            b = None if mine is None else mine.get(column)
            if _differs(a, b):
                cell_diffs.append(difference("claimed_shadow_figure", a, b, cell=_cell(cell),
                                             figure=messages.msg(f"figure_{column}")))
    differences += cell_diffs[:MAX_MISMATCHES]
    if len(cell_diffs) > MAX_MISMATCHES:
        differences.append(difference("claimed_more", None, None, count=len(cell_diffs) - MAX_MISMATCHES))
    return differences
