"""Ingress requests in the reviewer app: reviewers' pages and the sessions' API.

    GET  ./ingress                 reviewers: the ingress requests waiting for them; reviewers and administrators:
                                   the approved reference data they may retire; everyone: their own
    GET  ./ingress/<id>            one request: description, SHA-256, columns and types, first rows, votes
    POST ./ingress/<id>/vote       decision (APPROVE | REJECT), comment, _xsrf
    POST ./ingress/<id>/withdraw   the requester withdraws an undecided request (_xsrf)
    POST ./ingress/<id>/retire     an administrator or eligible reviewer retires approved data: reason, _xsrf
    POST ./api/ingress             a session brings reference data in (token auth; `analysis_kernel.request_ingress`)
    POST ./api/reference           {"project"}: the approved reference data a member may read;
                                   {"project", "name"}: its approved copy, base64 (`db.reference(name)`)

Every step goes through `disclosure_review.workflow.ingress`.
"""
from __future__ import annotations

import base64
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from sqlalchemy.orm import Session
from tornado import web
from tornado.ioloop import IOLoop

from onsite_base.db import transaction
from access_control.enums import AuditEventType
from review_service.handlers import ApiHandler, BaseHandler
from review_service.i18n import translator
from disclosure_review import wire
from disclosure_review.workflow import ingress, permissions, service
from disclosure_review.workflow.enums import Decision
from disclosure_review.workflow.exceptions import ReleasePermissionDenied, ReleaseRequestNotFound
from onsite_base.errors import UserError


class IngressListHandler(BaseHandler):
    @web.authenticated
    def get(self) -> None:
        user = self.current_user
        with transaction(self.factory) as session:
            waiting = ingress.queue(session, user) if permissions.can_use_queue(session, user) else None
            self.render_page("ingress_list.html", session, waiting=waiting, in_use=ingress.in_use(session, user),
                             mine=ingress.requests_of(session, user))


class IngressPageHandler(BaseHandler):
    async def prepare(self) -> None:
        super().prepare()  # the client address check first
        self.viewer_presence = await self.presence()

    @web.authenticated
    def get(self, request_id: str) -> None:
        self.show(int(request_id))

    def show(self, request_id: int, *, status: int = 200, message: str = "", error: str = "") -> None:
        user = self.current_user
        with transaction(self.factory) as session:
            try:
                request = ingress.view(session, request_id, user)
            except UserError as exc:
                self.fail(exc)
            reviewer_view = request.requester != user  # a reviewer or an administrator: staff
            self.render_page(
                "ingress.html", session, status=status, request=request, message=message, error=error,
                # the requester sees the rows only at the terminal of their running session
                preview_withheld=None if reviewer_view else self.viewer_presence.withheld(request.project_id),
                can_vote=reviewer_view and permissions.can_vote_ingress(session, user, request),
                can_withdraw=permissions.can_withdraw_ingress(user, request),
                can_retire=permissions.can_retire(session, user, request),
                # reviewers vote independently: the others' votes are shown once they voted or it is decided
                votes_visible=not reviewer_view or request.decided_at is not None
                or any(v.reviewer == user for v in request.votes),
            )


    def act(self, rid: int, event: AuditEventType, done: str, step: Callable[[Session], object]) -> None:
        """Run `step` in a transaction and show the page with `done`, or with the refusal (audited as `event`)."""
        try:
            with transaction(self.factory) as session:
                step(session)
        except ReleaseRequestNotFound as exc:
            self.fail(exc)
        except UserError as exc:
            with transaction(self.factory) as session:
                service.record_refusal(session, event, actor=self.current_user, object=f"ingress_request/{rid}",
                                       reason=str(exc))
            denied = isinstance(exc, ReleasePermissionDenied)
            self.show(rid, status=HTTPStatus.FORBIDDEN if denied else HTTPStatus.BAD_REQUEST, error=self.error_text(exc))
            return
        self.show(rid, message=translator(self.language)(done))


