"""The reviewer web app: a tornado application run as the JupyterHub service `onsite-review`.

People are identified by the Hub: pages through Hub OAuth (cookie, with
JupyterHub's XSRF protection on forms), the API only through a Hub token in
the Authorization header (the single-user server forwards release requests
with its own token; the requester is the token's user). Every action goes
through `disclosure_review.workflow.service`.

URL paths (under the service prefix, e.g. /services/onsite-review/):

    GET  ./                                  home: the queue for reviewers, else "my requests"
    GET  ./queue                             reviewer queue
    GET  ./mine                              the signed-in researcher's requests
    GET  ./requests/<id>                     request page
    POST ./requests/<id>/outputs/<oid>/vote  vote form (decision, comment, override_reason, revision, _xsrf)
    POST ./requests/<id>/outputs/<oid>/protection  reviewer's protection of a table: action=preview|save,
                                             method, base, secondary, merge_variable, merge_levels,
                                             merge_label, revision, previewed (save), _xsrf
    POST ./requests/<id>/withdraw            requester withdraws (_xsrf)
    GET  ./requests/<id>/package.zip         requester downloads the release package
    POST ./api/requests                      JSON submission (token auth)
    GET  ./api/requests/<id>                 JSON status for the requester (token auth)
    GET  ./oauth_callback                    Hub OAuth
    ./ingress…, POST ./api/ingress, ./api/reference   ingress requests (review_service.ingress)
"""
from __future__ import annotations

import base64
import json
import logging
from datetime import datetime
from types import SimpleNamespace
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jinja2
from jupyterhub.services.auth import HubOAuthCallbackHandler
from sqlalchemy.orm import Session
from tornado import web
from tornado.ioloop import IOLoop

from onsite_base.db import transaction
from access_control.enums import AuditEventType
from disclosure_review.sdc.enums import SecondaryMethod, Verdict
from disclosure_review.sdc.messages import result_text
from review_service.i18n import LANGUAGES, translator
from disclosure_review.workflow import messages, package, permissions, service
from disclosure_review.workflow import protection as protection_choice
from disclosure_review.workflow.enums import Decision, IngressStatus, OutputKind, ReleaseStatus
from disclosure_review.workflow.exceptions import ProtectionInvalid, ReleasePermissionDenied, ReleaseRequestNotFound
from onsite_base.errors import UserError
from onsite_base.settings import Settings
from onsite_base.web.service import HubServiceHandler, Identity, application, normal_prefix, templates

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
MAX_BODY_BYTES = 64 * 1024 * 1024  # 16 MB files, base64, several per request
PROTECTION_FIELDS = ("method", "base", "secondary", "merge_variable", "merge_levels", "merge_label")

def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def marked_rows(output) -> list[tuple[list[Any], str | None]]:
    """Rows of the recomputed table, each with "fail" / "review" / None from the service's own report."""
    if not output.recomputed or output.kind is not OutputKind.TABLE:
        return []
    marks = _cell_marks(output)
    return [(row, marks.get(tuple(row[:-1]))) for row in output.recomputed["rows"]]


def _cell_marks(output) -> dict[tuple, str]:
    """{released labels of a cell: "fail" | "review"} from the service's own check report."""
    marks: dict[tuple, str] = {}
    for result in (output.report or {}).get("results", []):
        if result.get("verdict") == Verdict.PASS.value:
            continue
        for cell in result.get("cells", []):
            key = tuple(cell)
            if marks.get(key) != Verdict.FAIL.value:
                marks[key] = result["verdict"]
    return marks


def _protection_form(output) -> dict[str, str]:
    """The protection form filled with the output's current choice (a reviewer changes it from there)."""
    current = output.current_protection
    if current is None:
        return {field: "" for field in PROTECTION_FIELDS} | {"method": protection_choice.SUBMITTED}
    choice = current.choice
    sdc = choice.get("protection") or {}
    merge = choice.get("merge") or {}
    return {
        "method": choice.get("method", protection_choice.SUBMITTED),
        "base": str(sdc.get("base") or ""),
        "secondary": sdc.get("secondary") or "",
        "merge_variable": merge.get("variable", ""),
        "merge_levels": "\n".join(merge.get("levels", [])),
        "merge_label": merge.get("label", ""),
    }


def _submitted_levels(output) -> dict[str, list[str]]:
    """Levels of each row and column variable in the table as submitted, shown beside the merge fields."""
    if output.kind is not OutputKind.TABLE or not output.spec:
        return {}
    spec = output.spec
    recomputed = output.protections[0].previous.get("recomputed") if output.protections else output.recomputed
    return protection_choice.dimension_levels(recomputed, [*spec.get("rows", []), *spec.get("columns", [])])


