"""Live sessions by facility (access_control.admin, issue 16): which running server is a session at which facility
(the terminal of its SESSION_START), a manager ending only those at her facilities, and an emergency closure ending
every session at the facility and no other. The Hub's REST API is a stand-in answering the three calls the client
makes (list active users, stop a server); the ledger and the store are real. Under a real hub:
tests/integration/test_facility_emergency_hub.py."""
from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from access_control import admin, audit, policy
from access_control.enums import AuditEventType
from access_control.hub_api import HubApiUnavailable, HubClient
from access_control.models import AuditEvent
from access_control.sessions import session_object
from hub_config.ports import free_port
from onsite_base.db import transaction

from conftest import ACTOR

STARTED = datetime.now(timezone.utc) - timedelta(minutes=5)


class HubStandIn(BaseHTTPRequestHandler):
    running: dict[str, bool] = {}

    def do_GET(self) -> None:
        items = [{"name": name, "servers": {"": {"started": STARTED.isoformat(), "ready": True, "pending": None}}}
                 for name in sorted(self.running)]
        self.answer(200, {"items": items, "_pagination": {"next": None}})

    def do_DELETE(self) -> None:
        self.running.pop(self.path.split("/")[-2], None)  # …/users/<name>/server
        self.answer(204, None)

    def answer(self, code: int, body: object) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        if body is not None:
            self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), HubStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield HubClient(f"http://127.0.0.1:{server.server_address[1]}/hub/api", "token")
    server.shutdown()


@pytest.fixture
def sessions(db, world):
    """alice at Tokyo (127.0.0.1), bob at Osaka (192.0.2.5), carol's server without a SESSION_START; mika manages Osaka."""
    with transaction(db) as s:
        policy.add_facility(s, name="Osaka", actor=ACTOR)
        policy.add_terminal(s, facility="Osaka", address="192.0.2.0/28", actor=ACTOR)
        policy.add_person(s, username="mika", display_name="Mika", actor=ACTOR)
        policy.grant_facility_manager(s, "mika", "Osaka", actor=ACTOR)
        for user, address in (("alice", "127.0.0.1"), ("bob", "192.0.2.5")):
            audit.record(s, AuditEventType.SESSION_START, actor=user, object=session_object(user),
                         details={"client_address": address, "projects": [world.project]})
    HubStandIn.running = {"alice": True, "bob": True, "carol": True}
    with transaction(db) as s:
        return policy.actor_scope(s, "mika")


def ended(db) -> list[tuple[str, str]]:
    with db() as s:
        return [(e.object, e.details_dict.get("reason", "")) for e in
                s.scalars(select(AuditEvent).where(AuditEvent.action == AuditEventType.SESSION_END).order_by(AuditEvent.seq))]


def test_sessions_are_placed_by_the_terminal_they_started_at(db, hub, sessions):
    everyone = asyncio.run(admin.live_sessions(hub, db))
    assert [(s.server.user, s.facility) for s in everyone] == [("alice", "Tokyo"), ("bob", "Osaka"), ("carol", None)]
    mine = asyncio.run(admin.live_sessions(hub, db, sessions))
    assert [(s.server.user, s.facility, s.projects) for s in mine] == [("bob", "Osaka", ["p2026-001"])]


def test_a_manager_ends_only_sessions_at_her_facilities(db, hub, sessions):
    for other in ("alice", "carol", "nobody"):
        with pytest.raises(policy.OutOfScope):
            asyncio.run(admin.end_session_in_scope(hub, db, other, "mika", scope=sessions))
    assert ended(db) == [] and set(HubStandIn.running) == {"alice", "bob", "carol"}
    asyncio.run(admin.end_session_in_scope(hub, db, "bob", "mika", scope=sessions, reason="fire drill"))
    assert ended(db) == [("session:bob", "fire drill")] and "bob" not in HubStandIn.running


def test_an_emergency_closure_ends_the_facilitys_sessions_and_no_other(db, hub, sessions):
    with pytest.raises(policy.OutOfScope):
        asyncio.run(admin.close_for_emergency(hub, db, "Tokyo", "not hers", "mika", scope=sessions))
    assert asyncio.run(admin.close_for_emergency(hub, db, "Osaka", "停電", "mika", scope=sessions)) == ["bob"]
    assert ended(db) == [("session:bob", "emergency closure of Osaka: 停電")]
    assert set(HubStandIn.running) == {"alice", "carol"}


def test_without_the_hub_the_closure_stands(db, sessions):
    unreachable = HubClient(f"http://127.0.0.1:{free_port()}/hub/api", "token")
    with pytest.raises(HubApiUnavailable):
        asyncio.run(admin.close_for_emergency(unreachable, db, "Osaka", "停電", "mika", scope=sessions))
    with pytest.raises(HubApiUnavailable):
        asyncio.run(admin.close_for_emergency(None, db, "Tokyo", "flood", ACTOR))
    with db() as s:
        assert {f.name: f.emergency_reason for f in policy.list_facilities(s)} == {"Osaka": "停電", "Tokyo": "flood"}
