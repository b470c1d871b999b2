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
    GET  ./requests/<id>                     request page (a researcher sees unreleased content only at the
                                             terminal of their running session: `service.content_access`)
    POST ./requests/<id>/outputs/<oid>/vote  vote form (decision, comment, override_reason, revision, _xsrf)
    POST ./requests/<id>/outputs/<oid>/protection  reviewer's protection of a table: action=preview|save,
                                             method, base, secondary, merge_variable, merge_levels,
                                             merge_label, revision, previewed (save), _xsrf
    POST ./requests/<id>/withdraw            requester withdraws (_xsrf)
    GET  ./requests/<id>/package.zip         requester downloads the release package
    POST ./api/requests                      JSON submission (token auth)
    GET  ./api/requests/<id>                 JSON status for the requester (token auth; statuses and codes only;
                                             at their session's terminal, a perturbed table's released cells)
    GET  ./oauth_callback                    Hub OAuth
    ./ingress…, POST ./api/ingress, ./api/reference   ingress requests (review_service.ingress)
"""
from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jinja2
from jupyterhub.services.auth import HubOAuthCallbackHandler
from tornado import web
from tornado.ioloop import IOLoop

from access_control.enums import AuditEventType
from access_control.hub_api import HubClient
from disclosure_review.sdc import text
from disclosure_review.sdc.enums import SecondaryMethod, Verdict
from disclosure_review.sdc.microdata import ExtractSpec
from disclosure_review import wire
from disclosure_review.sdc.messages import result_text
from disclosure_review.workflow import ingress, messages, package, permissions, service
from disclosure_review.workflow import protection as protection_choice
from disclosure_review.workflow.enums import Decision, OutputKind, ReleaseStatus
from disclosure_review.workflow.exceptions import PackageTampered, ReleasePermissionDenied, ReleaseRequestNotFound
from disclosure_review.workflow.policies import ReviewPolicy
from disclosure_review.workflow.store import requests_with_status
from onsite_base.db import transaction
from onsite_base.errors import UserError
from onsite_base.settings import Settings
from onsite_base.web.service import Identity, application, normal_prefix, templates
from review_service import ingress as ingress_pages
from review_service.handlers import ApiHandler, BaseHandler
from review_service.i18n import parameter_items, translator
from review_service.labels import code_labels, labelled

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
MAX_BODY_BYTES = wire.MAX_REQUEST_BYTES
"""Bodies the server reads for any handler; `ApiRequestsHandler` applies the policy's (lower or equal) itself."""
DRAIN_FACTOR = 4
"""A release request's body past the policy's limit is read (not kept) up to this many times it, so that the client
reads the 413 answer; past that the connection is cut."""
OUTPUTS_PER_PAGE = 10
CELLS_PER_PAGE = 100
"""A request page shows this many outputs, and of each table this many cells (and shadow rows), with paging links."""
RELEASED_SHOWN = 20
"""The queue page lists this many of the newest released requests, each linking to its package."""
PROTECTION_FIELDS = ("method", "base", "secondary", "merge_variable", "merge_levels", "merge_label",
                     "swap_hierarchy", "swap_similar", "swap_rate", "swap_seed")
DEFAULT_SWAP_RATE = "0.05"


def marked_rows(output, window: slice = slice(None)) -> list[tuple[list[Any], str | None]]:
    """Rows `window` of the recomputed table, each with "fail" / "review" / None from the service's own report."""
    if not output.recomputed or output.kind is not OutputKind.TABLE:
        return []
    marks = _cell_marks(output)
    return [(row, marks.get(tuple(row[:-1]))) for row in output.recomputed["rows"][window]]


