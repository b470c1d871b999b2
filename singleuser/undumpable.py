"""The server's secrets: the single-user server process makes itself non-dumpable.

`make_undumpable()` is called from the server's config file
(`singleuser/jupyter_config/jupyter_server_config.py`), before anything of the
researcher runs. It makes the server process non-dumpable: its
/proc/<pid>/environ (the Hub token), mem and maps become root's, and no
process of the same account can ptrace it. Defence in depth (see DESIGN.md):
kernels are kept out a second time by their user namespace
(`singleuser.kernel_sandbox`).
"""
from __future__ import annotations

import ctypes
import os

PR_SET_DUMPABLE = 4


def make_undumpable() -> None:
    """PR_SET_DUMPABLE 0 for this process: /proc/<pid>/environ, mem, maps and fd become
    root's and ptrace by the same account is refused, so no process of the session
    reads the server's Hub token. Lost on execve, so the server calls it itself."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_DUMPABLE, 0) failed: {os.strerror(errno)}")
