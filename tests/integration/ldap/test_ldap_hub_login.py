"""OnsiteLDAPAuthenticator against a real slapd: the hub's login seam, called as JupyterHub calls it.

`authenticate(handler, data)` gets a real tornado RequestHandler over a real
HTTPServerRequest from a terminal at 127.0.0.1 (registered in the policy
store, where alice is a researcher with an active project).
"""
from __future__ import annotations

import asyncio
import json
import ssl
import time
from types import SimpleNamespace

import pytest
from conftest import PEOPLE, TEMPLATE
from sqlalchemy import select
from tornado import web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

import slapd as slapd_helper
from onsite_base.db import make_engine, session_factory
from access_control.entry import DenialReason
from access_control.enums import AuditEventType, Role
from access_control.ldap import DirectoryUnavailable, TlsMode
from access_control.models import AuditEvent
from hub_config.authenticator import EntryDenied
from hub_config.roles import HUB_ROLES
from hub_config.ldap_authenticator import DirectoryUnavailableDenied, OnsiteLDAPAuthenticator, ldap_traits
from ldapauthenticator import LDAPAuthenticator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def login_handler(peer: str = "127.0.0.1") -> web.RequestHandler:
    """A real tornado handler for POST /hub/login from `peer`, as the hub's HTTP server builds it."""
    connection = SimpleNamespace(context=SimpleNamespace(address=(peer, 50000), remote_ip=peer),
                                 set_close_callback=lambda callback: None)
    request = HTTPServerRequest(start_line=RequestStartLine("POST", "/hub/login", "HTTP/1.1"),
                                headers=HTTPHeaders({"Host": "127.0.0.1:8000"}), connection=connection)
    return web.RequestHandler(web.Application(), request)


def authenticator(directory, hub_settings, **overrides) -> OnsiteLDAPAuthenticator:
    return OnsiteLDAPAuthenticator(settings=hub_settings, **directory.authenticator_config(**overrides))


def login(auth, username: str, password: str):
    return asyncio.run(auth.authenticate(login_handler(), {"username": username, "password": password}))


def login_failures(settings, actor: str) -> list[dict]:
    engine = make_engine(settings.db_url)
    with session_factory(engine)() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditEventType.LOGIN_FAIL,
                                                        AuditEvent.actor == actor).order_by(AuditEvent.seq)).all()
        events = [{"outcome": r.outcome.value, "details": json.loads(r.details)} for r in rows]
    engine.dispose()
    return events


@pytest.mark.parametrize("mode", ["template", "lookup_dn"])
def test_right_password_enters_with_the_policy_roles(directory, hub_settings, mode):
    extra = {} if mode == "template" else {
        "bind_dn_template": [], "lookup_dn": True, "user_search_base": slapd_helper.PEOPLE_DN, "user_attribute": "uid",
        "lookup_dn_search_user": slapd_helper.SERVICE_DN, "lookup_dn_search_password": slapd_helper.SERVICE_PASSWORD,
        "lookup_dn_user_dn_attribute": "uid"}
    model = login(authenticator(directory, hub_settings, **extra), "alice", PEOPLE["alice"][0])
    assert model["name"] == "alice"
    assert [r["name"] for r in model["roles"]] == [HUB_ROLES[Role.RESEARCHER]["name"]]


def test_the_whole_jupyterhub_pipeline_accepts_the_person(directory, hub_settings):
    auth = authenticator(directory, hub_settings)
    user = asyncio.run(auth.get_authenticated_user(login_handler(), {"username": "Alice", "password": PEOPLE["alice"][0]}))
    assert user is not None and user["name"] == "alice"


def test_wrong_and_blank_passwords_are_refused_and_logged(directory, hub_settings):
    auth = authenticator(directory, hub_settings)
    before = len(login_failures(hub_settings, "alice"))
    for attempt in ["wrong-password-1", "", "  ", PEOPLE["bob"][0]]:
        assert login(auth, "alice", attempt) is None
    events = login_failures(hub_settings, "alice")[before:]
    assert [e["details"]["reason"] for e in events] == ["BAD_CREDENTIALS"] * 4
    assert all(e["details"]["directory"] == "ldap" for e in events)


@pytest.mark.parametrize("name", ["*)(uid=*", "alice)(|(uid=*", "*", "alice\x00", "ａｌｉｃｅ", "аlice"], ids=repr)
def test_injected_and_look_alike_names_are_refused(directory, hub_settings, name):
    auth = authenticator(directory, hub_settings)
    assert login(auth, name, PEOPLE["alice"][0]) is None


def test_ldap_password_right_but_unknown_to_the_policy_store_is_refused_with_reasons(directory, hub_settings):
    # carol is in LDAP but not registered in the policy store: the entry decision refuses.
    with pytest.raises(EntryDenied) as raised:
        login(authenticator(directory, hub_settings), "carol", PEOPLE["carol"][0])
    assert raised.value.reasons == (DenialReason.ACCOUNT_UNKNOWN,)


def test_allowed_groups_still_limit_who_may_log_in(directory, hub_settings):
    researchers = f"cn=onsite-role-researcher,{slapd_helper.GROUPS_DN}"
    auth = authenticator(directory, hub_settings, allowed_groups=[researchers])
    with pytest.raises(EntryDenied) as raised:
        login(auth, "bob", PEOPLE["bob"][0])  # right password, not a researcher
    assert raised.value.reasons == (DenialReason.ACCOUNT_UNKNOWN,)
    assert login(auth, "alice", PEOPLE["alice"][0])["name"] == "alice"


