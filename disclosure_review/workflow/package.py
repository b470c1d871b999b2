"""Release packages in the egress store, re-rendered by the service.

Nothing is copied byte for byte from the researcher: tables are written as CSV
from the service's own recomputed cells (the released view only, never shadow
statistics), images are re-encoded from their pixels without metadata, text is
decoded and re-encoded. Released text — CSV headers and cells (labels come from
the data), text files, names, titles, comments in the manifest — holds no
invisible or control character (`disclosure_review.sdc.text`): such an output
is refused at submission (`check_released_text`), and a package that would
still carry one is not written. `manifest.json` lists every file with its SHA-256, each
output's checks and verdict, every vote and override reason, the protections
reviewers applied (the released cells are those of the latest), who and when.
Reviewers are not named to researchers: the manifest calls them "reviewer-1",
"reviewer-2"… in the order they first acted on the request (`reviewer_pseudonyms`);
their names stay in the ledger and on the reviewers' pages. Each approving vote cites
its ledger event (seq and hash, `approval_events`).

The service signs the manifest (`signing`): `manifest.json` names the key
(`signing_key`: fingerprint and public key) and `manifest.sig` beside it holds the
Ed25519 signature of its exact bytes, so `onsite release verify` checks a package
offline with the public keys alone.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control.enums import AuditEventType
from access_control.models import AuditEvent, utcnow
from disclosure_review.sdc import text
from disclosure_review.wire import IMAGE_TYPES
from disclosure_review.workflow import acro_results, protection
from disclosure_review.workflow.enums import Decision, OutputKind
from disclosure_review.workflow.exceptions import PackageError, PackageTampered, ReleaseRequestInvalid
from disclosure_review.workflow.signing import MANIFEST, SIGNATURE, Signer, signature_valid
from disclosure_review.workflow.store import ReleaseOutput, ReleasePackage, ReleaseRequest

log = logging.getLogger(__name__)

MANIFEST_VERSION = 2
"""2: signed (`signing_key`, `manifest.sig`), approvals cite their ledger events. 1: unsigned, before."""
DIR_MODE = 0o750
FILE_MODE = 0o640


@dataclass(frozen=True)
class WrittenPackage:
    path: Path
    files: list[dict[str, Any]]
    manifest_sha256: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- re-rendering


def _open_image(content: bytes):
    from PIL import Image  # Pillow: loaded only when an image is checked or released

    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def render_image(content: bytes, media_type: str) -> bytes:
    """Re-encode from the pixels alone: no EXIF, text chunks, ICC profile or trailing bytes survive."""
    from PIL import Image  # Pillow: as in _open_image

    image = _open_image(content)
    jpeg = media_type == "image/jpeg"
    mode = "RGB" if jpeg else ("RGBA" if image.mode not in ("RGB", "RGBA", "L") else image.mode)
    pixels = image.convert(mode)
    clean = Image.frombytes(mode, pixels.size, pixels.tobytes())  # a new image: empty .info
    out = io.BytesIO()
    clean.save(out, format="JPEG" if jpeg else "PNG", **({"quality": 95} if jpeg else {}))
    return out.getvalue()


def decoded_text(content: bytes) -> str:
    """A text file as released: UTF-8, line ends normalised to LF."""
    return content.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def render_text(content: bytes, where: str = "the file") -> bytes:
    """Decoded and re-encoded; `text.InvisibleCharacter` for an invisible or control character (never stripped)."""
    return text.check_text(decoded_text(content), where, multiline=True).encode("utf-8")


def render_file(content: bytes, media_type: str) -> bytes:
    return render_image(content, media_type) if media_type in IMAGE_TYPES.values() else render_text(content)


def check_renderable(content: bytes, media_type: str, where: str) -> None:
    """Refuse at submission a file the service could not re-render at release."""
    try:
        render_file(content, media_type) if media_type in IMAGE_TYPES.values() else render_text(content, where)
    except text.InvisibleCharacter as exc:
        raise _invisible(exc) from None
    except Exception as exc:  # Pillow raises many types for a bad image
        kind = "an image" if media_type in IMAGE_TYPES.values() else "UTF-8 text"
        raise ReleaseRequestInvalid(f"{where}: the file is not readable as {kind} ({media_type}): {exc}") from None


def _invisible(exc: text.InvisibleCharacter) -> ReleaseRequestInvalid:
    return ReleaseRequestInvalid(str(exc), key="invisible_text", where=exc.where, char=exc.char, position=exc.position)


def check_released_text(name: str, recomputed: dict[str, Any] | None, content: bytes | None) -> None:
    """Refuse (`ReleaseRequestInvalid`) a recomputed output whose released text would carry an invisible or
    control character: a table's headers and labels, an extract's CSV. They come from the data, so the wire's
    check of what the researcher typed cannot catch them."""
    where = f"output {name!r}"
    try:
        if recomputed:
            text.check_table(recomputed, where)
        if content:
            text.check_text(decoded_text(content), where, multiline=True)
    except text.InvisibleCharacter as exc:
        raise _invisible(exc) from None


def render_table_csv(recomputed: dict[str, Any]) -> bytes:
    """CSV from the service's recomputed released view (labels and statistic only)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(recomputed["columns"])
    writer.writerows(recomputed["rows"])
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------- the package


