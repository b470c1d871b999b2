"""Wires the lock-down into the single-user server; each control is its own module.

The server runs as the researcher's own account, so its switches are defence
in depth, not the boundary — the facility terminal and the network are (see
DESIGN.md). The controls:

- `singleuser.terminal_guard`: every request from an address other than the
  session's terminal gets 403.
- `singleuser.authorizer`: file download, export and kernels other than
  Onsite's are refused.
- `singleuser.contents`: uploads only into the intake folder; no binary reads
  but images.
- `singleuser.kernel_websocket`: the code the browser sends a kernel is
  recorded before the kernel gets it; unreadable or unexpected messages are dropped.
- `singleuser.events`: those records, the refusals and the server's contents
  and kernel events go to the hub's audit ledger.
- `singleuser.undumpable`: the server process is non-dumpable (its Hub token).

The config file (`singleuser/jupyter_config/jupyter_server_config.py`) names
the authorizer, contents manager and kernel websocket classes and calls
`make_undumpable()`; `load()` here does the rest at extension load
(`singleuser.serverext`).
"""
from __future__ import annotations

import os
from typing import Any

from singleuser.contents import create_intake_folder
from singleuser.events import forward_session_events
from singleuser.terminal_guard import guard_terminal


def load(serverapp: Any) -> None:
    """Terminal guard, intake folder and session event forwarding."""
    guard = guard_terminal(serverapp.web_app, dict(os.environ))
    if guard.terminal:
        serverapp.log.info("onsite: requests are answered only from the terminal %s", guard.terminal)
    else:
        serverapp.log.error("onsite: no ONSITE_TERMINAL_ADDRESS from the hub: every request is refused")
    create_intake_folder(serverapp)
    api_url, token = os.environ.get("JUPYTERHUB_API_URL", ""), os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not api_url or not token:
        serverapp.log.warning("onsite: no JUPYTERHUB_API_URL/TOKEN: session events are not recorded")
        return
    forwarder = forward_session_events(serverapp, api_url, token)
    serverapp.log.info("onsite: session events go to %s", forwarder.endpoint)
