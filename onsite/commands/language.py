"""The administrator's language on the command line (refusals and confirmations: `access_control.errors`)."""
from __future__ import annotations

import os
from collections.abc import Mapping

LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


def cli_language(environ: Mapping[str, str] | None = None) -> str:
    """'ja' when the first of LC_ALL, LC_MESSAGES, LANG that is set names a Japanese locale (as gettext reads them), else 'en'."""
    env = os.environ if environ is None else environ
    locale = next((env[name] for name in LOCALE_VARIABLES if env.get(name)), "")
    return "ja" if locale.lower().startswith("ja") else "en"
