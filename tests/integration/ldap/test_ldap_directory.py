"""access_control.ldap.LdapDirectory against a real slapd: binds, groups, attacks, outages, maintenance."""
from __future__ import annotations

import time
import uuid

import ldap3
import pytest
from conftest import PEOPLE, TEMPLATE, Directory

import slapd as slapd_helper
from access_control.entry import DenialReason
from access_control.enums import Role
from access_control.ldap import (
    DirectoryUnavailable,
    LdapDirectory,
    LdapSettings,
    LdapSettingsInvalid,
    MembershipLookup,
    TlsMode,
    login_name,
    project_group,
    role_group,
)
from onsite_base.errors import UserError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

# What the seed put in the directory, written out independently of the code under test.
EXPECTED_ROLES = {
    "alice": {Role.RESEARCHER},
    "bob": {Role.REVIEWER, Role.ADMINISTRATOR},
    "carol": {Role.RESEARCHER},
    "dave": set(),  # only in a look-alike group outside groups_base
}
EXPECTED_PROJECTS = {"alice": {"p2026-001", "p2026-002"}, "bob": set(), "carol": {"p2026-002"}, "dave": set()}

BIND_MODES = {
    "template": {"service_dn": None, "service_password": None},
    "search": {"bind_dn_template": None},
}
INJECTIONS = ["*)(uid=*", "alice)(|(uid=*", "*", "alice\x00", "\x00", "alice*", "alice)", "uid=alice,ou=people",
              "alice,ou=people,dc=onsite,dc=test", "(uid=alice)",
              "a" * 100_000]


def password(uid: str) -> str:
    return PEOPLE[uid][0]


def transport(directory: Directory, tls: TlsMode) -> dict:
    uri = directory.server.ldaps_uri if tls is TlsMode.LDAPS else directory.server.uri
    return {"server_uris": (uri,), "tls": tls}


@pytest.mark.parametrize("tls", list(TlsMode), ids=lambda t: t.value)
@pytest.mark.parametrize("bind", BIND_MODES, ids=str)
def test_right_password_gives_the_person_their_groups(directory, tls, bind):
    ldap = LdapDirectory(directory.settings(**transport(directory, tls), **BIND_MODES[bind]))
    for uid in PEOPLE:
        result = ldap.authenticate(uid, password(uid))
        assert result.authenticated, uid
        assert (result.username, result.dn) == (uid, directory.dns[uid])
        assert set(result.roles) == EXPECTED_ROLES[uid]
        assert set(result.projects) == EXPECTED_PROJECTS[uid]


@pytest.mark.parametrize("bind", BIND_MODES, ids=str)
def test_wrong_blank_or_someone_elses_password_is_refused(directory, bind):
    ldap = LdapDirectory(directory.settings(**BIND_MODES[bind]))
    for attempt in ["alice-password-2", "", "   ", password("bob"), password("alice").upper()]:
        result = ldap.authenticate("alice", attempt)
        assert not result.authenticated
        assert result.reason is DenialReason.BAD_CREDENTIALS
        assert (result.roles, result.projects) == (frozenset(), frozenset())
    assert ldap.authenticate("nobody", "some-password-1").reason is DenialReason.BAD_CREDENTIALS


@pytest.mark.parametrize("membership", list(MembershipLookup), ids=lambda m: m.value)
def test_roles_and_projects_come_only_from_groups_under_groups_base(directory, membership):
    # The attack is real: dave's memberOf does list an "onsite-role-administrator" group (elsewhere).
    ldif = slapd_helper.ldapsearch(directory.server, slapd_helper.PEOPLE_DN, "(uid=dave)", "memberOf")
    assert "memberOf: cn=onsite-role-administrator,ou=elsewhere,dc=onsite,dc=test" in ldif
    ldap = LdapDirectory(directory.settings(membership=membership))
    for uid in PEOPLE:
        assert ldap.roles_of(uid) == EXPECTED_ROLES[uid]
        assert ldap.projects_of(uid) == EXPECTED_PROJECTS[uid]
    with pytest.raises(UserError, match="no person 'nobody'"):
        ldap.roles_of("nobody")


@pytest.mark.parametrize("bind", BIND_MODES, ids=str)
@pytest.mark.parametrize("name", INJECTIONS, ids=lambda n: repr(n)[:40])
def test_injected_user_names_match_nobody(directory, bind, name):
    ldap = LdapDirectory(directory.settings(**BIND_MODES[bind]))
    for attempt in [password("alice"), password("bob"), "x"]:
        result = ldap.authenticate(name, attempt)
        assert not result.authenticated
        assert result.dn is None and result.roles == frozenset()
    with pytest.raises(UserError):
        LdapDirectory(directory.settings()).roles_of(name)


