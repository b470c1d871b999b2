"""`onsite admin member|role …` keep the LDAP groups in step with the policy store (real slapd, real ldapsearch)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from conftest import TEMPLATE
from sqlalchemy import text

import slapd as slapd_helper
from access_control import policy
from onsite_base.db import make_engine, session_factory, transaction
from onsite.migrations import migrate
from onsite import cli as onsite_cli
from disclosure_review.sdc.rules import preset_names

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PROJECT = "p-sync"


@pytest.fixture
def onsite(monkeypatch, tmp_path, doomed_slapd, capsys):
    """`onsite admin …` in-process against a SQLite store, with ONSITE_LDAP_* pointing at a slapd of its own."""
    db_url = f"sqlite:///{tmp_path / 'onsite.sqlite'}"
    migrate(db_url)
    engine = make_engine(db_url)
    with transaction(session_factory(engine)) as s:
        for name in ("alice", "erin"):  # erin is in the policy store but not in the directory
            policy.add_person(s, username=name, display_name=name.title(), actor="test")
        policy.add_project(s, presets=preset_names(), project_id=PROJECT, title="Sync", start_date=date.today(),
                           end_date=date.today() + timedelta(days=30), actor="test")
    engine.dispose()
    password_file = tmp_path / "service-password"
    password_file.write_text(slapd_helper.SERVICE_PASSWORD)
    password_file.chmod(0o600)
    server = doomed_slapd.server
    for name, value in {
        "ONSITE_HOME": str(tmp_path / "home"), "ONSITE_DB_URL": db_url, "ONSITE_LDAP_URI": server.uri,
        "ONSITE_LDAP_PEOPLE_BASE": slapd_helper.PEOPLE_DN, "ONSITE_LDAP_GROUPS_BASE": slapd_helper.GROUPS_DN,
        "ONSITE_LDAP_BIND_DN_TEMPLATE": TEMPLATE, "ONSITE_LDAP_SERVICE_DN": slapd_helper.SERVICE_DN,
        "ONSITE_LDAP_SERVICE_PASSWORD_FILE": str(password_file), "ONSITE_LDAP_TLS": "START_TLS",
        "ONSITE_LDAP_CA_FILE": str(server.ca_file), "ONSITE_LDAP_CONNECT_TIMEOUT": "1", "ONSITE_LDAP_RECEIVE_TIMEOUT": "2",
    }.items():
        monkeypatch.setenv(name, value)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = onsite_cli.main(["admin", *args])
        out, err = capsys.readouterr()
        return code, out, err

    run.db_url = db_url  # type: ignore[attr-defined]
    run.server = server  # type: ignore[attr-defined]
    return run


def group_members(server: slapd_helper.Slapd, cn: str) -> set[str]:
    """The member DNs of a group as the real ldapsearch client sees them."""
    ldif = slapd_helper.ldapsearch(server, slapd_helper.GROUPS_DN, f"(cn={cn})", "member")
    return {line.split(": ", 1)[1] for line in ldif.splitlines() if line.startswith("member: ") and line != "member: "}


def store_rows(db_url: str) -> tuple[int, int, int]:
    """Memberships, roles and ledger events in the policy store."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                         for t in ("membership", "person_role", "audit_event"))  # type: ignore[return-value]
    finally:
        engine.dispose()


def test_member_and_role_commands_change_the_ldap_groups(onsite):
    alice = f"uid=alice,{slapd_helper.PEOPLE_DN}"
    assert onsite("member", "add", PROJECT, "alice")[0] == 0
    assert group_members(onsite.server, f"onsite-proj-{PROJECT}") == {alice}
    assert onsite("role", "grant", "alice", "reviewer")[0] == 0
    assert alice in group_members(onsite.server, "onsite-role-reviewer")
    assert onsite("role", "revoke", "alice", "reviewer")[0] == 0
    assert alice not in group_members(onsite.server, "onsite-role-reviewer")
    assert onsite("member", "remove", PROJECT, "alice")[0] == 0
    assert group_members(onsite.server, f"onsite-proj-{PROJECT}") == set()
    with transaction(session_factory(make_engine(onsite.db_url))) as s:
        assert policy.members_of(s, PROJECT) == [] and policy.person_roles(s, "alice") == set()


