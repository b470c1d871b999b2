"""Where JupyterLab's file browser (and so the launcher's new notebooks) starts: the project's folder (#19)."""
from __future__ import annotations

import json

import pytest

from dataplane.manifest import ProjectGrant, SessionManifest


@pytest.fixture
def project_folder():
    """singleuser.contents.project_folder."""
    # heavy: singleuser.contents loads jupyter_server's contents manager and with it jupyter_events and jsonschema
    # (2-3 CPU-s): imported by these tests, not by every process that collects this file
    from singleuser.contents import project_folder

    return project_folder


def manifest_with(tmp_path, monkeypatch, *project_ids: str) -> None:
    projects = {p: ProjectGrant(title=p, preset="acro-default", datasets={}) for p in project_ids}
    path = SessionManifest(user="tanaka", projects=projects, outbox=tmp_path / "outbox").write(tmp_path / "session.json")
    monkeypatch.setenv("ONSITE_SESSION", str(path))


def test_one_project_starts_in_its_folder(tmp_path, monkeypatch, project_folder):
    manifest_with(tmp_path, monkeypatch, "p-demo")
    assert project_folder() == "p-demo"


def test_several_projects_or_none_start_in_the_home(tmp_path, monkeypatch, project_folder):
    manifest_with(tmp_path, monkeypatch, "p-demo", "p2026-001")
    assert project_folder() == ""
    manifest_with(tmp_path, monkeypatch)
    assert project_folder() == ""


def test_no_readable_manifest_starts_in_the_home(tmp_path, monkeypatch, project_folder):
    monkeypatch.setenv("ONSITE_SESSION", str(tmp_path / "missing.json"))
    assert project_folder() == ""
    (tmp_path / "bad.json").write_text(json.dumps({"user": "tanaka"}))
    monkeypatch.setenv("ONSITE_SESSION", str(tmp_path / "bad.json"))
    assert project_folder() == ""
