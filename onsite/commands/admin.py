"""`onsite audit …` and `onsite admin person|role|project|member|grant|facility|terminal|accreditation|booking|sessions …`.

Every command is one transaction: bad input is refused with the reason and
nothing changes. Changes are audit events whose actor is `admin:<OS login>`.
With LDAP configured (`ONSITE_LDAP_URI`, see docs/how-to/ldap.md) role and
membership changes also change the LDAP groups before the commit; a directory
failure fails the command and the database keeps its state.
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import enum
import getpass
import json
import sys
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from tqdm import tqdm

from access_control import audit, policy
from onsite_base.db import make_engine, read_transaction, session_factory, transaction
from onsite.migrations import migrate
from access_control.entry import DEFAULT_TIMEZONE
from access_control.enums import AuditEventType, Outcome, Role
from access_control.models import Accreditation, Booking, Facility, Grant, Person, Project, ProjectStatus, Terminal
from access_control.sessions import end_session, session_projects
from access_control.hub_api import HubApiUnavailable, HubClient
from onsite_base.errors import UserError
from onsite_base.settings import Settings

ANCHOR_FILE_NAME = "ledger-anchor.jsonl"
E = TypeVar("E", bound=enum.Enum)


def admin_actor() -> str:
    return f"admin:{getpass.getuser()}"


def ldap_directory() -> policy.GroupDirectory | None:
    """The LDAP directory whose groups the admin commands maintain, when ONSITE_LDAP_URI is set."""
    from access_control.ldap import LdapDirectory, LdapSettings, LdapSettingsInvalid

    try:
        settings = LdapSettings.from_env()
    except LdapSettingsInvalid as e:
        raise UserError(f"the LDAP settings are invalid: {e}; nothing changed") from None
    return LdapDirectory(settings) if settings is not None else None


def in_transaction(settings: Settings, work: Callable[[Session], int], *, read_only: bool = False) -> int:
    """Run `work` in one transaction on a migrated store; UserError rolls everything back.
    `read_only` work reads a snapshot without holding up writers (the hub's logins)."""
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        if read_only:
            with read_transaction(session_factory(engine)) as session:
                return work(session)
        with transaction(session_factory(engine)) as session:
            # Serialize with every other writer first, so that the checks below see
            # any concurrent change already committed (SQLite: BEGIN IMMEDIATE does it).
            audit.lock_ledger(session)
            return work(session)
    except IntegrityError as e:  # a change that slipped past the checks concurrently
        raise UserError(
            f"the change conflicts with the stored data ({e.orig}); nothing changed: check with `list`/`show` and retry"
        ) from None
    except Exception as e:
        from access_control.ldap import DirectoryUnavailable

        if isinstance(e, DirectoryUnavailable):  # raised inside the transaction: the database change rolled back
            raise UserError(f"the LDAP directory did not take the change: {e}; nothing changed") from None
        raise
    finally:
        engine.dispose()


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def role_arg(text: str) -> Role:
    try:
        return policy.role_from_text(text)
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def display_width(text: str) -> int:
    """Terminal columns: Japanese (wide) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def print_rows(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    table = [columns, *([str(row[c]) for c in columns] for row in rows)]
    widths = [max(display_width(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        print("  ".join(cell + " " * (width - display_width(cell)) for cell, width in zip(line, widths)).rstrip())


# ---------------------------------------------------------------- plain views


def person_view(session: Session, person: Person) -> dict[str, Any]:
    return {
        "username": person.username,
        "display_name": person.display_name,
        "email": person.email,
        "roles": sorted(r.value.lower() for r in person.role_set),
        "disabled": person.disabled,
        "locked_until": person.locked_until.isoformat() if person.locked_until else None,
        "failed_logins": person.failed_logins,
        "has_password": person.password_hash is not None,
        "projects": [p.id for p in policy.projects_of(session, person.username)],
        "created_at": person.created_at.isoformat(),
    }


def project_view(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "title": project.title,
        "purpose": project.purpose,
        "legal_basis": project.legal_basis,
        "start_date": project.start_date.isoformat(),
        "end_date": project.end_date.isoformat(),
        "status": project.status.value.lower(),
        "preset": project.preset,
    }


def grant_view(grant: Grant) -> dict[str, Any]:
    return {
        "id": grant.id,
        "project": grant.project_id,
        "dataset": grant.dataset_id,
        "valid_from": grant.valid_from.isoformat(),
        "valid_until": grant.valid_until.isoformat(),
        "revoked_at": grant.revoked_at.isoformat() if grant.revoked_at else None,
        "created_by": grant.created_by,
    }


def facility_view(facility: Facility) -> dict[str, Any]:
    return {
        "name": facility.name,
        "address": facility.address,
        "timezone": facility.timezone,
        "terminals": len(facility.terminals),
        "hours": policy.format_hours(facility.hours) or "always open",
        "closed_days": [c.day.isoformat() for c in facility.closures],
        "booking_required": facility.booking_required,
        "accreditation_kind": facility.accreditation_kind,
    }


def accreditation_view(accreditation: Accreditation) -> dict[str, Any]:
    return {
        "id": accreditation.id,
        "person": accreditation.person.username,
        "kind": accreditation.kind,
        "issued": accreditation.issued.isoformat(),
        "expiry": accreditation.expiry.isoformat(),
        "revoked_at": accreditation.revoked_at.isoformat() if accreditation.revoked_at else None,
        "created_by": accreditation.created_by,
    }


def booking_view(booking: Booking) -> dict[str, Any]:
    zone = ZoneInfo(booking.facility.timezone)
    return {
        "id": booking.id,
        "person": booking.person.username,
        "facility": booking.facility.name,
        "starts_at": booking.starts_at.astimezone(zone).isoformat(),
        "ends_at": booking.ends_at.astimezone(zone).isoformat(),
        "cancelled_at": booking.cancelled_at.isoformat() if booking.cancelled_at else None,
        "created_by": booking.created_by,
    }


def terminal_view(terminal: Terminal) -> dict[str, Any]:
    return {"address": terminal.address, "facility": terminal.facility.name, "label": terminal.label}


def listing(
    rows_of: Callable[[Session, argparse.Namespace], list[dict[str, Any]]],
    columns: list[str],
    table_cells: Callable[[dict[str, Any]], dict[str, Any]] = dict,
) -> Callable[[argparse.Namespace, Settings], int]:
    """A `list` command: JSON rows with --json, else a table of `columns`."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        def work(session: Session) -> int:
            rows = rows_of(session, args)
            if args.json:
                print_json(rows)
            else:
                print_rows([table_cells(row) for row in rows], columns)
            return 0

        return in_transaction(settings, work, read_only=True)

    return run


# ---------------------------------------------------------------- audit commands


def default_anchor(settings: Settings) -> Path:
    return settings.runtime_dir / ANCHOR_FILE_NAME


def run_verify(args: argparse.Namespace, settings: Settings) -> int:
    anchor_path = Path(args.anchor) if args.anchor else default_anchor(settings)
    try:
        anchor = audit.LedgerAnchor.read(anchor_path) if anchor_path.exists() else None
    except ValueError as e:
        raise UserError(str(e)) from None
    if args.anchor and anchor is None:
        raise UserError(f"anchor file {anchor_path} does not exist")

    def work(session: Session) -> int:
        with tqdm(total=audit.count(session), unit="event", desc="verifying", disable=not sys.stderr.isatty(), leave=False) as bar:
            result = audit.verify(session, anchor, progress=bar.update)
        if result.ok:
            print(f"ok: {result.checked} events" + (f" (anchor at event {anchor.seq} matches)" if anchor else ""))
            return 0
        print(f"TAMPERED: first bad event {result.first_bad_seq}: {result.problem}")
        return 1

    return in_transaction(settings, work, read_only=True)


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        if args.out is None:
            audit.export(session, sys.stdout)
            return 0
        out = Path(args.out)
        with out.open("w", encoding="utf-8") as fh:
            n = audit.export(session, fh)
        print(f"wrote {n} events to {out}", file=sys.stderr)
        return 0

    return in_transaction(settings, work, read_only=True)


def moment(text: str) -> datetime:
    """A date (midnight at the start of that day in Asia/Tokyo) or an ISO date-time with offset."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or date-time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM+09:00") from None
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(DEFAULT_TIMEZONE))


def enum_arg(enum_class: type[E]) -> Callable[[str], E]:
    def parse(text: str) -> E:
        try:
            return enum_class(text.upper())
        except ValueError:
            raise argparse.ArgumentTypeError(f"unknown value {text!r}: choose from {', '.join(m.value for m in enum_class)}") from None

    return parse


def event_cells(row: dict[str, Any]) -> dict[str, Any]:
    details = row["details"]
    summary = ",".join(details["reasons"]) if "reasons" in details else json.dumps(details, ensure_ascii=False)
    return row | {"created_at": row["created_at"][:19], "details": summary[:60]}


run_list_events = listing(
    lambda session, args: [
        audit.event_as_dict(e)
        for e in audit.find_events(
            session, action=args.action, actor=args.actor, outcome=args.outcome, since=args.since, until=args.until, limit=args.limit
        )
    ],
    ["seq", "created_at", "actor", "action", "object", "outcome", "details"],
    event_cells,
)


def run_anchor(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file) if args.file else default_anchor(settings)

    def work(session: Session) -> int:
        try:
            anchor = audit.anchor_head(session, path)
        except ValueError as e:
            print(f"TAMPERED: {e}")
            return 1
        audit.record(session, AuditEventType.LEDGER_VERIFY, actor=admin_actor(), object="ledger", details={"anchored_seq": anchor.seq, "file": str(path)})
        print(f"anchored event {anchor.seq} ({anchor.hash[:16]}…) in {path}")
        return 0

    return in_transaction(settings, work)


def register(top: argparse._SubParsersAction) -> None:
    parser = top.add_parser("audit", help="verify, list, export or anchor the hash-chained audit ledger")
    sub = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "verify",
        help="check the ledger's hash chain; exit 1 and name the first bad event if it was tampered with",
        description="Recompute every audit event's hash in order. Prints 'ok: N events', or the first edited, "
        "deleted, inserted or reordered event and exits 1. If an anchor file exists (see `audit anchor`) the "
        "anchored event must still be there with the same hash, which also catches a rewrite of the whole table.",
    )
    p.add_argument("--anchor", metavar="FILE", help=f"anchor file to check against (default $ONSITE_HOME/run/{ANCHOR_FILE_NAME} if present)")
    p.set_defaults(run=run_verify)
    p = sub.add_parser("export", help="write every audit event as JSON lines (schema onsite.audit_event/v1)")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(run=run_export)
    p = sub.add_parser(
        "list",
        help="the newest audit events, filtered (e.g. refused entries: --action entry_decide --outcome denied)",
        description="Dates without a time mean midnight in Asia/Tokyo; --since is inclusive, --until exclusive. "
        "For entry decisions the details column shows the denial reasons.",
    )
    p.add_argument("--action", type=enum_arg(AuditEventType), help="event type, e.g. ENTRY_DECIDE, LOGIN_FAIL, GRANT_ADD")
    p.add_argument("--actor", help="who acted: a user name, or admin:<login> for administrators")
    p.add_argument("--outcome", type=enum_arg(Outcome), help="ok, denied or failed")
    p.add_argument("--since", type=moment, help="YYYY-MM-DD or an ISO date-time")
    p.add_argument("--until", type=moment, help="YYYY-MM-DD or an ISO date-time")
    p.add_argument("--limit", type=int, default=100, help="at most this many events, newest first (default 100)")
    _json_flag(p)
    p.set_defaults(run=run_list_events)
    p = sub.add_parser(
        "anchor",
        help="verify, then append the chain head to a file outside the database",
        description="Keep the anchor file on storage the database administrator cannot rewrite (or print it); "
        "run this periodically, e.g. from cron.",
    )
    p.add_argument("--file", metavar="FILE", help=f"anchor file (default $ONSITE_HOME/run/{ANCHOR_FILE_NAME})")
    p.set_defaults(run=run_anchor)


# ---------------------------------------------------------------- admin: people and roles


def read_password(args: argparse.Namespace, username: str) -> str | None:
    if getattr(args, "no_password", False):
        return None
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UserError("--password-stdin: no password on standard input")
        return line.rstrip("\r\n")
    first = getpass.getpass(f"New password for {username}: ")
    if first != getpass.getpass("Repeat it: "):
        raise UserError("the two passwords differ: nothing changed")
    return first


def run_person_add(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(args, args.username)

    def work(session: Session) -> int:
        person = policy.add_person(
            session,
            username=args.username,
            display_name=args.name,
            email=args.email,
            roles=args.role or [],
            password=password,
            actor=admin_actor(),
            directory=ldap_directory(),
        )
        print(f"added person {person.username}")
        return 0

    return in_transaction(settings, work)


def read_people_csv(path: Path) -> list[dict[str, str | None]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: spreadsheets write a BOM
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UserError(f"cannot read {path}: {e}") from None
    unknown = [c for c in header if c not in policy.IMPORT_COLUMNS]
    if unknown or not {"username", "display_name"} <= set(header):
        raise UserError(
            f"{path}: the header must name columns from {', '.join(policy.IMPORT_COLUMNS)} "
            f"(username and display_name required); found {', '.join(header) or 'none'}"
        )
    return rows


def run_person_import(args: argparse.Namespace, settings: Settings) -> int:
    rows = read_people_csv(Path(args.file))

    def work(session: Session) -> int:
        summary = policy.import_people(session, rows, actor=admin_actor(), directory=None if args.dry_run else ldap_directory())
        verb = "would add" if args.dry_run else "added"
        print(
            f"{verb} {summary.people_added} people, {summary.roles_granted} roles to existing people, "
            f"{summary.memberships_added} memberships ({len(rows)} rows)"
        )
        if args.dry_run:
            session.rollback()
        elif summary.people_added:
            print("new people have no password yet: set one with `onsite admin person passwd USERNAME`")
        return 0

    return in_transaction(settings, work)


def person_cells(row: dict[str, Any]) -> dict[str, Any]:
    state = "disabled" if row["disabled"] else "locked" if row["locked_until"] else "ok"
    return row | {"roles": ",".join(row["roles"]) or "-", "state": state}


run_person_list = listing(
    lambda session, args: [person_view(session, p) for p in policy.list_people(session)],
    ["username", "display_name", "roles", "state"],
    person_cells,
)


def run_person_show(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        view = person_view(session, policy.require_person(session, args.username))
        if args.json:
            print_json(view)
        else:
            for key, value in view.items():
                print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
        return 0

    return in_transaction(settings, work)


def run_person_disabled(disabled: bool) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        def work(session: Session) -> int:
            policy.set_disabled(session, args.username, disabled, actor=admin_actor())
            print(f"{'disabled' if disabled else 'enabled'} {args.username}")
            return 0

        return in_transaction(settings, work)

    return run


def run_person_passwd(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(args, args.username)
    assert password is not None

    def work(session: Session) -> int:
        policy.set_password(session, args.username, password, actor=admin_actor())
        print(f"password set for {args.username}")
        return 0

    return in_transaction(settings, work)


def run_person_unlock(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        policy.unlock_person(session, args.username, actor=admin_actor())
        print(f"unlocked {args.username}")
        return 0

    return in_transaction(settings, work)


def run_role(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        role = args.role.value.lower()
        if args.role_command == "grant":
            policy.grant_role(session, args.username, args.role, actor=admin_actor(), directory=ldap_directory())
            print(f"granted role {role} to {args.username}")
        else:
            policy.revoke_role(session, args.username, args.role, actor=admin_actor(), directory=ldap_directory())
            print(f"revoked role {role} from {args.username}")
        return 0

    return in_transaction(settings, work)


# ---------------------------------------------------------------- admin: projects and members


def run_project_add(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        project = policy.add_project(
            session,
            project_id=args.project_id,
            title=args.title,
            purpose=args.purpose,
            legal_basis=args.legal_basis,
            start_date=args.start,
            end_date=args.end,
            preset=args.preset,
            actor=admin_actor(),
        )
        print(f"added project {project.id} ({project.start_date} to {project.end_date})")
        return 0

    return in_transaction(settings, work)


run_project_list = listing(
    lambda session, args: [project_view(p) for p in policy.list_projects(session)],
    ["id", "status", "start_date", "end_date", "title"],
)


def run_project_show(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        view = project_view(policy.require_project(session, args.project_id))
        view["members"] = [p.username for p in policy.members_of(session, args.project_id)]
        view["grants"] = [grant_view(g) for g in policy.list_grants(session, args.project_id)]
        if args.json:
            print_json(view)
        else:
            for key, value in view.items():
                if key == "grants":
                    print("grants:" + ("" if value else " (none)"))
                    for g in value:
                        state = f"revoked {g['revoked_at']}" if g["revoked_at"] else "valid"
                        print(f"  {g['id']}: {g['dataset']} {g['valid_from']} to {g['valid_until']} ({state})")
                else:
                    print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
        return 0

    return in_transaction(settings, work)


def run_project_change(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        policy.change_project(
            session,
            args.project_id,
            title=args.title,
            purpose=args.purpose,
            legal_basis=args.legal_basis,
            start_date=args.start,
            end_date=args.end,
            status=args.status,
            preset=args.preset,
            actor=admin_actor(),
        )
        print(f"changed project {args.project_id}")
        return 0

    return in_transaction(settings, work)


def run_member(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        if args.member_command == "add":
            policy.add_member(session, args.project_id, args.username, actor=admin_actor(), directory=ldap_directory())
            print(f"added {args.username} to project {args.project_id}")
        else:
            policy.remove_member(session, args.project_id, args.username, actor=admin_actor(), directory=ldap_directory())
            print(f"removed {args.username} from project {args.project_id}")
        return 0

    return in_transaction(settings, work)


# ---------------------------------------------------------------- admin: grants


def run_grant_add(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        project = policy.require_project(session, args.project_id)
        grant = policy.add_grant(
            session,
            project_id=project.id,
            dataset_id=args.dataset_id,
            valid_from=args.valid_from or project.start_date,
            valid_until=args.valid_until or project.end_date,
            actor=admin_actor(),
        )
        print(f"grant {grant.id}: {grant.dataset_id} to {grant.project_id} from {grant.valid_from} until {grant.valid_until}")
        return 0

    return in_transaction(settings, work)


run_grant_list = listing(
    lambda session, args: [grant_view(g) for g in policy.list_grants(session, args.project)],
    ["id", "project", "dataset", "valid_from", "valid_until", "revoked_at"],
    lambda row: row | {"revoked_at": row["revoked_at"] or "-"},
)


def run_grant_revoke(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        grant = policy.revoke_grant(session, args.grant_id, actor=admin_actor())
        print(f"revoked grant {grant.id} ({grant.dataset_id} to {grant.project_id})")
        return 0

    return in_transaction(settings, work)


# ---------------------------------------------------------------- admin: facilities and terminals


def run_facility_add(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        facility = policy.add_facility(session, name=args.name, address=args.address, timezone_name=args.timezone, actor=admin_actor())
        print(f"added facility {facility.name} ({facility.timezone})")
        return 0

    return in_transaction(settings, work)


run_facility_list = listing(
    lambda session, args: [facility_view(f) for f in policy.list_facilities(session)],
    ["name", "timezone", "terminals", "booking_required", "accreditation_kind", "hours"],
    lambda row: row | {"accreditation_kind": row["accreditation_kind"] or "-", "hours": row["hours"][:50]},
)


def run_facility_show(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        facility = policy.require_facility(session, args.name)
        view = facility_view(facility) | {"terminals": [terminal_view(t) for t in facility.terminals]}
        if args.json:
            print_json(view)
        else:
            for key, value in view.items():
                if key == "terminals":
                    value = [f"{t['address']} ({t['label']})" if t["label"] else t["address"] for t in value]
                print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
        return 0

    return in_transaction(settings, work, read_only=True)


def run_facility_change(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        facility = policy.change_facility(
            session,
            args.name,
            address=args.address,
            timezone_name=args.timezone,
            booking_required=args.booking_required,
            accreditation_kind=args.accreditation_kind,
            actor=admin_actor(),
        )
        view = facility_view(facility)
        print(f"changed facility {facility.name} ({view['timezone']}, booking required: {view['booking_required']}, "
              f"accreditation: {view['accreditation_kind'] or 'none'})")
        return 0

    return in_transaction(settings, work)


def run_facility_hours(args: argparse.Namespace, settings: Settings) -> int:
    schedule = "" if args.schedule.strip().lower() in ("always", "always open", "") else args.schedule

    def work(session: Session) -> int:
        facility = policy.set_opening_hours(session, args.name, schedule, actor=admin_actor())
        print(f"opening hours of {facility.name} ({facility.timezone}): {policy.format_hours(facility.hours) or 'always open'}")
        return 0

    return in_transaction(settings, work)


def run_facility_closed_day(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        if args.facility_command == "close-day":
            policy.add_closed_day(session, args.name, args.day, note=args.note, actor=admin_actor())
            print(f"{args.name} is closed on {args.day}")
        else:
            policy.remove_closed_day(session, args.name, args.day, actor=admin_actor())
            print(f"{args.name} is no longer closed on {args.day}")
        return 0

    return in_transaction(settings, work)


# ---------------------------------------------------------------- admin: accreditations and bookings


def run_accreditation_add(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        accreditation = policy.add_accreditation(
            session, username=args.username, kind=args.kind, issued=args.issued or date.today(), expiry=args.expiry, actor=admin_actor()
        )
        print(f"accreditation {accreditation.id}: {accreditation.kind} for {accreditation.person.username} "
              f"from {accreditation.issued} through {accreditation.expiry}")
        return 0

    return in_transaction(settings, work)


run_accreditation_list = listing(
    lambda session, args: [accreditation_view(a) for a in policy.list_accreditations(session, args.person)],
    ["id", "person", "kind", "issued", "expiry", "revoked_at"],
    lambda row: row | {"revoked_at": row["revoked_at"] or "-"},
)


def run_accreditation_revoke(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        accreditation = policy.revoke_accreditation(session, args.accreditation_id, actor=admin_actor())
        print(f"revoked accreditation {accreditation.id} ({accreditation.kind} of {accreditation.person.username})")
        return 0

    return in_transaction(settings, work)


def local_time(text: str) -> datetime:
    """An ISO date-time; without an offset it is read in the facility's time zone later."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date-time: use YYYY-MM-DDTHH:MM (facility time) or add an offset, +09:00") from None


def run_booking_add(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        zone = ZoneInfo(policy.require_facility(session, args.facility).timezone)
        starts_at, ends_at = (t if t.tzinfo else t.replace(tzinfo=zone) for t in (args.start, args.end))
        booking = policy.add_booking(
            session, username=args.username, facility=args.facility, starts_at=starts_at, ends_at=ends_at, actor=admin_actor()
        )
        view = booking_view(booking)
        print(f"booking {booking.id}: {view['person']} at {view['facility']} from {view['starts_at']} until {view['ends_at']}")
        return 0

    return in_transaction(settings, work)


run_booking_list = listing(
    lambda session, args: [
        booking_view(b)
        for b in policy.list_bookings(
            session, username=args.person, facility=args.facility, ending_after=None if args.all else datetime.now(timezone.utc)
        )
    ],
    ["id", "person", "facility", "starts_at", "ends_at", "cancelled_at"],
    lambda row: row | {"cancelled_at": row["cancelled_at"] or "-"},
)


def run_booking_cancel(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        booking = policy.cancel_booking(session, args.booking_id, actor=admin_actor())
        print(f"cancelled booking {booking.id} ({booking.person.username} at {booking.facility.name})")
        return 0

    return in_transaction(settings, work)


def run_terminal_add(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        terminal = policy.add_terminal(session, facility=args.facility, address=args.address, label=args.label, actor=admin_actor())
        print(f"added terminal {terminal.address} at {args.facility}")
        return 0

    return in_transaction(settings, work)


run_terminal_list = listing(
    lambda session, args: [terminal_view(t) for t in policy.list_terminals(session)],
    ["address", "facility", "label"],
)


def run_terminal_remove(args: argparse.Namespace, settings: Settings) -> int:
    def work(session: Session) -> int:
        policy.remove_terminal(session, address=args.address, actor=admin_actor())
        print(f"removed terminal {args.address}")
        return 0

    return in_transaction(settings, work)


# ---------------------------------------------------------------- live sessions

MAX_REASON = 300


def hub_client(settings: Settings) -> HubClient:
    """The Hub API with the `onsite-cli` service token, both as the running hub wrote them."""
    from hub_config.config import CLI_TOKEN_FILE, HUB_API_URL_FILE

    values = []
    for name in (HUB_API_URL_FILE, CLI_TOKEN_FILE):
        path = settings.runtime_dir / name
        try:
            values.append(path.read_text().strip())
        except FileNotFoundError:
            raise UserError(f"{path} does not exist: is the hub running? start it with `make up` or `onsite hub`") from None
    return HubClient(*values)


def hub_refused(e: HubApiUnavailable) -> UserError:
    return UserError(f"the hub API did not answer ({e}): is the hub running? start it with `make up` or `onsite hub`")


def run_sessions_list(args: argparse.Namespace, settings: Settings) -> int:
    try:
        servers = asyncio.run(hub_client(settings).live_servers())
    except HubApiUnavailable as e:
        raise hub_refused(e) from None

    def when(moment: datetime | None) -> str | None:
        return moment.isoformat(timespec="seconds") if moment else None

    def work(session: Session) -> int:
        rows = [
            {
                "username": server.user,
                "projects": session_projects(session, server.user),
                "started": when(server.started),
                "last_activity": when(server.last_activity),
                "state": "running" if server.ready else f"pending ({server.pending})" if server.pending else "not ready",
            }
            for server in servers
        ]
        if args.json:
            print_json(rows)
        else:
            print_rows([{**row, "projects": ",".join(row["projects"])} for row in rows],
                       ["username", "projects", "started", "last_activity", "state"])
        return 0

    return in_transaction(settings, work, read_only=True)


def run_sessions_end(args: argparse.Namespace, settings: Settings) -> int:
    if args.reason is not None and not 0 < len(args.reason.strip()) <= MAX_REASON:
        raise UserError(f"--reason must be 1 to {MAX_REASON} characters; nothing changed")
    hub = hub_client(settings)
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        asyncio.run(end_session(hub, session_factory(engine), args.username, admin_actor(),
                                reason=args.reason.strip() if args.reason else None))
    except HubApiUnavailable as e:
        raise hub_refused(e) from None  # the failed attempt is in the ledger
    finally:
        engine.dispose()
    print(f"asked the hub to end the session of {args.username}")
    return 0


# ---------------------------------------------------------------- admin parser


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _password_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of standard input instead of prompting"
    )


def register_admin(admin: argparse._SubParsersAction) -> None:
    roles_help = ", ".join(r.value.lower() for r in Role)

    person = admin.add_parser("person", help="people: add, import, list, show, disable, enable, passwd, unlock").add_subparsers(
        dest="person_command", metavar="ACTION", required=True
    )
    p = person.add_parser("add", help="register a person (user names become OS account names)")
    p.add_argument("username", help="1-32 of a-z 0-9 . _ -, starting with a letter or _ (full-width input is normalised)")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--email", default="", help="e-mail address")
    p.add_argument("--role", type=role_arg, action="append", help=f"role to grant ({roles_help}); repeat for several")
    _password_flags(p)
    p.add_argument("--no-password", action="store_true", help="no local password (the person cannot log in until `person passwd`)")
    p.set_defaults(run=run_person_add)
    p = person.add_parser(
        "import",
        help="add people, roles and memberships from a CSV file (all rows or none)",
        description="CSV columns: username,display_name,email,roles,projects (roles and projects separated by ';', "
        "e.g. 'researcher;reviewer'). People already registered keep their details and gain the listed roles and "
        "memberships they lack, so importing a file twice changes nothing. Any bad row refuses the whole file, "
        "naming the line. No passwords are imported.",
    )
    p.add_argument("file", help="CSV file, UTF-8 (a spreadsheet's BOM is fine)")
    p.add_argument("--dry-run", action="store_true", help="check the file and report what would change, change nothing")
    p.set_defaults(run=run_person_import)
    p = person.add_parser("list", help="everyone, with roles and whether disabled or locked")
    _json_flag(p)
    p.set_defaults(run=run_person_list)
    p = person.add_parser("show", help="one person: roles, projects, lock state")
    p.add_argument("username")
    _json_flag(p)
    p.set_defaults(run=run_person_show)
    for action, disabled, text in (("disable", True, "refuse entry from now on"), ("enable", False, "allow entry again")):
        p = person.add_parser(action, help=f"{action} an account ({text}); nothing is deleted")
        p.add_argument("username")
        p.set_defaults(run=run_person_disabled(disabled))
    p = person.add_parser("passwd", help="set a person's local password (prompted twice unless --password-stdin)")
    p.add_argument("username")
    _password_flags(p)
    p.set_defaults(run=run_person_passwd)
    p = person.add_parser("unlock", help="lift the lock-out after repeated failed logins")
    p.add_argument("username")
    p.set_defaults(run=run_person_unlock)

    role = admin.add_parser("role", help="grant or revoke a role").add_subparsers(dest="role_command", metavar="ACTION", required=True)
    for action in ("grant", "revoke"):
        p = role.add_parser(action, help=f"{action} a role ({roles_help})")
        p.add_argument("username")
        p.add_argument("role", type=role_arg, help=roles_help)
        p.set_defaults(run=run_role)

    project = admin.add_parser("project", help="projects: add, list, show, change").add_subparsers(
        dest="project_command", metavar="ACTION", required=True
    )
    p = project.add_parser("add", help="register an approved project with its validity dates")
    p.add_argument("project_id", help="e.g. p2026-001 (a-z, 0-9, '-')")
    p.add_argument("--title", required=True)
    p.add_argument("--start", type=iso_date, required=True, help="first valid day, YYYY-MM-DD")
    p.add_argument("--end", type=iso_date, required=True, help="last valid day (inclusive), YYYY-MM-DD, in the facility's time zone")
    p.add_argument("--purpose", default="", help="purpose of use as approved")
    p.add_argument("--legal-basis", default="", help="reference to the approval, e.g. Statistics Act art. 33")
    p.add_argument("--preset", default="acro-default", help="disclosure-control rule preset (default acro-default)")
    p.set_defaults(run=run_project_add)
    p = project.add_parser("list", help="all projects with status and dates")
    _json_flag(p)
    p.set_defaults(run=run_project_list)
    p = project.add_parser("show", help="one project with members and grants")
    p.add_argument("project_id")
    _json_flag(p)
    p.set_defaults(run=run_project_show)
    p = project.add_parser("change", help="change title, dates, status (active, suspended, closed) or preset")
    p.add_argument("project_id")
    p.add_argument("--title")
    p.add_argument("--purpose")
    p.add_argument("--legal-basis")
    p.add_argument("--start", type=iso_date, help="YYYY-MM-DD")
    p.add_argument("--end", type=iso_date, help="YYYY-MM-DD (inclusive)")
    p.add_argument("--status", type=enum_arg(ProjectStatus), help="active, suspended or closed; only active projects admit researchers")
    p.add_argument("--preset")
    p.set_defaults(run=run_project_change)

    member = admin.add_parser("member", help="add or remove a project member").add_subparsers(
        dest="member_command", metavar="ACTION", required=True
    )
    for action in ("add", "remove"):
        p = member.add_parser(action, help=f"{action} a person {'to' if action == 'add' else 'from'} a project")
        p.add_argument("project_id")
        p.add_argument("username")
        p.set_defaults(run=run_member)

    grant = admin.add_parser("grant", help="grant datasets to projects: add, list, revoke").add_subparsers(
        dest="grant_command", metavar="ACTION", required=True
    )
    p = grant.add_parser("add", help="grant a dataset to a project for a period (default: the project's dates)")
    p.add_argument("project_id")
    p.add_argument("dataset_id")
    p.add_argument("--from", dest="valid_from", type=iso_date, help="first valid day, YYYY-MM-DD (default project start)")
    p.add_argument("--until", dest="valid_until", type=iso_date, help="last valid day, YYYY-MM-DD (default project end)")
    p.set_defaults(run=run_grant_add)
    p = grant.add_parser("list", help="grants, revoked ones included")
    p.add_argument("--project", help="only this project's grants")
    _json_flag(p)
    p.set_defaults(run=run_grant_list)
    p = grant.add_parser("revoke", help="revoke a grant now (its number from `grant list`)")
    p.add_argument("grant_id", type=int)
    p.set_defaults(run=run_grant_revoke)

    facility = admin.add_parser("facility", help="on-site facilities: add, change, list").add_subparsers(
        dest="facility_command", metavar="ACTION", required=True
    )
    p = facility.add_parser("add", help="register a facility")
    p.add_argument("name")
    p.add_argument("--address", default="", help="postal address")
    p.add_argument("--timezone", default="Asia/Tokyo", help="IANA time zone in which project dates are read (default Asia/Tokyo)")
    p.set_defaults(run=run_facility_add)
    p = facility.add_parser("change", help="change a facility's address, time zone, booking rule or required accreditation")
    p.add_argument("name")
    p.add_argument("--address", help="postal address")
    p.add_argument("--timezone", help="IANA time zone in which project dates, opening hours and accreditation expiry are read")
    p.add_argument(
        "--booking-required", action=argparse.BooleanOptionalAction, default=None,
        help="entry here needs a booking covering the moment of entry (--no-booking-required: not)",
    )
    p.add_argument(
        "--accreditation-kind", metavar="KIND",
        help="kind of accreditation researchers need to enter here, e.g. onsite-training; '' for none",
    )
    p.set_defaults(run=run_facility_change)
    p = facility.add_parser("list", help="all facilities with their entry rules")
    _json_flag(p)
    p.set_defaults(run=run_facility_list)
    p = facility.add_parser("show", help="one facility: hours, closed days, booking and accreditation rules, terminals")
    p.add_argument("name")
    _json_flag(p)
    p.set_defaults(run=run_facility_show)
    p = facility.add_parser(
        "hours",
        help="set the weekly opening hours (replaces them all)",
        description="SCHEDULE lists days and intervals in the facility's time zone, separated by commas, e.g. "
        "'mon-fri 09:00-17:30, sat 10:00-12:00'; several intervals on one day are separate entries "
        "('mon 09:00-12:00, mon 13:00-17:00'). Opening time inclusive, closing time exclusive (24:00 is midnight); "
        "intervals cannot pass midnight. Days not listed are closed. 'always' removes the hours: always open. "
        "Sessions outside the hours are refused at log-in and stopped at the next re-check.",
    )
    p.add_argument("name")
    p.add_argument("schedule", help="e.g. 'mon-fri 09:00-17:30', or 'always'")
    p.set_defaults(run=run_facility_hours)
    p = facility.add_parser("close-day", help="close the facility for a whole day (holiday), in its time zone")
    p.add_argument("name")
    p.add_argument("day", type=iso_date, help="YYYY-MM-DD")
    p.add_argument("--note", default="", help="e.g. the holiday's name")
    p.set_defaults(run=run_facility_closed_day)
    p = facility.add_parser("reopen-day", help="undo close-day")
    p.add_argument("name")
    p.add_argument("day", type=iso_date, help="YYYY-MM-DD")
    p.set_defaults(run=run_facility_closed_day)

    terminal = admin.add_parser("terminal", help="terminals (IP addresses or networks) of facilities: add, list, remove").add_subparsers(
        dest="terminal_command", metavar="ACTION", required=True
    )
    p = terminal.add_parser("add", help="register a terminal address; only registered terminals may log in")
    p.add_argument("facility", help="facility name")
    p.add_argument("address", help="IPv4/IPv6 address or CIDR network, e.g. 192.0.2.10 or 2001:db8::/64")
    p.add_argument("--label", default="", help="e.g. the seat number")
    p.set_defaults(run=run_terminal_add)
    p = terminal.add_parser("list", help="all terminals with their facility")
    _json_flag(p)
    p.set_defaults(run=run_terminal_list)
    p = terminal.add_parser("remove", help="unregister a terminal address")
    p.add_argument("address")
    p.set_defaults(run=run_terminal_remove)

    sessions = admin.add_parser("sessions", help="live sessions on the hub: list, end").add_subparsers(
        dest="sessions_command", metavar="ACTION", required=True
    )
    p = sessions.add_parser(
        "list",
        help="who has a server on the running hub, with the projects their session opened",
        description="Asks the running hub's API (the address and the `onsite-cli` token the hub wrote to its "
        "runtime directory when it started), so it works on the hub's machine while the hub runs.",
    )
    _json_flag(p)
    p.set_defaults(run=run_sessions_list)
    p = sessions.add_parser(
        "end",
        help="stop a person's server now (recorded as SESSION_STOP)",
        description="Asks the running hub to stop the person's server; the kernel and its unsaved state are "
        "lost, files in the workspace stay. Recorded in the audit ledger as SESSION_STOP by admin:<your login>, "
        "FAILED when the hub refuses.",
    )
    p.add_argument("username")
    p.add_argument("--reason", help=f"why, kept in the ledger (at most {MAX_REASON} characters)")
    p.set_defaults(run=run_sessions_end)

    accreditation = admin.add_parser("accreditation", help="accreditations of people: add, list, revoke").add_subparsers(
        dest="accreditation_command", metavar="ACTION", required=True
    )
    p = accreditation.add_parser(
        "add",
        help="record a person's accreditation (e.g. completed training) with its expiry",
        description="Researchers entering a facility that names an accreditation kind (`facility change "
        "--accreditation-kind`) need one of that kind valid on the day, read in the facility's time zone: "
        "from --issued through --expiry, both inclusive.",
    )
    p.add_argument("username")
    p.add_argument("kind", help="e.g. onsite-training (a-z, 0-9, '.', '_', '-')")
    p.add_argument("--expiry", type=iso_date, required=True, help="last valid day, YYYY-MM-DD (inclusive)")
    p.add_argument("--issued", type=iso_date, help="first valid day, YYYY-MM-DD (default today)")
    p.set_defaults(run=run_accreditation_add)
    p = accreditation.add_parser("list", help="accreditations, revoked ones included")
    p.add_argument("--person", help="only this person's")
    _json_flag(p)
    p.set_defaults(run=run_accreditation_list)
    p = accreditation.add_parser("revoke", help="revoke an accreditation now (its number from `accreditation list`)")
    p.add_argument("accreditation_id", type=int)
    p.set_defaults(run=run_accreditation_revoke)

    booking = admin.add_parser("booking", help="bookings of seats at facilities: add, list, cancel").add_subparsers(
        dest="booking_command", metavar="ACTION", required=True
    )
    p = booking.add_parser(
        "add",
        help="book a seat for a person at a facility",
        description="Times without an offset are in the facility's time zone. The slot runs from --start "
        "(inclusive) to --end (exclusive), at most 24 hours, within one opening interval of the facility and "
        "not on a closed day; it may not overlap another booking of the same person. At a facility with "
        "--booking-required, entry is allowed only while a booking covers the moment, and a session is stopped "
        "at the first re-check after its booking ends.",
    )
    p.add_argument("username")
    p.add_argument("facility", help="facility name")
    p.add_argument("--start", type=local_time, required=True, help="e.g. 2026-12-01T09:00")
    p.add_argument("--end", type=local_time, required=True, help="e.g. 2026-12-01T12:00")
    p.set_defaults(run=run_booking_add)
    p = booking.add_parser("list", help="bookings that have not ended yet (with --all: every booking), cancelled ones included")
    p.add_argument("--person", help="only this person's")
    p.add_argument("--facility", help="only this facility's")
    p.add_argument("--all", action="store_true", help="include bookings that have ended")
    _json_flag(p)
    p.set_defaults(run=run_booking_list)
    p = booking.add_parser("cancel", help="cancel a booking (its number from `booking list`)")
    p.add_argument("booking_id", type=int)
    p.set_defaults(run=run_booking_cancel)
