"""Render docs/reference/release-states.md from the transition tables (never edit it by hand)."""
from __future__ import annotations

from pathlib import Path

from disclosure_review.workflow import enums, transitions

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "reference" / "release-states.md"


def render() -> str:
    rows = [
        f"| `{s.value}` | {transitions.STATUS_MEANING[s]} | {transitions.STATUS_OWNER[s].value.lower()} | "
        f"{', '.join(f'`{t.value}`' for t in transitions.VALID_TRANSITIONS[s]) or '— (final)'} | "
        f"`{transitions.STATUS_AUDIT_EVENT[s].value}` |"
        for s in enums.ReleaseStatus
    ]
    decisions = "\n".join(f"- `{d.value}`" for d in enums.Decision)
    return f"""# Release request states

<!-- Generated from disclosure_review/workflow/transitions.py by `onsite review states --write`.
     Do not edit: a unit test fails when this page is stale. -->

A release request starts `{transitions.INITIAL_STATUS.value}` once the review service has
recomputed and checked every output. Reviewers vote per output; the service moves
the request on by itself when the votes decide it.

```mermaid
{transitions.mermaid_diagram()}
```

| status | meaning | whose move | may go to | audit event on entry |
|---|---|---|---|---|
{chr(10).join(rows)}

Votes per output (each reviewer votes once on each output):

{decisions}

- An output is approved when it has the request's required number of independent
  approvals (2 by default, fixed at submission), and rejected at the first `REJECT`.
- A `RETURN` vote returns the whole request at once; the researcher submits a new one.
- When every output is decided the request becomes `REVIEWED`, then `APPROVED` if at
  least one output was approved (its release package is written at once and it becomes
  `RELEASED`) or `REJECTED` if none was.
- If writing the package fails the request stays `APPROVED`; `onsite review release ID`
  retries it.
- Each vote writes an `OUTPUT_DECIDE` audit event; each collection of a package a
  `RELEASE_COLLECT` event.

Protection applied by a reviewer (while the request is `SUBMITTED` or
`PARTIALLY_REVIEWED` and the table output is undecided) changes no status: the
service recomputes the table with it, the result replaces the output's cells,
verdict and checks, and the approvals given to the content it replaces are
withdrawn (every approval must be of the same protected content; those reviewers
vote again). Each applied protection writes an `OUTPUT_PROTECT` audit event with the
reviewer as actor; a vote on content changed since the page was loaded is refused.
"""


def write() -> Path:
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(render(), encoding="utf-8")
    return DOC_PATH
