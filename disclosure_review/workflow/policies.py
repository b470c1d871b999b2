"""What a status, an output type or a verdict allows: rules about things, not people.

(Who may act is `permissions.py`.)
"""
from __future__ import annotations

import re
from typing import Any

from traitlets import Dict, Float, Int, List, TraitError, Unicode, validate

from disclosure_review.sdc.ckm.ptable import PTableInvalid
from disclosure_review.sdc.enums import Verdict
from disclosure_review import wire
from disclosure_review.wire import FORWARDER_TIMEOUT_S, MAX_TEXT
from disclosure_review.workflow.cellkey import count_ptable, magnitude_settings
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from disclosure_review.workflow.exceptions import VoteInvalid
from disclosure_review.workflow.transitions import OPEN_FOR_REVIEW
from onsite_base.config import Section

DEFAULT_REQUIRED_APPROVALS = 2
"""Independent approvals each output needs (the two-reviewer rule)."""


WIRE_CEILINGS = {"max_cells_per_output": wire.MAX_CELLS_PER_OUTPUT, "max_cells_per_request": wire.MAX_CELLS_PER_REQUEST,
                 "max_bytes_per_output": wire.MAX_OUTPUT_BYTES, "max_bytes_per_request": wire.MAX_REQUEST_BYTES}
"""Output limits a site may lower, never raise: the kernel and the forwarder check the wire's."""
MEMORY_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


class ReviewPolicy(Section):
    """The review rules: approvals each output needs and the limits of the service's re-runs.
    Read by the review service at start; each request keeps the approvals required when it was submitted."""

    required_approvals = Int(
        DEFAULT_REQUIRED_APPROVALS,
        help="""Independent approvals each output of a release request (and each ingress
        request) needs before it is released. Default 2, the two-reviewer rule; at least 1.
        Security: with 1 a single reviewer releases alone. A request keeps the number in
        force when it was submitted.""",
    ).tag(config=True)

    query_timeout_s = Float(
        30.0,
        help="""Seconds one recorded query may run when the review service re-runs it to
        check an output (and when a reviewer previews a protection). A query past it is
        not run to the end: the output is refused as not recomputable. Positive.""",
    ).tag(config=True)

    submission_budget_s = Float(
        90.0,
        help=f"""Seconds all the queries of one submission may take together; outputs left
        when it is spent are refused as not checked. Positive and below {FORWARDER_TIMEOUT_S:g} s:
        the single-user server waits {FORWARDER_TIMEOUT_S:g} s for the service's answer.""",
    ).tag(config=True)

    query_memory_limit = Unicode(
        "2GB",
        help="""DuckDB memory limit of each re-run (e.g. 512MB, 2GB, 1.5GiB): a query that
        needs more is refused, so researcher SQL cannot exhaust the review service's host.""",
    ).tag(config=True)

    # Output limits; the defaults as measured in docs/security.md ("Output limits"). The wire ceilings are what the
    # kernel and the forwarder check, so a site may lower these, never raise them.
    max_cells_per_output = Int(
        wire.MAX_CELLS_PER_OUTPUT,
        help=f"""Cells one output may have: a table's cells with its margins, an extract's records
        times columns. The service counts them before recomputing (a cheap count of the levels) and
        again on what it computed; a larger output refuses the whole request, audited, saying to
        aggregate or split. 1 to {wire.MAX_CELLS_PER_OUTPUT:,} (the wire ceiling the kernel checks).""",
    ).tag(config=True)

    max_cells_per_request = Int(
        wire.MAX_CELLS_PER_REQUEST,
        help=f"""Cells of all the outputs of one release request together; more is refused (split the
        request). 1 to {wire.MAX_CELLS_PER_REQUEST:,} (the wire ceiling).""",
    ).tag(config=True)

    max_cells_per_project = Int(
        1_000_000,
        help="""Cells of one project's release requests waiting for review (submitted or partially
        reviewed) together with a new one: a project cannot flood the reviewers' queue. A request
        past it is refused until reviewers decide some (or the researcher withdraws some). At least 1.""",
    ).tag(config=True)

    max_bytes_per_output = Int(
        wire.MAX_OUTPUT_BYTES,
        help=f"""Bytes of one output as received (its JSON: a file's base64, a table's claims) and as
        stored after recomputation (cells, shadow statistics, an extract's CSV). 1 to
        {wire.MAX_OUTPUT_BYTES:,} (the wire ceiling).""",
    ).tag(config=True)

    max_bytes_per_request = Int(
        wire.MAX_REQUEST_BYTES,
        help=f"""Bytes of one request's HTTP body (release and ingress requests): a larger body is
        answered HTTP 413 with a JSON message and an audit event, and not kept. 1 to
        {wire.MAX_REQUEST_BYTES:,} (the wire ceiling the forwarder checks).""",
    ).tag(config=True)

    max_bytes_per_project = Int(
        256 * 1024 * 1024,
        help="""Bytes stored for one project's release requests waiting for review together with a
        new one (as `max_cells_per_project`). At least 1.""",
    ).tag(config=True)

    cell_key_datasets = List(
        Unicode(),
        help="""Datasets whose tables are released perturbed by the cell key method (ids; "*" for
        all): every released count and sum over them, margins included, is the computed value plus
        the noise its cell key picks from the perturbation table, so the same records give the same
        released value in every output of every project. Their record keys are drawn at ingest
        (run/record-keys/). Empty (default): no perturbation. See docs/reference/cell-key-method.md.""",
    ).tag(config=True)

    cell_key_counts = Dict(
        default_value={"D": 5, "V": 3.0, "js": 2, "pstay": 0.5},
        help="""Perturbation table of count cells, in the R package ptable's names: D (largest
        deviation), V (variance), js (counts 1..js never released), pstay (least probability of
        no change), optim, mono, epsilon. A set without a solution stops the service, naming the
        parameter to change. Or {"file": path}: a table made by ptable in R (`write.csv`), checked
        when the service starts.""",
    ).tag(config=True)

    cell_key_magnitudes = Dict(
        default_value={"D": 10, "V": 3.0, "step": 2, "icat": [1, 5, 10], "optim": [4, 1, 1], "top_k": 3,
                       "fp": 1000.0, "p_small": 0.2, "p_large": 0.03, "q": 2.0, "epsilon": [1.0, 0.5, 0.3]},
        help="""Perturbation of sum cells: the magnitude table in ptable's names (D, V, step, icat,
        optim, mono) and cellKey's flex function (top_k largest contributions, fp flex point,
        p_small and p_large shares of noise below and far above it, q, epsilon per contribution,
        mu_c: extra deviation, in noise units, for cells a check fails, default 0).""",
    ).tag(config=True)

    @validate("cell_key_counts")
    def _count_ptable(self, proposal: Any) -> dict:
        try:
            count_ptable(proposal.value)
        except (PTableInvalid, TypeError, OSError) as exc:  # OSError: a ptable file that cannot be read
            raise TraitError(str(exc)) from None
        return proposal.value

    @validate("cell_key_magnitudes")
    def _magnitude_ptable(self, proposal: Any) -> dict:
        try:
            magnitude_settings(proposal.value)
        except (PTableInvalid, TypeError) as exc:
            raise TraitError(str(exc)) from None
        return proposal.value

    @validate("max_cells_per_output", "max_cells_per_request", "max_bytes_per_output", "max_bytes_per_request",
              "max_cells_per_project", "max_bytes_per_project")
    def _within_wire_ceiling(self, proposal: Any) -> int:
        name = proposal.trait.name
        ceiling = WIRE_CEILINGS.get(name)
        if proposal.value < 1 or (ceiling is not None and proposal.value > ceiling):
            most = f" and at most {ceiling:,} (the wire format's ceiling, which the kernel checks)" if ceiling else ""
            raise TraitError(f"{name} must be at least 1{most}, not {proposal.value:,}")
        return proposal.value

    @validate("required_approvals")
    def _at_least_one(self, proposal: Any) -> int:
        if proposal.value < 1:
            raise TraitError("required_approvals must be at least 1")
        return proposal.value

    @validate("query_timeout_s")
    def _positive_timeout(self, proposal: Any) -> float:
        if proposal.value <= 0:
            raise TraitError("query_timeout_s must be a positive number of seconds")
        return proposal.value

    @validate("submission_budget_s")
    def _within_server_wait(self, proposal: Any) -> float:
        if not 0 < proposal.value < FORWARDER_TIMEOUT_S:
            raise TraitError(f"submission_budget_s must be positive and below {FORWARDER_TIMEOUT_S:g} s, the time the "
                             "single-user server waits for the answer")
        return proposal.value

    @validate("query_memory_limit")
    def _memory_size(self, proposal: Any) -> str:
        if not MEMORY_LIMIT.match(proposal.value.strip()):
            raise TraitError(f"{proposal.value!r} is not a memory size: write e.g. 512MB, 2GB or 1.5GiB")
        return proposal.value.strip()