def _preview(job: service.ProtectionJob, checked) -> dict[str, Any]:
    """What the service recomputed with a reviewer's protection, shaped like an output for the templates."""
    shown = SimpleNamespace(kind=OutputKind.TABLE, recomputed=checked.recomputed, report=checked.report,
                            spec=job.spec.to_dict(), verdict=checked.verdict, error=checked.error,
                            error_message=checked.error_message, id=job.output_id)
    return {"output": shown, "rows": marked_rows(shown), "verified": checked.verified,
            "digest": service.content_digest(checked) if checked.verified else ""}


def _file_preview(output) -> dict[str, str | None]:
    """An opaque file as it would be released (re-rendered by the service), for the reviewer to judge."""
    if output.kind is not OutputKind.FILE or not output.content:
        return {"preview": None, "text": None}
    rendered = package.render_file(output.content, output.media_type)
    if output.media_type.startswith("image/"):
        return {"preview": base64.b64encode(rendered).decode(), "text": None}
    return {"preview": None, "text": rendered.decode("utf-8")}


def make_jinja() -> jinja2.Environment:
    env = templates(HERE / "templates")
    env.filters["when"] = _when
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, indent=2)
    env.globals.update(Verdict=Verdict, Decision=Decision, OutputKind=OutputKind, ReleaseStatus=ReleaseStatus,
                       protection_methods=protection_choice.METHODS, protection_fields=PROTECTION_FIELDS,
                       secondary_methods=[m.value for m in SecondaryMethod],
                       check_text=result_text,  # a stored check result's message in the page's language
                       stored_text=messages.text)  # a stored workflow message (error, mismatch), likewise
    return env


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
        key = {403: "error_forbidden", 404: "error_not_found", 400: "error_bad_request"}.get(status_code, "error_server")
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

    def fail(self, exc: UserError) -> None:
        status = 404 if isinstance(exc, ReleaseRequestNotFound) else 403 if isinstance(exc, ReleasePermissionDenied) else 400
        raise web.HTTPError(status, self.error_text(exc))


class HomeHandler(BaseHandler):
    @web.authenticated
    def get(self) -> None:
        with transaction(self.factory) as session:
            reviewer = permissions.can_use_queue(session, self.current_user)
        self.redirect(self.prefix + ("queue" if reviewer else "mine"))


class QueueHandler(BaseHandler):
    @web.authenticated
    def get(self) -> None:
        with transaction(self.factory) as session:
            try:
                requests = service.queue(session, self.current_user)
            except UserError as exc:
                self.fail(exc)
            rows = [
                {
                    "request": r,
                    "verdicts": {v: sum(1 for o in r.outputs if o.verdict is v) for v in Verdict},
                    "awaiting": sum(1 for o in r.outputs if permissions.can_vote(session, self.current_user, o)),
                }
                for r in requests
            ]
            from disclosure_review.workflow import ingress  # ingress requests waiting too: a link to their page

            self.render_page("queue.html", session, rows=rows, ingress_waiting=len(ingress.queue(session, self.current_user)))


class MineHandler(BaseHandler):
    @web.authenticated
    def get(self) -> None:
        with transaction(self.factory) as session:
            self.render_page("mine.html", session, requests=service.my_requests(session, self.current_user))


class RequestPageHandler(BaseHandler):
    @web.authenticated
    def get(self, request_id: str) -> None:
        self.show(int(request_id))

    def show(self, request_id: int, *, status: int = 200, message: str = "", error: str = "", error_output: int | None = None,
             protection_output: int | None = None, protection_form: dict[str, str] | None = None,
             protection_error: str = "", preview: dict[str, Any] | None = None) -> None:
        """The request page; `protection_*` and `preview` belong to output `protection_output` (a form just posted)."""
        user = self.current_user
        with transaction(self.factory) as session:
            try:
                request = service.view(session, request_id, user)
            except UserError as exc:
                self.fail(exc)
            reviewer_view = permissions.can_review(session, user, request)
            # reference data retired since submission: the service refuses approval and protection, so say why here
            retired = {o.id: service.retired_references(session, o) if o.decision is None else [] for o in request.outputs}
            outputs = [
                {
                    "output": o,
                    "rows": marked_rows(o),
                    "can_vote": reviewer_view and permissions.can_vote(session, user, o),
                    "votes_visible": not reviewer_view
                    or o.decision is not None
                    or any(v.reviewer == user for v in o.votes)
                    or request.status not in (ReleaseStatus.SUBMITTED, ReleaseStatus.PARTIALLY_REVIEWED),
                    "retired": retired[o.id],
                    "can_protect": reviewer_view and not retired[o.id] and permissions.can_protect(session, user, o),
                    "levels": _submitted_levels(o) if reviewer_view else {},
                    "protection_form": protection_form if o.id == protection_output and protection_form is not None
                    else _protection_form(o),
                    "protection_error": protection_error if o.id == protection_output else "",
                    "protection_preview": preview if o.id == protection_output else None,
                    **_file_preview(o),
                }
                for o in request.outputs
            ]
            self.render_page(
                "request.html",
                session,
                status=status,
                request=request,
                outputs=outputs,
                reviewer_view=reviewer_view,
                is_requester=request.requester == user,
                can_withdraw=permissions.can_withdraw(user, request),
                can_download=permissions.can_download(user, request),
                message=message,
                error=error,
                error_output=error_output,
            )


