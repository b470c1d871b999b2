"""`onsite admin …` refusing what cannot work (issue 19), answering what it did in the administrator's
language, `--json` on every change, and no store created by a command run from the wrong folder.
Through the real dispatcher, on SQLite and PostgreSQL (`db_url`)."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from access_control import policy
from access_control.enums import Role
from onsite import cli as onsite_cli
from onsite.commands.admin import store_name
from onsite.demo_data import METADATA_PATH
from onsite_base.db import Base, transaction
from onsite_base.settings import Settings
from disclosure_review.sdc.rules import preset_names

from test_access_cli import factory, onsite  # noqa: F401  (fixtures)

TODAY = date.today()
START, END = TODAY - timedelta(days=10), TODAY + timedelta(days=100)


def seed(factory) -> None:
    with transaction(factory) as s:
        policy.add_person(s, username="alice", display_name="Alice", roles=[Role.RESEARCHER], actor="test")
        policy.add_project(s, presets=preset_names(), project_id="p1", title="Income", start_date=START, end_date=END, actor="test")
        policy.register_dataset(s, dataset_id="lfs", title_ja="労働力調査", title_en="LFS", path="/d/lfs.duckdb", rows=1,
                                source_sha256="ab" * 32, actor="test")
        policy.add_facility(s, name="Tokyo", actor="test")


def every_row(factory) -> dict[str, list[tuple]]:
    with factory() as session:
        return {name: sorted(map(tuple, session.execute(select(table)))) for name, table in Base.metadata.tables.items()}


def refused(onsite, factory, *args: str) -> str:
    """Run a command that must be refused: exit 2, nothing written (every row the same); its stderr."""
    before = every_row(factory)
    code, out, err = onsite(*args)
    assert code == 2 and out == "", (code, out, err)
    assert every_row(factory) == before
    return err


@pytest.mark.parametrize("args, says", [
    (("project", "add", "p2", "--title", "T", "--start", str(START), "--end", str(END), "--preset", "strict"),
     "unknown rule preset 'strict': choose one of acro-default, jp-onsite, sdc-handbook"),
    (("project", "change", "p1", "--preset", "nope"), "unknown rule preset 'nope'"),
    (("project", "add", "p2", "--title", "T", "--start", "2020-01-01", "--end", "2020-12-31"),
     "end date 2020-12-31 is already past"),
    (("project", "change", "p1", "--end", str(TODAY - timedelta(days=1))), "to end the project now, set its status to closed"),
    (("project", "add", "p2", "--title", "T", "--start", str(START), "--end", str(END), "--purpose", "x" * 2001),
     "purpose is too long: at most 2000 characters"),
    (("project", "change", "p1", "--legal-basis", "x" * 301), "legal basis is too long: at most 300 characters"),
    (("grant", "add", "p1", "lfs", "--from", str(START - timedelta(days=1))), "fall outside project 'p1'"),
    (("grant", "add", "p1", "lfs", "--until", str(END + timedelta(days=1))), "fall outside project 'p1'"),
    (("grant", "add", "p1", "lfs", "--from", str(START), "--until", str(TODAY - timedelta(days=1))), "grant end"),
    (("terminal", "add", "Tokyo", "fe80::1%eth0"), "carries a zone id"),
    (("terminal", "add", "Tokyo", "fe80::1"), "includes link-local addresses (fe80::/10)"),
    (("terminal", "add", "Tokyo", "169.254.0.7"), "includes link-local addresses (169.254.0.0/16)"),
    (("terminal", "add", "Tokyo", "ff02::1"), "includes multicast addresses"),
    (("terminal", "add", "Tokyo", "0.0.0.0"), "includes unspecified addresses"),
    (("terminal", "add", "Tokyo", "0.0.0.0/0"), "covers every address"),
    (("terminal", "add", "Tokyo", "::ffff:192.0.2.1"), "so give 192.0.2.1"),
    (("terminal", "add", "Tokyo", "192.0.2.1", "--label", "x" * 201), "terminal label is too long: at most 200 characters"),
    (("facility", "add", "Kobe", "--address", "x" * 501), "facility address is too long: at most 500 characters"),
    (("person", "add", "bob", "--name", "x" * 201, "--no-password"), "display name is too long: at most 200 characters"),
])
def test_a_change_that_could_not_work_is_refused_naming_the_field(onsite, factory, args, says):
    seed(factory)
    assert says in refused(onsite, factory, "admin", *args)


def test_refusals_in_japanese_with_the_command_that_shows_what_they_name(onsite, factory, monkeypatch):
    seed(factory)
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    err = refused(onsite, factory, "admin", "terminal", "add", "Tokyo", "fe80::1%eth0")
    assert "端末アドレス「fe80::1%eth0」にゾーン ID" in err
    err = refused(onsite, factory, "admin", "grant", "add", "p1", "lfs", "--until", str(END + timedelta(days=1)))
    assert f"プロジェクト「p1」の期間 {START}〜{END} からはみ出しています" in err and "(`onsite admin project show p1`)" in err
    err = refused(onsite, factory, "admin", "person", "add", "alice", "--name", "A", "--no-password")
    assert "利用者「alice」はすでに登録されています (`onsite admin person show alice`)" in err
    code, out, _ = onsite("admin", "member", "add", "p1", "alice")
    assert (code, out.strip()) == (0, "alice をプロジェクト p1 のメンバーに追加しました")


def test_each_change_says_what_it_did(onsite, factory):
    seed(factory)
    said = [onsite("admin", *args)[1].strip() for args in (
        ("member", "add", "p1", "alice"),
        ("member", "remove", "p1", "alice"),
        ("role", "grant", "alice", "reviewer"),
        ("person", "disable", "alice"),
        ("project", "change", "p1", "--title", "Wages"),
        ("terminal", "add", "Tokyo", "192.0.2.7", "--label", "席 1"),
        ("terminal", "remove", "192.0.2.7"),
    )]
    assert said == [
        "added alice to project p1", "removed alice from project p1", "granted role reviewer to alice",
        "disabled alice (entry refused from now on)", "changed project p1", "added terminal 192.0.2.7/32 at Tokyo",
        "removed terminal 192.0.2.7/32",
    ]


def test_every_change_answers_json_with_the_object_written_as_show_prints_it(onsite, factory, tmp_path):
    seed(factory)

    def answer(*args: str) -> dict:
        code, out, err = onsite("admin", *args, "--json")
        assert code == 0, err
        return json.loads(out)

    assert answer("member", "add", "p1", "alice") == answer("project", "show", "p1")
    grant = answer("grant", "add", "p1", "lfs")
    assert (grant["project"], grant["dataset"], grant["valid_from"], grant["valid_until"]) == ("p1", "lfs", str(START), str(END))
    assert answer("grant", "revoke", str(grant["id"]))["revoked_at"] is not None
    person = answer("person", "add", "bob", "--name", "Bob", "--role", "reviewer", "--no-password")
    assert person == answer("person", "show", "bob") and person["roles"] == ["reviewer"]
    assert answer("role", "revoke", "bob", "reviewer")["roles"] == []
    assert answer("terminal", "add", "Tokyo", "2001:db8::/64", "--label", "room") == {
        "address": "2001:db8::/64", "facility": "Tokyo", "label": "room", "override": False}
    assert answer("terminal", "remove", "2001:db8::/64")["address"] == "2001:db8::/64"
    assert answer("facility", "hours", "Tokyo", "mon-fri 09:00-17:00") == answer("facility", "show", "Tokyo")
    assert answer("project", "change", "p1", "--preset", "jp-onsite")["preset"] == "jp-onsite"
    (tmp_path / "people.csv").write_text("username,display_name\ncarol,Carol\n", encoding="utf-8")
    imported = answer("person", "import", str(tmp_path / "people.csv"), "--dry-run")
    assert imported == {"people_added": 1, "roles_granted": 0, "memberships_added": 0, "rows": 1, "dry_run": True}


@pytest.mark.parametrize("command", [
    ("admin", "person", "list"), ("admin", "project", "add", "p9", "--title", "T", "--start", "2030-01-01", "--end", "2030-02-01"),
    ("audit", "verify"), ("review", "list"), ("admin", "dataset", "ingest", "/nonexistent.parquet", "--metadata", str(METADATA_PATH)),
])
def test_a_command_from_another_folder_creates_no_store_and_names_the_one_it_looked_for(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    for name in ("ONSITE_HOME", "ONSITE_DB_URL", "ONSITE_CONFIG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("ONSITE_ANCHOR_FILE", str(tmp_path / "anchor.jsonl"))
    assert onsite_cli.main(list(command)) == 2
    err = capsys.readouterr().err
    assert f"no Onsite store at sqlite:///{tmp_path}/var/onsite.sqlite (ONSITE_HOME={tmp_path}/var)" in err
    assert "ONSITE_HOME or ONSITE_DB_URL" in err and "`onsite init`" in err and "nothing was created" in err
    assert not (tmp_path / "var").exists()


def test_init_creates_the_store_once_and_then_the_commands_use_it(tmp_path, monkeypatch, capsys, db_url_empty):
    monkeypatch.setenv("ONSITE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ONSITE_DB_URL", db_url_empty)
    monkeypatch.setenv("LANG", "C.UTF-8")
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    assert onsite_cli.main(["admin", "facility", "list"]) == 2
    assert "no Onsite store at" in capsys.readouterr().err
    assert onsite_cli.main(["init", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] is True
    assert onsite_cli.main(["init"]) == 0
    assert "is at the newest schema" in capsys.readouterr().out
    assert onsite_cli.main(["admin", "facility", "add", "東京", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "東京"


def test_a_store_url_with_a_password_is_named_without_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ONSITE_HOME", str(tmp_path))
    monkeypatch.setenv("ONSITE_DB_URL", f"sqlite:///{tmp_path}/missing.sqlite")
    assert onsite_cli.main(["admin", "person", "list"]) == 2
    assert "missing.sqlite" in capsys.readouterr().err and not (tmp_path / "missing.sqlite").exists()
    assert store_name(Settings(home=tmp_path, db_url="postgresql://onsite:s3cret@db/onsite")) == "postgresql://onsite:***@db/onsite"
