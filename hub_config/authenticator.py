"""Log-in to the hub and every request after it: the client address, the password, the entry decision.

`OnsiteAuthenticator` first looks at the client address: from an address that
is neither a registered terminal nor a staff network (`AddressPolicy`) a log-in
is refused before the password is checked, so a right and a wrong password get
the same answer there and such attempts never count toward an account's
lock-out. Elsewhere it checks the password against the identity store (the
local argon2 store here; an LDAP-backed subclass overrides `check_password`
only), then takes the access decision for the address (`decide_access`: the
entry decision for researchers, the staff networks for reviewers and
administrators) and writes it to the ledger either way. A refusal shows its
reasons on the login page, in Japanese and English; a wrong password shows only that.

Every later request of a signed-in person (pages, `/hub/api`, spawn and stop)
is judged again by its client address in `refresh_user`, which JupyterHub calls
on every request (`auth_refresh_age` is fixed at "always"): a refused request
gets a 403 page or JSON in Japanese and English and an `ENTRY_DECIDE` event
(stage "request"). Requests with a Hub token that did not pass through the
proxy (a session's server, a service on this host) are not judged by address;
services' own tokens never reach `refresh_user`.

Client address: JupyterHub sits behind configurable-http-proxy, which appends
the address of the TCP peer it saw to `X-Forwarded-For`. Tornado's
`request.remote_ip` is not used because it also honours `X-Real-Ip`, a header
the proxy passes through untouched from the browser (so anyone could claim any
terminal). We trust the forwarding headers only from `AddressPolicy.trusted_proxies`.
"""
from __future__ import annotations

import asyncio
import html
import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.auth import Authenticator
from sqlalchemy.orm import Session, sessionmaker
from tornado import web
from traitlets import Any as AnyTrait
from traitlets import Float, default

from access_control import audit
from access_control.addresses import AddressPolicy, RequestSeen, decide_access, judge_request, refusal_message
from access_control.entry import DenialReason, EntryDecision, decide_entry, load_entry_facts, record_entry
from access_control.enums import Role
from access_control.identity import LocalIdentityStore
from access_control.policy import list_people
from hub_config.roles import ADMIN_SERVICE, HUB_ROLES, REVIEW_SERVICE
from onsite_base.db import make_engine, read_transaction, session_factory, transaction
from onsite_base.netaddr import client_address, is_direct, parse_client_address, peer_address
from onsite_base.settings import Settings

log = logging.getLogger(__name__)

class EntryDenied(web.HTTPError):
    """A refused log-in or spawn; the message lists every reason in Japanese and English."""

    def __init__(self, reasons: tuple[DenialReason, ...] | list[DenialReason]) -> None:
        super().__init__(403, log_message="entry refused: %s" % ",".join(r.value for r in reasons))
        self.reasons = tuple(reasons)
        # JupyterHub's login page and error page show `jupyterhub_message`.
        self.jupyterhub_message = entry_message(self.reasons)


def entry_message(reasons: tuple[DenialReason, ...]) -> str:
    ja = " ".join(r.message("ja") for r in reasons)
    en = " ".join(r.message("en") for r in reasons)
    return f"入室できません: {ja}\nEntry refused: {en}"