class VoteHandler(RequestPageHandler):
    @web.authenticated
    def post(self, request_id: str, output_id: str) -> None:
        t = translator(self.language)
        try:
            decision = Decision(self.get_body_argument("decision", ""))
        except ValueError:
            raise web.HTTPError(400, t("err_choose_decision")) from None
        try:
            with transaction(self.factory) as session:
                output = service.output_of(session, int(request_id), int(output_id))
                service.vote(
                    session,
                    output.id,
                    self.current_user,
                    decision,
                    settings=self.settings["onsite"],
                    comment=self.get_body_argument("comment", ""),
                    override_reason=self.get_body_argument("override_reason", ""),
                    revision=_revision(self.get_body_argument("revision", ""), t),
                )
        except ReleaseRequestNotFound as exc:
            self.fail(exc)
        except UserError as exc:
            self.record_denied(AuditEventType.OUTPUT_DECIDE, f"release_request/{request_id}/{output_id}", exc)
            self.show(int(request_id), status=HTTPStatus.BAD_REQUEST if not isinstance(exc, ReleasePermissionDenied) else 403,
                      error=self.error_text(exc), error_output=int(output_id))
            return
        self.show(int(request_id), message=t("vote_recorded"))

    def record_denied(self, action: AuditEventType, obj: str, exc: UserError) -> None:
        with transaction(self.factory) as session:
            service.record_refusal(session, action, actor=self.current_user, object=obj, reason=str(exc))


def _revision(text: str, t) -> int | None:
    """The protection revision a form was rendered with (absent: not checked)."""
    try:
        return int(text) if text.strip() else None
    except ValueError:
        raise web.HTTPError(400, t("err_revision")) from None


class ProtectionHandler(VoteHandler):
    """A reviewer previews or saves a protection of one table: the service recomputes it from the source data."""

    @web.authenticated
    async def post(self, request_id: str, output_id: str) -> None:
        t = translator(self.language)
        rid, oid = int(request_id), int(output_id)
        action = self.get_body_argument("action", "preview")
        if action not in ("preview", "save"):
            raise web.HTTPError(400, t("err_protection_action"))
        form = {field: self.get_body_argument(field, "") for field in PROTECTION_FIELDS}
        revision = _revision(self.get_body_argument("revision", ""), t)
        previewed = self.get_body_argument("previewed", "").strip()
        reviewer = self.current_user

        def work():
            # Recompute outside any transaction (SQLite has one writer; the query may take seconds).
            with transaction(self.factory) as session:
                job = service.prepare_protection(session, rid, oid, reviewer,
                                                 protection_choice.parse_choice(**form), revision=revision)
            if action == "save" and not previewed:
                raise ProtectionInvalid("preview the protection before saving it", key="preview_first")
            checked = service.compute_protection(job)
            if action == "save":
                with transaction(self.factory) as session:
                    service.apply_protection(session, job, checked, previewed=previewed)
            return job, checked

        try:
            job, checked = await IOLoop.current().run_in_executor(None, work)
        except ReleaseRequestNotFound as exc:
            self.fail(exc)
        except UserError as exc:
            denied = isinstance(exc, ReleasePermissionDenied)
            if denied or action == "save":
                self.record_denied(AuditEventType.OUTPUT_PROTECT, f"release_request/{rid}/{oid}", exc)
            if denied:  # no form to show the error beside: the error page says why
                self.fail(exc)
            # The page again, the error beside the form and what the reviewer typed kept.
            self.show(rid, status=HTTPStatus.BAD_REQUEST, protection_output=oid, protection_form=form,
                      protection_error=self.error_text(exc))
            return
        if action == "save":
            self.show(rid, message=t("protection_saved"))
        else:
            self.show(rid, protection_output=oid, protection_form=form, preview=_preview(job, checked))


