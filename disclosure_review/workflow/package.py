"""Release packages in the egress store, re-rendered by the service.

Nothing is copied byte for byte from the researcher: tables are written as CSV
from the service's own recomputed cells (the released view only, never shadow
statistics), images are re-encoded from their pixels without metadata, text is
decoded and re-encoded. `manifest.json` lists every file with its SHA-256, each
output's checks and verdict, every vote and override reason, the protections
reviewers applied (the released cells are those of the latest), who and when.
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
from pathlib import Path
from typing import Any

from access_control.models import utcnow
from disclosure_review.wire import IMAGE_TYPES
from disclosure_review.workflow.enums import Decision, OutputKind
from disclosure_review.workflow.exceptions import PackageError, ReleaseRequestInvalid
from disclosure_review.workflow.store import ReleaseOutput, ReleasePackage, ReleaseRequest

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
DIR_MODE = 0o750
FILE_MODE = 0o640
_TEXT_CONTROL = {c for c in range(32) if chr(c) not in "\t\n"}


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


def render_text(content: bytes) -> bytes:
    text = content.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ord(ch) not in _TEXT_CONTROL).encode("utf-8")


def render_file(content: bytes, media_type: str) -> bytes:
    return render_image(content, media_type) if media_type in IMAGE_TYPES.values() else render_text(content)


def check_renderable(content: bytes, media_type: str, where: str) -> None:
    """Refuse at submission a file the service could not re-render at release."""
    try:
        render_file(content, media_type)
    except Exception as exc:  # Pillow raises many types for a bad image
        kind = "an image" if media_type in IMAGE_TYPES.values() else "UTF-8 text"
        raise ReleaseRequestInvalid(f"{where}: the file is not readable as {kind} ({media_type}): {exc}") from None


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


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def manifest(request: ReleaseRequest, files: list[dict[str, Any]], released_at: str) -> dict[str, Any]:
    by_output = {f["output"]: f["name"] for f in files}
    return {
        "version": MANIFEST_VERSION,
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
                        "reviewer": p.reviewer,
                        "at": _iso(p.created_at),
                        "choice": p.choice,
                        "verdict": p.verdict.value,
                        "invalidated_approvals": [v["reviewer"] for v in p.invalidated],
                    }
                    for p in o.protections
                ],
                "votes": [
                    {
                        "reviewer": v.reviewer,
                        "decision": v.decision.value,
                        "comment": v.comment,
                        "override_reason": v.override_reason,
                        "at": _iso(v.created_at),
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


def write_package(request: ReleaseRequest, egress_dir: Path) -> WrittenPackage:
    """Write the approved outputs of `request` into `egress_dir/<request id>/`, atomically."""
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
            name = _output_file_name(output)
            _write(staging / name, data)
            files.append({"name": name, "output": output.name, "sha256": sha256(data), "bytes": len(data)})
        body = json.dumps(manifest(request, files, utcnow().isoformat()), ensure_ascii=False, indent=2).encode("utf-8")
        _write(staging / MANIFEST, body)
        target = egress_dir / str(request.id)
        if target.exists():  # left by an earlier attempt whose transaction did not commit
            shutil.rmtree(target)
        staging.rename(target)
    except PackageError:
        raise
    except Exception as exc:
        raise PackageError(f"writing the release package of request {request.id} failed: {exc}") from exc
    log.info("release package for request %s written: %d file(s)", request.id, len(files))
    return WrittenPackage(path=target, files=files, manifest_sha256=sha256(body))


def verify_package(record: ReleasePackage) -> dict[str, Any]:
    """Check every file against the manifest and the manifest against the database; return the manifest."""
    root = Path(record.path)
    body = (root / MANIFEST).read_bytes()
    if sha256(body) != record.manifest_sha256:
        raise PackageError(f"the manifest of {root} was changed after release")
    content = json.loads(body)
    for entry in content["files"]:
        if sha256((root / entry["name"]).read_bytes()) != entry["sha256"]:
            raise PackageError(f"{entry['name']} in {root} was changed after release")
    return content


def zip_package(record: ReleasePackage) -> tuple[str, bytes]:
    """The verified package as a zip (built in memory; packages are small)."""
    content = verify_package(record)
    root = Path(record.path)
    out = io.BytesIO()
    folder = f"release-{content['request']['id']}"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in [*(f["name"] for f in content["files"]), MANIFEST]:
            archive.write(root / name, f"{folder}/{name}")
    return f"{folder}.zip", out.getvalue()
