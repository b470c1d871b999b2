"""Bringing reference data in: `request_ingress("codes.csv", name=..., description=...)`, and reading it back.

A researcher uploads a file (CSV or Parquet) into the `intake/` folder of their
home through JupyterLab, then asks for it to be reviewed. Like a release
request, the request goes through the session outbox to the review service,
which reads the file itself, keeps its own copy with its SHA-256, and shows it
to reviewers. Once approved, queries of the same project read it as
`reference.<name>` (`db.reference(name)` in the kernel; the review service
attaches its approved copy when it recomputes an output that names it).
Nothing here is a boundary: the service checks everything again.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from analysis_kernel.release import _choose_project, _manifest, send_to_review_service
from dataplane import reference
from disclosure_review import wire
from onsite_base.errors import UserError

INTAKE_DIR = "intake"
"""The upload folder in the researcher's home (singleuser.contents `Lockdown.intake_dir`)."""


class IngressError(UserError):
    """An ingress request could not be made or was refused, or reference data could not be read; the message says why."""


def intake_dir() -> Path:
    return Path(os.environ.get("HOME") or Path.home()) / INTAKE_DIR


def intake_file(path: str | os.PathLike) -> Path:
    """`path` ("codes.csv", "intake/codes.csv" or absolute) as a file inside the intake folder."""
    folder = intake_dir().resolve()
    given = Path(path)
    candidates = [given] if given.is_absolute() else [folder / given, folder.parent / given]
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.is_file() and folder in resolved.parents:
            return resolved
    raise IngressError(
        f"no file {str(path)!r} in your intake folder {folder}: upload the file into {INTAKE_DIR}/ in JupyterLab's "
        "file browser first, then pass its name"
    )


def request_ingress(
    path: str | os.PathLike, *, name: str, description: str, project: str | None = None, timeout: float = 60
) -> dict[str, Any]:
    """Ask for the table at `path` (in `intake/`) to be brought in as `reference.<name>` for the project.

    `description`: what the data is and where it was published, for the reviewers. The answer is
    `{"id", "status", "name", "sha256", "rows", "columns"}` as the review service read the file.
    Reviewers then approve or reject it; once approved, `db.reference(name)` reads it.
    """
    if not isinstance(description, str) or not description.strip():
        raise IngressError("give a description: what the data is and where it was published (reviewers check it)")
    try:
        reference.check_name(name)
        file = intake_file(path)
        reference.file_format(file.name)
    except reference.ReferenceInvalid as exc:
        raise IngressError(str(exc)) from None
    size = file.stat().st_size
    if size > reference.MAX_BYTES:
        raise IngressError(f"{file.name} is {size:,} bytes; reference data is limited to {reference.MAX_BYTES:,} bytes")
    session = _manifest()
    payload = wire.IngressPayload(project=_choose_project(session["projects"], project), name=name,
                                  description=description, filename=file.name, content=file.read_bytes())
    answer = send_to_review_service(payload, timeout=timeout, outbox=session["outbox"], error=IngressError,
                                    language=session["language"])
    print(f"ingress request {answer.get('id')}: {answer.get('status')} — reference.{name}, {answer.get('rows')} rows, "
          f"SHA-256 {answer.get('sha256')}")
    return answer


def approved_references(project: str, outbox: Path, *, timeout: float = 30) -> list[dict[str, Any]]:
    """The project's approved reference data as the review service lists it (no content)."""
    answer = send_to_review_service(wire.ReferencePayload(project), timeout=timeout, outbox=outbox,
                                    error=IngressError, forget=True)
    return list(answer.get("references", []))


def fetch_reference(project: str, name: str, outbox: Path, *, timeout: float = 60) -> pa.Table:
    """The approved copy of `name`, checked against the SHA-256 the service approved, as a table."""
    reference.check_name(name)
    answer = send_to_review_service(wire.ReferencePayload(project, name), timeout=timeout, outbox=outbox,
                                    error=IngressError, forget=True)
    copy = reference.ReferenceFile(name, str(answer["filename"]), str(answer["sha256"]),
                                   base64.b64decode(answer["content_b64"]))
    try:
        return reference.verified_table(copy)
    except reference.ReferenceInvalid as exc:
        raise IngressError(str(exc)) from None