def test_escaping_holds_even_below_the_name_rules(directory):
    """The search itself escapes: with the raw filter the attack would match everyone."""
    ldap = LdapDirectory(directory.settings(bind_dn_template=None))
    admin = directory.server.admin()
    admin.search(slapd_helper.PEOPLE_DN, "(&(objectClass=posixAccount)(uid=*))", attributes=[])
    assert len(admin.entries) == len(PEOPLE)  # what `*` would do unescaped
    admin.unbind()
    with ldap._service() as conn:
        for name in ["*", "*)(uid=*", "alice)(|(uid=*", "alice\x00"]:
            assert ldap._search_person(conn, name) is None
        assert ldap._search_person(conn, "alice") == directory.dns["alice"]
    # In a DN template the value is escaped too: no second RDN sneaks in.
    template = LdapDirectory(directory.settings())
    assert template._person_dn(None, "a,b=c+d") == f"uid=a\\,b\\=c\\+d,{slapd_helper.PEOPLE_DN}"


@pytest.mark.parametrize("name", ["ａｌｉｃｅ", "ａlice", "alice\u0301", "ﬁ", "\u212aelvin", "alice\u200b", "alice\u00a0"],
                         ids=["full-width", "one-full-width", "combining-accent", "ligature", "kelvin-sign",
                              "zero-width-space", "nbsp"])
def test_names_that_nfkc_changes_or_invisible_characters_are_refused(directory, name):
    ldap = LdapDirectory(directory.settings())
    with pytest.raises(UserError):
        login_name(name)
    result = ldap.authenticate(name, password("alice"))
    assert not result.authenticated and result.dn is None


@pytest.mark.parametrize("name", ["аlice", "alıce", "ALİCE"], ids=["cyrillic-a", "dotless-i", "dotted-capital-i"])
def test_look_alikes_outside_ascii_are_refused(directory, name):
    result = LdapDirectory(directory.settings()).authenticate(name, password("alice"))
    assert not result.authenticated and result.dn is None


def test_upper_case_ascii_is_the_same_account(directory):
    result = LdapDirectory(directory.settings()).authenticate("Alice", password("alice"))
    assert result.authenticated and result.username == "alice"


@pytest.mark.parametrize("tls", [TlsMode.START_TLS, TlsMode.LDAPS], ids=lambda t: t.value)
def test_a_certificate_from_another_ca_fails_closed(directory, wrong_ca, tls):
    ldap = LdapDirectory(directory.settings(**transport(directory, tls), ca_file=wrong_ca))
    with pytest.raises(DirectoryUnavailable) as raised:
        ldap.authenticate("alice", password("alice"))
    assert "ca_file" in raised.value.setting


@pytest.mark.parametrize("tls", [TlsMode.START_TLS, TlsMode.LDAPS], ids=lambda t: t.value)
def test_a_certificate_for_another_host_name_fails_closed(misnamed_slapd, tls):
    ldap = LdapDirectory(misnamed_slapd.settings(**transport(misnamed_slapd, tls)))
    with pytest.raises(DirectoryUnavailable) as raised:
        ldap.authenticate("alice", password("alice"))
    assert "ca_file" in raised.value.setting
    # The same server over plain LDAP answers: it is the name check that refused.
    assert LdapDirectory(misnamed_slapd.settings(tls=TlsMode.NONE)).authenticate("alice", password("alice")).authenticated


def test_a_stopped_directory_is_unavailable_at_once(doomed_slapd):
    ldap = LdapDirectory(doomed_slapd.settings())
    assert ldap.authenticate("alice", password("alice")).authenticated
    doomed_slapd.server.stop()
    start = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as raised:
        ldap.authenticate("alice", password("alice"))
    assert time.monotonic() - start < 2  # the connect_timeout; refused connections fail at once
    assert "server_uris" in raised.value.setting
    with pytest.raises(DirectoryUnavailable):
        ldap.ensure_group(project_group("p-after-stop"))


def test_a_hung_directory_is_unavailable_within_the_receive_timeout(doomed_slapd):
    ldap = LdapDirectory(doomed_slapd.settings(receive_timeout=1))
    doomed_slapd.server.pause()  # the port still accepts; nothing answers
    try:
        start = time.monotonic()
        with pytest.raises(DirectoryUnavailable) as raised:
            ldap.authenticate("alice", password("alice"))
        elapsed = time.monotonic() - start
    finally:
        doomed_slapd.server.resume()
    assert 0.9 < elapsed < 3.5
    assert "receive_timeout" in raised.value.setting


