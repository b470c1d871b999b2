"""Where Onsite keeps its state, read once from the environment.

Every process (hub, review service, admin CLI, tests) builds a `Settings` from
the same variables, so they agree on the database and the directories without
passing paths around.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from onsite_base.errors import UserError
from onsite_base.i18n import DEFAULT_LANGUAGE, LANGUAGES

LANGUAGE_ENV = "ONSITE_LANGUAGE"


@dataclass(frozen=True)
class Settings:
    home: Path
    """State directory: datasets, workspaces, egress store, secrets."""
    db_url: str
    """SQLAlchemy URL of the policy, workflow and audit store."""
    language: str = DEFAULT_LANGUAGE
    """Language of researchers' sessions ($ONSITE_LANGUAGE, ja or en): JupyterLab's UI and the kernel's verdicts."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("ONSITE_HOME") or Path.cwd() / "var").resolve()
        db_url = env.get("ONSITE_DB_URL") or f"sqlite:///{home / 'onsite.sqlite'}"
        language = env.get(LANGUAGE_ENV) or DEFAULT_LANGUAGE
        if language not in LANGUAGES:
            raise UserError(f"${LANGUAGE_ENV}={language!r} is not a session language: set it to one of {', '.join(LANGUAGES)}")
        return cls(home=home, db_url=db_url, language=language)

    @property
    def datasets_dir(self) -> Path:
        """One DuckDB file per dataset, read-only to sessions."""
        return self.home / "datasets"

    @property
    def workspaces_dir(self) -> Path:
        """Per-user homes with per-project workspaces."""
        return self.home / "workspaces"

    @property
    def egress_dir(self) -> Path:
        """Release packages; written only by the review service."""
        return self.home / "egress"

    @property
    def runtime_dir(self) -> Path:
        """Hub secrets, proxy token, pid files, logs."""
        return self.home / "run"

    def environ(self) -> dict[str, str]:
        """The variables a child process needs to see the same state."""
        return {"ONSITE_HOME": str(self.home), "ONSITE_DB_URL": self.db_url, LANGUAGE_ENV: self.language}