def test_a_person_missing_from_the_directory_is_refused_and_the_store_is_unchanged(onsite):
    before = store_rows(onsite.db_url)
    code, _, err = onsite("member", "add", PROJECT, "erin")
    assert code == 2 and "no person 'erin'" in err
    assert store_rows(onsite.db_url) == before


def test_with_the_directory_stopped_the_command_fails_and_the_store_is_unchanged(onsite):
    assert onsite("member", "add", PROJECT, "alice")[0] == 0
    onsite.server.stop()
    before = store_rows(onsite.db_url)
    for args in (("member", "remove", PROJECT, "alice"), ("role", "grant", "alice", "researcher")):
        code, _, err = onsite(*args)
        assert code == 2 and "the LDAP directory did not take the change" in err and "nothing changed" in err
        assert store_rows(onsite.db_url) == before
    with transaction(session_factory(make_engine(onsite.db_url))) as s:
        assert [p.username for p in policy.members_of(s, PROJECT)] == ["alice"]
        assert policy.person_roles(s, "alice") == set()


def test_the_hub_logs_in_against_ldap_when_it_is_configured(onsite, tmp_path, monkeypatch):
    from traitlets.config import Config

    from hub_config.authenticator import OnsiteAuthenticator
    from hub_config.config import configure, load_hub_settings
    from hub_config.ldap_authenticator import OnsiteLDAPAuthenticator
    from onsite_base.settings import Settings

    settings = Settings(home=tmp_path / "hub-home", db_url=onsite.db_url)
    _, hub, ldap = load_hub_settings()
    c = Config()
    configure(c, settings, hub, ldap)
    assert c.JupyterHub.authenticator_class is OnsiteLDAPAuthenticator
    auth = OnsiteLDAPAuthenticator(config=c)
    assert (auth.server_port, auth.tls_strategy.name, auth.bind_dn_template) == (onsite.server.port, "before_bind", [TEMPLATE])
    assert auth.settings == settings  # OnsiteAuthenticator's settings reach the subclass
    monkeypatch.delenv("ONSITE_LDAP_URI")
    _, hub, ldap = load_hub_settings()
    c = Config()
    configure(c, settings, hub, ldap)
    assert c.JupyterHub.authenticator_class is OnsiteAuthenticator


def test_directory_unavailable_is_an_entry_refusal_with_its_own_reason_and_status():
    from access_control.entry import DenialReason
    from hub_config.authenticator import EntryDenied
    from hub_config.ldap_authenticator import DirectoryUnavailableDenied

    refusal = DirectoryUnavailableDenied("LDAPSocketOpenError: connection refused")
    assert isinstance(refusal, EntryDenied) and refusal.status_code == 503
    assert refusal.reasons == (DenialReason.DIRECTORY_UNAVAILABLE,)
    assert DenialReason.DIRECTORY_UNAVAILABLE.message("ja") in refusal.jupyterhub_message


@pytest.mark.parametrize(("lang", "missing", "stopped", "english"), [
    ("C.UTF-8", "no person 'erin' under", ["the LDAP directory did not take the change:", "(check ", "nothing changed"], []),
    ("ja_JP.UTF-8", "の下に利用者「erin」がいません",
     ["LDAP ディレクトリが変更を受け付けませんでした:", "を確認してください", "何も変更していません"],
     ["no person", "did not take", "cannot reach", "did not answer", "(check "]),
])
def test_ldap_refusals_speak_the_administrators_language(onsite, monkeypatch, lang, missing, stopped, english):
    """A person the directory lacks, then the directory down: said in the locale's language, with the settings to check."""
    monkeypatch.setenv("LANG", lang)
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = onsite("member", "add", PROJECT, "erin")
    assert code == 2 and missing in err and slapd_helper.PEOPLE_DN in err, err
    onsite.server.stop()
    code, _, err = onsite("role", "grant", "alice", "researcher")
    assert code == 2 and all(words in err for words in stopped), err
    assert onsite.server.uri in err and not [words for words in english if words in err], err
