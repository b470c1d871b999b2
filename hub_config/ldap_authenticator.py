"""Hub log-in against an LDAP directory: jupyterhub-ldapauthenticator's bind, Onsite's entry decision.

`OnsiteLDAPAuthenticator` is both an `OnsiteAuthenticator` (client address,
entry decision, ledger) and an `LDAPAuthenticator` (all of its settings and
its bind logic: `server_address`, `server_port`, `tls_strategy`,
`tls_kwargs`, `bind_dn_template`, `lookup_dn` and friends, `allowed_groups`).
It overrides one seam, `check_password`, which

- refuses user names that NFKC normalisation changes (full-width look-alikes)
  and canonicalises the rest as the local store does, before LDAP sees them;
- runs `LDAPAuthenticator.authenticate` in a thread of its own with a time
  limit: that method is a coroutine that blocks (ldap3 is synchronous) and
  gives ldap3 no socket timeouts, so awaited directly a slow directory would
  freeze the whole hub (ldapauthenticator issue #124);
- turns a directory that is down, slow or fails TLS into a "directory
  unavailable" refusal on the login page, never an HTTP 500;
- writes each refusal to the ledger as LOGIN_FAIL.

The client address is judged before `check_password` is called
(`OnsiteAuthenticator.authenticate`): from an address that is neither a
terminal nor a staff network the directory is never asked, so it can tell
nobody there whether a password is right, and its lock-out policy never
counts such attempts.

Entry point name: `onsite-ldap` (group `jupyterhub.authenticators`).
"""
from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

from ldap3.core.exceptions import LDAPException
from ldapauthenticator import LDAPAuthenticator
from tornado import web
from traitlets import Float, Int, TraitError, default, validate

from access_control import audit
from onsite_base.db import transaction
from access_control.entry import MAX_SHOWN_NAME, DenialReason
from access_control.enums import AuditEventType, Outcome
from access_control.ldap import DirectoryUnavailable, LdapSettings, TlsMode, login_name
from hub_config.authenticator import EntryDenied, OnsiteAuthenticator
from onsite_base.errors import UserError


TLS_STRATEGY = {TlsMode.START_TLS: "before_bind", TlsMode.LDAPS: "on_connect", TlsMode.NONE: "insecure"}


def ldap_traits(settings: LdapSettings) -> dict[str, Any]:
    """OnsiteLDAPAuthenticator traits for the directory described by `settings` (ONSITE_LDAP_*),
    so the hub and the admin commands read one configuration.

    ldapauthenticator talks to one server: only the first of `server_uris` is used for log-in.
    """
    uri = urlsplit(settings.server_uris[0])
    traits: dict[str, Any] = {
        "server_address": uri.hostname,
        "server_port": uri.port or (636 if settings.tls is TlsMode.LDAPS else 389),
        "tls_strategy": TLS_STRATEGY[settings.tls],
        "tls_kwargs": {"validate": ssl.CERT_REQUIRED,
                       **({"ca_certs_file": str(settings.ca_file)} if settings.ca_file else {})},
        # StartTLS, bind, searches: each may take up to receive_timeout.
        "directory_timeout": settings.connect_timeout + 3 * settings.receive_timeout,
    }
    if settings.bind_dn_template is not None:
        return {**traits, "bind_dn_template": [settings.bind_dn_template]}
    return {
        **traits,
        "lookup_dn": True,
        "user_search_base": settings.people_base,
        "user_attribute": settings.user_attribute,
        "lookup_dn_search_filter": f"(&(objectClass={settings.user_object_class})({{login_attr}}={{login}}))",
        "lookup_dn_search_user": settings.service_dn,
        "lookup_dn_search_password": settings.service_password,
        "lookup_dn_user_dn_attribute": settings.user_attribute,
    }


class DirectoryUnavailableDenied(EntryDenied):
    """The login page's refusal when the directory cannot be asked: reason
    `DenialReason.DIRECTORY_UNAVAILABLE`, HTTP 503 (a passing outage, not a
    refusal of the person), its message in Japanese and English."""

    def __init__(self, log_message: str) -> None:
        web.HTTPError.__init__(self, 503, log_message="LDAP directory unavailable: %s" % log_message.replace("%", "%%"))
        self.reasons = (DenialReason.DIRECTORY_UNAVAILABLE,)
        # JupyterHub's login page shows `jupyterhub_message` (LoginHandler.write_error).
        self.jupyterhub_message = (f"ログインできません: {DirectoryUnavailable.user_message('ja')}\n"
                                   f"Login refused: {DirectoryUnavailable.user_message('en')}")


