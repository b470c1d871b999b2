"""Recompute and check a record-level output (an extract) under the project's grants.

The extract's query runs in the same guarded connection, with the same memory
and time limits, as a table's. Key, weight, household and sensitive variables
come from the source datasets' metadata (the spec may add key variables, never
remove one); result columns that are no declared variable (renamed or derived)
make the verdict at least review, because the check cannot tell what they are.
The CSV that is released is written here, from this re-run; what the session
claimed is compared and stored beside, never used.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Mapping
from typing import Any

import polars as pl
import pyarrow as pa

from dataplane.catalogue import attached_metadata
from dataplane.sql import tables_read
from disclosure_review.queries import tracker_check
from disclosure_review.sdc.enums import Verdict
from disclosure_review.sdc.results import CheckResult
from disclosure_review.sdc.microdata import (
    ExtractSpec,
    InvalidMicrodataInput,
    SwapOptions,
    check_extract,
    declared_roles,
    record_level_rules,
)
from disclosure_review.sdc.size import extract_cells
from disclosure_review.sdc.tracker import with_check
from disclosure_review.wire import MAX_FILE_BYTES, LimitExceeded, check_limit
from disclosure_review.workflow.policies import ReviewPolicy
from disclosure_review.workflow.recompute import (
    CheckedOutput,
    difference,
    not_run,
    open_guarded,
    recomputation_failed,
    references_read,
    run_with_limits,
)

log = logging.getLogger(__name__)

MAX_EXTRACT_ROWS = 1_000_000
"""Records an extract may hold; a larger one fails (with MAX_FILE_BYTES as the other limit)."""
SWAP_PAIRS_SHOWN = 200
"""Swapped pairs listed for reviewers (the report counts them all)."""
CLAIM_FIGURES = ("records", "expected_reidentifications", "max_individual_risk")


def render_csv(table: pa.Table) -> bytes:
    """The extract as UTF-8 CSV with a header row, missing values as empty fields."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for batch in table.to_batches(65_536):
        writer.writerows(zip(*(column.to_pylist() for column in batch.columns)))
    return out.getvalue().encode("utf-8")


def recompute_extract(
    spec: ExtractSpec,
    claimed: Mapping[str, Any] | None,
    datasets: Mapping[str, str],
    preset: str,
    policy: ReviewPolicy,
    *,
    timeout_s: float | None = None,
    references: Mapping[str, Any] | None = None,
    swapping: SwapOptions | None = None,
) -> CheckedOutput:
    """Re-run `spec` over `datasets` ({dataset id: file}) and check it with the preset's record-level rules.

    `references`: the project's approved reference data; columns taken from it are undeclared (verdict at least review).
    `swapping`: a reviewer's record swapping, applied to the recomputed records before they are checked and
    written; what it swapped goes to `report["swapping"]`, which only reviewers see (the package's manifest
    keeps the checks' results alone).
    """
    opened = open_guarded(record_level_rules, preset, datasets, policy, references_read(spec, references or {}))
    if isinstance(opened, CheckedOutput):
        return opened
    rules, con = opened

    def compute() -> tuple[pa.Table, list[Any], CheckResult]:
        # Counted first: an extract past the output limit refuses the request before its records are read.
        check_limit("output_cells", extract_cells(con, spec), policy.max_cells_per_output, name=spec.name)
        table = con.sql(spec.query).limit(MAX_EXTRACT_ROWS + 1).to_arrow_table()
        sources = sorted(tables_read(spec.query) & set(datasets))
        return table, [attached_metadata(con, d).metadata for d in sources], tracker_check(con, spec.query, datasets)

    try:
        table, metadata, tracker = run_with_limits(con, compute, timeout_s or policy.query_timeout_s)
    except LimitExceeded:
        raise
    except Exception as exc:  # fails closed, with the reason shown to reviewers
        log.info("extract %s could not be recomputed (%s)", spec.name, type(exc).__name__)
        return recomputation_failed(exc)
    finally:
        con.close()
    if table.num_rows > MAX_EXTRACT_ROWS:
        return not_run("extract_too_many_records", limit=MAX_EXTRACT_ROWS)
    swap_report = None
    if swapping is not None:
        roles = declared_roles(table.column_names, metadata, spec.keys)
        if roles.household is None:
            return not_run("swapping_needs_household")
        try:
            swapped = swapping.apply(pl.from_arrow(table), roles.household, roles.keys)
        except InvalidMicrodataInput as exc:
            return not_run("swapping_invalid", error=str(exc))
        table, swap_report = swapped.data.to_arrow(), swapped.report(max_pairs=SWAP_PAIRS_SHOWN)
    content = render_csv(table)
    if len(content) > MAX_FILE_BYTES:
        return not_run("extract_too_large", size=len(content), limit=MAX_FILE_BYTES)
    checked = with_check(check_extract(table, metadata, spec.keys, rules), tracker)
    roles, check, verdict = checked.roles, checked.check, checked.verdict
    findings = [f.to_dict() for f in checked.findings]
    risk = None if check.report is None else check.report.to_dict()
    report = {
        "output": spec.name,
        "preset": preset,
        "verdict": verdict.value,
        "results": findings,
        "roles": {"keys": list(roles.keys), "weight": roles.weight, "household": roles.household,
                  "sensitive": list(roles.sensitive), "undeclared": list(roles.undeclared)},
        "risk": risk,
    }
    if swap_report is not None:
        report["swapping"] = swap_report
    recomputed = {"columns": table.column_names, "records": table.num_rows,
                  "sha256": hashlib.sha256(content).hexdigest()}
    return CheckedOutput(
        verdict=verdict, verified=True, recomputed=recomputed, report=report,
        mismatch=compare_claimed_risk(claimed, verdict, risk, table.num_rows),
        content=content, filename=f"{spec.name}.csv", media_type="text/csv",
        cells=table.num_rows * table.num_columns,
    )


def compare_claimed_risk(
    claimed: Mapping[str, Any] | None, verdict: Verdict, risk: Mapping[str, Any] | None, records: int
) -> list[dict[str, Any]]:
    """Where the session's claimed verdict and risk figures differ from ours (shown, never used)."""
    if not claimed:
        return []
    ours = {"records": records, **({k: risk.get(k) for k in CLAIM_FIGURES[1:]} if risk else {})}
    differences = []
    if claimed.get("verdict") is not None and claimed.get("verdict") != verdict.value:
        differences.append(difference("claimed_verdict", claimed.get("verdict"), verdict.value))
    theirs = claimed.get("risk") if isinstance(claimed.get("risk"), Mapping) else {}
    for figure in CLAIM_FIGURES:
        a, b = theirs.get(figure), ours.get(figure)
        if a is None:
            continue
        same = (isinstance(a, (int, float)) and not isinstance(a, bool) and isinstance(b, (int, float))
                and abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b)))
        if not same:
            differences.append(difference(f"figure_{figure}", a if isinstance(a, (int, float, str)) else str(a), b))
    return differences