@dataclass(frozen=True)
class Page:
    """One page of a long list (`total` items, `size` a page): its 1-based number and the items it shows."""

    number: int
    size: int
    total: int

    @classmethod
    def of(cls, requested: str | None, size: int, total: int) -> Page:
        """Page `requested` (from a query argument; anything but a page number there is gives the nearest page)."""
        last = max(1, -(-total // size))
        number = int(requested) if requested and requested.isdigit() and len(requested) < 10 else 1
        return cls(min(max(number, 1), last), size, total)

    @property
    def window(self) -> slice:
        return slice((self.number - 1) * self.size, self.number * self.size)

    @property
    def first(self) -> int:
        return min(self.window.start + 1, self.total)

    @property
    def last(self) -> int:
        return min(self.window.stop, self.total)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


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
    # A fresh seed for a first swap: the preview and the save post it back, so both swap alike.
    blank = {field: "" for field in PROTECTION_FIELDS} | {"swap_rate": DEFAULT_SWAP_RATE,
                                                         "swap_seed": str(secrets.randbelow(2**31))}
    if current is None:
        extract = output.kind is OutputKind.EXTRACT
        return blank | {"method": protection_choice.SWAP if extract else protection_choice.SUBMITTED}
    choice = current.choice
    sdc = choice.get("protection") or {}
    merge = choice.get("merge") or {}
    swap = choice.get("swapping") or {}
    return blank | {
        "method": choice.get("method", protection_choice.SUBMITTED),
        "base": str(sdc.get("base") or ""),
        "secondary": sdc.get("secondary") or "",
        "merge_variable": merge.get("variable", ""),
        "merge_levels": "\n".join(merge.get("levels", [])),
        "merge_label": merge.get("label", ""),
        **({"swap_hierarchy": ", ".join(swap["hierarchy"]), "swap_similar": ", ".join(sum(swap["similar"], [])),
            "swap_rate": str(swap["swap_rate"]), "swap_seed": str(swap["seed"])} if swap else {}),
    }


def _submitted_levels(output) -> dict[str, list[str]]:
    """Levels of each row and column variable in the table as submitted, shown beside the merge fields."""
    if output.kind is not OutputKind.TABLE or not output.spec:
        return {}
    spec = output.spec
    recomputed = output.protections[0].previous.get("recomputed") if output.protections else output.recomputed
    return protection_choice.dimension_levels(recomputed, [*spec.get("rows", []), *spec.get("columns", [])])


def _preview(preview: service.ProtectionPreview) -> dict[str, Any]:
    """What the service recomputed with a reviewer's protection, shaped like an output for the templates."""
    job, checked = preview.job, preview.checked
    if isinstance(job.spec, ExtractSpec):  # the swap report and the checks; the records are never shown
        shown = SimpleNamespace(kind=OutputKind.EXTRACT, recomputed=checked.recomputed, report=checked.report,
                                verdict=checked.verdict, error=checked.error, error_message=checked.error_message,
                                id=job.output_id)
        return {"output": shown, "verified": checked.verified, "digest": preview.digest}
    shown = SimpleNamespace(kind=OutputKind.TABLE, recomputed=checked.recomputed, report=checked.report,
                            spec=job.spec.to_dict(), verdict=checked.verdict, error=checked.error,
                            error_message=checked.error_message, id=job.output_id)
    cells = Page.of(None, CELLS_PER_PAGE, len((checked.recomputed or {}).get("rows", [])))  # the first page only
    return {"output": shown, "rows": marked_rows(shown, cells.window), "cells": cells, "verified": checked.verified,
            "digest": preview.digest}


def _file_preview(output) -> dict[str, str | None]:
    """An opaque file as it would be released (re-rendered by the service), for the reviewer to judge."""
    if output.kind is not OutputKind.FILE or not output.content:
        return {"preview": None, "text": None}
    if output.media_type.startswith("image/"):
        rendered = package.render_image(output.content, output.media_type)
        return {"preview": base64.b64encode(rendered).decode(), "text": None}
    return {"preview": None, "text": package.decoded_text(output.content)}  # shown through `visible`


def released_package(request, reviewer_view: bool, describe_refusal) -> dict[str, Any]:
    """The release package of a released request as written, checked against its manifest: its files with their
    SHA-256 and each file's votes. The manifest names reviewers by pseudonym (`package.reviewer_pseudonyms`);
    a reviewer sees the names beside them, the requester the pseudonyms only. A package changed after release
    gives `tampered` (the refusal in the page's language, by `describe_refusal`) and nothing else."""
    try:
        manifest, _ = package.verify_package(request.package)
    except PackageTampered as exc:
        log.error("release package of request %s changed after release: %s", request.id, exc)
        return {"tampered": describe_refusal(exc)}
    names = {alias: name for name, alias in package.reviewer_pseudonyms(request).items()} if reviewer_view else {}
    votes = {o["name"]: [{**v, "reviewer": f"{names[v['reviewer']]} ({v['reviewer']})" if v["reviewer"] in names
                          else v["reviewer"], "at": datetime.fromisoformat(v["at"]) if v.get("at") else None}
                         for v in o["votes"]] for o in manifest["outputs"]}
    return {"manifest": manifest, "sha256": request.package.manifest_sha256, "released_at": request.package.created_at,
            "files": [{**f, "votes": votes.get(f["output"], [])} for f in manifest["files"]]}


def make_jinja() -> jinja2.Environment:
    env = templates(HERE / "templates")
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, indent=2)
    env.filters["visible"] = lambda v: text.escape(v) if isinstance(v, str) else v  # invisible characters as \u{…}
    env.filters["labelled"] = labelled  # a code with its label from the dataset metadata: "19 山梨県"
    env.globals.update(Verdict=Verdict, Decision=Decision, OutputKind=OutputKind, ReleaseStatus=ReleaseStatus,
                       protection_methods=protection_choice.METHODS, protection_fields=PROTECTION_FIELDS,
                       extract_methods=protection_choice.EXTRACT_METHODS,
                       secondary_methods=[m.value for m in SecondaryMethod],
                       check_text=result_text,  # a stored check result's message in the page's language
                       stored_text=messages.text,  # a stored workflow message (error, mismatch), likewise
                       parameter_items=parameter_items)  # a check's parameters as (name, value) in the page's language
    return env


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
            # the newest released requests this reviewer may see: their packages (files, SHA-256, votes)
            released = [r for r in reversed(requests_with_status(session, [ReleaseStatus.RELEASED]))
                        if permissions.can_review(session, self.current_user, r)][:RELEASED_SHOWN]
            # ingress requests waiting too: a link to their page
            self.render_page("queue.html", session, rows=rows, released=released,
                             ingress_waiting=len(ingress.queue(session, self.current_user)))


class MineHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        presence = await self.presence()
        with transaction(self.factory) as session:
            requests = service.my_requests(session, self.current_user)
            # reviewers' comments only where the unreleased content may be seen
            commented = {r.id for r in requests
                         if service.content_access(session, r, self.current_user, presence).request is None}
            self.render_page("mine.html", session, requests=requests, commented=commented)


class RequestPageHandler(BaseHandler):
    async def prepare(self) -> None:
        super().prepare()  # the client address check first
        self.viewer_presence = await self.presence()  # before any step: the page after a vote shows the same

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
            access = service.content_access(session, request, user, self.viewer_presence)
            # reference data retired since submission: the service refuses approval and protection, so say why here
            retired = {o.id: service.retired_references(session, o) if o.decision is None else [] for o in request.outputs}
            # One page of outputs, and of each output's cells: never a whole large table in one page.
            page = Page.of(self.get_query_argument("page", None), OUTPUTS_PER_PAGE, len(request.outputs))
            shown = request.outputs[page.window]
            cells = {o.id: Page.of(self.get_query_argument(f"cells_{o.id}", None), CELLS_PER_PAGE,
                                   len((o.recomputed or {}).get("rows", []))) for o in shown}
            outputs = [
                {"output": o, "withheld": access.outputs[o.id], "votes_visible": False, "retired": retired[o.id],
                 "can_vote": False}
                if o.id in access.outputs else
                {
                    "output": o,
                    "withheld": None,
                    "cells": cells[o.id],
                    "rows": marked_rows(o, cells[o.id].window),
                    "can_vote": reviewer_view and permissions.can_vote(session, user, o),
                    "votes_visible": not reviewer_view
                    or o.decision is not None
                    or any(v.reviewer == user for v in o.votes)
                    or request.status not in (ReleaseStatus.SUBMITTED, ReleaseStatus.PARTIALLY_REVIEWED),
                    "retired": retired[o.id],
                    "labels": code_labels(session, o.spec, self.language),
                    "can_protect": reviewer_view and not retired[o.id] and permissions.can_protect(session, user, o),
                    "levels": _submitted_levels(o) if reviewer_view else {},
                    "protection_form": protection_form if o.id == protection_output and protection_form is not None
                    else _protection_form(o),
                    "protection_error": protection_error if o.id == protection_output else "",
                    "protection_preview": preview if o.id == protection_output else None,
                    **_file_preview(o),
                }
                for o in shown
            ]
            self.render_page(
                "request.html",
                session,
                status=status,
                request=request,
                outputs=outputs,
                page=page,
                request_withheld=access.request,
                reviewer_view=reviewer_view,
                is_requester=request.requester == user,
                can_withdraw=permissions.can_withdraw(user, request),
                can_download=permissions.can_download(user, request),
                released=released_package(request, reviewer_view, self.error_text)
                if request.package and (reviewer_view or request.requester == user) else None,
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


class ProtectionHandler(VoteHandler):  # VoteHandler: record_denied
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
        reviewer, policy = self.current_user, self.settings["review_policy"]
        try:
            # The service recomputes the table from the source data: in a thread, so the app keeps serving.
            if action == "save":
                await IOLoop.current().run_in_executor(None, lambda: service.protect(
                    self.factory, rid, oid, reviewer, form, previewed=previewed, revision=revision, policy=policy))
            else:
                preview = await IOLoop.current().run_in_executor(None, lambda: service.preview_protection(
                    self.factory, rid, oid, reviewer, form, revision=revision, policy=policy))
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
            self.show(rid, protection_output=oid, protection_form=form, preview=_preview(preview))


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
            tampered = isinstance(exc, PackageTampered)
            with transaction(self.factory) as session:
                service.record_refusal(
                    session, AuditEventType.RELEASE_COLLECT, actor=self.current_user,
                    object=f"release_request/{request_id}", reason=str(exc),
                    details={"file": exc.params["file"], "expected_sha256": exc.params["expected"],
                             "found_sha256": exc.params["found"]} if tampered else None,
                )
            if tampered:  # not the person's doing: the package stays in the egress store for an administrator
                log.error("release package of request %s refused at collection: %s", request_id, exc)
                raise web.HTTPError(HTTPStatus.CONFLICT, self.error_text(exc))
            self.fail(exc)
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(data)


def _cell_key_preview(output, access: service.ContentAccess | None) -> dict[str, Any]:
    """A table released perturbed: its information loss (figures over the cells), and — only when `access` says
    its content may be shown (asked from the terminal of the requester's running session) — its cells as they will
    be released (the perturbed values the package will hold; never a record key)."""
    facts = (output.report or {}).get("cell_key") if isinstance(output.report, dict) else None
    if not facts:
        return {}
    shown = access is not None and access.request is None and output.id not in access.outputs
    released = {"released": output.recomputed} if shown and output.recomputed else {}
    return {"cell_key": facts["information_loss"]} | released


def request_summary(request, access: service.ContentAccess | None = None) -> dict[str, Any]:
    """What the API tells the requester of a release request: its status (and, for a table released perturbed,
    its information loss). No cells, and an error as its code (its text may quote data, e.g. a value that would
    not convert), for a token may be used off site; `access` (`service.content_access` of the asker): a table
    released perturbed carries its released cells where it lets the content be shown, so the notebook shows them
    beside the computed ones. The request page shows the rest at the terminal of the session."""
    return {
        "id": request.id,
        "status": request.status.value,
        "outputs": [
            {
                "name": o.name,
                "verdict": o.verdict.value,
                "verified": o.verified,
                "error": (o.error_message or {}).get("code", "error") if o.error else None,
                "decision": o.decision.value if o.decision else None,
            } | _cell_key_preview(o, access)
            for o in request.outputs
        ],
    }


class ReleaseApiHandler(ApiHandler):
    async def summary(self, request_id: int) -> dict[str, Any]:
        """`request_summary` of request `request_id` for the token's user, with what they may see from where
        they ask (the Hub asked first, outside the transaction). Raises the workflow's UserError when they may
        not view it."""
        presence = await self.presence()
        with transaction(self.factory) as session:
            request = service.view(session, request_id, self.current_user)
            return request_summary(request, service.content_access(session, request, self.current_user, presence))


@web.stream_request_body
class ApiRequestsHandler(ReleaseApiHandler):
    """A release request. The body is read in chunks and kept up to `ReviewPolicy.max_bytes_per_request`; a larger
    one is read to its end without being kept (up to `DRAIN_FACTOR` times the limit, past that the connection is
    cut), then answered HTTP 413 with the limit's JSON refusal, which the kernel shows, and audited."""

    def prepare(self) -> None:
        super().prepare()
        self._chunks: list[bytes] = []
        self._received = 0
        self.request.connection.set_max_body_size(DRAIN_FACTOR * self.settings["review_policy"].max_bytes_per_request)

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received <= self.settings["review_policy"].max_bytes_per_request:
            self._chunks.append(chunk)
        else:
            self._chunks.clear()  # never kept

    async def post(self) -> None:
        requester, policy = self.current_user, self.settings["review_policy"]
        try:
            wire.check_limit("request_bytes", self._received, policy.max_bytes_per_request)
        except wire.LimitExceeded as exc:
            self.refuse_limit(exc)
            return
        try:
            payload = json.loads(b"".join(self._chunks))
        except ValueError:
            self.send_json(400, {"message": "the body must be a JSON object"})
            return
        try:
            # The service recomputes every output: in a thread, so the app keeps serving meanwhile.
            request = await IOLoop.current().run_in_executor(None, lambda: service.submit(
                self.factory, payload, requester, policy=policy))
        except wire.LimitExceeded as exc:
            self.refuse_limit(exc)
            return
        except UserError as exc:
            with transaction(self.factory) as session:
                service.record_refusal(session, AuditEventType.RELEASE_SUBMIT, actor=requester, object="", reason=str(exc))
            self.send_json(403 if isinstance(exc, ReleasePermissionDenied) else 400, {"message": str(exc)})
            return
        self.send_json(201, await self.summary(request.id))

    def refuse_limit(self, exc: wire.LimitExceeded) -> None:
        """HTTP 413 with the limit's JSON refusal (the kernel shows it in its language), audited naming the limit."""
        with transaction(self.factory) as session:
            service.record_refusal(session, AuditEventType.RELEASE_SUBMIT, actor=self.current_user, object="",
                                   reason=str(exc), details={"limit": exc.setting, "size": exc.args_["size"]})
        self.send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, exc.to_json())


class ApiRequestHandler(ReleaseApiHandler):
    async def get(self, request_id: str) -> None:
        try:
            summary = await self.summary(int(request_id))
        except UserError as exc:
            status = 404 if isinstance(exc, ReleaseRequestNotFound) else 403
            self.send_json(status, {"message": str(exc)})
            return
        self.send_json(200, summary)


def make_app(
    settings: Settings,
    *,
    prefix: str = "/",
    test_identity: Identity | None = None,
    test_api_identity: Identity | None = None,
    cookie_secret: bytes | None = None,
    policy: ReviewPolicy | None = None,
    hub_client: HubClient | None = None,
) -> web.Application:
    """The application under the review rules `policy` (default: ReviewPolicy's defaults).
    `hub_client` (whether a researcher's session runs) defaults to the Hub API of this service's environment
    (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN). `test_identity`/`test_api_identity` replace the Hub in tests only."""
    prefix = normal_prefix(prefix)
    if hub_client is None:
        hub_client = HubClient(
            os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api"), os.environ.get("JUPYTERHUB_API_TOKEN", "")
        )
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
    routes += ingress_pages.routes(p)  # ingress requests (reference data brought in)
    return application(routes, settings, prefix, HERE, jinja=make_jinja(), cookie_secret=cookie_secret,
                       test_identity=test_identity, test_api_identity=test_api_identity, max_body_size=MAX_BODY_BYTES,
                       review_policy=policy or ReviewPolicy(), hub_client=hub_client)