def test_the_next_server_answers_when_the_first_is_down(directory):
    dead = f"ldap://127.0.0.1:{slapd_helper.free_port()}"
    ldap = LdapDirectory(directory.settings(server_uris=(dead, directory.server.uri)))
    assert ldap.authenticate("bob", password("bob")).roles == frozenset(EXPECTED_ROLES["bob"])


def test_a_refused_service_account_is_a_configuration_problem(directory):
    ldap = LdapDirectory(directory.settings(bind_dn_template=None, service_password="not-the-secret"))
    with pytest.raises(DirectoryUnavailable) as raised:
        ldap.authenticate("alice", password("alice"))
    assert "service_dn" in raised.value.setting


def members_in_ldif(ldif: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in ldif.splitlines() if line.startswith("member:")]


def test_group_maintenance_is_visible_to_ldapsearch(directory):
    ldap = LdapDirectory(directory.settings())
    project = f"p-{uuid.uuid4().hex[:8]}"
    cn = project_group(project)
    assert ldap.ensure_group(cn) is True
    assert ldap.ensure_group(cn) is False
    group_filter = f"(cn={cn})"
    assert members_in_ldif(slapd_helper.ldapsearch(directory.server, slapd_helper.GROUPS_DN, group_filter)) == [""]

    assert ldap.add_member(cn, "carol") is True
    assert ldap.add_member(cn, "carol") is False
    assert ldap.add_member(cn, "Alice") is True
    ldif = slapd_helper.ldapsearch(directory.server, slapd_helper.GROUPS_DN, group_filter)
    assert sorted(members_in_ldif(ldif)) == sorted([directory.dns["alice"], directory.dns["carol"]])
    carol = slapd_helper.ldapsearch(directory.server, slapd_helper.PEOPLE_DN, "(uid=carol)", "memberOf")
    assert f"memberOf: cn={cn},{slapd_helper.GROUPS_DN}" in carol
    assert ldap.projects_of("carol") == EXPECTED_PROJECTS["carol"] | {project}
    assert ldap.members(cn) == {"alice", "carol"}

    assert ldap.remove_member(cn, "carol") is True
    assert ldap.remove_member(cn, "carol") is False
    assert ldap.remove_member(cn, "alice") is True
    ldif = slapd_helper.ldapsearch(directory.server, slapd_helper.GROUPS_DN, group_filter)
    assert members_in_ldif(ldif) == [""]
    carol = slapd_helper.ldapsearch(directory.server, slapd_helper.PEOPLE_DN, "(uid=carol)", "memberOf")
    assert cn not in carol
    assert ldap.projects_of("carol") == EXPECTED_PROJECTS["carol"]


def test_role_groups_are_maintained_the_same_way(directory):
    ldap = LdapDirectory(directory.settings(bind_dn_template=None))  # people found by search
    cn = role_group(Role.REVIEWER)
    assert cn == "onsite-role-reviewer"
    assert ldap.add_member(cn, "dave") is True
    try:
        assert LdapDirectory(directory.settings()).authenticate("dave", password("dave")).roles == {Role.REVIEWER}
    finally:
        assert ldap.remove_member(cn, "dave") is True
    assert ldap.roles_of("dave") == set()
    assert ldap.roles_of("bob") == EXPECTED_ROLES["bob"]  # bob kept his place


def test_bad_maintenance_requests_are_refused_and_change_nothing(directory):
    ldap = LdapDirectory(directory.settings())
    cn = project_group("p2026-002")
    before = slapd_helper.ldapsearch(directory.server, slapd_helper.GROUPS_DN, f"(cn={cn})")
    with pytest.raises(UserError, match="no person 'nobody'"):
        ldap.add_member(cn, "nobody")
    with pytest.raises(UserError):
        ldap.add_member(cn, "*")
    with pytest.raises(UserError, match="ensure_group"):
        ldap.add_member(project_group("p-missing"), "alice")
    with pytest.raises(UserError, match="not an Onsite group"):
        ldap.ensure_group("wheel")
    with pytest.raises(UserError, match="project id"):
        project_group("P 1")
    assert slapd_helper.ldapsearch(directory.server, slapd_helper.GROUPS_DN, f"(cn={cn})") == before


def test_group_maintenance_needs_the_service_account(directory):
    ldap = LdapDirectory(directory.settings(service_dn=None, service_password=None))
    with pytest.raises(LdapSettingsInvalid, match="service_dn"):
        ldap.ensure_group(project_group("p-no-service"))


