"""`onsite review …`: release and ingress requests from the command line (`onsite review-service` is in review_service.py).

`onsite review show` speaks the administrator's language (`cli_language`): check messages, and the cells a
check flagged as the review pages show them, each code with its label from the dataset metadata
(`review_service.labels`), e.g. `19 山梨県 / 2 女`."""
from __future__ import annotations

import argparse
import enum

from sqlalchemy import select

from disclosure_review.sdc.messages import result_text
from disclosure_review.workflow import service, statedoc
from disclosure_review.workflow.enums import IngressStatus, ReleaseStatus
from disclosure_review.workflow.exceptions import PackageError
from disclosure_review.workflow.store import (
    IngressRequest,
    ReleaseRequest,
    get_ingress,
    get_request,
)
from onsite.commands.admin import open_store
from onsite.commands.language import cli_language
from onsite_base import times
from onsite_base.db import make_engine, session_factory, transaction
from onsite_base.errors import UserError
from onsite_base.os_user import os_login
from onsite_base.settings import Settings
from review_service.labels import CodeLabels, code_labels, labelled

FLAGGED_SHOWN = 10
"""Flagged cells printed per check, as on the review page."""


def build(parser: argparse.ArgumentParser, name: str) -> None:
    """The parser of `onsite review …` (the table of `onsite.cli`)."""
    parser.description = (
        "Release requests as the review service stores them. Voting happens in the review web app "
        "(/services/onsite-review/), where the two-reviewer rule and the reviewer's identity are enforced.")
    review = parser.add_subparsers(dest="review_command", metavar="ACTION", required=True)

    listing = review.add_parser("list", help="list release requests (newest first)")
    listing.add_argument(
        "--status", action="append", metavar="STATUS",
        help="only these statuses (repeatable), e.g. SUBMITTED, PARTIALLY_REVIEWED, APPROVED, RELEASED",
    )
    listing.set_defaults(run=_list)

    show = review.add_parser("show", help="one request: its outputs, verdicts, errors, protections applied by reviewers, votes and package")
    show.add_argument("request_id", type=int, metavar="ID")
    show.set_defaults(run=_show)

    release = review.add_parser(
        "release",
        help="write the release package of an APPROVED request again (after a failed write)",
        description="A request whose outputs are all decided is packaged at once; if writing the package "
        "failed (disk full, permissions) it stays APPROVED and this retries it. Writes an audit event.",
    )
    release.add_argument("request_id", type=int, metavar="ID")
    release.set_defaults(run=_release)

    _register_ingress(review)

    states = review.add_parser("states", help="print docs/reference/release-states.md from the transition table")
    mode = states.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the file instead of printing it")
    mode.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    states.set_defaults(run=_states)


def _register_ingress(review: argparse._SubParsersAction) -> None:
    ingress = review.add_parser(
        "ingress",
        help="list and inspect ingress requests (reference data researchers bring in)",
        description="Reference data a researcher brings in with analysis_kernel.request_ingress(...) (a published "
        "code list, classification or price index, uploaded into intake/). The review service read the file itself "
        "and keeps its own copy with its SHA-256; once approved, that copy — and only for that project — is readable "
        "as reference.<name> in the kernel and in the service's recomputation of outputs. Approving and rejecting "
        "happen in the review web app (/services/onsite-review/ingress), where the reviewer's identity and the "
        "two-reviewer rule (never on one's own project) are enforced; so do the requester's withdrawal and the "
        "retirement of approved data by an administrator or reviewer (with a reason: no new query or recomputation "
        "uses it, released outputs stay). These commands only read.",
    ).add_subparsers(dest="ingress_command", metavar="ACTION", required=True)
    listing = ingress.add_parser("list", help="list ingress requests (newest first)",
                                 description="One line each: id, status, project, requester, rows, name as queries read it.")
    listing.add_argument("--status", action="append", metavar="STATUS",
                         help="only these statuses (repeatable): SUBMITTED (waiting for review), APPROVED (usable), "
                         "REJECTED, WITHDRAWN (by the requester), RETIRED (no longer usable)")
    listing.add_argument("--project", metavar="ID", help="only this project's")
    listing.set_defaults(run=_ingress_list)
    show = ingress.add_parser(
        "show", help="one ingress request: description, file, SHA-256, columns and types, first rows, votes",
        description="Everything reviewers see on the request's page. `sha256sum` of the researcher's file gives the "
        "same SHA-256 when it is the file that was brought in.")
    show.add_argument("request_id", type=int, metavar="ID")
    show.add_argument("--rows", type=int, default=5, metavar="N", help="first rows to print (default 5, at most 20)")
    show.set_defaults(run=_ingress_show)


