"""Session activity: what researchers do in their servers, written to the audit ledger.

Each single-user server (`singleuser.events.SessionEventForwarder`) posts its
contents actions (open, save, upload, rename, delete), kernel starts and stops,
the code of every executed cell and what the browser fed a running cell
(`input_reply`, comm data; never outputs) and the requests the lock-down
refused to the hub, `POST /hub/api/onsite/session-events`, authenticated by
the server's own Hub token. The hub takes the researcher from the token (never
from the body) and appends each event to the hash-chained audit ledger as
`SESSION_ACTIVITY` (actor: the researcher, object `session:<user>`, details:
the event; outcome DENIED for a lock-down refusal), one transaction per batch,
so `onsite audit verify` proves these untampered with everything else. Events
a server had to drop (its queue was full, or the hub refused a batch) are
recorded as one event of kind `lost` with their count.

The answer (201 with the count appended) is sent only after the transaction
committed; the server runs a cell's code only on that answer
(`singleuser.events.SessionEventForwarder.record_durably`). When the ledger
cannot be written the answer is 503 and the code does not run.

Volume: one event per executed cell, file save or open, a few thousand a day
for a facility network; each executed cell is one short ledger transaction of
its own, other events go in batches (at most MAX_BATCH, sent once a second per
server).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from access_control import audit
from onsite_base.db import transaction
from access_control.enums import AuditEventType, Outcome

log = logging.getLogger(__name__)

HANDLER_PATTERN = r"/api/onsite/session-events"
EVENT_KINDS = frozenset({"contents", "kernel", "execute", "input", "comm", "refused"})
MAX_BATCH = 1000
MAX_FIELDS = 16
MAX_FIELD_CHARS = 100_000


def clean_event(raw: Any) -> dict[str, Any]:
    """One event as sent by a server, checked: a known kind, a few flat JSON values, bounded text."""
    if not isinstance(raw, dict) or raw.get("kind") not in EVENT_KINDS:
        raise web.HTTPError(400, f"each event needs a kind among {sorted(EVENT_KINDS)}")
    if len(raw) > MAX_FIELDS:
        raise web.HTTPError(400, f"an event has at most {MAX_FIELDS} fields")
    event: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, (str, int, float, bool, type(None))):
            raise web.HTTPError(400, "event fields must be strings, numbers, booleans or null")
        event[key[:64]] = value[:MAX_FIELD_CHARS] if isinstance(value, str) else value
    if "at" in event:  # when the server saw it; the ledger's own time is when the hub wrote it
        event["server_at"] = event.pop("at")
    return event


def record_session_events(session_factory: Any, user: str, events: list[dict[str, Any]]) -> int:
    """Append `events` of `user` to the ledger in one transaction; returns the seq of the last."""
    recorded = []
    with transaction(session_factory) as session:
        for event in events:
            outcome = Outcome.DENIED if event["kind"] == "refused" else Outcome.OK
            recorded.append(audit.record(session, AuditEventType.SESSION_ACTIVITY, actor=user, object=f"session:{user}",
                                         outcome=outcome, details=event))
    return recorded[-1].seq if recorded else 0  # chained at the commit


class SessionEventHandler(APIHandler):
    """`POST /hub/api/onsite/session-events`: a server appends its researcher's events to the ledger."""

    def check_xsrf_cookie(self) -> None:
        """Token requests only (checked in post); a cookie never reaches the ledger."""

    async def post(self) -> None:
        token = self.get_token()
        # Only a single-user server's own token: not a browser cookie, not a person's API token.
        if token is None or token.user is None or not (token.note or "").startswith("Server at "):
            raise web.HTTPError(403, "only a single-user server's own token may post session events")
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "the body must be JSON: {\"events\": [...], \"dropped\": N}") from None
        raw_events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(raw_events, list) or len(raw_events) > MAX_BATCH:
            raise web.HTTPError(400, f"events must be a list of at most {MAX_BATCH}")
        events = [clean_event(e) for e in raw_events]
        dropped = body.get("dropped", 0)
        if isinstance(dropped, int) and not isinstance(dropped, bool) and dropped > 0:
            events.insert(0, {"kind": "lost", "events": dropped,
                              "reason": f"{dropped} events lost by the server (queue full or refused by the hub)"})
        if not events:
            self.set_status(201)
            self.finish({"appended": 0})
            return
        user = token.user.name
        try:
            last = await asyncio.to_thread(record_session_events, self.authenticator.session_factory, user, events)
        except Exception as e:
            # Not committed: the server holds back whatever this record gates (the code of a cell).
            log.error("session events of %s could not be written to the ledger: %s: %s", user, type(e).__name__, e)
            raise web.HTTPError(503, f"the audit ledger could not record the events ({type(e).__name__})") from None
        log.debug("session events of %s written to the ledger up to event %d", user, last)
        self.set_status(201)
        self.finish({"appended": len(events), "last_seq": last})


def session_event_handlers() -> list[tuple[str, type]]:
    """The hub's extra handler taking servers' session events into the ledger."""
    return [(HANDLER_PATTERN, SessionEventHandler)]