def _output_file_name(output: ReleaseOutput) -> str:
    if output.kind in (OutputKind.TABLE, OutputKind.EXTRACT):
        return f"{output.name}.csv"
    suffix = output.filename.rsplit(".", 1)[-1].lower()
    return f"{output.name}.{'jpg' if suffix == 'jpeg' else suffix}"


def _check_summary(report: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """Each check's rule, parameters, verdict, message and number of flagged cells (no shadow statistics)."""
    if not report:
        return None
    return [
        {
            "rule": r.get("rule"),
            "verdict": r.get("verdict"),
            "message": r.get("message"),
            "parameters": r.get("parameters"),
            "flagged_cells": len(r.get("cells") or []),
        }
        for r in report.get("results", [])
    ]


def reviewer_pseudonyms(request: ReleaseRequest) -> dict[str, str]:
    """{reviewer: "reviewer-N"}, N in the order each first voted on or protected an output of `request` (approvals
    a protection withdrew count too)."""
    acts = [(act.created_at, act.reviewer) for o in request.outputs for act in (*o.votes, *o.protections)]
    acts += [(datetime.fromisoformat(v["at"]) if v.get("at") else p.created_at, v["reviewer"])
             for o in request.outputs for p in o.protections for v in p.invalidated]
    acts.sort()
    order = dict.fromkeys(reviewer for _, reviewer in acts)
    return {reviewer: f"reviewer-{n}" for n, reviewer in enumerate(order, 1)}


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


Citation = dict[str, Any]
"""A ledger event as a manifest cites it: {"seq", "hash"}."""


def approval_events(session: Session, request_object: str) -> dict[tuple[str, str], Citation]:
    """{(output name, reviewer): the ledger event of their latest approving vote} on the outputs of the request
    whose audit object is `request_object` (its outputs' objects are `<request_object>/<output name>`)."""
    rows = session.execute(
        select(AuditEvent.seq, AuditEvent.hash, AuditEvent.object, AuditEvent.actor, AuditEvent.details)
        .where(AuditEvent.action == AuditEventType.OUTPUT_DECIDE, AuditEvent.object.startswith(f"{request_object}/", autoescape=True))
        .order_by(AuditEvent.seq))
    return {(row.object[len(request_object) + 1:], row.actor): {"seq": row.seq, "hash": row.hash}
            for row in rows if json.loads(row.details).get("decision") == Decision.APPROVE.value}


def manifest(request: ReleaseRequest, files: list[dict[str, Any]], released_at: str,
             signing_key: dict[str, str], approvals: dict[tuple[str, str], Citation]) -> dict[str, Any]:
    by_output = {f["output"]: f["name"] for f in files}
    named = reviewer_pseudonyms(request)
    return {
        "version": MANIFEST_VERSION,
        "signing_key": signing_key,
        "request": {
            "id": request.id,
            "project": request.project_id,
            "title": request.title,
            "purpose": request.purpose,
            "requester": request.requester,
            "submitted_at": _iso(request.created_at),
            "preset": request.preset,
            "required_approvals": request.required_approvals,
        },
        "released_at": released_at,
        "files": files,
        "outputs": [
            {
                "name": o.name,
                "kind": o.kind.value,
                "file": by_output.get(o.name),
                "verdict": o.verdict.value,
                "verified": o.verified,
                "checks": _check_summary(o.report) if o.decision is Decision.APPROVE else None,
                "decision": o.decision.value if o.decision else None,
                "decided_at": _iso(o.decided_at),
                "protections": [
                    {
                        "revision": p.revision,
                        "reviewer": named[p.reviewer],
                        "at": _iso(p.created_at),
                        "choice": protection.public_choice(p.choice),  # no swapping seed: it would undo the swap
                        "verdict": p.verdict.value,
                        "invalidated_approvals": [named[v["reviewer"]] for v in p.invalidated],
                    }
                    for p in o.protections
                ],
                "votes": [
                    {
                        "reviewer": named[v.reviewer],
                        "decision": v.decision.value,
                        "comment": v.comment,
                        "override_reason": v.override_reason,
                        "at": _iso(v.created_at),
                        **({"ledger": approvals.get((o.name, v.reviewer))} if v.decision is Decision.APPROVE else {}),
                    }
                    for v in o.votes
                ],
            }
            for o in request.outputs
        ],
    }


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, FILE_MODE)  # whatever the umask


