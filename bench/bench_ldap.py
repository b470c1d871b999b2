"""The hub's LDAP log-in against a real slapd: ours vs plain jupyterhub-ldapauthenticator.

A throwaway slapd (tests/integration/ldap/slapd.py, loaded by path) holds
PEOPLE people. Each timed call logs LOGINS people in, one after another, over
StartTLS with certificate verification, so each login opens its own connection.

`ldap_hub_login`: the hub seam, `OnsiteLDAPAuthenticator.check_password` (the
peer's own bind in a thread of its own with a time limit) vs awaiting the
peer's `authenticate` directly on the event loop. The hub takes roles and
projects from the policy store, so no groups are asked at log-in.
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

from ldapauthenticator import LDAPAuthenticator

from bench import Case, Context
from hub_config.ldap_authenticator import OnsiteLDAPAuthenticator
from onsite_base.settings import Settings

log = logging.getLogger(__name__)

SLAPD_HELPER = Path(__file__).resolve().parents[1] / "tests" / "integration" / "ldap" / "slapd.py"
PEOPLE = 300
LOGINS = 20


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


def seed(server) -> None:
    for i in range(PEOPLE):
        server.add_person(*person(i), 20000 + i)


def cases(ctx: Context) -> list[Case]:
    helper = slapd_helper()
    if not helper.SLAPD.exists():
        log.warning("bench ldap skipped: %s is missing (apt-get install slapd ldap-utils)", helper.SLAPD)
        return []
    server = helper.Slapd(ctx.tmp_dir / "slapd").start()
    atexit.register(server.remove)
    seed(server)
    peer_config = {
        "server_address": "127.0.0.1", "server_port": server.port, "tls_strategy": "before_bind",
        "tls_kwargs": {"ca_certs_file": str(server.ca_file), "validate": ssl.CERT_REQUIRED},
        "bind_dn_template": [f"uid={{username}},{helper.PEOPLE_DN}"],
    }
    peer = LDAPAuthenticator(**peer_config)
    hub = OnsiteLDAPAuthenticator(settings=Settings(home=ctx.tmp_dir, db_url=f"sqlite:///{ctx.tmp_dir / 'bench.sqlite'}"),
                                  **peer_config)
    loop = asyncio.new_event_loop()
    atexit.register(loop.close)
    logins = [person(i * (PEOPLE // LOGINS)) for i in range(LOGINS)]

    def peer_login(name: str, password: str) -> dict | None:
        return loop.run_until_complete(peer.authenticate(None, {"username": name, "password": password}))

    def hub_login(name: str, password: str) -> object:
        return loop.run_until_complete(hub.check_password(None, name, password))

    # Same answer from both before timing.
    for name, password in logins[:5]:
        if hub_login(name, password) is not None or peer_login(name, password) is None:
            raise AssertionError(f"a right password of {name} was refused")

    return [
        Case("ldap_hub_login", lambda: [hub_login(n, p) for n, p in logins],
             "ldapauthenticator (bind only)", lambda: [peer_login(n, p) for n, p in logins],
             repeat=5, note=f"{LOGINS} logins, StartTLS, {PEOPLE} people; ours in a bounded thread"),
    ]
