"""access_control.ldap.LdapDirectory against a real slapd: the admin commands' group maintenance
over every transport and bind mode, attacks, outages, and the settings.

Passwords at log-in are the hub's business (ldapauthenticator): tests/integration/ldap/test_ldap_hub_login.py.
"""
from __future__ import annotations

import socket
import time
import uuid

import ldap3
import pytest
from conftest import PEOPLE, TEMPLATE, Directory

import slapd as slapd_helper
from access_control.enums import Role
from access_control.ldap import (
    DirectoryUnavailable,
    LdapDirectory,
    LdapSettings,
    LdapSettingsInvalid,
    TlsMode,
    login_name,
    project_group,
    role_group,
)
from onsite_base.errors import UserError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BIND_MODES = {
    "template": {},
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


def members_in_ldif(ldif: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in ldif.splitlines() if line.startswith("member:")]


def member_dns(directory: Directory, cn: str) -> list[str]:
    """The group's member DNs as the real ldapsearch client sees them ("" is groupOfNames' empty member)."""
    return sorted(members_in_ldif(slapd_helper.ldapsearch(directory.server, slapd_helper.GROUPS_DN, f"(cn={cn})")))


def fresh_project_group() -> str:
    return project_group(f"p-{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize("tls", list(TlsMode), ids=lambda t: t.value)
@pytest.mark.parametrize("bind", BIND_MODES, ids=str)
def test_groups_are_maintained_over_every_transport_and_bind_mode(directory, tls, bind):
    ldap = LdapDirectory(directory.settings(**transport(directory, tls), **BIND_MODES[bind]))
    cn = fresh_project_group()
    assert ldap.ensure_group(cn) is True
    assert ldap.add_member(cn, "alice") is True
    assert member_dns(directory, cn) == [directory.dns["alice"]]
    assert ldap.remove_member(cn, "alice") is True
    assert member_dns(directory, cn) == [""]


@pytest.mark.parametrize("bind", BIND_MODES, ids=str)
@pytest.mark.parametrize("name", INJECTIONS, ids=lambda n: repr(n)[:40])
def test_injected_user_names_match_nobody(directory, bind, name):
    ldap = LdapDirectory(directory.settings(**BIND_MODES[bind]))
    cn = project_group("p2026-002")
    before = member_dns(directory, cn)
    with pytest.raises(UserError):
        ldap.add_member(cn, name)
    with pytest.raises(UserError):
        ldap.remove_member(cn, name)
    assert member_dns(directory, cn) == before


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


@pytest.mark.parametrize("name", ["ａｌｉｃｅ", "ａlice", "alice\u0301", "ﬁ", "\u212aelvin", "alice\u200b", "alice\u00a0",
                                  "аlice", "alıce", "ALİCE"],
                         ids=["full-width", "one-full-width", "combining-accent", "ligature", "kelvin-sign",
                              "zero-width-space", "nbsp", "cyrillic-a", "dotless-i", "dotted-capital-i"])
def test_names_that_nfkc_changes_and_look_alikes_outside_ascii_are_refused(directory, name):
    cn = project_group("p2026-002")
    before = member_dns(directory, cn)
    with pytest.raises(UserError):
        login_name(name)
    with pytest.raises(UserError):
        LdapDirectory(directory.settings()).add_member(cn, name)
    assert member_dns(directory, cn) == before


@pytest.mark.parametrize("tls", [TlsMode.START_TLS, TlsMode.LDAPS], ids=lambda t: t.value)
def test_a_certificate_from_another_ca_fails_closed(directory, wrong_ca, tls):
    ldap = LdapDirectory(directory.settings(**transport(directory, tls), ca_file=wrong_ca))
    with pytest.raises(DirectoryUnavailable) as raised:
        ldap.ensure_group(fresh_project_group())
    assert "ca_file" in raised.value.setting


@pytest.mark.parametrize("tls", [TlsMode.START_TLS, TlsMode.LDAPS], ids=lambda t: t.value)
def test_a_certificate_for_another_host_name_fails_closed(misnamed_slapd, tls):
    ldap = LdapDirectory(misnamed_slapd.settings(**transport(misnamed_slapd, tls)))
    with pytest.raises(DirectoryUnavailable) as raised:
        ldap.ensure_group(fresh_project_group())
    assert "ca_file" in raised.value.setting
    # The same server over plain LDAP answers: it is the name check that refused.
    assert LdapDirectory(misnamed_slapd.settings(tls=TlsMode.NONE)).ensure_group(fresh_project_group()) is True


def test_a_stopped_directory_is_unavailable_at_once(doomed_slapd):
    ldap = LdapDirectory(doomed_slapd.settings())
    assert ldap.add_to_project("p-before-stop", "alice") is True
    doomed_slapd.server.stop()
    start = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as raised:
        ldap.remove_from_project("p-before-stop", "alice")
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
            ldap.add_to_project("p-while-hung", "alice")
        elapsed = time.monotonic() - start
    finally:
        doomed_slapd.server.resume()
    assert 0.9 < elapsed < 3.5
    assert "receive_timeout" in raised.value.setting


def test_a_directory_hung_mid_handshake_is_a_timeout_not_a_certificate_problem(directory):
    """A port that accepts and never answers the TLS handshake (ldaps://): a slow or stuck directory, so the
    refusal points at the time-outs, not at the CA (a whole run once met this through StartTLS, see above)."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        uri = f"ldaps://127.0.0.1:{silent.getsockname()[1]}"
        ldap = LdapDirectory(directory.settings(server_uris=(uri,), tls=TlsMode.LDAPS, receive_timeout=1))
        with pytest.raises(DirectoryUnavailable) as raised:
            ldap.ensure_group(fresh_project_group())
    assert "timed out" in str(raised.value).lower()
    assert "receive_timeout" in raised.value.setting and "ca_file" not in raised.value.setting


def test_the_next_server_answers_when_the_first_is_down(directory):
    dead = f"ldap://127.0.0.1:{slapd_helper.free_port()}"
    ldap = LdapDirectory(directory.settings(server_uris=(dead, directory.server.uri)))
    cn = fresh_project_group()
    assert ldap.ensure_group(cn) is True and ldap.add_member(cn, "bob") is True
    assert member_dns(directory, cn) == [directory.dns["bob"]]


def test_a_refused_service_account_is_a_configuration_problem(directory):
    ldap = LdapDirectory(directory.settings(bind_dn_template=None, service_password="not-the-secret"))
    with pytest.raises(DirectoryUnavailable) as raised:
        ldap.ensure_group(fresh_project_group())
    assert "service_dn" in raised.value.setting


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

    assert ldap.remove_member(cn, "carol") is True
    assert ldap.remove_member(cn, "carol") is False
    assert ldap.remove_member(cn, "alice") is True
    ldif = slapd_helper.ldapsearch(directory.server, slapd_helper.GROUPS_DN, group_filter)
    assert members_in_ldif(ldif) == [""]
    carol = slapd_helper.ldapsearch(directory.server, slapd_helper.PEOPLE_DN, "(uid=carol)", "memberOf")
    assert cn not in carol


def test_role_groups_are_maintained_the_same_way(directory):
    ldap = LdapDirectory(directory.settings(bind_dn_template=None))  # people found by search
    cn = role_group(Role.REVIEWER)
    assert cn == "onsite-role-reviewer"
    assert ldap.add_member(cn, "dave") is True
    try:
        assert member_dns(directory, cn) == sorted([directory.dns["bob"], directory.dns["dave"]])
    finally:
        assert ldap.remove_member(cn, "dave") is True
    assert member_dns(directory, cn) == [directory.dns["bob"]]  # bob kept his place


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
        ({"receive_timeout": 0.5}, "receive_timeout.*expected an int"),
    ],
)
def test_unworkable_settings_fail_at_once(directory, overrides, message):
    with pytest.raises(LdapSettingsInvalid, match=message.replace("{", r"\{").replace("}", r"\}")):
        directory.settings(**overrides)


def test_settings_from_the_environment(directory, tmp_path):
    assert LdapSettings.load({"ONSITE_HOME": str(tmp_path)}) is None
    secret = tmp_path / "service-password"
    secret.write_text(slapd_helper.SERVICE_PASSWORD + "\n")
    env = {
        "ONSITE_HOME": str(tmp_path), "ONSITE_LDAP_URI": directory.server.uri, "ONSITE_LDAP_PEOPLE_BASE": slapd_helper.PEOPLE_DN,
        "ONSITE_LDAP_GROUPS_BASE": slapd_helper.GROUPS_DN, "ONSITE_LDAP_SERVICE_DN": slapd_helper.SERVICE_DN,
        "ONSITE_LDAP_SERVICE_PASSWORD_FILE": str(secret), "ONSITE_LDAP_CA_FILE": str(directory.server.ca_file),
        "ONSITE_LDAP_RECEIVE_TIMEOUT": "2",
    }
    settings = LdapSettings.load(env)
    assert settings.tls is TlsMode.START_TLS and settings.receive_timeout == 2
    assert settings.bind_dn_template is None and settings.service_password == slapd_helper.SERVICE_PASSWORD
    cn = fresh_project_group()
    assert LdapDirectory(settings).ensure_group(cn) and LdapDirectory(settings).add_member(cn, "carol")
    assert member_dns(directory, cn) == [directory.dns["carol"]]
    with pytest.raises(LdapSettingsInvalid, match="ONSITE_LDAP_GROUPS_BASE"):
        LdapSettings.load({k: v for k, v in env.items() if k != "ONSITE_LDAP_GROUPS_BASE"})
    with pytest.raises(LdapSettingsInvalid, match="ONSITE_LDAP_TLS"):
        LdapSettings.load({**env, "ONSITE_LDAP_TLS": "sometimes"})
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
    assert member_dns(directory, project_group(project)) == [directory.dns["dave"]]
    assert ldap.remove_from_project(project, "dave") is True
    assert member_dns(directory, project_group(project)) == [""]
    assert ldap.grant_role("carol", Role.ADMINISTRATOR) is True
    try:
        assert member_dns(directory, "onsite-role-administrator") == sorted([directory.dns["bob"], directory.dns["carol"]])
    finally:
        assert ldap.revoke_role("carol", Role.ADMINISTRATOR) is True
    ldif = slapd_helper.ldapsearch(directory.server, slapd_helper.GROUPS_DN, "(cn=onsite-role-administrator)")
    assert members_in_ldif(ldif) == [directory.dns["bob"]]
