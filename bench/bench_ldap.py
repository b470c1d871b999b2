"""LDAP login (bind + groups) against a real slapd: ours vs plain jupyterhub-ldapauthenticator.

A throwaway slapd (tests/integration/ldap/slapd.py, loaded by path) holds
PEOPLE people, the three onsite-role-* groups and PROJECTS onsite-proj-*
groups; every person is in one role group and PROJECTS_EACH project groups.
Each timed call logs LOGINS people in, one after another, over StartTLS with
certificate verification, so each login opens its own connection on both sides.

- Ours: `LdapDirectory.authenticate` binds and reads the person's roles and
  projects from `memberOf` (one search).
- Peer: `LDAPAuthenticator.authenticate` (2.0.2) binds and finds the groups by
  one search per group listed in `allowed_groups`: the 3 role groups and every
  project group, since it has no other way to learn a person's groups.
- `hub_login`: the hub seam, `OnsiteLDAPAuthenticator.check_password` (the
  peer's own bind in a thread of its own with a time limit) vs awaiting the
  peer's `authenticate` directly on the event loop; groups are not asked.

Both sides' groups are compared before timing.
"""
from __future__ import annotations

import asyncio
import atexit
import importlib.util
import logging
import ssl
import sys
from pathlib import Path
from types import ModuleType

from bench import Case, Context

log = logging.getLogger(__name__)

SLAPD_HELPER = Path(__file__).resolve().parents[1] / "tests" / "integration" / "ldap" / "slapd.py"
PEOPLE = 300
PROJECTS = 20
PROJECTS_EACH = 2
LOGINS = 20
ROLE_NAMES = ("researcher", "reviewer", "administrator")


def slapd_helper() -> ModuleType:
    """The test suite's slapd helper, loaded by path (`tests/` is not a package)."""
    name = "onsite_tests_slapd"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SLAPD_HELPER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def person(i: int) -> tuple[str, str]:
    return f"person{i:04d}", f"password-{i:04d}-bench"


def seed(helper: ModuleType, server) -> tuple[dict[str, set[str]], list[str]]:
    """People and groups; returns each person's expected group cns and all group DNs."""
    dns = [server.add_person(*person(i), 20000 + i) for i in range(PEOPLE)]
    expected: dict[str, set[str]] = {person(i)[0]: set() for i in range(PEOPLE)}
    groups: dict[str, list[str]] = {f"onsite-role-{r}": [] for r in ROLE_NAMES}
    groups.update({f"onsite-proj-p{j:03d}": [] for j in range(PROJECTS)})
    for i, dn in enumerate(dns):
        cns = [f"onsite-role-{ROLE_NAMES[i % len(ROLE_NAMES)]}"]
        cns += [f"onsite-proj-p{(i + k * 7) % PROJECTS:03d}" for k in range(PROJECTS_EACH)]
        for cn in cns:
            groups[cn].append(dn)
            expected[person(i)[0]].add(cn)
    return expected, [server.add_group(cn, members) for cn, members in groups.items()]


def cases(ctx: Context) -> list[Case]:
    helper = slapd_helper()
    if not helper.SLAPD.exists():
        log.warning("bench ldap skipped: %s is missing (apt-get install slapd ldap-utils)", helper.SLAPD)
        return []
    from ldapauthenticator import LDAPAuthenticator

    from access_control.ldap import LdapDirectory, LdapSettings, TlsMode
    from hub_config.ldap_authenticator import OnsiteLDAPAuthenticator
    from onsite_base.settings import Settings

    server = helper.Slapd(ctx.tmp_dir / "slapd").start()
    atexit.register(server.remove)
    expected, group_dns = seed(helper, server)
    template = f"uid={{username}},{helper.PEOPLE_DN}"
    ours = LdapDirectory(LdapSettings(
        server_uris=(server.uri,), people_base=helper.PEOPLE_DN, groups_base=helper.GROUPS_DN,
        bind_dn_template=template, tls=TlsMode.START_TLS, ca_file=server.ca_file))
    peer_config = {
        "server_address": "127.0.0.1", "server_port": server.port, "tls_strategy": "before_bind",
        "tls_kwargs": {"ca_certs_file": str(server.ca_file), "validate": ssl.CERT_REQUIRED},
        "bind_dn_template": [template],
    }
    logging.getLogger("access_control.ldap").setLevel(logging.ERROR)
    peer = LDAPAuthenticator(allowed_groups=group_dns, **peer_config)
    peer_plain = LDAPAuthenticator(**peer_config)
    hub = OnsiteLDAPAuthenticator(settings=Settings(home=ctx.tmp_dir, db_url=f"sqlite:///{ctx.tmp_dir / 'bench.sqlite'}"),
                                  **peer_config)
    loop = asyncio.new_event_loop()
    atexit.register(loop.close)
    logins = [person(i * (PEOPLE // LOGINS)) for i in range(LOGINS)]

    def peer_login(auth: LDAPAuthenticator, name: str, password: str) -> dict | None:
        return loop.run_until_complete(auth.authenticate(None, {"username": name, "password": password}))

    # Same answer from both before timing: the group cns of the first people.
    for name, password in logins[:5]:
        result = ours.authenticate(name, password)
        ours_cns = {f"onsite-role-{r.value.lower()}" for r in result.roles} | {f"onsite-proj-{p}" for p in result.projects}
        peer_cns = {dn.split(",", 1)[0].removeprefix("cn=") for dn in peer_login(peer, name, password)["auth_state"]["ldap_groups"]}
        if not (ours_cns == peer_cns == expected[name]):
            raise AssertionError(f"groups of {name} differ: ours {ours_cns}, peer {peer_cns}, seeded {expected[name]}")
    if loop.run_until_complete(hub.check_password(None, logins[0][0], logins[0][1])) is not None:
        raise AssertionError("OnsiteLDAPAuthenticator refused a right password")

    note = f"{LOGINS} logins, StartTLS, {PEOPLE} people, {len(group_dns)} groups"
    return [
        Case("ldap_login_groups", lambda: [ours.authenticate(n, p) for n, p in logins],
             f"ldapauthenticator allowed_groups ({len(group_dns)})",
             lambda: [peer_login(peer, n, p) for n, p in logins], repeat=5, note=note),
        Case("ldap_hub_login", lambda: [loop.run_until_complete(hub.check_password(None, n, p)) for n, p in logins],
             "ldapauthenticator (bind only)", lambda: [peer_login(peer_plain, n, p) for n, p in logins],
             repeat=5, note=f"{LOGINS} logins, StartTLS, bind only; ours in a bounded thread"),
    ]
