"""The handler bases of the reviewer app: pages (Hub OAuth, rendered in the page's language) and
the JSON API (Hub token only). `app` (release requests) and `ingress` (reference data) build on them."""
from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from sqlalchemy.orm import Session
from tornado import web

from access_control.enums import Role
from access_control.hub_api import HubApiUnavailable
from access_control.policy import person_roles
from access_control.sessions import session_at
from disclosure_review.workflow import messages, permissions
from disclosure_review.workflow.enums import Decision, IngressStatus, ReleaseStatus
from disclosure_review.workflow.exceptions import ReleasePermissionDenied, ReleaseRequestNotFound
from disclosure_review.workflow.service import Presence
from onsite_base.db import transaction
from onsite_base.errors import UserError
from onsite_base.web.service import HubServiceHandler
from review_service.i18n import LANGUAGES, translator

log = logging.getLogger(__name__)


class BaseHandler(HubServiceHandler):
    """Identity, language, database and rendering shared by every page."""

    content_security_policy = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"  # previews are data: images

    def render_page(self, template: str, session: Session, status: int = 200, **context: Any) -> None:
        """Render inside the caller's transaction (SQLite: one writer at a time, so never nest one)."""
        t = translator(self.language)
        is_reviewer = bool(self.current_user) and permissions.can_use_queue(session, self.current_user)
        html = self.settings["jinja"].get_template(template).render(
            t=t,
            lang=self.language,
            languages=LANGUAGES,
            lang_url=self.lang_url,
            prefix=self.prefix,
            user=self.current_user,
            is_reviewer=is_reviewer,
            xsrf_form_html=self.xsrf_form_html,
            **context,
        )
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(html)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        t = translator(self.language)
        exc = kwargs.get("exc_info", (None, None))[1]
        key = {403: "error_forbidden", 404: "error_not_found", 400: "error_bad_request",
               409: "error_conflict"}.get(status_code, "error_server")
        detail = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else ""
        if isinstance(exc, web.HTTPError) and "_xsrf" in (exc.log_message or ""):
            detail = t("error_xsrf")
        if status_code >= 500:
            detail = ""
        try:
            with transaction(self.factory) as session:
                self.render_page("error.html", session, status=status_code, heading=t(key), detail=detail)
        except Exception:  # the database may be what failed
            self.finish(f"{status_code} {t(key)}")

    def error_text(self, exc: UserError) -> str:
        """The refusal in the page's language when the workflow gave it a key, else as written."""
        key = getattr(exc, "key", None)
        if key:
            t = translator(self.language)
            return t(f"err_{key}", **{name: self.param_text(value, t) for name, value in exc.params.items()})
        return str(exc)

    def param_text(self, value: Any, t) -> Any:
        """A refusal's parameter as shown: a request's status as that kind of request's, a decision as the form
        names it, a stored message rendered."""
        if isinstance(value, Decision):
            return t(f"decision_{value.value}")
        if isinstance(value, ReleaseStatus):
            return t(f"status_{value.value}")
        if isinstance(value, IngressStatus):
            return t(f"ingress_status_{value.value}")
        if isinstance(value, dict):
            return messages.text(value, self.language)
        return value

    async def presence(self) -> Presence:
        """Whether the signed-in person asks from the terminal of their running session (the Hub says whether it
        runs, the ledger's SESSION_START from where): a researcher sees unreleased content only there. When the
        Hub cannot say, `unknown`: nothing unreleased is shown (fail closed)."""
        user = self.current_user
        if not user:
            return Presence()
        with transaction(self.factory) as session:
            if Role.RESEARCHER not in person_roles(session, user):  # staff see by role, not by session
                return Presence()
        try:
            live = await session_at(self.settings["hub_client"], self.factory, user, self.client_address)
        except HubApiUnavailable as exc:
            log.warning("whether %s is in a session could not be asked (%s): unreleased content withheld", user, exc)
            return Presence(unknown=True)
        return Presence(live)

    def fail(self, exc: UserError) -> None:
        status = 404 if isinstance(exc, ReleaseRequestNotFound) else 403 if isinstance(exc, ReleasePermissionDenied) else 400
        raise web.HTTPError(status, self.error_text(exc))


class ApiHandler(BaseHandler):
    """JSON over Hub token auth only: no cookies, so no cross-site request can reach it."""

    def get_current_user(self) -> str | None:
        api_seam = self.settings.get("test_api_identity")
        if api_seam is not None:
            return api_seam(self)
        user = super().get_current_user()
        return user if getattr(self, "_token_authenticated", False) else None

    def check_xsrf_cookie(self) -> None:
        return None  # token auth only (see get_current_user)

    def prepare(self) -> None:
        super().prepare()  # the client address check
        if not self.current_user:
            self.send_json(401, {"message": "authenticate with a Hub token: Authorization: token <token>"})

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message and status_code < 500 else HTTPStatus(status_code).phrase
        self.send_json(status_code, {"message": message})