class OnsiteLDAPAuthenticator(OnsiteAuthenticator, LDAPAuthenticator):
    """LDAPAuthenticator's bind, then Onsite's entry decision; a down directory is a refusal, not a crash."""

    directory_timeout = Float(
        10.0,
        help="""Seconds a login waits for the LDAP directory (connect, StartTLS,
        binds and group searches together) before it is refused as "directory
        unavailable". ldapauthenticator 2.0.2 sets no socket timeouts, so this
        is the only bound on a slow directory. Keep it below the proxy's and the
        browser's request timeouts (60 s). Must be positive.""",
    ).tag(config=True)

    directory_threads = Int(
        4,
        help="""How many logins may wait for the LDAP directory at once, each in
        a thread of its own, so a slow directory never blocks the hub's event
        loop. When all are held by a hung directory, further logins are refused
        at once as "directory unavailable" until the directory answers (or its
        connections fail). Separate from the threads the hub uses for its database.""",
    ).tag(config=True)

    @default("tls_kwargs")
    def _tls_kwargs_default(self) -> dict:
        return {"validate": ssl.CERT_REQUIRED}

    @validate("tls_kwargs")
    def _verify_certificates(self, proposal: Any) -> dict:
        # ldap3's Tls defaults to CERT_NONE: any certificate, from anyone, would do. Onsite verifies
        # unless the configuration says otherwise explicitly.
        kwargs = {"validate": ssl.CERT_REQUIRED, **proposal.value}
        if kwargs["validate"] != ssl.CERT_REQUIRED:
            self.log.warning("tls_kwargs validate=%s: the LDAP server's certificate is not verified, so anyone "
                             "on the network path can read passwords", kwargs["validate"])
        return kwargs

    @validate("directory_timeout")
    def _positive_timeout(self, proposal: Any) -> float:
        if proposal.value <= 0:
            raise TraitError("OnsiteLDAPAuthenticator.directory_timeout must be a positive number of seconds")
        return proposal.value

    _directory_slots: threading.BoundedSemaphore | None = None

    @property
    def directory_slots(self) -> threading.BoundedSemaphore:
        if self._directory_slots is None:
            self._directory_slots = threading.BoundedSemaphore(self.directory_threads)
        return self._directory_slots

    async def check_password(self, handler: web.RequestHandler | None, username: str, password: str) -> DenialReason | None:
        """None when LDAP accepts the password, else why not; a down directory refuses with its own message."""
        try:
            name = login_name(username)
        except UserError as refused:
            self.log.warning("LDAP login refused before asking the directory: %s", refused)
            # Control characters (NUL) escaped: PostgreSQL text cannot hold NUL.
            shown = username.encode("unicode_escape").decode("ascii")[:MAX_SHOWN_NAME]
            await self._record_failure(shown, DenialReason.BAD_CREDENTIALS.value, {"ambiguous_name": True})
            return DenialReason.BAD_CREDENTIALS
        try:
            model = await self._ldap_authenticate(handler, name, password)
        except (LDAPException, OSError, TimeoutError) as error:
            self.log.error(
                "LDAP directory unavailable for the login of %s: %s: %s. Check server_address, server_port, "
                "tls_strategy and tls_kwargs (ca_certs_file), and that the directory answers within "
                "directory_timeout=%.1f s", name, type(error).__name__, error, self.directory_timeout)
            await self._record_failure(name, DenialReason.DIRECTORY_UNAVAILABLE.value, {"error": type(error).__name__},
                                       Outcome.FAILED)
            # Raised, not returned: OnsiteAuthenticator would answer 403 as for a refused person.
            raise DirectoryUnavailableDenied(f"{type(error).__name__}: {error}") from error
        if model is None:
            await self._record_failure(name, DenialReason.BAD_CREDENTIALS.value, {"directory": "ldap"})
            return DenialReason.BAD_CREDENTIALS
        if self.allowed_groups and not set(model.get("auth_state", {}).get("ldap_groups", [])) & set(self.allowed_groups):
            # allow_all is on (the entry decision decides), so LDAPAuthenticator.check_allowed would not look.
            self.log.warning("LDAP login of %s refused: in none of allowed_groups", name)
            await self._record_failure(name, DenialReason.ACCOUNT_UNKNOWN.value, {"directory": "ldap"})
            return DenialReason.ACCOUNT_UNKNOWN
        return None

    async def _ldap_authenticate(self, handler: Any, name: str, password: str) -> dict | None:
        """LDAPAuthenticator.authenticate in a thread of its own, bounded by directory_timeout.

        Daemon threads, not an executor: a thread stuck on a hung directory must
        neither hold up the hub's shutdown nor take a thread the hub needs for
        its database. At most `directory_threads` run; when all are taken the
        login is refused at once.
        """
        if not self.directory_slots.acquire(blocking=False):
            raise TimeoutError(f"all directory_threads={self.directory_threads} are waiting for the directory")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[dict | None] = loop.create_future()
        data = {"username": name, "password": password}

        def deliver(result: dict | None, error: BaseException | None) -> None:
            if answer.done():  # the login already gave up waiting
                return
            answer.set_exception(error) if error is not None else answer.set_result(result)

        def run() -> None:
            result: dict | None = None
            error: BaseException | None = None
            try:
                result = asyncio.run(LDAPAuthenticator.authenticate(self, handler, data))
            except BaseException as raised:  # noqa: BLE001 - handed to the waiting coroutine
                error = raised
            finally:
                self.directory_slots.release()
            try:
                loop.call_soon_threadsafe(deliver, result, error)
            except RuntimeError:
                pass  # the hub's loop has closed (shutting down); nobody is waiting

        threading.Thread(target=run, name="onsite-ldap-login", daemon=True).start()
        try:
            return await asyncio.wait_for(answer, self.directory_timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no answer within directory_timeout={self.directory_timeout} s") from None

    async def _record_failure(self, name: str, reason: str, details: dict, outcome: Outcome = Outcome.DENIED) -> None:
        def write() -> None:
            with transaction(self.session_factory) as session:
                audit.record(session, AuditEventType.LOGIN_FAIL, actor=name, object=f"person:{name}",
                             outcome=outcome, details={"reason": reason, "directory": "ldap", **details})

        await asyncio.to_thread(write)