class IngressVoteHandler(IngressPageHandler):
    @web.authenticated
    def post(self, request_id: str) -> None:
        try:
            decision = Decision(self.get_body_argument("decision", ""))
        except ValueError:
            raise web.HTTPError(400, translator(self.language)("err_choose_ingress_decision")) from None
        comment = self.get_body_argument("comment", "")
        self.act(int(request_id), AuditEventType.INGRESS_DECIDE, "ingress_vote_recorded",
                 lambda s: ingress.vote(s, int(request_id), self.current_user, decision, comment=comment))


class IngressWithdrawHandler(IngressPageHandler):
    @web.authenticated
    def post(self, request_id: str) -> None:
        self.act(int(request_id), AuditEventType.INGRESS_WITHDRAW, "ingress_withdrawn_done",
                 lambda s: ingress.withdraw(s, int(request_id), self.current_user))


class IngressRetireHandler(IngressPageHandler):
    @web.authenticated
    def post(self, request_id: str) -> None:
        reason = self.get_body_argument("reason", "")
        self.act(int(request_id), AuditEventType.INGRESS_RETIRE, "ingress_retired_done",
                 lambda s: ingress.retire(s, int(request_id), self.current_user, reason))


def _json_body(handler: ApiHandler) -> Any:
    try:
        return json.loads(handler.request.body)
    except ValueError:
        return None


class ApiIngressHandler(ApiHandler):
    async def post(self) -> None:
        payload = _json_body(self)
        requester = self.current_user

        def submit() -> dict[str, Any]:
            with transaction(self.factory) as session:
                r = ingress.submit(session, payload, requester, policy=self.settings["review_policy"])
                return {"id": r.id, "status": r.status.value, "name": r.name, "sha256": r.sha256, "rows": r.row_count,
                        "columns": r.columns}

        try:
            body = await IOLoop.current().run_in_executor(None, submit)  # parsing a large file takes a moment
        except UserError as exc:
            with transaction(self.factory) as session:
                service.record_refusal(session, AuditEventType.INGRESS_SUBMIT, actor=requester, object="", reason=str(exc))
            self.send_json(403 if isinstance(exc, ReleasePermissionDenied) else 400, {"message": str(exc)})
            return
        self.send_json(201, body)


class ApiReferenceHandler(ApiHandler):
    def post(self) -> None:
        try:
            read = wire.ReferencePayload.from_json(_json_body(self))
        except wire.PayloadInvalid as exc:
            self.send_json(400, {"message": f'{exc} (send {{"project": ...}} to list, {{"project": ..., "name": ...}} to read)'})
            return
        user, project, name = self.current_user, read.project, read.name
        try:
            with transaction(self.factory) as session:
                if name is None:
                    self.send_json(200, {"project": project, "references": ingress.describe_approved(session, project, user)})
                    return
                found = ingress.collect(session, project, name, user)
        except UserError as exc:
            with transaction(self.factory) as session:
                service.record_refusal(session, AuditEventType.INGRESS_COLLECT, actor=user,
                                       object=f"reference/{project}/{name or ''}", reason=str(exc))
            status = 404 if isinstance(exc, ReleaseRequestNotFound) else 403
            self.send_json(status, {"message": str(exc)})
            return
        self.send_json(200, {"project": project, "name": found.name, "filename": found.filename, "sha256": found.sha256,
                             "content_b64": base64.b64encode(found.content).decode()})


def routes(prefix: str) -> list[tuple[str, type]]:
    return [
        (rf"{prefix}ingress", IngressListHandler),
        (rf"{prefix}ingress/(\d+)", IngressPageHandler),
        (rf"{prefix}ingress/(\d+)/vote", IngressVoteHandler),
        (rf"{prefix}ingress/(\d+)/withdraw", IngressWithdrawHandler),
        (rf"{prefix}ingress/(\d+)/retire", IngressRetireHandler),
        (rf"{prefix}api/ingress", ApiIngressHandler),
        (rf"{prefix}api/reference", ApiReferenceHandler),
    ]
