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
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control.models import Dataset
from dataplane.catalogue import guarded_connection
from dataplane.reference import ReferenceFile, ReferenceInvalid, verified_table
from dataplane.sql import tables_read
from disclosure_review.sdc import load_preset
from disclosure_review.sdc.enums import Verdict
from disclosure_review.sdc.microdata import ExtractSpec
from disclosure_review.sdc.protect import ProtectedTable, evaluate_table
from disclosure_review.sdc.shadow import MARGIN_LABEL, RECORDS, VALUE, ShadowTable
from disclosure_review.sdc.size import table_cells
from disclosure_review.sdc.spec import TableSpec
from disclosure_review.wire import LimitExceeded, check_limit
from disclosure_review.workflow import messages
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
    released: Sequence[Mapping[str, Any]] = (),
    timeout_s: float | None = None,
    references: Mapping[str, ReferenceFile] | None = None,
) -> CheckedOutput:
    """Re-run `spec` over `datasets` ({dataset id: path}, the project's grants today) and check it.

    `released`: shadow statistics (dicts) of the project's released tables, for the differencing check.
    `timeout_s`: this query's time limit (default: the policy's).
    `references`: the project's approved reference data ({name: stored copy}); those the query names are attached.
    """
    opened = open_guarded(load_preset, preset, datasets, policy, references_read(spec, references or {}))
    if isinstance(opened, CheckedOutput):
        return opened
    rules, con = opened
    released_tables = _released_tables(released)

    def compute() -> ProtectedTable:
        # Counted first: a table past the output limit refuses the request before any cell is built.
        check_limit("output_cells", table_cells(con, spec), policy.max_cells_per_output, name=spec.name)
        # Our own cells, checks and the spec's protection re-applied: the kernel's pattern is never used.
        return evaluate_table(con, spec, rules, released=released_tables)

    try:
        protected = run_with_limits(con, compute, timeout_s or policy.query_timeout_s)
    except LimitExceeded:
        raise
    except Exception as exc:  # any failure fails closed, with the reason shown to reviewers
        log.info("table %s could not be recomputed (%s)", spec.name, type(exc).__name__)  # the message may quote data
        return recomputation_failed(exc)
    finally:
        con.close()
    shadow = protected.shadow
    return CheckedOutput(
        verdict=protected.verdict,
        verified=True,
        recomputed=_frame_json(protected.cells),  # the released view: blank where suppressed or deleted
        shadow=shadow.to_dict(),
        report=protected.report_dict(),
        mismatch=compare_claimed(claimed, shadow, protected.verdict, protected.cells),
        cells=shadow.frame.height,
    )


def _released_tables(released: Sequence[Mapping[str, Any]]) -> list[ShadowTable]:
    tables = []
    for data in released:
        try:
            tables.append(ShadowTable.from_dict(data))
        except (ValueError, KeyError, TypeError) as exc:  # an older format: the reviewer still sees the table
            log.warning("a released table could not be read for the differencing check: %s", exc)
    return tables


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
            MARGIN_LABEL if grouping & (1 << (k - 1 - i)) else (None if row.get(d) is None else str(row.get(d)))
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