def status_allows_votes(status: ReleaseStatus) -> bool:
    return status in OPEN_FOR_REVIEW


def status_allows_withdraw(status: ReleaseStatus) -> bool:
    return status in OPEN_FOR_REVIEW


def check_vote_content(decision: Decision, verdict: Verdict, comment: str, override_reason: str | None) -> None:
    """Raise `VoteInvalid` unless the vote carries what its decision needs.

    `verdict` is the service's own verdict (what the session claimed plays no part).
    - approving a fail needs a written override reason;
    - approving a review (opaque file or undecidable check) needs a comment saying why it is safe;
    - returning or rejecting needs a comment for the researcher.
    """
    comment = (comment or "").strip()
    reason = (override_reason or "").strip()
    if decision is Decision.APPROVE and verdict is Verdict.FAIL and not reason:
        raise VoteInvalid(
            "this output failed its disclosure checks: approving it needs a written override reason",
            key="override_required",
        )
    if decision is Decision.APPROVE and verdict is Verdict.REVIEW and not comment:
        raise VoteInvalid(
            "this output needs human judgement (verdict review): say in a comment why it is safe to release",
            key="comment_required_review",
        )
    if decision in (Decision.RETURN, Decision.REJECT) and not comment:
        raise VoteInvalid(
            f"a {decision.value.lower()} needs a comment telling the researcher why",
            key="comment_required",
            decision=decision,
        )
    if len(comment) > MAX_TEXT or len(reason) > MAX_TEXT:
        raise VoteInvalid(f"comments are limited to {MAX_TEXT} characters", key="comment_too_long", limit=MAX_TEXT)
