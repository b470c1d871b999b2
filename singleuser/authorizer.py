"""The authorizer: no file download, no export, no kernel but Onsite's, from the browser.

Runs inside every single-user server, as the researcher's own account (see
DESIGN.md for why the server's switches are defence in depth, not the boundary
— the facility terminal and the network are).

`LockdownAuthorizer` (the server's `authorizer_class`) refuses (403) file
download and export: `/files/`, `/view/`, `/nbconvert/`, `/api/nbconvert`, any
`?download=` request, and binary reads through the contents API
(`format=base64`) except images, which JupyterLab's image viewer needs. What
stays open, because JupyterLab cannot open a document without it:
`GET /api/contents/<path>` of notebooks, text files and directory listings
(content shown on screen is on screen anyway). A request to start a kernel
other than the locked one (`POST /api/kernels`, `POST`/`PATCH /api/sessions`)
is refused with its reason. Each refusal is an audit event (`singleuser.events`).
"""
from __future__ import annotations

import json
from typing import Any

from jupyterhub.singleuser.extension import JupyterHubAuthorizer
from tornado.web import HTTPError

from singleuser.contents import BINARY_READ_REFUSED, is_image
from singleuser.events import record_refusal, request_path
from singleuser.kernelspec import KERNEL_NAME

REFUSED_PREFIXES = ("files", "view", "nbconvert", "api/nbconvert", "api/terminals", "terminals")


def refusal(handler: Any, action: str, resource: str) -> str | None:
    """Why this request is a download or export, or None when it may go on."""
    relative = request_path(handler)
    if any(relative == p or relative.startswith(p + "/") for p in REFUSED_PREFIXES):
        return f"{relative.split('/')[0]} is switched off in Onsite"
    if resource in ("nbconvert", "terminals"):
        return f"{resource} is switched off in Onsite"
    if handler.get_query_argument("download", None) is not None:
        return "downloads are switched off in Onsite"
    if resource == "contents" and action == "read" and handler.get_query_argument("format", None) == "base64":
        target = relative.removeprefix("api/contents/")
        if not is_image(target):
            return BINARY_READ_REFUSED
    return None


def requested_kernel(handler: Any, resource: str) -> Any:
    """The kernel name a POST/PATCH of /api/kernels or /api/sessions asks to start, or None."""
    if handler.request.method not in ("POST", "PATCH") or resource not in ("kernels", "sessions"):
        return None
    try:
        body = json.loads(handler.request.body or b"{}")  # as the handler's get_json_body reads it
    except ValueError:
        return None  # the handler answers 400 itself
    if not isinstance(body, dict):
        return None
    if resource == "sessions":
        kernel = body.get("kernel")
        return kernel.get("name") if isinstance(kernel, dict) and kernel.get("id") is None else None
    return body.get("name")


class LockdownAuthorizer(JupyterHubAuthorizer):
    """JupyterHub's scope check, then Onsite's refusals of download, export and other kernels."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        reason = refusal(handler, action, resource)
        if reason is not None:
            record_refusal(handler.request.method, request_path(handler), reason)
            return False
        name = requested_kernel(handler, resource)
        allowed = getattr(handler.kernel_spec_manager, "locked_name", KERNEL_NAME)
        if name is not None and name != allowed:
            # 403 with the reason (the kernelspec manager's own refusal would surface as a 500).
            asked = str(name)[:64].replace("%", "?")  # echoed in a log format string: no % of the client's
            reason = f"only the kernel {allowed!r} can be started in Onsite, not {asked!r}"
            record_refusal(handler.request.method, request_path(handler), reason)
            raise HTTPError(403, reason)
        return super().is_authorized(handler, user, action, resource)
