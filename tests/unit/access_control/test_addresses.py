"""The address policy: who may work from where (pure), its settings, the services' check through a real
tornado server over the store, and the client an audit event names across tasks and threads."""
from __future__ import annotations

import asyncio
import ipaddress
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone

import pytest
import requests
from sqlalchemy import select
from tornado import web
from tornado.ioloop import IOLoop

from access_control import audit, policy
from access_control.addresses import AddressPolicy, ClientCheck, RequestSeen, decide_access, judge_request
from access_control.entry import DenialReason, EntryFacts, ProjectFacts, TerminalFacts
from access_control.enums import AuditEventType, Role
from access_control.models import AuditEvent, ProjectStatus
from onsite_base.config import SettingInvalid
from onsite_base.db import make_engine, session_factory, transaction
from onsite_base.web.service import HubServiceHandler
from threaded_server import serving

NOON = datetime(2026, 6, 1, 3, 0, tzinfo=timezone.utc)  # 12:00 in Tokyo
TERMINAL = TerminalFacts(ipaddress.ip_network("192.0.2.0/28"), "seat", "Tokyo", "Asia/Tokyo")
PROJECT = ProjectFacts("p1", ProjectStatus.ACTIVE, date(2026, 4, 1), date(2027, 3, 31))
POLICY = AddressPolicy(staff_networks=["198.51.100.0/24"])


def person(address: str, *roles: Role, **overrides) -> EntryFacts:
    return EntryFacts(**({"username": "alice", "client_address": address, "known": True, "roles": frozenset(roles),
                          "projects": (PROJECT,), "terminals": (TERMINAL,)} | overrides))


@pytest.mark.parametrize("roles, address, allowed", [
    ((Role.RESEARCHER,), "192.0.2.5", True),          # a terminal
    ((Role.RESEARCHER,), "198.51.100.7", False),      # a staff network is not a terminal
    ((Role.REVIEWER,), "198.51.100.7", True),
    ((Role.ADMINISTRATOR,), "192.0.2.5", True),        # staff at terminals (default)
    ((Role.REVIEWER,), "203.0.113.9", False),
    ((Role.REVIEWER,), "127.0.0.2", False),            # loopback means 127.0.0.1 and ::1 only
    ((Role.RESEARCHER, Role.REVIEWER), "198.51.100.7", True),  # any role may allow it
    ((Role.RESEARCHER, Role.REVIEWER), "203.0.113.9", False),
])
def test_each_role_from_its_places(roles, address, allowed):
    assert decide_access(person(address, *roles), NOON, POLICY).allowed is allowed


def test_refusals_name_every_roles_reason():
    both = decide_access(person("203.0.113.9", Role.RESEARCHER, Role.ADMINISTRATOR), NOON, POLICY)
    assert both.reasons == (DenialReason.TERMINAL_NOT_REGISTERED, DenialReason.NOT_STAFF_ADDRESS)
    staff = decide_access(person("203.0.113.9", Role.REVIEWER), NOON, POLICY)
    assert staff.reasons == (DenialReason.NOT_STAFF_ADDRESS,)
    disabled = decide_access(person("198.51.100.7", Role.REVIEWER, disabled=True), NOON, POLICY)
    assert disabled.reasons == (DenialReason.ACCOUNT_DISABLED,)
    unknown = decide_access(person("192.0.2.5", known=False, roles=frozenset()), NOON, POLICY)
    assert unknown.reasons == (DenialReason.ACCOUNT_UNKNOWN,)


def test_staff_only_from_their_networks_when_terminals_are_not_theirs():
    networks_only = AddressPolicy(staff_networks=["198.51.100.0/24"], staff_at_terminals=False)
    assert not decide_access(person("192.0.2.5", Role.REVIEWER), NOON, networks_only).allowed
    assert decide_access(person("192.0.2.5", Role.RESEARCHER, Role.REVIEWER), NOON, networks_only).allowed


def test_known_addresses_are_terminals_and_staff_networks():
    assert POLICY.is_known_address("192.0.2.5", (TERMINAL,)) and POLICY.is_known_address("198.51.100.1", (TERMINAL,))
    assert not POLICY.is_known_address("203.0.113.9", (TERMINAL,)) and not POLICY.is_known_address("junk", (TERMINAL,))


@pytest.mark.parametrize("values, named", [
    ({"staff_networks": ["10.0.0.1/8"]}, "AddressPolicy.staff_networks"),   # host bits set: a typo
    ({"staff_networks": ["office"]}, "AddressPolicy.staff_networks"),
    ({"staff_networks": ["fe80::1%eth0"]}, "AddressPolicy.staff_networks"),  # a zone id: matches no client
    ({"staff_networks": ["0.0.0.0/0"]}, "AddressPolicy.staff_networks"),     # every address: no rule at all
    ({"trusted_proxies": ["proxy.example.jp"]}, "AddressPolicy.trusted_proxies"),
])
def test_wrong_settings_are_refused_naming_them(values, named):
    with pytest.raises(SettingInvalid, match=named):
        AddressPolicy(**values)