class OnsiteAuthenticator(Authenticator):
    """Password check, then the entry decision (project active today, registered terminal)."""

    settings = AnyTrait(
        help="""The `onsite_base.settings.Settings` whose policy store holds people,
        projects and terminals. Default: `Settings.load()`, the config file and the
        environment ($ONSITE_HOME, $ONSITE_DB_URL); the hub's configuration sets it.""",
    ).tag(config=True)

    address_policy = AnyTrait(
        help="""The `access_control.addresses.AddressPolicy`: staff networks and trusted proxies.
        Default: `AddressPolicy.load()`, the config file and the environment; the hub's
        configuration sets it.""",
    ).tag(config=True)

    # JupyterHub calls refresh_user only when the last refresh is older than this. Every request
    # must be judged by its own address, so "older than nothing" — and not configurable: a site's
    # `c.Authenticator.auth_refresh_age = 300` would let requests from anywhere ride on a refresh.
    auth_refresh_age = Float(sys.float_info.min, help="Fixed by Onsite: every request is judged (refresh_user).")

    @default("address_policy")
    def _address_policy_default(self) -> AddressPolicy:
        return AddressPolicy.load()

    @default("auth_refresh_strict")
    def _strict_default(self) -> bool:
        # A refused token request is not let through on stale auth.
        return True

    @property
    def trusted_proxy_ips(self) -> list[str]:
        """The proxies believed about the client address (AddressPolicy.trusted_proxies), as the spawner hands them on."""
        return list(self.address_policy.trusted_proxies)

    @default("settings")
    def _settings_default(self) -> Settings:
        return Settings.load()

    @default("allow_all")
    def _allow_all_default(self) -> bool:
        # Who may enter is the entry decision's business, taken in `authenticate`.
        return True

    _factory: sessionmaker[Session] | None = None
    _identity_store: Any = None

    @property
    def session_factory(self) -> sessionmaker[Session]:
        if self._factory is None:
            self._factory = session_factory(make_engine(self.settings.db_url))
        return self._factory

    # --- the seam for other identity backends (LDAP in issue 5) ---------------

    async def check_password(self, handler: web.RequestHandler | None, username: str, password: str) -> DenialReason | None:
        """None when the password is right, else why not. Failures go to the ledger (LOGIN_FAIL).

        The only part a directory-backed subclass overrides, e.g.
        `class OnsiteLDAPAuthenticator(OnsiteAuthenticator, LDAPAuthenticator)`
        awaiting `LDAPAuthenticator.authenticate` here.
        """
        return await asyncio.to_thread(self._check_local_password, username, password)

    def _check_local_password(self, username: str, password: str) -> DenialReason | None:
        if self._identity_store is None:  # built once: it hashes a timing-equaliser password
            self._identity_store = LocalIdentityStore()
        with read_transaction(self.session_factory) as session:  # the hash checked outside the write lock
            checked = self._identity_store.precheck(session, username, password)
        # Failure counts, locks and LOGIN_FAIL events commit even though the login fails.
        with transaction(self.session_factory) as session:
            result = self._identity_store.check_login(session, username, password, checked=checked)
        return None if result.person is not None else (result.reason or DenialReason.BAD_CREDENTIALS)

    # --- JupyterHub hooks ------------------------------------------------------

    async def authenticate(self, handler: web.RequestHandler, data: dict[str, str]) -> dict | None:
        username = data.get("username", "")
        address = self.client_address(handler)
        audit.set_client(audit.Client(address))
        if not await asyncio.to_thread(self._known_address, username, address):
            # Before the password: the same answer for a right and a wrong one, and no lock-out from anywhere.
            self.log.warning("log-in of %r refused before its password: %s is neither a terminal nor a staff network",
                             username[:64], address)
            raise EntryDenied([DenialReason.TERMINAL_NOT_REGISTERED])
        refused = await self.check_password(handler, username, data.get("password", ""))
        if refused is DenialReason.BAD_CREDENTIALS:
            return None  # JupyterHub's own "Invalid username or password": no hint whether the account exists
        if refused is not None:
            raise EntryDenied([refused])
        decision, name, roles = await asyncio.to_thread(self._decide, username, address, "login")
        if not decision.allowed:
            self.log.warning("entry refused for %s from %s: %s", name, address, [r.value for r in decision.reasons])
            raise EntryDenied(decision.reasons)
        self.log.info("entry allowed for %s from %s (facility %s)", name, address, decision.facility)
        return {"name": name, "admin": False, "roles": [dict(HUB_ROLES[r]) for r in sorted(roles, key=lambda r: r.value)]}

    def _known_address(self, username: str, address: str) -> bool:
        """Whether anyone may log in from `address`; if not, the refusal is recorded (password not checked)."""
        with read_transaction(self.session_factory) as session:  # the write lock only for a refusal
            facts = load_entry_facts(session, username, address)
        if self.address_policy.is_known_address(address, facts.terminals):
            return True
        with transaction(self.session_factory) as session:
            refused = EntryDecision(False, (DenialReason.TERMINAL_NOT_REGISTERED,))
            record_entry(session, refused, username=facts.username, client_address=address, stage="login")
        return False

    def _decide(self, username: str, address: str, stage: str) -> tuple[EntryDecision, str, frozenset[Role]]:
        """At log-in the access decision (any role may allow it), at spawn and re-check the researcher's entry decision."""
        with transaction(self.session_factory) as session:
            facts = load_entry_facts(session, username, address)
            now = datetime.now(timezone.utc)
            decision = decide_access(facts, now, self.address_policy) if stage == "login" else decide_entry(facts, now)
            record_entry(session, decision, username=facts.username, client_address=address, stage=stage)
            return decision, facts.username, facts.roles

    def entry_check(self, username: str, address: str, stage: str) -> EntryDecision:
        """The entry decision again (at spawn), recorded in the ledger."""
        return self._decide(username, address, stage)[0]

    def client_address(self, handler: web.RequestHandler) -> str:
        return client_address(handler.request, self.address_policy.proxies)

    async def refresh_user(self, user: Any, handler: web.RequestHandler | None = None) -> bool:
        """Judge this request of `user` by its client address (JupyterHub calls this on every request).

        Allowed: True. Refused: the 403 (page or JSON, ja/en) is sent here, during the handler's
        `prepare`, so the handler itself never runs (tornado stops a request finished in
        `prepare`); the refusal is in the ledger; False, so JupyterHub drops the person too.
        """
        if handler is None:
            return True  # not a request (JupyterHub's own start-up)
        address = self.client_address(handler)
        audit.set_client(audit.Client(address))
        if getattr(handler, "_token_authenticated", False) and self._from_own_host(user, handler):
            return True
        request = handler.request
        seen = RequestSeen("hub", request.method, request.path)
        decision = await asyncio.to_thread(judge_request, self.session_factory, self.address_policy, user.name, address, seen)
        if decision.allowed:
            return True
        send_refusal(handler, refusal_message(decision.reasons))
        # JupyterHub 6.1 reads this on a refused refresh but sets it only for token requests.
        if not hasattr(handler, "_token_authenticated"):
            handler._token_authenticated = False
        return False

    @staticmethod
    def _from_own_host(user: Any, handler: web.RequestHandler) -> bool:
        """A token request that did not pass through the proxy: from this host (a session's server, a
        service), or from the host of one of the person's own servers (a remote spawner's node)."""
        if is_direct(handler.request):
            return True
        if handler.request.headers.get("X-Forwarded-For"):
            return False
        peer = parse_client_address(peer_address(handler.request))
        hosts = {parse_client_address(s.server.ip) for s in user.spawners.values() if s.server and s.server.ip}
        return peer is not None and peer in hosts

    async def load_managed_roles(self) -> list[dict]:
        """The hub roles with their members as the policy store has them now.

        Listing the members re-syncs them at every start (with
        `reset_managed_roles_on_startup`): a role revoked while the hub was down
        is gone when it comes back. It also avoids a JupyterHub 6.1 crash on
        restart with managed roles whose members are not listed.
        """
        members = await asyncio.to_thread(self._role_members)
        return [{**definition, "users": members.get(role, [])} for role, definition in HUB_ROLES.items()]

    def _role_members(self) -> dict[Role, list[str]]:
        members: dict[Role, list[str]] = {role: [] for role in Role}
        with self.session_factory() as session:
            for person in list_people(session):
                if not person.disabled:
                    for role in person.role_set:
                        members[role].append(person.username)
        return members


