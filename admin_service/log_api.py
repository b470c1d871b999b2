"""The log's API for witnesses: the ledger as a transparency log, in JSON (`onsite audit witness URL`).

On the admin service: the ledger is access control's, and this service already shows it to the people
who answer for it; the review service, which takes researchers' requests, keeps its surface small.
Who may call: a witness with its own credential (`Authorization: Witness …`, issued by `onsite audit
witness-add`, `ledger.witness_of`), which opens these requests and nothing else — no admin page, no other
service — and posts cosignatures in its own name only; or whoever may use every admin page (`AdminHandler`):
an administrator from a staff address (the client check; refusals recorded), with a Hub API token
(`Authorization: token …`, scope `access:services!service=onsite-admin`), which the Hub exempts from XSRF.
Read-only but for the cosignatures, which are checked (`ledger.accept_cosignature`) before they are stored.

    GET  log/head                      the newest signed tree head
    GET  log/consistency?old=N&new=M   the consistency path from the tree of N events to a signed head of M
    GET  log/inclusion?seq=N           an inclusion proof of event N in the newest head
    GET  log/keys                      the log key's handovers (`ledger.rotate_key`), each signed by the key it retires
    POST log/cosignatures              a witness's cosignature of a head this log signed
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session
from tornado import web

from access_control import ledger
from access_control.errors import PolicyError
from admin_service.handlers import AdminHandler
from onsite_base.db import read_transaction, transaction

log = logging.getLogger(__name__)


WITNESS_SCHEME = "Witness "


class LogApi(AdminHandler):
    """JSON in and out, every refusal as {"error": …}; a request without a person or witness is refused, not redirected."""

    witness: str | None = None
    """The witness whose credential the request carries (then no person is signed in)."""

    def witness_token(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        return header[len(WITNESS_SCHEME):].strip() if header.startswith(WITNESS_SCHEME) else None

    def check_xsrf_cookie(self) -> None:
        if self.witness_token() is not None:
            return  # a header no browser sends across sites; no cookie is read
        if self.seam is not None and self.request.headers.get("Authorization", "").startswith("token "):
            return  # tests without the Hub: a token request, exempt as the Hub exempts it
        super().check_xsrf_cookie()

    def get_current_user(self) -> str | None:
        return None if self.witness_token() is not None else super().get_current_user()

    def prepare(self) -> None:
        token = self.witness_token()
        if token is not None:
            with read_transaction(self.factory) as session:
                self.witness = ledger.witness_of(session, token)
            if self.witness is None:
                log.warning("log API refused a witness credential it does not know (%s %s)", self.request.method,
                            self.request.path)
                raise web.HTTPError(403, WITNESS_UNKNOWN[self.language])
            return
        super().prepare()
        if self.current_user is None:
            raise web.HTTPError(403, "sign in: send a witness credential (Authorization: Witness …) or a Hub API token "
                                "of an administrator (Authorization: token …)")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        self.send({"error": getattr(error, "log_message", None) or self._reason}, status_code)

    def send(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(value, ensure_ascii=False))

    def number(self, name: str) -> int:
        text = self.get_query_argument(name, "")
        if not text.isdigit():
            raise web.HTTPError(400, f"{name} must be a whole number")
        return int(text)

    def answer(self, work: Callable[[Session], Any]) -> None:
        """`work(session)` in a read, its refusals as JSON errors."""
        try:
            with read_transaction(self.factory) as session:
                value = work(session)
        except PolicyError as e:
            raise web.HTTPError(404, self.refusal(e).replace("%", "%%")) from None
        except ledger.TreeIncomplete as e:
            raise web.HTTPError(409, str(e).replace("%", "%%")) from None
        if value is None:
            raise web.HTTPError(404, "the log has no signed head yet")
        self.send(value)


class LogHead(LogApi):
    def get(self) -> None:
        self.answer(lambda session: (head := ledger.newest_head(session)) and head.as_dict())


class LogConsistency(LogApi):
    def get(self) -> None:
        old, new = self.number("old"), self.number("new")
        self.answer(lambda session: ledger.consistency_path(session, old, new))


class LogInclusion(LogApi):
    def get(self) -> None:
        seq = self.number("seq")
        self.answer(lambda session: ledger.inclusion_proof(session, seq))


class LogKeys(LogApi):
    def get(self) -> None:
        self.answer(lambda session: {"key_transitions": [t.as_dict() for t in ledger.key_transitions(session)]})


class LogCosignatures(LogApi):
    def post(self) -> None:
        try:
            cosignature = ledger.cosignature_from_dict(json.loads(self.request.body or b"null"))
        except ValueError:
            raise web.HTTPError(400, "the body must be a cosignature in JSON (onsite.cosignature/v1)") from None
        except PolicyError as e:
            raise web.HTTPError(400, self.refusal(e).replace("%", "%%")) from None
        if self.witness is not None and cosignature.witness != self.witness:
            raise web.HTTPError(403, WITNESS_OTHER_NAME[self.language].format(witness=self.witness).replace("%", "%%"))
        try:
            with transaction(self.factory) as session:
                ledger.accept_cosignature(session, cosignature)
        except PolicyError as e:
            raise web.HTTPError(409, self.refusal(e).replace("%", "%%")) from None
        log.info("stored the cosignature of witness %s at %d events", cosignature.witness, cosignature.tree_size)
        self.send({"stored": True, "witness": cosignature.witness, "tree_size": cosignature.tree_size}, 201)


WITNESS_UNKNOWN = {
    "ja": "このウィットネスの資格情報は無効です(発行されていないか、再発行または取り消されています)",
    "en": "this witness credential is not valid (never issued, or replaced or withdrawn since)",
}
WITNESS_OTHER_NAME = {
    "ja": "ウィットネス {witness} の資格情報では、{witness} の名前の連署しか送れません",
    "en": "the credential of witness {witness} posts cosignatures in the name {witness} only",
}

ROUTES = [
    ("log/head", LogHead),
    ("log/consistency", LogConsistency),
    ("log/inclusion", LogInclusion),
    ("log/keys", LogKeys),
    ("log/cosignatures", LogCosignatures),
]
"""Paths under the service prefix (admin_service.app registers them)."""
