from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from dataplane.manifest import ProjectGrant, SessionManifest, SessionManifestInvalid


def test_write_then_load_round_trips(tmp_path, monkeypatch):
    manifest = SessionManifest(
        user="r.tanaka",
        projects={"p2026_01": ProjectGrant(title="賃金構造の研究", preset="strict",
                                           datasets={"demo_household": Path("/srv/datasets/demo_household.duckdb")})},
        outbox=Path("/home/r.tanaka/.onsite/outbox"),
    )
    path = manifest.write(tmp_path / ".onsite" / "session.json")
    assert SessionManifest.load(path) == manifest
    monkeypatch.setenv("ONSITE_SESSION", str(path))
    assert SessionManifest.load() == manifest
    assert json.loads(path.read_text(encoding="utf-8"))["projects"]["p2026_01"]["datasets"] == {
        "demo_household": "/srv/datasets/demo_household.duckdb"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["session.json"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read the session manifest"),
        ('["a list"]', "expected a JSON object"),
        ('{"user": "u", "outbox": "/x"}', "'projects' is missing"),
        ('{"user": "u", "outbox": "/x", "projects": {"p": {"datasets": ["a"]}}}', "project 'p' must be an object"),
    ],
)
def test_broken_manifests_are_refused(tmp_path, content, message):
    path = tmp_path / "session.json"
    path.write_text(content)
    with pytest.raises(SessionManifestInvalid, match=message):
        SessionManifest.load(path)


def test_a_project_without_a_preset_is_refused():
    # The spawner writes each project's preset: the kernel checks with the one the review service uses.
    with pytest.raises(SessionManifestInvalid, match="project 'p1' names no rule preset"):
        SessionManifest.from_dict({"user": "u", "outbox": "/tmp/o", "projects": {"p1": {"title": "t"}}})
