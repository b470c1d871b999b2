"""The base of every admin page: who may use it (administrators; facility managers the pages that say so, within
their facilities — `self.scope`; every refusal in the ledger), its language, its database, rendering, and forms
that change the policy through `access_control.admin.change`.

Its own module so that the pages of other modules (admin_service.operations) subclass it while
admin_service.app, which registers every page, imports them.
"""
from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote, urlencode

from sqlalchemy.orm import Session
from tornado import web
from tornado.web import decode_signed_value

from access_control import audit, forms, policy
from access_control.admin import change, ldap_directory
from access_control.enums import AuditEventType, Outcome
from access_control.errors import Done, Label, PolicyError, error_text
from admin_service.i18n import LANGUAGES, translator
from onsite_base.db import read_transaction, transaction
from onsite_base.errors import UserError
from onsite_base.web.service import HubServiceHandler

log = logging.getLogger(__name__)

SERVICE_NAME = "onsite-admin"
DONE_MAX_AGE_DAYS = 1
Performed = tuple[str, Done]
"""Where a form goes once done (a path under the service) and what it did."""


class AdminHandler(HubServiceHandler):
    """Identity (administrators only), language, database and rendering shared by every page.

    A page sets `template` and `context()`; a form handler subclasses its page,
    sets `form` and implements `perform()` returning (path to go to, done key).
    """

    template = ""
    form = ""
    for_managers = False
    """Whether facility managers may use this page; it then shows and changes only what `self.scope` covers."""
    scope: policy.Scope | None = None
    """What the signed-in person may administer (policy.actor_scope); None: nothing."""

    def prepare(self) -> None:
        """Administrators; facility managers on the pages `for_managers`; any other signed-in person is refused
        and recorded."""
        super().prepare()  # the client address check
        user = self.current_user
        if user is None:
            return  # @web.authenticated sends them to log in
        with read_transaction(self.factory) as session:
            try:
                self.scope = policy.actor_scope(session, user)
            except PolicyError:
                self.scope = None
        if self.scope is not None and (self.scope.everything or self.for_managers):
            return
        reason = "not an administrator" if self.scope is None else "a facility manager on an administrator's page"
        self.record_refusal(reason)
        raise web.HTTPError(403, "not_admin" if self.scope is None else "admin_only")

    def record_refusal(self, reason: str, **details: audit.DetailValue) -> None:
        """An attempt outside the person's scope, in the ledger (ADMIN_ACCESS, DENIED)."""
        with transaction(self.factory) as session:
            audit.record(
                session,
                AuditEventType.ADMIN_ACCESS,
                actor=self.current_user[: audit.MAX_ACTOR],
                object=f"service:{SERVICE_NAME}",
                outcome=Outcome.DENIED,
                details={"service": SERVICE_NAME, "method": self.request.method, "path": self.request.path[:300],
                         "reason": reason, **details},
            )
        log.warning("admin pages refused to %s (%s %s): %s", self.current_user, self.request.method, self.request.path, reason)

    content_security_policy = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"

    @property
    def actor(self) -> str:
        """Who the ledger names for changes made here: the administrator's user name."""
        return self.current_user

    # ------------------------------------------------------------ rendering

    def context(self, session: Session, *args: str) -> dict[str, Any]:
        return {}

    def render_page(self, template: str, status: int = 200, **context: Any) -> None:
        t = translator(self.language)
        html = self.settings["jinja"].get_template(template).render(
            t=t,
            lang=self.language,
            languages=LANGUAGES,
            lang_url=self.lang_url,
            prefix=self.prefix,
            section=self.request.path.removeprefix(self.prefix).split("/")[0].replace("grants", "datasets"),
            user=self.current_user,
            scope=self.scope,
            xsrf_form_html=self.xsrf_form_html,
            done=self.done_text(),
            **context,
        )
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(html)

    def refusal(self, error: UserError) -> str:
        """A refusal as the page shows it: in its language, moments in the installation's zone."""
        return error_text(error, self.language, self.settings["onsite"].timezone)

    def done_url(self, url: str, done: Done) -> str:
        """Where a form sends the browser once done: the page, with what was done signed into the query, so that
        no link from elsewhere can make a page claim a change it did not make."""
        params = {name: [str(value), isinstance(value, Label)] for name, value in done.params.items()}
        signed = self.create_signed_value("done", json.dumps({"key": done.key, "params": params}, ensure_ascii=False))
        return f"{url}?{urlencode({'done': signed})}"

    def done_text(self) -> str:
        """What the form just posted did (the redirect's signed `done`), in the page's language."""
        signed = self.get_query_argument("done", "")
        value = signed and decode_signed_value(self.application.settings["cookie_secret"], "done", signed,
                                               max_age_days=DONE_MAX_AGE_DAYS)
        if not value:
            return ""
        done = json.loads(value)
        params = {name: Label(text) if label else text for name, (text, label) in done["params"].items()}
        return Done(done["key"], **params).text(self.language)

    def show(self, *args: str, status: int = 200, error: str = "", values: dict[str, str] | None = None,
             see: str = "") -> None:
        """The page, optionally with a refused form (`self.form`), the values typed into it and the page (`see`,
        a path under the service) showing what the refusal names."""
        with read_transaction(self.factory) as session:
            context = self.context(session, *args)
            context.update(error=error, error_form=self.form if error else "", values=values or {}, see=see,
                           see_label=self.page_label(see))
            self.render_page(self.template, status=status, **context)

    @web.authenticated
    def get(self, *args: str) -> None:
        self.show(*args)

    # ------------------------------------------------------------ forms

    def directory(self) -> policy.GroupDirectory | None:
        """The LDAP directory whose groups follow roles and memberships (ONSITE_LDAP_URI), as for `onsite admin`."""
        return ldap_directory()

    def arg(self, name: str) -> str:
        return self.get_body_argument(name, "")

    def changed(self, name: str) -> str | None:
        """A field of a change form: absent or empty leaves it as it is, '-' clears it (forms.parse_change)."""
        return forms.parse_change(self.get_body_argument(name, None))

    def perform(self, session: Session, *args: str) -> Performed:
        raise web.HTTPError(405)

    def page_label(self, page: str) -> str:
        """A link's text for a page under the service: its section's name, then the record it shows."""
        if not page:
            return ""
        section, _, record = page.partition("/")
        t = translator(self.language)
        return t("see_page", page=t(f"nav_{section}") + (f" › {unquote(record)}" if record else ""))

    @web.authenticated
    def post(self, *args: str) -> None:
        try:
            with change(self.factory) as session:
                target, done = self.perform(session, *args)
        except UserError as e:
            if isinstance(e, policy.OutOfScope) or (isinstance(e, PolicyError) and e.key == "administrators_only"):
                self.record_refusal("outside the facility manager's scope", refused=e.key,
                                    names={k: str(v)[:100] for k, v in e.params.items()})
            values = {k: ", ".join(self.get_body_arguments(k)) for k in self.request.body_arguments if k not in ("_xsrf", "password")}
            see = e.page() if isinstance(e, PolicyError) else ""
            self.show(*self.page_args(*args), status=400, error=self.refusal(e), values=values, see=see)
            return
        self.redirect(self.done_url(self.prefix + target, done), status=303)

    def page_args(self, *args: str) -> tuple[str, ...]:
        """The page's own URL arguments from a form's (most forms post to their page)."""
        return args

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        t = translator(self.language)
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else ""
        key = {403: "error_forbidden", 404: "error_not_found", 400: "error_bad_request"}.get(status_code, "error_server")
        if message in ("not_admin", "admin_only"):
            detail = t(f"error_{message}")
        elif "_xsrf" in message:
            detail = t("error_xsrf")
        else:
            detail = message if status_code < 500 else ""
        self.render_page("error.html", status=status_code, heading=t(key), detail=detail)
