"""`onsite demo-data` and `onsite admin dataset ...` through the real CLI, on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import os
import stat

import polars as pl
import pytest
from sqlalchemy import select

from access_control.models import AuditEvent, Dataset
from access_control.policy import register_dataset
from onsite_base.db import transaction
from onsite.demo_data import METADATA_PATH
from onsite.cli import main


@pytest.fixture
def env(settings, monkeypatch):
    monkeypatch.setenv("ONSITE_HOME", str(settings.home))
    monkeypatch.setenv("ONSITE_DB_URL", settings.db_url)
    return settings


@pytest.fixture
def demo_file(env):
    out = env.home / "demo" / "demo.parquet"
    assert main(["demo-data", "--rows", "1200", "--seed", "5", "--out", str(out), "--quiet"]) == 0
    return out


def test_demo_data_then_ingest_registers_the_dataset(env, demo_file, db, capsys):
    assert pl.read_parquet(demo_file).height == 1200
    assert main(["admin", "dataset", "ingest", str(demo_file), "--metadata", str(METADATA_PATH), "--id", "demo",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "dataset demo: 1,200 rows" in out and "direct identifiers dropped: name, phone" in out
    path = env.datasets_dir / "demo.duckdb"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    with transaction(db) as session:
        dataset = session.get(Dataset, "demo")
        assert (dataset.path, dataset.rows, dataset.title_en) == (str(path), 1200, "Household and Labour Survey (synthetic demo data)")
        events = session.scalars(select(AuditEvent).where(AuditEvent.object == "dataset:demo")).all()
        assert len(events) == 1

    assert main(["admin", "dataset", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(d["id"], d["rows"]) for d in listed] == [("demo", 1200)]
    assert main(["admin", "dataset", "show", "demo", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["dropped_identifiers"] == ["name", "phone"]
    assert {v["name"]: v["role"] for v in shown["variables"]}["annual_income"] == "sensitive"
    assert main(["admin", "dataset", "show", "demo"]) == 0
    table = capsys.readouterr().out
    assert "age" in table and "年齢" in table and "key" in table


def test_ingest_twice_needs_replace(env, demo_file, db, capsys):
    args = ["admin", "dataset", "ingest", str(demo_file), "--metadata", str(METADATA_PATH), "--id", "demo", "--quiet"]
    assert main(args) == 0
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--replace"]) == 0
    assert sorted(p.name for p in env.datasets_dir.iterdir()) == ["demo.duckdb"]


def test_failed_registration_leaves_no_file(env, demo_file, db, capsys):
    # The policy store already knows the id (e.g. its file was deleted by hand): registration refuses.
    with transaction(db) as session:
        register_dataset(session, dataset_id="demo", title_ja="既存", title_en="Existing", path="/elsewhere",
                         rows=1, source_sha256="0" * 64, actor="admin:test")
    code = main(["admin", "dataset", "ingest", str(demo_file), "--metadata", str(METADATA_PATH), "--id", "demo",
                 "--quiet"])
    assert code == 2
    assert "already registered" in capsys.readouterr().err
    assert not env.datasets_dir.exists() or list(env.datasets_dir.iterdir()) == []
    with transaction(db) as session:
        assert session.get(Dataset, "demo").title_en == "Existing"


def test_bad_metadata_is_refused_before_anything_is_written(env, demo_file, tmp_path, capsys):
    meta = tmp_path / "meta.yaml"
    meta.write_text(METADATA_PATH.read_text(encoding="utf-8").replace("role: key", "role: other"), encoding="utf-8")
    assert main(["admin", "dataset", "ingest", str(demo_file), "--metadata", str(meta), "--quiet"]) == 2
    assert "no key variable declared" in capsys.readouterr().err
    assert not env.datasets_dir.exists() or list(env.datasets_dir.iterdir()) == []


def test_show_unknown_dataset(env, capsys):
    assert main(["admin", "dataset", "show", "nothing"]) == 2
    assert "no dataset file" in capsys.readouterr().err
