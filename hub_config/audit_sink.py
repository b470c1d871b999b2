"""The session event log: what researchers do in their servers, kept where they cannot write.

Each single-user server (`hub_config.lockdown.SessionEventForwarder`) posts its
contents actions (open, save, upload, rename, delete), kernel starts and stops,
the code of every executed cell (never outputs) and the requests the lock-down
refused to the hub, `POST /hub/api/onsite/session-events`, authenticated by the
server's own Hub token. The hub takes the researcher from the token (never from
the body) and appends each event as one JSON line to `SessionEventLog`: a file
in the hub's private runtime directory (0700, the hub's account), every line
hash-chained to the one before, like the audit ledger. A researcher's process
can neither reach the file nor rewrite a line unnoticed: `verify()` recomputes
the chain.

Why not the ledger: these events are many (one per executed cell) and their
types are not `AuditEventType` members; the ledger keeps the session start and
stop, this log what happened in between.
"""
from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
LOG_NAME = "session-events.jsonl"
HANDLER_PATTERN = r"/api/onsite/session-events"
EVENT_KINDS = frozenset({"contents", "kernel", "execute", "refused"})
MAX_BATCH = 1000
MAX_FIELD_CHARS = 100_000


class SessionLogCorrupt(Exception):
    """The session event log's hash chain is broken (a line edited, removed, inserted or reordered)."""


def _line_hash(record: dict[str, Any], prev_hash: str) -> str:
    payload = json.dumps([record, prev_hash], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class SessionEventLog:
    """Append-only, hash-chained JSON lines at `path` (created 0600)."""

    path: Path

    def _tail(self, fh: Any) -> tuple[int, str]:
        """seq and hash of the last line (0 and the genesis hash when empty)."""
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if size == 0:
            return 0, GENESIS_HASH
        fh.seek(max(0, size - 2 * MAX_FIELD_CHARS - 65536))
        last = fh.read().splitlines()[-1]
        entry = json.loads(last)
        return entry["seq"], entry["hash"]

    def append(self, user: str, events: list[dict[str, Any]]) -> int:
        """Append `events` of `user`; returns the seq of the last one written."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as fh:
            # One writer at a time (threads of the hub, or another process): flock is per open file.
            fcntl.flock(fh, fcntl.LOCK_EX)
            seq, prev = self._tail(fh)
            lines = []
            for event in events:
                seq += 1
                record = {"seq": seq, "at": datetime.now(timezone.utc).isoformat(), "user": user, "event": event}
                prev = _line_hash(record, prev)
                lines.append(json.dumps({**record, "hash": prev}, ensure_ascii=False, separators=(",", ":")))
            fh.write("".join(line + "\n" for line in lines))
            fh.flush()
            os.fsync(fh.fileno())
        return seq

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines()]

    def verify(self) -> int:
        """Recompute the chain; returns the number of events, raises SessionLogCorrupt at the first break."""
        prev, expected_seq = GENESIS_HASH, 1
        for number, entry in enumerate(self.read(), start=1):
            record = {k: entry.get(k) for k in ("seq", "at", "user", "event")}
            if entry.get("seq") != expected_seq or _line_hash(record, prev) != entry.get("hash"):
                raise SessionLogCorrupt(f"{self.path}: the chain breaks at line {number} (seq {entry.get('seq')})")
            prev, expected_seq = entry["hash"], expected_seq + 1
        return expected_seq - 1


def clean_event(raw: Any) -> dict[str, Any]:
    """One event as sent by a server, checked: a known kind, flat JSON values, bounded text."""
    if not isinstance(raw, dict) or raw.get("kind") not in EVENT_KINDS:
        raise web.HTTPError(400, f"each event needs a kind among {sorted(EVENT_KINDS)}")
    event: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, (str, int, float, bool, type(None))):
            raise web.HTTPError(400, "event fields must be strings, numbers, booleans or null")
        event[key[:64]] = value[:MAX_FIELD_CHARS] if isinstance(value, str) else value
    return event


class SessionEventHandler(APIHandler):
    """`POST /hub/api/onsite/session-events`: a server appends its researcher's events."""

    def initialize(self, event_log: SessionEventLog) -> None:
        self.event_log = event_log

    def check_xsrf_cookie(self) -> None:
        """Token requests only (checked in post); a cookie never reaches the log."""

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
        if isinstance(dropped, int) and dropped > 0:
            events.insert(0, {"kind": "refused", "reason": f"{dropped} events lost in the server's queue"})
        user = token.user.name
        last = await self._append(user, events)
        log.debug("session events %d..%d from %s", last - len(events) + 1, last, user)
        self.set_status(201)
        self.finish({"appended": len(events), "last_seq": last})

    async def _append(self, user: str, events: list[dict[str, Any]]) -> int:
        return await asyncio.to_thread(self.event_log.append, user, events)


def session_event_handlers(runtime_dir: Path) -> list[tuple[str, type, dict[str, Any]]]:
    """The hub's extra handler serving the session event log in `runtime_dir`."""
    return [(HANDLER_PATTERN, SessionEventHandler, {"event_log": SessionEventLog(runtime_dir / LOG_NAME)})]