def write_package(request: ReleaseRequest, egress_dir: Path, signer: Signer,
                  approvals: dict[tuple[str, str], Citation]) -> WrittenPackage:
    """Write the approved outputs of `request` into `egress_dir/<request id>/`, atomically, with the manifest
    signed by `signer`; each approving vote cites its event in `approvals` (`approval_events`)."""
    approved = [o for o in request.outputs if o.decision is Decision.APPROVE]
    if not approved:
        raise PackageError(f"release request {request.id} has no approved output")
    try:
        egress_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{request.id}-", dir=egress_dir))
        os.chmod(staging, DIR_MODE)
        files = []
        for output in approved:
            if output.kind is OutputKind.TABLE:
                if not output.verified or output.recomputed is None:
                    raise PackageError(f"output {output.name} has no recomputed cells to release")
                data = render_table_csv(output.recomputed)
            elif output.kind is OutputKind.EXTRACT:  # the CSV the service wrote from its own re-run at checking
                if not output.verified or not output.content:
                    raise PackageError(f"output {output.name} has no recomputed extract to release")
                if sha256(output.content) != (output.recomputed or {}).get("sha256"):
                    raise PackageError(f"output {output.name}: the stored extract differs from the one checked")
                data = output.content
            else:
                data = render_file(output.content, output.media_type)
            check_released_text(output.name, output.recomputed, data if output.kind is OutputKind.EXTRACT else None)
            name = _output_file_name(output)
            _write(staging / name, data)
            files.append({"name": name, "output": output.name, "sha256": sha256(data), "bytes": len(data)})
        for name, data in acro_results.package_files(request, files):  # ACRO's results.json: ACRO API requests only
            (staging / name).parent.mkdir(mode=DIR_MODE, exist_ok=True)
            _write(staging / name, data)
            files.append({"name": name, "output": None, "sha256": sha256(data), "bytes": len(data)})
        content = manifest(request, files, utcnow().isoformat(), signer.signing_key(), approvals)
        _check_manifest_text(content, "manifest")
        body = json.dumps(content, ensure_ascii=False, indent=2).encode("utf-8")
        _write(staging / MANIFEST, body)
        _write(staging / SIGNATURE, signer.signature(body))
        target = egress_dir / str(request.id)
        if target.exists():  # left by an earlier attempt whose transaction did not commit
            shutil.rmtree(target)
        staging.rename(target)
    except PackageError:
        raise
    except (ReleaseRequestInvalid, text.InvisibleCharacter) as exc:  # stored before the check, or a comment
        raise PackageError(f"release package of request {request.id} not written: {exc}") from None
    except Exception as exc:
        raise PackageError(f"writing the release package of request {request.id} failed: {exc}") from exc
    log.info("release package for request %s written: %d file(s)", request.id, len(files))
    return WrittenPackage(path=target, files=files, manifest_sha256=sha256(body))


def _check_manifest_text(value: Any, where: str) -> None:
    """Every string of the manifest (titles, names, comments, labels of protections): no invisible character."""
    if isinstance(value, str):
        text.check_text(value, where, multiline=True)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_manifest_text(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_manifest_text(item, f"{where}[{index}]")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _digest(data: bytes | None) -> str:
    return "missing" if data is None else sha256(data)


def verify_package(record: ReleasePackage) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Check every file against the manifest, the manifest against the database and its signature against the
    key it names (which the database's SHA-256 of the manifest vouches for); return the manifest and the files as
    checked ({name: bytes}, the manifest and its signature included): what is given out is what was checked.

    Raises `PackageTampered` naming the file and both SHA-256 (expected, found; "missing" for a file gone).
    A package written before signing (manifest version 1) has no signature to check.
    """
    root = Path(record.path)
    body = _read(root / MANIFEST)
    found = _digest(body)
    if found != record.manifest_sha256:
        raise PackageTampered(
            f"the release package of request {record.request_id} was changed after release: {MANIFEST} has "
            f"SHA-256 {found}, the release recorded {record.manifest_sha256}",
            key="package_tampered", request=record.request_id, file=MANIFEST, expected=record.manifest_sha256,
            found=found)
    content = json.loads(body)
    files = {}
    for entry in content["files"]:
        data = _read(root / entry["name"])
        found = _digest(data)
        if found != entry["sha256"]:
            raise PackageTampered(
                f"the release package of request {record.request_id} was changed after release: {entry['name']} "
                f"has SHA-256 {found}, the manifest lists {entry['sha256']}",
                key="package_tampered", request=record.request_id, file=entry["name"], expected=entry["sha256"],
                found=found)
        files[entry["name"]] = data
    if "signing_key" not in content:
        return content, {**files, MANIFEST: body}
    signature = _read(root / SIGNATURE)
    if signature is None or not signature_valid(body, signature, content["signing_key"]):
        raise PackageTampered(
            f"the release package of request {record.request_id} was changed after release: {SIGNATURE} is "
            f"{'missing' if signature is None else 'not the signature of the manifest'}",
            key="package_tampered", request=record.request_id, file=SIGNATURE, expected="-", found=_digest(signature))
    return content, {**files, MANIFEST: body, SIGNATURE: signature}


def zip_package(record: ReleasePackage) -> tuple[str, bytes]:
    """The verified package as a zip (built in memory; packages are small)."""
    content, files = verify_package(record)
    out = io.BytesIO()
    folder = f"release-{content['request']['id']}"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"{folder}/{name}", data)
    return f"{folder}.zip", out.getvalue()