REFUSAL_PAGE = """<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8"><title>403 利用できません / Refused</title></head>
<body><h1>403</h1><p>{ja}</p><p lang="en">{en}</p></body></html>
"""


def send_refusal(handler: web.RequestHandler, message: str) -> None:
    """Answer 403 with `message` (ja, newline, en): JSON for the hub's API, as JupyterHub's API errors
    are, else a page. Written by hand: JupyterHub's error page cannot be rendered before the
    request's person and scopes are resolved, which is when this runs."""
    handler.clear()
    handler.set_status(403)
    if isinstance(handler, APIHandler):
        handler.set_header("Content-Type", "application/json; charset=UTF-8")
        handler.finish(json.dumps({"status": 403, "message": message}, ensure_ascii=False))
        return
    ja, _, en = message.partition("\n")
    handler.set_header("Content-Type", "text/html; charset=UTF-8")
    handler.finish(REFUSAL_PAGE.format(ja=html.escape(ja), en=html.escape(en)))


def default_url(handler: web.RequestHandler) -> str:
    """Where a person lands after log-in: researchers their server, reviewers the queue,
    administrators the Onsite administration pages (ja/en), not JupyterHub's own admin page."""
    user = handler.current_user
    names = {r.name for r in getattr(user, "roles", [])} if user else set()
    if not user or HUB_ROLES[Role.RESEARCHER]["name"] in names:
        return ""  # JupyterHub's default: spawn and open the server
    if HUB_ROLES[Role.REVIEWER]["name"] in names:
        return f"/services/{REVIEW_SERVICE}/"
    return f"/services/{ADMIN_SERVICE}/"
