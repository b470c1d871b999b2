"""Who is running a command, as the ledger names them: the login of the real user id.

Never $USER or $LOGNAME (`getpass.getuser()` reads those first): anyone can set them, and the ledger's
actor and `os_user` would then name someone else."""
from __future__ import annotations

import os
import pwd


def os_login() -> str:
    """The login of the real user id; a uid without an account (a container) is named by its number."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid-{os.getuid()}"