def _ingress_list(args: argparse.Namespace, settings: Settings) -> int:
    statuses = _statuses(args.status, IngressStatus)
    with transaction(_factory(settings)) as session:
        stmt = select(IngressRequest).order_by(IngressRequest.id.desc())
        if statuses:
            stmt = stmt.where(IngressRequest.status.in_(statuses))
        if args.project:
            stmt = stmt.where(IngressRequest.project_id == args.project)
        print(f"{'ID':>5}  {'STATUS':<10} {'PROJECT':<12} {'REQUESTER':<12} {'ROWS':>9}  NAME")
        for r in session.scalars(stmt):
            print(f"{r.id:>5}  {r.status.value:<10} {r.project_id:<12} {r.requester:<12} {r.row_count:>9,}  reference.{r.name}")
    return 0


def _ingress_show(args: argparse.Namespace, settings: Settings) -> int:
    with transaction(_factory(settings)) as session:
        r = get_ingress(session, args.request_id)
        print(f"ingress request {r.id}: reference.{r.name}")
        print(f"  status {r.status.value}; project {r.project_id}; requester {r.requester}; "
              f"submitted {times.shown(r.created_at, settings.timezone)}" + (f"; decided {times.shown(r.decided_at, settings.timezone)}" if r.decided_at else ""))
        print(f"  description: {r.description}")
        print(f"  file {r.filename} ({r.file_format}, {r.size_bytes:,} bytes, {r.row_count:,} rows); SHA-256 {r.sha256}")
        if r.retired_at:
            print(f"  retired {times.shown(r.retired_at, settings.timezone)} by {r.retired_by}: {r.retired_reason}")
        print(f"  approvals needed {r.required_approvals}")
        print("  columns: " + ", ".join(f"{c['name']} {c['type']}" for c in r.columns))
        rows = r.preview["rows"][: max(0, min(args.rows, 20))]
        if rows:
            print("  first rows:")
            print("    " + " | ".join(r.preview["columns"]))
            for row in rows:
                print("    " + " | ".join("" if v is None else str(v) for v in row))
        for v in r.votes:
            print(f"  vote by {v.reviewer} at {times.shown(v.created_at, settings.timezone)}: {v.decision.value} {v.comment!r}")
    return 0


def _statuses(given: list[str] | None, kind: type[enum.Enum]) -> list:
    """The `--status` values as members of `kind`; an unknown one is refused naming the known ones."""
    try:
        return [kind(s.upper()) for s in given or []]
    except ValueError:
        raise UserError(f"unknown status in {given}; use one of {', '.join(s.value for s in kind)}") from None


def _factory(settings: Settings):
    open_store(settings)  # never an empty ./var store from another folder
    return session_factory(make_engine(settings.db_url))