def test_staff_networks_from_the_environment(tmp_path):
    loaded = AddressPolicy.load({"ONSITE_HOME": str(tmp_path), "ONSITE_STAFF_NETWORKS": "10.1.0.0/16 2001:db8::/32",
                                 "ONSITE_STAFF_AT_TERMINALS": "0"})
    assert loaded.staff_networks == ["10.1.0.0/16", "2001:db8::/32"] and loaded.staff_at_terminals is False


# --- the services' check through a real tornado server --------------------------------------------

class Page(HubServiceHandler):
    def get(self) -> None:
        with transaction(self.factory) as session:
            audit.record(session, AuditEventType.RELEASE_COLLECT, actor=self.current_user, object="request:1")
        self.finish("ok")


class ExecutorPage(HubServiceHandler):
    async def get(self) -> None:
        def write() -> None:
            with transaction(self.factory) as session:
                audit.record(session, AuditEventType.RELEASE_COLLECT, actor=self.current_user, object="request:2")

        await IOLoop.current().run_in_executor(None, write)  # as the review service submits and protects
        self.finish("ok")


@pytest.fixture
def service(db):
    """A service page on a real port, people and a terminal in the store, the address check installed."""
    with transaction(db) as session:
        policy.add_facility(session, name="Tokyo", actor="test")
        policy.add_terminal(session, facility="Tokyo", address="192.0.2.0/28", actor="test")
        policy.add_person(session, username="sato", display_name="Sato", actor="test", roles=[Role.REVIEWER])
    app = web.Application([(r"/page", Page), (r"/executor", ExecutorPage)], session_factory=db, prefix="/",
                          test_identity=lambda handler: handler.request.headers.get("X-Test-User"),
                          check_client=ClientCheck(AddressPolicy(), "onsite-review"))
    with serving(app) as url:
        yield url


def events(db, object_: str) -> list[dict]:
    with db() as session:
        return [json.loads(e.details) for e in session.scalars(select(AuditEvent).where(AuditEvent.object == object_))]


def test_a_service_judges_each_request_by_its_address_and_records_it(db, service):
    # The proxy (127.0.0.1, trusted) appends the terminal it saw; a browser's own X-Real-Ip is not believed.
    at_terminal = {"X-Test-User": "sato", "X-Forwarded-For": "192.0.2.5"}
    assert requests.get(f"{service}/page", headers=at_terminal, timeout=10).status_code == 200
    assert events(db, "request:1") == [{"client_address": "192.0.2.5"}]
    elsewhere = {"X-Test-User": "sato", "X-Forwarded-For": "192.0.2.5, 203.0.113.9", "X-Real-Ip": "192.0.2.5"}
    refused = requests.get(f"{service}/page", headers=elsewhere, timeout=10)
    assert refused.status_code == 403 and len(events(db, "request:1")) == 1
    with db() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert last.action is AuditEventType.ENTRY_DECIDE and json.loads(last.details) == {
        "client_address": "203.0.113.9", "stage": "request", "service": "onsite-review", "method": "GET",
        "path": "/page", "reasons": ["NOT_STAFF_ADDRESS"]}


def test_the_client_follows_the_request_into_the_executor(db, service):
    at_terminal = {"X-Test-User": "sato", "X-Forwarded-For": "192.0.2.6"}
    assert requests.get(f"{service}/executor", headers=at_terminal, timeout=10).status_code == 200
    assert events(db, "request:2") == [{"client_address": "192.0.2.6"}]


def test_contexts_reach_tasks_and_threads_as_asyncio_hands_them_on(db):
    """What the hub relies on: asyncio tasks and to_thread inherit the request's client; a plain
    thread pool does not (hence ContextCopyingExecutor in the services)."""
    def write(name: str) -> None:
        with transaction(db) as session:
            audit.record(session, AuditEventType.RELEASE_COLLECT, actor="t", object=name)

    async def request() -> None:
        audit.set_client(audit.Client("192.0.2.7"))
        await asyncio.to_thread(write, "to_thread")
        await asyncio.create_task(asyncio.to_thread(write, "task"))
        await asyncio.get_running_loop().run_in_executor(ThreadPoolExecutor(1), write, "plain pool")

    asyncio.run(request())
    assert events(db, "to_thread") == events(db, "task") == [{"client_address": "192.0.2.7"}]
    assert events(db, "plain pool") == [{}]
    with audit.client_context(audit.Client(audit.LOCAL, os_user="root")):
        write("cli")
    assert events(db, "cli") == [{"client_address": "local", "os_user": "root"}]
    assert audit.current_client() is None


def test_a_store_that_cannot_be_read_refuses_the_request(tmp_path):
    broken = session_factory(make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'onsite.sqlite'}"))
    decision = judge_request(broken, AddressPolicy(), "sato", "127.0.0.1", RequestSeen("hub", "GET", "/hub/home"))
    assert not decision.allowed and decision.reasons == (DenialReason.STORE_UNAVAILABLE,)
