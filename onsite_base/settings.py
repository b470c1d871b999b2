"""Where Onsite keeps its state: the settings every process shares.

Every process (hub, review service, admin service, admin CLI, tests) builds a
`Settings` from the same config file and variables (`Settings.load()`, see
onsite_base/config.py), so they agree on the database and the directories
without passing paths around. Tests build one by keyword:
`Settings(home=tmp_path, db_url=url)`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from traitlets import TraitError, TraitType, Unicode, default, validate

from onsite_base.config import CONFIG_ENV, HOME_ENV, Section
from onsite_base import times
from onsite_base.i18n import DEFAULT_LANGUAGE, LANGUAGES

DB_URL_ENV = "ONSITE_DB_URL"
LANGUAGE_ENV = "ONSITE_LANGUAGE"
TIMEZONE_ENV = "ONSITE_TIMEZONE"


class AbsolutePath(TraitType[Path, Any]):
    """A filesystem path, made absolute (relative to the current directory) when set."""

    info_text = "a filesystem path"

    def validate(self, obj: Any, value: Any) -> Path | None:
        if value is None and self.allow_none:
            return None
        if isinstance(value, (str, Path)) and str(value):
            return Path(value).resolve()
        self.error(obj, value)

    def from_string(self, s: str) -> Path:
        return Path(s)


class Settings(Section):
    """Where the state lives, in which language researchers' sessions speak and in which time zone times are shown."""

    home = AbsolutePath(
        help="""State directory: datasets/, workspaces/, egress/ (release packages), run/ (hub
        secrets, logs, the hub database when SQLite). Default: ./var. Security: run/ and
        egress/ are made 0700 by the hub; keep the directory off shared storage others can write.""",
    ).tag(config=True, env=HOME_ENV)

    db_url = Unicode(
        help="""SQLAlchemy URL of the policy, workflow and audit store. Default: SQLite
        `onsite.sqlite` in `home`; production: postgresql://... (every process of a
        deployment must name the same store).""",
    ).tag(config=True, env=DB_URL_ENV)

    language = Unicode(
        DEFAULT_LANGUAGE,
        help=f"""Language of researchers' sessions: JupyterLab's interface and the kernel's
        verdicts and release summaries. One of {', '.join(LANGUAGES)}. Web pages follow
        each browser's language instead.""",
    ).tag(config=True, env=LANGUAGE_ENV)

    timezone = Unicode(
        times.DEFAULT_TIMEZONE,
        help="""The facility network's time zone (an IANA name such as Asia/Tokyo): every time on the review
        and admin pages and in the output of `onsite admin`, `onsite review` and `onsite audit list` is shown
        in it with its abbreviation ("2026-12-07 14:03 JST"), and a time an administrator types without an
        offset (`--since`, the entry log's days) is read in it. A facility's bookings are typed and shown in
        that facility's own zone. Stores keep UTC; JSON output gives ISO 8601 with the offset.""",
    ).tag(config=True, env=TIMEZONE_ENV)

    config_file = AbsolutePath(
        None,
        allow_none=True,
        help=f"""The config file these settings were read from (a traitlets Python file):
        ${CONFIG_ENV}, else $ONSITE_HOME/onsite_config.py when it exists. Set by the
        loader and passed to the services the hub starts; setting it inside the file has
        no effect.""",
    ).tag(config=True, env=CONFIG_ENV)

    @default("home")
    def _default_home(self) -> Path:
        return (Path.cwd() / "var").resolve()

    @default("db_url")
    def _default_db_url(self) -> str:
        return f"sqlite:///{self.home / 'onsite.sqlite'}"

    @validate("language")
    def _known_language(self, proposal: Any) -> str:
        if proposal.value not in LANGUAGES:
            raise TraitError(f"{proposal.value!r} is not a session language: set it to one of {', '.join(LANGUAGES)}")
        return proposal.value

    @validate("timezone")
    def _known_zone(self, proposal: Any) -> str:
        try:
            times.zone(proposal.value)
        except ValueError as error:
            raise TraitError(str(error)) from None
        return proposal.value

    @validate("db_url")
    def _sqlalchemy_url(self, proposal: Any) -> str:
        if "://" not in proposal.value:
            raise TraitError(f"{proposal.value!r} is not a database URL: use sqlite:///path or postgresql://...")
        return proposal.value

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
        """The variables a child process needs to see the same state and read the same config file."""
        environ = {HOME_ENV: str(self.home), DB_URL_ENV: self.db_url, LANGUAGE_ENV: self.language,
                   TIMEZONE_ENV: self.timezone}
        if self.config_file is not None:
            environ[CONFIG_ENV] = str(self.config_file)
        return environ

    def __repr__(self) -> str:
        return f"Settings(home={str(self.home)!r}, language={self.language!r})"
