"""Log-in to the hub: the password, then the entry decision.

`OnsiteAuthenticator` checks the password against the identity store (the
local argon2 store here; an LDAP-backed subclass overrides `check_password`
only), then takes the entry decision for the client's terminal address and
writes it to the ledger either way. A refused entry shows its reasons on the
login page, in Japanese and English; a wrong password shows only that.

Client address: JupyterHub sits behind configurable-http-proxy, which appends
the address of the TCP peer it saw to `X-Forwarded-For`. Tornado's
`request.remote_ip` is not used because it also honours `X-Real-Ip`, a header
the proxy passes through untouched from the browser (so anyone could claim any
terminal). We trust the forwarding headers only from `trusted_proxy_ips`.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

from jupyterhub.auth import Authenticator
from sqlalchemy.orm import Session, sessionmaker
from tornado import web
from traitlets import Any as AnyTrait
from traitlets import List, Unicode, default

from onsite_base.db import make_engine, session_factory, transaction
from access_control.entry import DenialReason, EntryDecision, decide_entry, load_entry_facts, record_entry
from access_control.enums import Role
from access_control.identity import LocalIdentityStore
from access_control.policy import list_people
from hub_config.roles import ADMIN_SERVICE, HUB_ROLES, REVIEW_SERVICE
from onsite_base.netaddr import client_address
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

    trusted_proxy_ips = List(
        Unicode(),
        ["127.0.0.1", "::1"],
        help="""Addresses of the proxies in front of the hub whose `X-Forwarded-For`
        entries are believed. Default: loopback, where configurable-http-proxy
        runs. Add the address of a TLS front end if there is one. Every other
        peer's headers are ignored and its own address is the terminal address.
        Security: a local process that can reach the hub port directly could
        claim any address; the hub's port listens on loopback only.""",
    ).tag(config=True)

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
        # Failure counts, locks and LOGIN_FAIL events commit even though the login fails.
        with transaction(self.session_factory) as session:
            result = self._identity_store.check_login(session, username, password)
        return None if result.person is not None else (result.reason or DenialReason.BAD_CREDENTIALS)

    # --- JupyterHub hooks ------------------------------------------------------

    async def authenticate(self, handler: web.RequestHandler, data: dict[str, str]) -> dict | None:
        username = data.get("username", "")
        address = client_address(handler.request, set(self.trusted_proxy_ips))
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

    def _decide(self, username: str, address: str, stage: str) -> tuple[EntryDecision, str, frozenset[Role]]:
        with transaction(self.session_factory) as session:
            facts = load_entry_facts(session, username, address)
            decision = decide_entry(facts, datetime.now(timezone.utc))
            record_entry(session, decision, username=facts.username, client_address=address, stage=stage)
            return decision, facts.username, facts.roles

    def entry_check(self, username: str, address: str, stage: str) -> EntryDecision:
        """The entry decision again (at spawn), recorded in the ledger."""
        return self._decide(username, address, stage)[0]

    def client_address(self, handler: web.RequestHandler) -> str:
        return client_address(handler.request, set(self.trusted_proxy_ips))

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
