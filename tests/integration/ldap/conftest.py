"""A real OpenLDAP slapd for the LDAP directory tests (plain, StartTLS and LDAPS).

One seeded server for the session (about 0.3 s to start); tests that change
groups use names of their own. Tests that stop the directory get a server of
their own (`doomed_slapd`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

import slapd as slapd_helper
from onsite.migrations import migrate
from access_control.ldap import LdapSettings, TlsMode
from onsite_base.settings import Settings
from disclosure_review.sdc.rules import preset_names

if not slapd_helper.SLAPD.exists():
    pytest.skip(f"{slapd_helper.SLAPD} is missing: install the Debian packages slapd and ldap-utils "
                "(scripts/test.sh does)", allow_module_level=True)

PEOPLE = {  # uid: (password, uidNumber)
    "alice": ("alice-password-1", 10001),
    "bob": ("bob-password-22", 10002),
    "carol": ("carol-password-333", 10003),
    "dave": ("dave-password-4444", 10004),
}
TEMPLATE = f"uid={{username}},{slapd_helper.PEOPLE_DN}"


@dataclass(frozen=True)
class Directory:
    server: slapd_helper.Slapd
    dns: dict[str, str]

    def settings(self, **overrides) -> LdapSettings:
        """Bind by template over StartTLS with the right CA, unless overridden."""
        base = dict(
            server_uris=(self.server.uri,), people_base=slapd_helper.PEOPLE_DN, groups_base=slapd_helper.GROUPS_DN,
            bind_dn_template=TEMPLATE, service_dn=slapd_helper.SERVICE_DN,
            service_password=slapd_helper.SERVICE_PASSWORD, tls=TlsMode.START_TLS, ca_file=self.server.ca_file,
            connect_timeout=2, receive_timeout=2)
        return LdapSettings(**{**base, **overrides})

    def authenticator_config(self, **overrides) -> dict:
        """Traits of OnsiteLDAPAuthenticator / LDAPAuthenticator for this server (StartTLS, right CA)."""
        return {
            "server_address": "127.0.0.1", "server_port": self.server.port, "tls_strategy": "before_bind",
            "tls_kwargs": {"ca_certs_file": str(self.server.ca_file)}, "bind_dn_template": [TEMPLATE],
            **overrides,
        }


def seed(server: slapd_helper.Slapd) -> dict[str, str]:
    """People, and role and project groups."""
    dns = {uid: server.add_person(uid, password, number) for uid, (password, number) in PEOPLE.items()}
    server.add_group("onsite-role-researcher", [dns["alice"], dns["carol"]])
    server.add_group("onsite-role-reviewer", [dns["bob"]])
    server.add_group("onsite-role-administrator", [dns["bob"]])
    server.add_group("onsite-proj-p2026-001", [dns["alice"]])
    server.add_group("onsite-proj-p2026-002", [dns["alice"], dns["carol"]])
    return dns


@pytest.fixture(scope="session")
def directory(tmp_path_factory) -> Directory:
    server = slapd_helper.Slapd(tmp_path_factory.mktemp("slapd")).start()
    try:
        yield Directory(server, seed(server))
    finally:
        server.remove()


@pytest.fixture
def doomed_slapd(tmp_path) -> Directory:
    """A directory of its own, which the test may pause or stop."""
    server = slapd_helper.Slapd(tmp_path / "doomed").start()
    try:
        yield Directory(server, seed(server))
    finally:
        server.remove()


@pytest.fixture(scope="session")
def misnamed_slapd(tmp_path_factory) -> Directory:
    """A directory whose certificate (from the right CA) is for another host name than 127.0.0.1."""
    server = slapd_helper.Slapd(tmp_path_factory.mktemp("misnamed"), certificate_names=("ldap.example.test",)).start()
    try:
        yield Directory(server, seed(server))
    finally:
        server.remove()


@pytest.fixture
def wrong_ca(tmp_path) -> Path:
    """A CA that did not sign the directory's certificate."""
    path, _, _ = slapd_helper.write_ca(tmp_path / "other-ca", "Some other CA")
    return path


@pytest.fixture(scope="session")
def hub_settings(tmp_path_factory) -> Settings:
    """A policy store in which alice may enter from 127.0.0.1 (researcher, active project)."""
    from datetime import date, timedelta

    from access_control import policy
    from onsite_base.db import make_engine, session_factory, transaction
    from access_control.enums import Role

    home = tmp_path_factory.mktemp("onsite-home")
    settings = Settings(home=home, db_url=f"sqlite:///{home / 'onsite.sqlite'}")
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    today = date.today()
    with transaction(session_factory(engine)) as session:
        policy.add_person(session, username="alice", display_name="Alice", actor="test", roles=[Role.RESEARCHER])
        policy.add_project(session, presets=preset_names(), project_id="p2026-001", title="Labour survey", start_date=today - timedelta(days=30),
                           end_date=today + timedelta(days=30), actor="test")
        policy.add_member(session, "p2026-001", "alice", actor="test")
        policy.add_facility(session, name="Tokyo", actor="test")
        policy.add_terminal(session, facility="Tokyo", address="127.0.0.1", actor="test")
    engine.dispose()
    return settings

