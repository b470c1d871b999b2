"""`onsite admin …` and `onsite audit …` through the real dispatcher."""
from __future__ import annotations

import getpass
import io
import json
import os
import pwd
import sys

import pytest
from sqlalchemy import text

from onsite import cli as onsite_cli
from access_control import policy
from onsite_base.db import make_engine, session_factory, transaction
from access_control.enums import Role
from access_control.identity import LocalIdentityStore


@pytest.fixture
def onsite(monkeypatch, tmp_path, db_url, capsys):
    """Run `onsite ARGS…` in-process; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("ONSITE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ONSITE_DB_URL", db_url)
    monkeypatch.setenv("ONSITE_ANCHOR_FILE", str(tmp_path / "ledger-anchor.jsonl"))  # not the machine's default place
    monkeypatch.setenv("ONSITE_LEDGER_KEY_FILE", str(tmp_path / "keys" / "ledger.pem"))

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            code = onsite_cli.main(list(args))
        except SystemExit as e:  # argparse refusing an argument
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def factory(db_url):
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


def ledger_length(factory) -> int:
    with factory() as s:
        return s.execute(text("SELECT COUNT(*) FROM audit_event")).scalar_one()


def test_person_lifecycle(onsite, factory):
    code, out, _ = onsite("admin", "person", "add", "ｈａｎａｋｏ", "--name", "山田花子", "--role", "researcher", "--role", "reviewer",
                          "--password-stdin", stdin="a long enough secret\n")
    assert (code, out.strip()) == (0, "added person hanako")
    with transaction(factory) as s:
        assert LocalIdentityStore().authenticate(s, "hanako", "a long enough secret") is not None
        assert policy.person_roles(s, "hanako") == {Role.RESEARCHER, Role.REVIEWER}
    code, out, _ = onsite("admin", "person", "show", "hanako", "--json")
    shown = json.loads(out)
    assert (code, shown["display_name"], shown["roles"], shown["disabled"]) == (0, "山田花子", ["researcher", "reviewer"], False)
    assert onsite("admin", "person", "disable", "hanako")[0] == 0
    assert json.loads(onsite("admin", "person", "list", "--json")[1])[0]["disabled"] is True
    assert onsite("admin", "person", "enable", "hanako")[0] == 0
    assert onsite("admin", "role", "revoke", "hanako", "reviewer")[0] == 0
    assert onsite("admin", "person", "passwd", "hanako", "--password-stdin", stdin="another long secret\n")[0] == 0
    with transaction(factory) as s:
        assert policy.person_roles(s, "hanako") == {Role.RESEARCHER}
        store = LocalIdentityStore(max_failed_logins=2)
        assert store.authenticate(s, "hanako", "another long secret") is not None
        store.authenticate(s, "hanako", "wrong-one-11")
        store.authenticate(s, "hanako", "wrong-two-22")
    assert json.loads(onsite("admin", "person", "show", "hanako", "--json")[1])["locked_until"] is not None
    assert onsite("admin", "person", "unlock", "hanako")[0] == 0
    assert json.loads(onsite("admin", "person", "show", "hanako", "--json")[1])["locked_until"] is None
    code, out, _ = onsite("audit", "export")
    events = [json.loads(line) for line in out.splitlines()]
    assert {e["actor"] for e in events if e["action"] != "LOGIN_FAIL"} == {f"admin:{pwd.getpwuid(os.getuid()).pw_name}"}


def test_the_ledger_names_the_real_login_whatever_USER_says(onsite, monkeypatch):
    """$USER and $LOGNAME are the caller's to set: an administrator cannot put another's name on their actions."""
    real = pwd.getpwuid(os.getuid()).pw_name
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, "mallory")
    assert onsite("admin", "person", "add", "hanako", "--name", "山田花子", "--role", "researcher", "--no-password")[0] == 0
    [event] = [json.loads(line) for line in onsite("audit", "export")[1].splitlines() if '"PERSON_ADD"' in line]
    assert (event["actor"], event["details"]["os_user"]) == (f"admin:{real}", real)


@pytest.mark.parametrize(
    "args, stdin, fragment",
    [
        (("admin", "person", "add", "bad name", "--name", "X", "--no-password"), None, "not allowed"),
        (("admin", "person", "add", "bob", "--name", "X", "--password-stdin"), "short\n", "too short"),
        (("admin", "person", "add", "bob", "--name", "X", "--password-stdin"), "", "no password"),
        (("admin", "person", "show", "nobody"), None, "unknown person"),
        (("admin", "project", "add", "p1", "--title", "T", "--start", "2026-05-01", "--end", "2026-04-01"), None, "before the start"),
        (("admin", "member", "add", "p404", "alice"), None, "unknown project"),
        (("admin", "grant", "add", "p404", "lfs"), None, "unknown project"),
        (("admin", "grant", "revoke", "77"), None, "unknown grant"),
        (("admin", "terminal", "add", "Nowhere", "10.0.0.1"), None, "unknown facility"),
        (("admin", "facility", "add", "X", "--timezone", "Tokyo"), None, "unknown time zone"),
    ],
)
def test_bad_input_is_refused_with_reason_and_changes_nothing(onsite, factory, args, stdin, fragment):
    assert onsite("admin", "person", "list")[0] == 0  # migrates the store
    before = ledger_length(factory)
    code, out, err = onsite(*args, stdin=stdin)
    assert code == 2 and fragment in err and "Traceback" not in err
    assert ledger_length(factory) == before
    with factory() as s:
        assert s.execute(text("SELECT COUNT(*) FROM person")).scalar_one() == 0


def test_prompted_passwords_must_match(onsite, factory, monkeypatch):
    answers = iter(["first long password", "second long password"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    code, _, err = onsite("admin", "person", "add", "bob", "--name", "Bob")
    assert code == 2 and "differ" in err
    with factory() as s:
        assert policy.get_person(s, "bob") is None


def test_project_grant_facility_terminal_commands(onsite, factory):
    assert onsite("admin", "person", "add", "alice", "--name", "Alice", "--role", "researcher", "--no-password")[0] == 0
    assert onsite("admin", "project", "add", "p2026-001", "--title", "所得分析", "--start", "2026-04-01", "--end", "2027-03-31",
                  "--legal-basis", "統計法第33条")[0] == 0
    assert onsite("admin", "member", "add", "p2026-001", "alice")[0] == 0
    with transaction(factory) as s:
        policy.register_dataset(s, dataset_id="lfs", title_ja="労働力", title_en="LFS", path="/d", rows=1, source_sha256="0" * 64, actor="t")
    code, out, _ = onsite("admin", "grant", "add", "p2026-001", "lfs", "--until", "2026-12-31")
    assert code == 0 and "from 2026-04-01 until 2026-12-31" in out  # start defaults to the project's
    grants = json.loads(onsite("admin", "grant", "list", "--project", "p2026-001", "--json")[1])
    assert [(g["dataset"], g["valid_from"], g["valid_until"], g["revoked_at"]) for g in grants] == [("lfs", "2026-04-01", "2026-12-31", None)]
    assert onsite("admin", "project", "change", "p2026-001", "--status", "suspended")[0] == 0
    shown = json.loads(onsite("admin", "project", "show", "p2026-001", "--json")[1])
    assert (shown["status"], shown["members"], shown["legal_basis"]) == ("suspended", ["alice"], "統計法第33条")
    assert onsite("admin", "grant", "revoke", str(grants[0]["id"]))[0] == 0
    assert json.loads(onsite("admin", "grant", "list", "--json")[1])[0]["revoked_at"] is not None
    assert onsite("admin", "member", "remove", "p2026-001", "alice")[0] == 0

    assert onsite("admin", "facility", "add", "東京センター", "--address", "東京都")[0] == 0
    assert onsite("admin", "terminal", "add", "東京センター", "2001:DB8::/48", "--label", "room A", "--override")[0] == 0  # > /56
    code, out, err = onsite("admin", "terminal", "add", "東京センター", "192.0.2.1/24")
    assert code == 2 and "did you mean 192.0.2.0/24" in err
    assert json.loads(onsite("admin", "terminal", "list", "--json")[1]) == [
        {"address": "2001:db8::/48", "facility": "東京センター", "label": "room A", "override": True}
    ]
    assert json.loads(onsite("admin", "facility", "list", "--json")[1])[0]["terminals"] == 1
    assert onsite("admin", "terminal", "remove", "2001:db8::/48")[0] == 0
    assert json.loads(onsite("admin", "terminal", "list", "--json")[1]) == []


def test_audit_verify_reports_ok_then_first_tampered_event(onsite, factory, tmp_path):
    for name in ("a1", "a2", "a3"):
        assert onsite("admin", "person", "add", name, "--name", name, "--no-password")[0] == 0
    code, out, _ = onsite("audit", "verify")
    assert code == 0 and out.startswith("ok: 3 events (Merkle root ") and out.endswith(", 0 signed heads)\n")
    with transaction(factory) as s:
        s.execute(text("UPDATE audit_event SET object = 'person:zz' WHERE seq = 2"))
    code, out, _ = onsite("audit", "verify")
    assert code == 1 and out.startswith("TAMPERED: first bad event 2:")


def test_audit_anchor_and_export_file(onsite, factory, tmp_path):
    for name in ("a1", "a2"):
        assert onsite("admin", "person", "add", name, "--name", name, "--no-password")[0] == 0
    code, out, _ = onsite("audit", "anchor")
    assert code == 0 and out.startswith("anchored event 2 ")
    assert out.endswith("signed the tree head of 2 events (" + out.split("(")[-1])
    assert onsite("audit", "verify")[1].endswith(", 1 signed heads; anchor at event 2 matches)\n")
    with transaction(factory) as s:
        s.execute(text("DELETE FROM audit_event WHERE seq >= 2"))  # truncate the tail: a valid but shorter chain
    code, out, _ = onsite("audit", "verify")
    assert code == 1 and "first bad event 2" in out and "anchor" in out
    target = tmp_path / "ledger.jsonl"
    code, _, err = onsite("audit", "export", "--out", str(target))
    assert code == 0 and "wrote 1 events" in err
    assert [json.loads(line)["seq"] for line in target.read_text().splitlines()] == [1]


def test_person_import_csv_with_dry_run(onsite, factory, tmp_path):
    people = tmp_path / "people.csv"
    people.write_text("\ufeffusername,display_name,roles\nｔａｒｏ,山田太郎,researcher;reviewer\njiro,Jiro,\n", encoding="utf-8")
    code, out, _ = onsite("admin", "person", "import", str(people), "--dry-run")
    assert (code, out.splitlines()[0]) == (0, "would add 2 people, 0 roles to existing people, 0 memberships (2 rows); nothing changed")
    assert json.loads(onsite("admin", "person", "list", "--json")[1]) == []
    assert onsite("admin", "person", "import", str(people))[0] == 0
    listed = json.loads(onsite("admin", "person", "list", "--json")[1])
    assert [(p["username"], p["roles"], p["has_password"]) for p in listed] == [("jiro", [], False), ("taro", ["researcher", "reviewer"], False)]
    bad = tmp_path / "bad.csv"
    bad.write_text("username,display_name,password\nkumi,Kumi,secret\n", encoding="utf-8")
    code, _, err = onsite("admin", "person", "import", str(bad))
    assert code == 2 and "header must name columns" in err


def test_audit_list_filters(onsite, factory):
    for name in ("a1", "a2"):
        assert onsite("admin", "person", "add", name, "--name", name, "--password-stdin", stdin="long enough password\n")[0] == 0
    with transaction(factory) as s:
        LocalIdentityStore().authenticate(s, "a2", "wrong password here")
    denied = json.loads(onsite("audit", "list", "--outcome", "denied", "--json")[1])
    assert [(e["seq"], e["action"], e["actor"], e["details"]["reason"]) for e in denied] == [(3, "LOGIN_FAIL", "a2", "BAD_CREDENTIALS")]
    added = json.loads(onsite("audit", "list", "--action", "person_add", "--json")[1])
    assert [e["object"] for e in added] == ["person:a2", "person:a1"]  # newest first
    assert json.loads(onsite("audit", "list", "--limit", "1", "--json")[1])[0]["seq"] == 3
    assert json.loads(onsite("audit", "list", "--since", "2000-01-01", "--until", "2000-01-02", "--json")[1]) == []
    code, _, err = onsite("audit", "list", "--since", "yesterday")
    assert code == 2 and "not a date" in err