def _list(args: argparse.Namespace, settings: Settings) -> int:
    statuses = _statuses(args.status, ReleaseStatus)
    with transaction(_factory(settings)) as session:
        stmt = select(ReleaseRequest).order_by(ReleaseRequest.id.desc())
        if statuses:
            stmt = stmt.where(ReleaseRequest.status.in_(statuses))
        requests = list(session.scalars(stmt))
        print(f"{'ID':>5}  {'STATUS':<18} {'PROJECT':<12} {'REQUESTER':<12} VERDICTS  TITLE")
        for r in requests:
            verdicts = "".join(o.verdict.value[0].upper() for o in r.outputs)
            print(f"{r.id:>5}  {r.status.value:<18} {r.project_id:<12} {r.requester:<12} {verdicts:<9} {r.title}")
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    lang = cli_language()
    with transaction(_factory(settings)) as session:
        r = get_request(session, args.request_id)
        print(f"release request {r.id}: {r.title}")
        print(f"  status {r.status.value}; project {r.project_id}; requester {r.requester}; submitted {times.shown(r.created_at, settings.timezone)}")
        print(f"  preset {r.preset}; approvals needed per output {r.required_approvals}")
        if r.return_comment:
            print(f"  returned: {r.return_comment}")
        for o in r.outputs:
            decided = o.decision.value if o.decision else "undecided"
            trust = "verified" if o.verified else "UNVERIFIED"
            print(f"  - output {o.id} {o.name!r} ({o.kind.value.lower()}): verdict {o.verdict.value}, {trust}, {decided}")
            if o.error:
                print(f"      error: {o.error}")
            labels = code_labels(session, o.spec, lang)
            dims = (o.recomputed or {}).get("columns", [])[:-1]
            for check in (o.report or {}).get("results", []):
                if check["verdict"] != "pass":
                    print(f"      {check['rule']} ({check['verdict']}): {result_text(check, lang)}")
                    if check.get("cells") and dims:
                        print(f"        cells: {flagged_cells(check['cells'], dims, labels, lang)}")
            if o.mismatch:
                print(f"      {len(o.mismatch)} claimed figure(s) differ from the recomputation")
            for p in o.protections:
                current = " (current)" if p is o.protections[-1] else ""
                withdrawn = ", ".join(v["reviewer"] for v in p.invalidated) or "none"
                print(f"      protection {p.revision}{current} by {p.reviewer} at {times.shown(p.created_at, settings.timezone)}: "
                      f"{describe_choice(p.choice)}; verdict {p.verdict.value} (was {p.previous.get('verdict')}); "
                      f"approvals withdrawn: {withdrawn}")
            for v in o.votes:
                extra = f"; override: {v.override_reason}" if v.override_reason else ""
                print(f"      vote by {v.reviewer}: {v.decision.value} {v.comment!r}{extra}")
        if r.package:
            print(f"  package {r.package.path} (manifest SHA-256 {r.package.manifest_sha256})")
    return 0


def flagged_cells(cells: list[list], dims: list[str], labels: CodeLabels, lang: str) -> str:
    """The first cells a check flagged, each code with its label: "19 山梨県 / 2 女; 19 山梨県 / 1 男 (+3 more)"."""
    def cell(values: list) -> str:
        return " / ".join("—" if value is None else str(labelled(value, labels.get(dim))) for dim, value in zip(dims, values))

    more = len(cells) - FLAGGED_SHOWN
    rest = "" if more <= 0 else f"(他 {more} セル)" if lang == "ja" else f" (+{more} more)"
    return "; ".join(map(cell, cells[:FLAGGED_SHOWN])) + rest


def describe_choice(choice: dict) -> str:
    """A reviewer's protection choice (`ProtectionChoice.to_dict()`) in words, as the review page shows it."""
    method = choice.get("method")
    sdc = choice.get("protection") or {}
    words = {"submitted": "as submitted", "none": "no protection", "delete_records": "delete records",
             "redact_round": "redact failing cells, then round"}.get(method, method)
    if method in ("round", "redact_round") and sdc.get("base"):
        words += f" (base {sdc['base']})"
    elif method == "suppress" and sdc.get("secondary"):
        words += f" (secondary {sdc['secondary']})"
    if merge := choice.get("merge"):
        words += f"; merged {merge['variable']}: {', '.join(merge['levels'])} -> {merge['label']!r}"
    return words


def _release(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with transaction(_factory(settings)) as session:
            package = service.release(session, args.request_id, settings=settings, actor=f"cli:{os_login()}")
    except PackageError as exc:
        raise UserError(f"{exc}; check that {settings.egress_dir} exists and is writable by this account") from None
    print(f"release request {args.request_id} released: {package.path}")
    return 0


def _states(args: argparse.Namespace, settings: Settings) -> int:
    if args.write:
        print(f"wrote {statedoc.write()}")
        return 0
    if args.check:
        current = statedoc.DOC_PATH.read_text(encoding="utf-8") if statedoc.DOC_PATH.exists() else ""
        if current != statedoc.render():
            print(f"{statedoc.DOC_PATH} is stale: run `onsite review states --write`")
            return 1
        print(f"{statedoc.DOC_PATH} is current")
        return 0
    print(statedoc.render(), end="")
    return 0

