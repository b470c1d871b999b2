"""The contents rules: uploads only into the intake folder, no binary reads but images.

Runs inside every single-user server, as the researcher's own account (see
DESIGN.md for why the server's switches are defence in depth, not the boundary
— the facility terminal and the network are).

`LockdownContentsManager` (the server's `contents_manager_class`) accepts
uploads (JupyterLab uploads every file as `format=base64`, large ones in
chunks) only under `Lockdown.intake_dir` and up to `Lockdown.intake_max_bytes`.
Saving notebooks and text typed in the editor is not an upload and works
everywhere in the home. Binary contents reads other than images are refused
by the contents manager too, whatever the query asks for (without `format` the
server itself falls back to base64 for a file that is not UTF-8), behind the
authorizer's refusal of `format=base64` (`singleuser.authorizer`). Each
refusal is an audit event (`singleuser.events`).
"""
from __future__ import annotations

import mimetypes
import os
from pathlib import Path, PurePosixPath
from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado.web import HTTPError
from traitlets import Int, Unicode
from traitlets.config import Configurable

from dataplane.manifest import SessionManifest, SessionManifestInvalid
from singleuser.events import record_refusal

BINARY_READ_REFUSED = "binary reads of files other than images are switched off in Onsite"


class Lockdown(Configurable):
    """Settings of the upload rules (set in singleuser/jupyter_config/jupyter_server_config.py)."""

    intake_dir = Unicode(
        "intake",
        help="""Folder, relative to the server's root (the researcher's home), into which
        files may be uploaded from the browser; uploads anywhere else are refused (403).
        Created at server start (0700).""",
    ).tag(config=True)

    intake_max_bytes = Int(
        50 * 1024 * 1024,
        help="""Largest file (bytes, after base64 decoding) that may be uploaded into the
        intake folder, counting every chunk of a chunked upload. 0 refuses all uploads.
        Keep ServerApp.max_body_size above this plus base64 overhead, or large uploads
        fail at the HTTP layer first.""",
    ).tag(config=True)


def project_folder() -> str:
    """The folder the file browser (and so the launcher's new notebooks) starts in: the workspace folder of
    the session's project (the spawner makes one per active project in the home), or the home itself
    when the session has several projects or no manifest."""
    try:
        projects = list(SessionManifest.load().projects)
    except SessionManifestInvalid:
        return ""
    return projects[0] if len(projects) == 1 else ""


def is_image(path: str) -> bool:
    kind, _ = mimetypes.guess_type(path)
    return bool(kind) and kind.startswith("image/")


def check_upload(model: dict, path: str, contents_manager: Any) -> None:
    """Refuse (403) an upload outside the intake folder, (413) one over the size limit."""
    if model.get("type") != "file" or model.get("format") != "base64":
        return  # a notebook or text file saved from the editor: not an upload
    settings = Lockdown(config=contents_manager.config)
    parts = PurePosixPath(path.strip("/")).parts
    refused = HTTPError(403, f"uploads are accepted only into the folder {settings.intake_dir}/")
    if not parts or parts[0] != settings.intake_dir or ".." in parts or len(parts) < 2:
        raise refused
    # Not through a symbolic link the kernel planted in (or as) the intake folder.
    root = os.path.realpath(contents_manager.root_dir)
    if not os.path.realpath(os.path.join(root, *parts)).startswith(os.path.join(root, settings.intake_dir) + os.sep):
        raise refused
    content = model.get("content") or ""
    size = len(content) * 3 // 4 - content[-2:].count("=")
    chunk = model.get("chunk")
    if chunk is not None and chunk != 1:  # later chunks are appended to what is there
        existing = Path(contents_manager.root_dir, *parts)
        size += existing.stat().st_size if existing.is_file() else 0
    if size > settings.intake_max_bytes:
        raise HTTPError(413, f"uploads are limited to {settings.intake_max_bytes // (1024 * 1024)} MB "
                             f"(this one is at least {size // (1024 * 1024)} MB)")


class LockdownContentsManager(AsyncLargeFileManager):
    """JupyterLab's default contents manager, checking every upload chunk and every read.

    A pre-save hook would not do: the large-file manager runs hooks on the first
    chunk only, so later chunks could append anywhere.
    """

    async def save(self, model: dict, path: str = "") -> dict:
        check_upload(model, path, self)
        return await super().save(model, path)

    async def get(self, path: str, content: bool = True, type: str | None = None, format: str | None = None,
                  require_hash: bool = False) -> dict:
        model = await super().get(path, content=content, type=type, format=format, require_hash=require_hash)
        # Without `format` the server sends a file that is not UTF-8 as base64: the
        # authorizer's query check alone would let that through.
        if model.get("type") == "file" and model.get("format") == "base64" and model.get("content") is not None \
                and not is_image(path):
            record_refusal("GET", f"api/contents/{path.strip('/')}", BINARY_READ_REFUSED)
            raise HTTPError(403, BINARY_READ_REFUSED)
        return model


def create_intake_folder(serverapp: Any) -> None:
    """The one folder uploads may go into (0700); a failure is logged, uploads then fail with the OS error."""
    intake = Path(serverapp.root_dir) / Lockdown(config=serverapp.config).intake_dir
    try:
        intake.mkdir(mode=0o700, exist_ok=True)
    except OSError as e:
        serverapp.log.warning("onsite: cannot create the intake folder %s: %s", intake, e)