def test_a_person_cannot_maintain_groups_with_their_own_password(directory):
    ldap = LdapDirectory(directory.settings(service_dn=directory.dns["alice"], service_password=password("alice")))
    with pytest.raises(DirectoryUnavailable, match="refused"):
        ldap.ensure_group(project_group("p-by-alice"))
    out = slapd_helper.ldapsearch(directory.server, slapd_helper.GROUPS_DN, "(cn=onsite-proj-p-by-alice)")
    assert out.strip() == ""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bind_dn_template": "uid=x,ou=people"}, "{username}"),
        ({"server_uris": ()}, "server_uris is empty"),
        ({"server_uris": ("ldaps://127.0.0.1:636",)}, "does not fit tls=START_TLS"),
        ({"server_uris": ("http://127.0.0.1",)}, "not an ldap"),
        ({"bind_dn_template": None, "service_dn": None, "service_password": None}, "bind_dn_template"),
        ({"service_password": None}, "go together"),
        ({"ca_file": "/nonexistent/ca.pem"}, "does not exist"),
        ({"receive_timeout": 0.5}, "whole"),
    ],
)
def test_unworkable_settings_fail_at_once(directory, overrides, message):
    with pytest.raises(LdapSettingsInvalid, match=message.replace("{", r"\{").replace("}", r"\}")):
        directory.settings(**overrides)


def test_settings_from_the_environment(directory, tmp_path):
    assert LdapSettings.from_env({}) is None
    secret = tmp_path / "service-password"
    secret.write_text(slapd_helper.SERVICE_PASSWORD + "\n")
    env = {
        "ONSITE_LDAP_URI": directory.server.uri, "ONSITE_LDAP_PEOPLE_BASE": slapd_helper.PEOPLE_DN,
        "ONSITE_LDAP_GROUPS_BASE": slapd_helper.GROUPS_DN, "ONSITE_LDAP_SERVICE_DN": slapd_helper.SERVICE_DN,
        "ONSITE_LDAP_SERVICE_PASSWORD_FILE": str(secret), "ONSITE_LDAP_CA_FILE": str(directory.server.ca_file),
        "ONSITE_LDAP_MEMBERSHIP": "group_search", "ONSITE_LDAP_RECEIVE_TIMEOUT": "2",
    }
    settings = LdapSettings.from_env(env)
    assert settings.tls is TlsMode.START_TLS and settings.membership is MembershipLookup.GROUP_SEARCH
    assert settings.bind_dn_template is None and settings.service_password == slapd_helper.SERVICE_PASSWORD
    assert LdapDirectory(settings).authenticate("carol", password("carol")).projects == EXPECTED_PROJECTS["carol"]
    with pytest.raises(LdapSettingsInvalid, match="ONSITE_LDAP_GROUPS_BASE"):
        LdapSettings.from_env({k: v for k, v in env.items() if k != "ONSITE_LDAP_GROUPS_BASE"})
    with pytest.raises(LdapSettingsInvalid, match="ONSITE_LDAP_TLS"):
        LdapSettings.from_env({**env, "ONSITE_LDAP_TLS": "sometimes"})
    assert "secret" not in repr(settings)


def test_the_template_fixture_binds_the_seeded_people(directory):
    # Guard for the fixture itself: the DNs the seed made are the ones the template builds.
    for uid, dn in directory.dns.items():
        assert TEMPLATE.format(username=uid) == dn
        conn = ldap3.Connection(ldap3.Server(directory.server.uri), dn, password(uid))
        assert conn.bind(), uid
        conn.unbind()


def test_admin_hooks_create_groups_on_first_use(directory):
    ldap = LdapDirectory(directory.settings())
    project = f"p-{uuid.uuid4().hex[:8]}"
    assert ldap.add_to_project(project, "dave") is True
    assert ldap.add_to_project(project, "dave") is False
    assert ldap.projects_of("dave") == {project}
    assert ldap.remove_from_project(project, "dave") is True
    assert ldap.projects_of("dave") == set()
    assert ldap.grant_role("carol", Role.ADMINISTRATOR) is True
    try:
        assert ldap.roles_of("carol") == {Role.RESEARCHER, Role.ADMINISTRATOR}
    finally:
        assert ldap.revoke_role("carol", Role.ADMINISTRATOR) is True
    assert ldap.roles_of("carol") == EXPECTED_ROLES["carol"]
    ldif = slapd_helper.ldapsearch(directory.server, slapd_helper.GROUPS_DN, "(cn=onsite-role-administrator)")
    assert members_in_ldif(ldif) == [directory.dns["bob"]]