class WithdrawHandler(RequestPageHandler):
    @web.authenticated
    def post(self, request_id: str) -> None:
        t = translator(self.language)
        try:
            with transaction(self.factory) as session:
                service.withdraw(session, int(request_id), self.current_user)
        except UserError as exc:
            self.fail(exc)
        self.show(int(request_id), message=t("withdrawn_done"))


class DownloadHandler(BaseHandler):
    @web.authenticated
    def get(self, request_id: str) -> None:
        try:
            with transaction(self.factory) as session:
                name, data = service.collect(session, int(request_id), self.current_user)
        except UserError as exc:
            with transaction(self.factory) as session:
                service.record_refusal(
                    session, AuditEventType.RELEASE_COLLECT, actor=self.current_user,
                    object=f"release_request/{request_id}", reason=str(exc),
                )
            self.fail(exc)
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(data)


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

    @staticmethod
    def summary(request) -> dict[str, Any]:
        return {
            "id": request.id,
            "status": request.status.value,
            "return_comment": request.return_comment,
            "outputs": [
                {
                    "name": o.name,
                    "verdict": o.verdict.value,
                    "verified": o.verified,
                    "error": o.error,
                    "decision": o.decision.value if o.decision else None,
                }
                for o in request.outputs
            ],
        }


class ApiRequestsHandler(ApiHandler):
    async def post(self) -> None:
        try:
            payload = json.loads(self.request.body)
        except ValueError:
            self.send_json(400, {"message": "the body must be a JSON object"})
            return
        requester = self.current_user

        def submit() -> dict[str, Any]:
            # Recompute outside any transaction: SQLite has one writer, and logins must not wait on a query.
            with transaction(self.factory) as session:
                authorized = service.authorize(session, payload, requester)
            checked = service.check_outputs(authorized)
            with transaction(self.factory) as session:
                return self.summary(service.record_submission(session, authorized, checked))

        try:
            body = await IOLoop.current().run_in_executor(None, submit)
        except UserError as exc:
            status = 403 if isinstance(exc, ReleasePermissionDenied) else 400
            with transaction(self.factory) as session:
                service.record_refusal(session, AuditEventType.RELEASE_SUBMIT, actor=requester, object="", reason=str(exc))
            self.send_json(status, {"message": str(exc)})
            return
        self.send_json(201, body)


class ApiRequestHandler(ApiHandler):
    def get(self, request_id: str) -> None:
        with transaction(self.factory) as session:
            try:
                request = service.view(session, int(request_id), self.current_user)
            except UserError as exc:
                status = 404 if isinstance(exc, ReleaseRequestNotFound) else 403
                self.send_json(status, {"message": str(exc)})
                return
            self.send_json(200, self.summary(request))


def make_app(
    settings: Settings,
    *,
    prefix: str = "/",
    test_identity: Identity | None = None,
    test_api_identity: Identity | None = None,
    cookie_secret: bytes | None = None,
) -> web.Application:
    """The application. `test_identity`/`test_api_identity` replace the Hub in tests only."""
    prefix = normal_prefix(prefix)
    p = prefix
    routes = [
        (rf"{p}", HomeHandler),
        (rf"{p}queue", QueueHandler),
        (rf"{p}mine", MineHandler),
        (rf"{p}requests/(\d+)", RequestPageHandler),
        (rf"{p}requests/(\d+)/outputs/(\d+)/vote", VoteHandler),
        (rf"{p}requests/(\d+)/outputs/(\d+)/protection", ProtectionHandler),
        (rf"{p}requests/(\d+)/withdraw", WithdrawHandler),
        (rf"{p}requests/(\d+)/package\.zip", DownloadHandler),
        (rf"{p}api/requests", ApiRequestsHandler),
        (rf"{p}api/requests/(\d+)", ApiRequestHandler),
        (rf"{p}oauth_callback", HubOAuthCallbackHandler),
    ]
    # ingress requests (reference data brought in): their own module
    from review_service import ingress

    routes += ingress.routes(p)
    return application(routes, settings, prefix, HERE, jinja=make_jinja(), cookie_secret=cookie_secret,
                       test_identity=test_identity, test_api_identity=test_api_identity, max_body_size=MAX_BODY_BYTES)