def test_start_tls_with_another_ca_fails_closed(directory, hub_settings, wrong_ca):
    auth = authenticator(directory, hub_settings, tls_kwargs={"ca_certs_file": str(wrong_ca)})
    with pytest.raises(DirectoryUnavailableDenied) as raised:
        login(auth, "alice", PEOPLE["alice"][0])
    assert raised.value.status_code == 503
    # Why the default matters: plain LDAPAuthenticator does not verify at all and lets this through.
    peer = LDAPAuthenticator(**directory.authenticator_config(tls_kwargs={"ca_certs_file": str(wrong_ca)}))
    assert asyncio.run(peer.authenticate(None, {"username": "alice", "password": PEOPLE["alice"][0]}))["name"] == "alice"


def test_a_certificate_for_another_host_name_fails_closed(misnamed_slapd, hub_settings):
    with pytest.raises(DirectoryUnavailableDenied):
        login(authenticator(misnamed_slapd, hub_settings), "alice", PEOPLE["alice"][0])


def test_ldaps_with_the_right_ca(directory, hub_settings):
    auth = authenticator(directory, hub_settings, tls_strategy="on_connect", server_port=directory.server.ldaps_port)
    assert login(auth, "alice", PEOPLE["alice"][0])["name"] == "alice"


def assert_unavailable_page(raised: pytest.ExceptionInfo) -> None:
    message = raised.value.jupyterhub_message
    assert DirectoryUnavailable.user_message("ja") in message and DirectoryUnavailable.user_message("en") in message
    assert raised.value.status_code == 503


def test_a_stopped_directory_is_a_refusal_not_a_crash(doomed_slapd, hub_settings):
    auth = authenticator(doomed_slapd, hub_settings)
    assert login(auth, "alice", PEOPLE["alice"][0])["name"] == "alice"
    doomed_slapd.server.stop()
    start = time.monotonic()
    with pytest.raises(DirectoryUnavailableDenied) as raised:
        login(auth, "alice", PEOPLE["alice"][0])
    assert time.monotonic() - start < 2
    assert_unavailable_page(raised)
    assert login_failures(hub_settings, "alice")[-1] == {
        "outcome": "FAILED", "details": {"reason": "DIRECTORY_UNAVAILABLE", "directory": "ldap",
                                         "error": "LDAPSocketOpenError", "client_address": "127.0.0.1"}}


def test_a_hung_directory_is_refused_within_the_timeout_and_the_hub_keeps_running(doomed_slapd, hub_settings):
    auth = authenticator(doomed_slapd, hub_settings, directory_timeout=1.5, directory_threads=1)
    doomed_slapd.server.pause()

    async def login_while_counting_ticks() -> tuple[BaseException | None, int, float]:
        ticks = 0
        stop = asyncio.Event()

        async def tick() -> None:
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.05)
                ticks += 1

        ticker = asyncio.create_task(tick())
        start = time.monotonic()
        try:
            await auth.authenticate(login_handler(), {"username": "alice", "password": PEOPLE["alice"][0]})
            error = None
        except BaseException as raised:  # noqa: BLE001 - the test inspects it
            error = raised
        elapsed = time.monotonic() - start
        stop.set()
        await ticker
        return error, ticks, elapsed

    try:
        error, ticks, elapsed = asyncio.run(login_while_counting_ticks())
        # The one directory thread is still stuck: the next login is refused at once, not queued.
        start = time.monotonic()
        with pytest.raises(DirectoryUnavailableDenied):
            login(auth, "alice", PEOPLE["alice"][0])
        second = time.monotonic() - start
    finally:
        doomed_slapd.server.resume()
    assert isinstance(error, DirectoryUnavailableDenied)
    assert 1.4 < elapsed < 3
    assert ticks >= 15  # the event loop kept serving while the login waited (1.5 s / 0.05 s = 30)
    assert second < 0.5
    # Once the directory answers again, the stuck thread finishes and logins work.
    deadline = time.monotonic() + 5
    while not auth.directory_slots.acquire(blocking=False):
        assert time.monotonic() < deadline, "the directory thread never came back"
        time.sleep(0.05)
    auth.directory_slots.release()
    assert login(auth, "alice", PEOPLE["alice"][0])["name"] == "alice"


def test_settings_that_cannot_work_fail_at_start(directory, hub_settings):
    from traitlets import TraitError

    with pytest.raises(TraitError, match="directory_timeout"):
        authenticator(directory, hub_settings, directory_timeout=0)
    auth = authenticator(directory, hub_settings, tls_kwargs={"ca_certs_file": "x"})
    assert auth.tls_kwargs["validate"] == ssl.CERT_REQUIRED  # added to what was configured
    assert TEMPLATE in auth.bind_dn_template


@pytest.mark.parametrize("tls", [TlsMode.START_TLS, TlsMode.LDAPS], ids=lambda t: t.value)
@pytest.mark.parametrize("bind", ["template", "search"])
def test_one_configuration_serves_the_hub_and_the_admin_commands(directory, hub_settings, tls, bind):
    uri = directory.server.ldaps_uri if tls is TlsMode.LDAPS else directory.server.uri
    overrides = {"server_uris": (uri,), "tls": tls, **({"bind_dn_template": None} if bind == "search" else {})}
    auth = OnsiteLDAPAuthenticator(settings=hub_settings, **ldap_traits(directory.settings(**overrides)))
    assert auth.lookup_dn is (bind == "search")
    assert login(auth, "alice", PEOPLE["alice"][0])["name"] == "alice"
    assert login(auth, "alice", "wrong-password-1") is None
    assert login(auth, "*", PEOPLE["alice"][0]) is None
