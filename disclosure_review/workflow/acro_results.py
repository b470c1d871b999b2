"""ACRO's results.json in a release package, when the request's outputs were made with ACRO's API.

`write_package` adds what `package_files` returns: nothing for other requests; for a request with an approved
table claiming ACRO's record (`claimed["acro"]`, see disclosure_review.acro_format), `results.json` describing
every released file in ACRO 1.0's format and `checksums/<file>.txt` (each file's SHA-256), as ACRO's finalise
writes them, so SACRO-Viewer opens the unzipped package. Statuses, flagged cells and summaries are the
service's own; only the command, comments and exception request come from the session, and a text holding an
invisible character is withheld.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from disclosure_review import acro_format
from disclosure_review.sdc import text
from disclosure_review.workflow.enums import Decision, OutputKind
from disclosure_review.workflow.store import ReleaseOutput, ReleaseRequest

RESULTS = "results.json"
CHECKSUMS = "checksums"
MAX_CLAIMED_TEXT = 20_000
WITHHELD = "[withheld: the text holds an invisible or control character]"


def _text(value: Any, where: str, default: str = "") -> str:
    if not isinstance(value, str):
        return default
    try:
        return text.check_text(value[:MAX_CLAIMED_TEXT], where, multiline=True)
    except text.InvisibleCharacter:
        return WITHHELD


def _record(output: ReleaseOutput) -> dict[str, Any]:
    """What the session claimed ACRO recorded of `output` (researcher input: only known keys, as text)."""
    claimed = (output.claimed or {}).get(acro_format.CLAIM) if isinstance(output.claimed, dict) else None
    return claimed if isinstance(claimed, dict) else {}


def _summary(output: ReleaseOutput) -> str:
    results = [(str(r.get("rule")), str(r.get("verdict")), len(r.get("cells") or []))
               for r in (output.report or {}).get("results", [])]
    return acro_format.summary(output.verdict.value, results)


def package_files(request: ReleaseRequest, files: Sequence[Mapping[str, Any]]) -> list[tuple[str, bytes]]:
    """results.json and the checksums for the package's `files` ({"name", "output", "sha256"}), or nothing
    when no approved output of `request` came from ACRO's API."""
    approved = {o.name: o for o in request.outputs if o.decision is Decision.APPROVE}
    if not any(_record(o) for o in approved.values()):
        return []
    timestamp = request.created_at.isoformat() if request.created_at else None
    entries = []
    for entry in files:
        output = approved[entry["output"]]
        record, where = _record(output), f"output {output.name}"
        comments = [_text(c, where) for c in record.get("comments") or [] if isinstance(c, str)]
        command = _text(record.get("command"), where, default="")
        if output.kind is OutputKind.TABLE:
            method = _text(record.get("method"), where, default="table")[:50]
            entries.append(acro_format.table_entry(
                output.name, status=output.verdict.value, file_name=entry["name"], recomputed=output.recomputed,
                report=output.report, method=method, command=command or (output.spec or {}).get("query", ""),
                summary=_summary(output), timestamp=timestamp, comments=comments,
                exception=_text(record.get("exception"), where)))
        else:
            entries.append(acro_format.file_entry(
                output.name, status=output.verdict.value, file_name=entry["name"], command=output.code or command,
                summary=_summary(output), timestamp=timestamp,
                comments=comments or [c for c in [output.explanation] if c]))
    checksums = [(f"{CHECKSUMS}/{entry['name']}.txt", entry["sha256"].encode("ascii")) for entry in files]
    return [(RESULTS, acro_format.results_json(entries)), *checksums]
