"""The session manifest: what the spawner granted this server.

The spawner writes `$HOME/.onsite/session.json` (path in `$ONSITE_SESSION`)
when the researcher's server starts; `analysis_kernel.connect()` reads it to
know which projects and dataset files to open. It is a convenience, not a
boundary: OS permissions decide which files can actually be read.

    {"user": "r.tanaka",
     "projects": {"p2026_01": {"title": "...", "preset": "acro-default",
                               "datasets": {"demo_household": "/srv/onsite/datasets/demo_household.duckdb"}}},
     "outbox": "/home/r.tanaka/.onsite/outbox", "language": "ja"}

`language` (the site's $ONSITE_LANGUAGE, ja or en) is the language outputs show
their verdicts in. A manifest without it (written before sessions had a
language) and a kernel outside a session show English.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onsite_base.errors import UserError
from onsite_base.fileio import write_json_atomic
from onsite_base.i18n import LANGUAGES

SESSION_ENV = "ONSITE_SESSION"
MANIFEST_MODE = 0o644  # names and paths only, nothing secret; the server's user must read it


class SessionManifestInvalid(UserError):
    """No manifest, or one that cannot be read; the message says where it looked."""


def default_path() -> Path:
    return Path.home() / ".onsite" / "session.json"


@dataclass(frozen=True)
class ProjectGrant:
    """One active project of the session and the dataset files it grants."""

    title: str
    preset: str
    """Name of the disclosure-control rule preset the project's outputs are checked with (the project's, as the
    spawner wrote it: the kernel checks with the same preset the review service does)."""
    datasets: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionManifest:
    user: str
    projects: Mapping[str, ProjectGrant]
    outbox: Path
    """Directory where `request_release` drops release requests for the server extension."""
    language: str = "en"
    """Language the kernel shows verdicts and check messages in (ja or en)."""

    @classmethod
    def load(cls, path: Path | None = None) -> SessionManifest:
        """Read the manifest at `path`, else `$ONSITE_SESSION`, else `~/.onsite/session.json`."""
        path = Path(path or os.environ.get(SESSION_ENV) or default_path())
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SessionManifestInvalid(
                f"no session manifest at {path}: connect() works inside an Onsite session, whose spawner "
                f"writes it (set ${SESSION_ENV} to its path)"
            ) from None
        except (OSError, ValueError) as e:
            raise SessionManifestInvalid(f"cannot read the session manifest {path}: {e}") from e
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "session manifest") -> SessionManifest:
        def fail(problem: str) -> SessionManifestInvalid:
            return SessionManifestInvalid(f"{source}: {problem}")

        if not isinstance(data, Mapping):
            raise fail("expected a JSON object with user, projects and outbox")
        for key in ("user", "projects", "outbox"):
            if key not in data:
                raise fail(f"the field {key!r} is missing")
        if not isinstance(data["user"], str) or not isinstance(data["outbox"], str):
            raise fail("user and outbox must be strings")
        if not isinstance(data["projects"], Mapping):
            raise fail("projects must be an object {project id: {title, preset, datasets}}")
        language = data.get("language", "en")
        if language not in LANGUAGES:
            raise fail(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
        projects = {}
        for project_id, grant in data["projects"].items():
            if not isinstance(grant, Mapping) or not isinstance(grant.get("datasets", {}), Mapping):
                raise fail(f"project {project_id!r} must be an object with title, preset and datasets")
            if not isinstance(grant.get("preset"), str) or not grant["preset"]:
                raise fail(f"project {project_id!r} names no rule preset (the spawner writes the project's)")
            projects[str(project_id)] = ProjectGrant(
                title=str(grant.get("title", project_id)),
                preset=grant["preset"],
                datasets={str(k): Path(v) for k, v in grant.get("datasets", {}).items()},
            )
        return cls(user=data["user"], projects=projects, outbox=Path(data["outbox"]), language=language)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "projects": {
                project_id: {"title": grant.title, "preset": grant.preset,
                             "datasets": {k: str(v) for k, v in grant.datasets.items()}}
                for project_id, grant in self.projects.items()
            },
            "outbox": str(self.outbox),
            "language": self.language,
        }

    def write(self, path: Path) -> Path:
        """Write atomically (readers never see half a manifest) and return `path`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_json_atomic(path, self.to_dict(), mode=MANIFEST_MODE)


def session_language() -> str:
    """The language of this session's manifest (see `SessionManifest.load`); English outside a session."""
    try:
        return SessionManifest.load().language
    except SessionManifestInvalid:
        return "en"
