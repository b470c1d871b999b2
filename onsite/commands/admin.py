"""`onsite init` and `onsite admin person|role|project|member|grant|facility|terminal|accreditation|booking|sessions …`.

Every command is a row of a table (`GROUPS`; `project_commands`): where
it sits (`person add`), its help, its arguments, and what it runs — for most,
one call of the service layer (`access_control.policy`) in the one transaction
of `access_control.admin.change`, the same call the admin pages make, with
input read by the same parsers (`access_control.forms`). Bad input is refused
with the reason and nothing changes. Changes are audit events whose actor is
`admin:<OS login>` (the login of the process's real user id, not $USER). An OS
login that is a person in the store acts within that person's scope: an
administrator everything, a facility manager only their facilities' commands
(`Command.managers`) and records, anyone else nothing; a login that is nobody in
the store is the operator's and may do everything. A refusal for being out of
scope is an ADMIN_ACCESS event. With LDAP configured (`ONSITE_LDAP_URI`, see
docs/how-to/ldap.md) role and membership changes also change the LDAP groups
before the commit; a directory failure fails the command and the database
keeps its state.

Refusals are printed in the administrator's language (`cli_language`):
Japanese when the locale is Japanese (LANG=ja_JP.UTF-8), else English. Times
are printed in the facility's time zone with the zone shown (`Settings.timezone`,
a booking in its facility's zone; `onsite_base.times`); `--json` gives ISO 8601
with the offset.
"""
from __future__ import annotations

import argparse
import asyncio
import contextvars
import csv
import enum
import getpass
import json
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, DBAPIError, InternalError, OperationalError
from sqlalchemy.orm import Session

from access_control import audit, forms, policy
from access_control.accounts import account_state
from access_control.admin import (
    change, close_for_emergency, end_session_in_scope, ldap_directory, live_sessions, record_manager_read,
)
from access_control.enums import AuditEventType, Outcome, Role
from access_control.errors import Done, InputInvalid, Label, PolicyError, cli_text
from access_control.hub_api import HubApiUnavailable, HubClient
from access_control.models import Accreditation, Booking, Facility, Grant, Person, Project, Terminal
from hub_config.settings import CLI_TOKEN_FILE, HUB_API_URL_FILE
from onsite.commands.language import cli_language
from onsite.migrations import migrate, store_exists
from onsite_base import times
from onsite_base.db import make_engine, read_transaction, session_factory, transaction
from onsite_base.errors import UserError
from onsite_base.os_user import os_login
from onsite_base.settings import Settings

MAX_REASON = 300
E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")
RUNNING = contextvars.ContextVar("RUNNING", default="")
"""The command being run ('terminal add'), for the ledger's record of a refusal."""
Run = Callable[[argparse.Namespace, Settings], int]


# ---------------------------------------------------------------- language, transactions, output


def spoken(error: UserError, zone: str = times.DEFAULT_TIMEZONE) -> UserError:
    """The refusal as the CLI prints it: in the administrator's language, its moments in `zone`
    (`Settings.timezone`), naming the command that shows what it names."""
    return UserError(cli_text(error, cli_language(), zone))


def store_name(settings: Settings) -> str:
    """The store as a person is shown it: its URL without a password."""
    return make_url(settings.db_url).render_as_string(hide_password=True)


def open_store(settings: Settings) -> None:
    """Bring the store of `settings` to the newest schema. Only `onsite init` and `onsite up` create one: a
    command run from another folder (./var) or with a mistyped $ONSITE_DB_URL is refused, naming the store."""
    try:
        exists = store_exists(settings.db_url)
    except DatabaseError as e:
        if not damaged(e):
            raise
        raise spoken(unreadable(settings, e)) from None
    if not exists:
        raise spoken(PolicyError(
            "store_missing", store=store_name(settings), home=str(settings.home),
            config=str(settings.config_file or settings.home / "onsite_config.py"),
        ))
    migrate(settings.db_url)


def admin_actor() -> str:
    return f"admin:{os_login()}"


def acting_scope(session: Session) -> policy.Scope | None:
    """What the login running the command may administer (see the module's docstring); None: nothing."""
    login = os_login()
    if policy.get_person(session, login) is None:
        return policy.EVERYTHING
    try:
        return policy.actor_scope(session, login)
    except PolicyError:
        return None


def require_administrator(session: Session) -> None:
    """For commands outside this table that change the store (`dataset ingest`): the acting login's, unless it is a
    facility manager's or nobody's to run."""
    scope = acting_scope(session)
    if scope is None or not scope.everything:
        raise PolicyError("administrators_only")


def scoped(command: Command) -> Run:
    """The command run with `args.scope`, the acting login's; refused (and recorded) when it is not the login's to run."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        RUNNING.set(command.name)
        args.scope = in_transaction(settings, acting_scope, read_only=True, before_change=True)
        if args.scope is None or not (args.scope.everything or command.managers):
            error = PolicyError("not_admin", name=os_login()) if args.scope is None else PolicyError("administrators_only")
            record_refusal(settings, error)
            raise spoken(error)
        return command.run(args, settings)

    return run


def out_of_scope(error: PolicyError) -> bool:
    """A refusal for acting outside one's scope (recorded), not for bad input."""
    return isinstance(error, policy.OutOfScope) or error.key in ("administrators_only", "not_admin")


def record_refusal(settings: Settings, error: PolicyError) -> None:
    """An out-of-scope command, in the ledger as the admin pages record theirs (ADMIN_ACCESS, DENIED)."""
    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            audit.record(session, AuditEventType.ADMIN_ACCESS, actor=admin_actor(), object="cli:onsite admin", outcome=Outcome.DENIED,
                         details={"command": RUNNING.get(), "refused": error.key,
                                  "names": {k: str(v)[:100] for k, v in error.params.items()}})
    finally:
        engine.dispose()


def in_transaction(settings: Settings, work: Callable[[Session], T], *, read_only: bool = False,
                   before_change: bool = False) -> T:
    """Run `work` in one transaction on a migrated store (`access_control.admin.change`); a refusal rolls
    everything back. `read_only` work reads a snapshot without holding up writers (the hub's logins).
    A change the store cannot take (disk full, read-only, gone) is refused: nothing is done unrecorded. A store
    that cannot be read is named as such, unless the read comes `before_change` (the acting login's scope), which
    is refused as the change it precedes would be."""
    try:
        open_store(settings)
        engine = make_engine(settings.db_url)
        try:
            if read_only:
                with read_transaction(session_factory(engine)) as session:
                    return work(session)
            with change(session_factory(engine)) as session:
                return work(session)
        finally:
            engine.dispose()
    except PolicyError as e:
        if out_of_scope(e):
            record_refusal(settings, e)
        raise spoken(e, settings.timezone) from None
    except (OperationalError, InternalError) as e:
        raise spoken(unreadable(settings, e) if read_only and not before_change else unwritable(e)) from None
    except DatabaseError as e:
        if not damaged(e):
            raise
        raise spoken(unreadable(settings, e)) from None


def unwritable(error: DBAPIError) -> PolicyError:
    """The refusal of a change the ledger could not record (nothing of it was committed)."""
    return PolicyError("ledger_unwritable", error=first_line(error))


def unreadable(settings: Settings, error: DBAPIError) -> PolicyError:
    """The refusal of a read from a store that answers but cannot be read (damaged, not a database, a failing disk)."""
    return PolicyError("store_unreadable", store=store_name(settings), error=first_line(error))


def damaged(error: DatabaseError) -> bool:
    """The driver's plain DatabaseError: the file is not a database or is malformed. Its subclasses (a constraint
    or a statement refused) are bugs to see, and OperationalError is the store's state (full, read-only, gone)."""
    return type(error) is DatabaseError


def first_line(error: DBAPIError) -> str:
    return str(error.orig or error).strip().splitlines()[0][:200]


def parsed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a `forms` parser: its refusal becomes argparse's usage error, in the CLI's language."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except PolicyError as e:
            raise argparse.ArgumentTypeError(e.text(cli_language())) from None

    return convert


def day(what: str) -> Callable[[str], Any]:
    """A YYYY-MM-DD argument; `what` names the field in a refusal (a `field_…` message key)."""
    return parsed(lambda text: forms.parse_date(text, what, required=True))


def row_number(kind: str) -> Callable[[str], Any]:
    return parsed(lambda text: forms.parse_row_number(text, kind))


def enum_arg(enum_class: type[E]) -> Callable[[str], E]:
    def parse(text: str) -> E:
        try:
            return enum_class(text.upper())
        except ValueError:
            raise argparse.ArgumentTypeError(f"unknown value {text!r}: choose from {', '.join(m.value for m in enum_class)}") from None

    return parse


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))


def cell(value: Any, zone: str) -> str:
    """A value as a table or view prints it: a time in `zone`, with the zone."""
    return times.shown(value, zone) if isinstance(value, datetime) else str(value)


def display_width(text: str) -> int:
    """Terminal columns: Japanese (wide) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def print_rows(rows: list[dict[str, Any]], columns: list[str], zone: str = times.DEFAULT_TIMEZONE) -> None:
    if not rows:
        print("(none)")
        return
    table = [columns, *([cell(row[c], zone) for c in columns] for row in rows)]
    widths = [max(display_width(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        print("  ".join(cell + " " * (width - display_width(cell)) for cell, width in zip(line, widths)).rstrip())


def print_view(view: dict[str, Any], zone: str = times.DEFAULT_TIMEZONE) -> None:
    for key, value in view.items():
        print(f"{key}: {', '.join(value) if isinstance(value, list) else cell(value, zone)}")


# ---------------------------------------------------------------- what a command runs


Answer = tuple[Done | list[Done], dict[str, Any]]
"""What a change did (said in the administrator's language) and the object it wrote, as `show` prints it."""
Action = Callable[[Session, argparse.Namespace], Answer]


def changing(action: Action, prepare: Callable[[argparse.Namespace], None] | None = None) -> Run:
    """A change: `prepare` reads what must come before the transaction (a password), then `action` makes the
    service call in one transaction; prints what it did, or with --json the object written."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        if prepare is not None:
            prepare(args)

        def work(session: Session) -> int:
            done, written = action(session, args)
            if args.json:
                print_json(written)
            else:
                print("\n".join(d.text(cli_language()) for d in (done if isinstance(done, list) else [done])))
            return 0

        return in_transaction(settings, work)

    return run


def listing(
    rows_of: Callable[[Session, argparse.Namespace], list[dict[str, Any]]],
    columns: list[str],
    table_cells: Callable[[dict[str, Any]], dict[str, Any]] = dict,
) -> Run:
    """A `list` command: JSON rows with --json, else a table of `columns`."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        def work(session: Session) -> int:
            rows = rows_of(session, args)
            if args.json:
                print_json(rows)
            else:
                print_rows([table_cells(row) for row in rows], columns, settings.timezone)
            return 0

        return in_transaction(settings, work, read_only=True)

    return run


def showing(view_of: Callable[[Session, argparse.Namespace], dict[str, Any]],
            printed: Callable[[dict[str, Any], str], None] = print_view) -> Run:
    """A `show` command: JSON with --json, else one `key: value` line each."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        def work(session: Session) -> int:
            view = view_of(session, args)
            if args.json:
                print_json(view)
            else:
                printed(view, settings.timezone)
            return 0

        return in_transaction(settings, work, read_only=True)

    return run


# ---------------------------------------------------------------- plain views (what list, show and --json print)


def person_view(session: Session, person: Person) -> dict[str, Any]:
    return {
        "username": person.username,
        "display_name": person.display_name,
        "email": person.email,
        "roles": sorted(r.value.lower() for r in person.role_set),
        "state": account_state(person).value.lower(),
        "disabled": person.disabled,
        "locked_until": person.locked_until,
        "failed_logins": person.failed_logins,
        "has_password": person.password_hash is not None,
        "projects": [p.id for p in policy.projects_of(session, person.username)],
        "created_at": person.created_at,
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
        "revoked_at": grant.revoked_at,
        "created_by": grant.created_by,
    }


def facility_view(facility: Facility) -> dict[str, Any]:
    return {
        "name": facility.name,
        "address": facility.address,
        "timezone": facility.timezone,
        "terminals": len(facility.terminals),
        "hours": forms.format_hours(facility.hours) or "always open",
        "closed_days": [c.day.isoformat() for c in facility.closures],
        "booking_required": facility.booking_required,
        "accreditation_kind": facility.accreditation_kind,
        "seats": facility.seats,
        "emergency_closed_at": facility.emergency_closed_at,
        "emergency_reason": facility.emergency_reason,
    }


def accreditation_view(accreditation: Accreditation) -> dict[str, Any]:
    return {
        "id": accreditation.id,
        "person": accreditation.person.username,
        "kind": accreditation.kind,
        "issued": accreditation.issued.isoformat(),
        "expiry": accreditation.expiry.isoformat(),
        "revoked_at": accreditation.revoked_at,
        "created_by": accreditation.created_by,
    }


def booking_view(booking: Booking) -> dict[str, Any]:
    zone = ZoneInfo(booking.facility.timezone)
    return {
        "id": booking.id,
        "person": booking.person.username,
        "facility": booking.facility.name,
        "starts_at": booking.starts_at.astimezone(zone),
        "ends_at": booking.ends_at.astimezone(zone),
        "cancelled_at": booking.cancelled_at,
        "created_by": booking.created_by,
    }


def terminal_view(terminal: Terminal) -> dict[str, Any]:
    return {"address": terminal.address, "facility": terminal.facility.name, "label": terminal.label, "override": terminal.is_override}


def or_dash(*keys: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Table cells: the empty ones among `keys` shown as '-'."""
    return lambda row: row | {key: row[key] or "-" for key in keys}


# ---------------------------------------------------------------- people and roles


def read_password(args: argparse.Namespace) -> None:
    """args.password: None with --no-password, else the first line of stdin (--password-stdin) or prompted twice."""
    if getattr(args, "no_password", False):
        args.password = None
    elif args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise spoken(InputInvalid("password_stdin_empty"))
        args.password = line.rstrip("\r\n")
    else:
        first = getpass.getpass(f"New password for {args.username}: ")
        if first != getpass.getpass("Repeat it: "):
            raise spoken(InputInvalid("passwords_differ"))
        args.password = first


def person_answer(session: Session, username: str, key: str, **params: object) -> Answer:
    """What a change of a person did, and the person as `person show` prints them."""
    person = policy.require_person(session, username)
    return Done(key, name=person.username, **params), person_view(session, person)


def add_person(session: Session, args: argparse.Namespace) -> Answer:
    person = policy.add_person(
        session, username=args.username, display_name=args.name, email=args.email, roles=args.role or [],
        password=args.password, actor=admin_actor(), directory=ldap_directory(),
    )
    return person_answer(session, person.username, "done_person_added")


def read_people_csv(path: Path) -> list[dict[str, str | None]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:  # -sig: spreadsheets write a BOM
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise spoken(InputInvalid("csv_unreadable", path=str(path), error=str(e))) from None
    unknown = [c for c in header if c not in policy.IMPORT_COLUMNS]
    if unknown or not {"username", "display_name"} <= set(header):
        raise spoken(InputInvalid("csv_header", path=str(path), columns=", ".join(policy.IMPORT_COLUMNS), found=", ".join(header) or "none"))
    return rows


def import_people(session: Session, args: argparse.Namespace) -> Answer:
    rows = read_people_csv(Path(args.file))
    summary = policy.import_people(session, rows, actor=admin_actor(), directory=None if args.dry_run else ldap_directory())
    counts = {"people": summary.people_added, "roles": summary.roles_granted, "memberships": summary.memberships_added, "rows": len(rows)}
    done = [Done("done_people_checked" if args.dry_run else "done_people_imported", **counts)]
    if args.dry_run:
        session.rollback()
    elif summary.people_added:
        done.append(Done("done_people_need_password"))
    return done, {"people_added": summary.people_added, "roles_granted": summary.roles_granted,
                  "memberships_added": summary.memberships_added, "rows": len(rows), "dry_run": args.dry_run}


def set_disabled(disabled: bool) -> Action:
    def action(session: Session, args: argparse.Namespace) -> Answer:
        policy.set_disabled(session, args.username, disabled, actor=admin_actor())
        return person_answer(session, args.username, "done_person_disabled" if disabled else "done_person_enabled")

    return action


def set_password(session: Session, args: argparse.Namespace) -> Answer:
    policy.set_password(session, args.username, args.password, actor=admin_actor())
    return person_answer(session, args.username, "done_password_set")


def unlock_person(session: Session, args: argparse.Namespace) -> Answer:
    policy.unlock_person(session, args.username, actor=admin_actor())
    return person_answer(session, args.username, "done_person_unlocked")


def change_role(session: Session, args: argparse.Namespace) -> Answer:
    grant = args.role_command == "grant"
    (policy.grant_role if grant else policy.revoke_role)(session, args.username, args.role, actor=admin_actor(), directory=ldap_directory())
    return person_answer(session, args.username, "done_role_granted" if grant else "done_role_revoked", role=Label(f"role_{args.role.value}"))


# ---------------------------------------------------------------- projects, members, grants


def add_project(session: Session, args: argparse.Namespace) -> Answer:
    project = policy.add_project(
        session, project_id=args.project_id, title=args.title, purpose=args.purpose, legal_basis=args.legal_basis,
        start_date=args.start, end_date=args.end, preset=args.preset, presets=args.presets, actor=admin_actor(),
    )
    return Done("done_project_added", id=project.id, start=project.start_date, end=project.end_date), project_details(session, args)


def project_details(session: Session, args: argparse.Namespace) -> dict[str, Any]:
    view = project_view(policy.require_project(session, args.project_id))
    view["members"] = [p.username for p in policy.members_of(session, args.project_id)]
    view["grants"] = [grant_view(g) for g in policy.list_grants(session, args.project_id)]
    return view


def print_project(view: dict[str, Any], zone: str) -> None:
    grants = view.pop("grants")
    print_view(view, zone)
    print("grants:" + ("" if grants else " (none)"))
    for g in grants:
        state = f"revoked {times.shown(g['revoked_at'], zone)}" if g["revoked_at"] else "valid"
        print(f"  {g['id']}: {g['dataset']} {g['valid_from']} to {g['valid_until']} ({state})")


def change_project(session: Session, args: argparse.Namespace) -> Answer:
    policy.change_project(
        session, args.project_id, title=args.title, purpose=args.purpose, legal_basis=args.legal_basis,
        start_date=args.start, end_date=args.end, status=args.status, preset=args.preset, presets=args.presets,
        actor=admin_actor(),
    )
    return Done("done_project_changed", id=args.project_id), project_details(session, args)


def change_member(session: Session, args: argparse.Namespace) -> Answer:
    add = args.member_command == "add"
    (policy.add_member if add else policy.remove_member)(session, args.project_id, args.username, actor=admin_actor(), directory=ldap_directory())
    name = policy.require_person(session, args.username).username
    return Done("done_member_added" if add else "done_member_removed", name=name, id=args.project_id), project_details(session, args)


def add_grant(session: Session, args: argparse.Namespace) -> Answer:
    grant = policy.add_grant(
        session, project_id=args.project_id, dataset_id=args.dataset_id, valid_from=args.valid_from,
        valid_until=args.valid_until, actor=admin_actor(),
    )
    done = Done("done_grant_added", grant=grant.id, dataset=grant.dataset_id, project=grant.project_id, start=grant.valid_from,
                end=grant.valid_until)
    return done, grant_view(grant)


def revoke_grant(session: Session, args: argparse.Namespace) -> Answer:
    grant = policy.revoke_grant(session, args.grant_id, actor=admin_actor())
    return Done("done_grant_revoked", grant=grant.id, dataset=grant.dataset_id, project=grant.project_id), grant_view(grant)


# ---------------------------------------------------------------- facilities and terminals


def facility_answer(session: Session, args: argparse.Namespace, name: str, key: str, **params: object) -> Answer:
    """What a change of a facility did, and the facility as `facility show` prints it."""
    facility = policy.require_facility(session, name, args.scope)
    return Done(key, name=facility.name, **params), facility_details(session, argparse.Namespace(name=facility.name, scope=args.scope))


def add_facility(session: Session, args: argparse.Namespace) -> Answer:
    facility = policy.add_facility(session, name=args.name, address=args.address, timezone_name=args.timezone, actor=admin_actor(),
                                   scope=args.scope)
    return facility_answer(session, args, facility.name, "done_facility_added", zone=facility.timezone)


def facility_details(session: Session, args: argparse.Namespace) -> dict[str, Any]:
    facility = policy.require_facility(session, args.name, args.scope)
    return facility_view(facility) | {
        "terminals": [terminal_view(t) for t in facility.terminals],
        "closure_notes": {c.day.isoformat(): c.note for c in facility.closures if c.note},
        "managers": [p.username for p in policy.managers_of(session, facility.name)] if args.scope.everything else [],
    }


def print_facility(view: dict[str, Any], zone: str) -> None:
    notes = view["closure_notes"]
    shown = view | {
        "terminals": [f"{t['address']}{' (override)' if t['override'] else ''}{' ' + t['label'] if t['label'] else ''}"
                      for t in view["terminals"]],
        "closed_days": [f"{day} {notes.get(day, '')}".strip() for day in view["closed_days"]],
        "seats": "not limited" if view["seats"] is None else view["seats"],
    }
    del shown["closure_notes"]
    print_view(shown, zone)


def change_facility(session: Session, args: argparse.Namespace) -> Answer:
    policy.change_facility(
        session, args.name, address=args.address, timezone_name=args.timezone, booking_required=args.booking_required,
        accreditation_kind=args.accreditation_kind, seats=args.seats, actor=admin_actor(), scope=args.scope,
    )
    return facility_answer(session, args, args.name, "done_facility_changed")


def set_hours(session: Session, args: argparse.Namespace) -> Answer:
    facility = policy.set_opening_hours(session, args.name, args.schedule, actor=admin_actor(), scope=args.scope)
    return facility_answer(session, args, facility.name, "done_hours_set", zone=facility.timezone, hours=forms.shown_hours(facility.hours))


def close_day(session: Session, args: argparse.Namespace) -> Answer:
    policy.add_closed_day(session, args.name, args.day, note=args.note, actor=admin_actor(), scope=args.scope)
    return facility_answer(session, args, args.name, "done_day_closed", day=args.day)


def reopen_day(session: Session, args: argparse.Namespace) -> Answer:
    policy.remove_closed_day(session, args.name, args.day, actor=admin_actor(), scope=args.scope)
    return facility_answer(session, args, args.name, "done_day_reopened", day=args.day)


def close_holidays(session: Session, args: argparse.Namespace) -> Answer:
    added = policy.add_public_holidays(session, args.name, args.year, actor=admin_actor(), scope=args.scope)
    return facility_answer(session, args, args.name, "done_holidays_closed", year=args.year, count=len(added))


def reopen_facility(session: Session, args: argparse.Namespace) -> Answer:
    policy.reopen_after_emergency(session, args.name, actor=admin_actor(), scope=args.scope)
    return facility_answer(session, args, args.name, "done_emergency_reopened")


def run_emergency_close(args: argparse.Namespace, settings: Settings) -> int:
    """Close now and end the sessions there through the running hub (`admin.close_for_emergency`)."""
    try:
        hub: HubClient | None = hub_client(settings)
    except UserError:  # no hub running here: close all the same
        hub = None
    engine = make_engine(settings.db_url)
    try:
        ended = asyncio.run(close_for_emergency(hub, session_factory(engine), args.name, args.reason, admin_actor(), scope=args.scope))
    except HubApiUnavailable as e:  # the closure stands: the sessions stop at their next entry re-check
        raise spoken(PolicyError("emergency_closed_hub_unavailable", name=args.name, error=str(e))) from None
    except PolicyError as e:
        if out_of_scope(e):
            record_refusal(settings, e)
        raise spoken(e, settings.timezone) from None
    finally:
        engine.dispose()
    if args.json:
        print_json({"facility": args.name, "reason": args.reason.strip(), "sessions_ended": ended})
    else:
        print(Done("done_emergency_closed", name=args.name, reason=args.reason.strip(), ended=", ".join(ended) or "-").text(cli_language()))
    return 0


def add_terminal(session: Session, args: argparse.Namespace) -> Answer:
    terminal = policy.add_terminal(session, facility=args.facility, address=args.address, label=args.label, override=args.override,
                                   actor=admin_actor(), scope=args.scope)
    return Done("done_terminal_added", network=terminal.address, facility=terminal.facility.name), terminal_view(terminal)


def remove_terminal(session: Session, args: argparse.Namespace) -> Answer:
    removed = {t.address: terminal_view(t) for t in policy.list_terminals(session, args.scope)}
    network = str(forms.parse_network(args.address, registering=False))
    policy.remove_terminal(session, address=args.address, actor=admin_actor(), scope=args.scope)
    return Done("done_terminal_removed", network=network), removed[network]


def change_manager(session: Session, args: argparse.Namespace) -> Answer:
    grant = args.manager_command == "grant"
    (policy.grant_facility_manager if grant else policy.revoke_facility_manager)(
        session, args.username, args.facility, actor=admin_actor(), scope=args.scope, directory=ldap_directory())
    person = policy.require_person(session, args.username)
    done = Done("done_manager_granted" if grant else "done_manager_revoked", name=person.username, facility=args.facility)
    return done, {"username": person.username, "facilities": [f.name for f in policy.managed_facilities(session, person.username)]}


def managers(session: Session, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [{"facility": f.name, "managers": [p.username for p in policy.managers_of(session, f.name)]}
            for f in policy.list_facilities(session, args.scope)]


# ---------------------------------------------------------------- accreditations and bookings


def add_accreditation(session: Session, args: argparse.Namespace) -> Answer:
    accreditation = policy.add_accreditation(
        session, username=args.username, kind=args.kind, issued=args.issued, expiry=args.expiry, actor=admin_actor()
    )
    done = Done("done_accreditation_added", id=accreditation.id, kind=accreditation.kind, name=accreditation.person.username,
                start=accreditation.issued, end=accreditation.expiry)
    return done, accreditation_view(accreditation)


def revoke_accreditation(session: Session, args: argparse.Namespace) -> Answer:
    accreditation = policy.revoke_accreditation(session, args.accreditation_id, actor=admin_actor())
    done = Done("done_accreditation_revoked", id=accreditation.id, kind=accreditation.kind, name=accreditation.person.username)
    return done, accreditation_view(accreditation)


def add_booking(session: Session, args: argparse.Namespace) -> Answer:
    booking = policy.add_booking(
        session, username=args.username, facility=args.facility, starts_at=args.start, ends_at=args.end, actor=admin_actor(),
        scope=args.scope,
    )
    view = booking_view(booking)
    done = Done("done_booking_added", id=booking.id, name=view["person"], facility=view["facility"],
                start=booking_time(view["starts_at"]), end=booking_time(view["ends_at"]))
    return done, view


def booking_time(moment: datetime) -> str:
    """A booking's start or end as typed: in its facility's zone (booking_view gives it in that zone)."""
    return times.shown(moment, moment.tzinfo.key)


def booking_cells(row: dict[str, Any]) -> dict[str, Any]:
    return or_dash("cancelled_at")(row) | {"starts_at": booking_time(row["starts_at"]), "ends_at": booking_time(row["ends_at"])}


def cancel_booking(session: Session, args: argparse.Namespace) -> Answer:
    booking = policy.cancel_booking(session, args.booking_id, actor=admin_actor(), scope=args.scope)
    return Done("done_booking_cancelled", id=booking.id, name=booking.person.username, facility=booking.facility.name), booking_view(booking)


def bookings(session: Session, args: argparse.Namespace) -> list[dict[str, Any]]:
    ending_after = None if args.all else datetime.now(timezone.utc)
    return [booking_view(b) for b in policy.list_bookings(session, username=args.person, facility=args.facility, ending_after=ending_after,
                                                         scope=args.scope)]


def seats(session: Session, args: argparse.Namespace) -> list[dict[str, Any]]:
    first = args.first or datetime.now(ZoneInfo(policy.require_facility(session, args.facility, args.scope).timezone)).date()
    return [{"day": d.day.isoformat(), "booked": d.booked, "free": d.free, "closed": d.closed}
            for d in policy.seat_days(session, args.facility, first, args.days, scope=args.scope)]


# ---------------------------------------------------------------- live sessions (the running hub's API)


def hub_client(settings: Settings) -> HubClient:
    """The Hub API with the `onsite-cli` service token, both as the running hub wrote them."""
    values = []
    for name in (HUB_API_URL_FILE, CLI_TOKEN_FILE):
        path = settings.runtime_dir / name
        try:
            values.append(path.read_text().strip())
        except FileNotFoundError:
            raise spoken(InputInvalid("hub_not_running", path=str(path))) from None
    return HubClient(*values)


def hub_refused(e: HubApiUnavailable) -> UserError:
    return spoken(PolicyError("hub_refused", error=str(e)))


def run_sessions_list(args: argparse.Namespace, settings: Settings) -> int:
    hub = hub_client(settings)
    engine = make_engine(settings.db_url)
    try:
        running = asyncio.run(live_sessions(hub, session_factory(engine), args.scope))
        record_manager_read(session_factory(engine), args.scope, admin_actor(), "sessions", rows=len(running),
                            command=RUNNING.get())
    except HubApiUnavailable as e:
        raise hub_refused(e) from None
    finally:
        engine.dispose()

    def rows_of(session: Session, args: argparse.Namespace) -> list[dict[str, Any]]:
        return [
            {
                "username": s.server.user,
                "facility": s.facility or "-",
                "projects": s.projects,
                "started": s.server.started,
                "last_activity": s.server.last_activity,
                "state": "running" if s.server.ready else f"pending ({s.server.pending})" if s.server.pending else "not ready",
            }
            for s in running
        ]

    columns = ["username", "facility", "projects", "started", "last_activity", "state"]
    return listing(rows_of, columns, lambda row: row | {"projects": ",".join(row["projects"])})(args, settings)


def run_sessions_end(args: argparse.Namespace, settings: Settings) -> int:
    if args.reason is not None and not 0 < len(args.reason.strip()) <= MAX_REASON:
        raise spoken(InputInvalid("reason_length", limit=MAX_REASON))
    hub = hub_client(settings)
    open_store(settings)
    engine = make_engine(settings.db_url)
    try:
        asyncio.run(end_session_in_scope(hub, session_factory(engine), args.username, admin_actor(), scope=args.scope,
                                         reason=args.reason.strip() if args.reason else None))
    except HubApiUnavailable as e:
        raise hub_refused(e) from None  # the failed attempt is in the ledger
    except policy.OutOfScope as e:
        record_refusal(settings, e)
        raise spoken(e) from None
    finally:
        engine.dispose()
    if args.json:
        print_json({"username": args.username, "reason": args.reason.strip() if args.reason else None, "end_requested": True})
    else:
        print(Done("done_session_ended", name=args.username).text(cli_language()))
    return 0


# ---------------------------------------------------------------- the commands as data

Arg = tuple[tuple[str, ...], dict[str, Any]]


def arg(*names: str, **options: Any) -> Arg:
    """One `add_argument(*names, **options)`."""
    return names, options


@dataclass(frozen=True)
class Command:
    name: str
    """Where it sits under its group: 'person add'."""
    help: str
    arguments: tuple[Arg, ...]
    run: Run
    description: str = ""
    managers: bool = False
    """Open to facility managers (within their facilities); every other command is an administrator's."""


ROLES = ", ".join(r.value.lower() for r in Role)
JSON = arg("--json", action="store_true", help="print JSON instead of text (a change prints the object it wrote, as `show` does)")
USERNAME = arg("username", help="user name, e.g. hanako (full-width input is normalised)")
PASSWORD_STDIN = arg("--password-stdin", action="store_true", help="read the password from the first line of standard input instead of prompting")
CHANGE = ("Fields not given stay as they are; '-' clears a field that may be empty (purpose, legal basis, address, "
          "accreditation kind), as on the admin pages.")

PEOPLE = (
    Command("person add", "register a person (user names become OS account names)", (
        arg("username", help="1-32 of a-z 0-9 . _ -, starting with a letter or _ (full-width input is normalised)"),
        arg("--name", required=True, help="display name, e.g. 山田花子"),
        arg("--email", default="", help="e-mail address"),
        arg("--role", type=parsed(forms.parse_role), action="append", help=f"role to grant ({ROLES}); repeat for several"),
        PASSWORD_STDIN,
        arg("--no-password", action="store_true", help="no local password (the person cannot log in until `person passwd`)"), JSON,
    ), changing(add_person, prepare=read_password),
        "Example: onsite admin person add hanako --name 山田花子 --role researcher --password-stdin < pw.txt. "
        "A password needs at least 10 characters, 4 different ones, and must not contain the user name."),
    Command("person import", "add people, roles and memberships from a CSV file (all rows or none)", (
        arg("file", help="CSV file, UTF-8 (a spreadsheet's BOM is fine)"),
        arg("--dry-run", action="store_true", help="check the file and report what would change, change nothing"), JSON,
    ), changing(import_people),
        "CSV columns: username,display_name,email,roles,projects (roles and projects separated by ';', "
        "e.g. 'researcher;reviewer'). People already registered keep their details and gain the listed roles and "
        "memberships they lack, so importing a file twice changes nothing. Any bad row refuses the whole file, "
        "naming the line. No passwords are imported."),
    Command("person list", "everyone, with roles and state (ok, disabled, or locked after failed logins)", (JSON,),
            listing(lambda s, a: [person_view(s, p) for p in policy.list_people(s)], ["username", "display_name", "roles", "state"],
                    lambda row: row | {"roles": ",".join(row["roles"]) or "-"}),
            "state: disabled (refused entry by an administrator), locked (too many failed logins; until locked_until, "
            "or `person unlock`), else ok. A lock-out that has run out shows ok."),
    Command("person show", "one person: roles, projects, lock state", (USERNAME, JSON),
            showing(lambda s, a: person_view(s, policy.require_person(s, a.username)))),
    Command("person disable", "disable an account (refuse entry from now on); nothing is deleted", (USERNAME, JSON), changing(set_disabled(True))),
    Command("person enable", "enable an account (allow entry again); nothing is deleted", (USERNAME, JSON), changing(set_disabled(False))),
    Command("person passwd", "set a person's local password (prompted twice unless --password-stdin)", (USERNAME, PASSWORD_STDIN, JSON),
            changing(set_password, prepare=read_password)),
    Command("person unlock", "lift the lock-out after repeated failed logins (and reset the failure count)", (USERNAME, JSON),
            changing(unlock_person)),
    *(Command(f"role {action}", f"{action} a role ({ROLES})", (USERNAME, arg("role", type=parsed(forms.parse_role), help=ROLES), JSON),
              changing(change_role)) for action in ("grant", "revoke")),
)



def project_commands() -> tuple[Command, ...]:
    """`project …`: built when run, for --preset names the rule presets of the sdc package."""
    # heavy: disclosure_review.sdc loads polars and every check (0.3 s); only the `project` commands need it
    from disclosure_review.sdc.rules import DEFAULT_PRESET, preset_names

    preset = parsed(lambda text: forms.parse_preset(text, preset_names()))

    def known_presets(args: argparse.Namespace) -> None:
        args.presets = preset_names()  # policy checks the preset against them too

    return (
        Command("project add", "register an approved project with its validity dates", (
            arg("project_id", help="e.g. p2026-001 (a-z, 0-9, '-')"),
            arg("--title", required=True),
            arg("--start", type=day("field_start_date"), required=True, help="first valid day, YYYY-MM-DD"),
            arg("--end", type=day("field_end_date"), required=True, help="last valid day (inclusive), YYYY-MM-DD, in the facility's time zone"),
            arg("--purpose", default="", help="purpose of use as approved"),
            arg("--legal-basis", default="", help="reference to the approval, e.g. Statistics Act art. 33"),
            arg("--preset", type=preset, default=DEFAULT_PRESET, help=f"disclosure-control rule preset: {', '.join(preset_names())} (default {DEFAULT_PRESET})"),
            JSON,
        ), changing(add_project, prepare=known_presets), "Example: onsite admin project add p2026-001 --title 所得分析 --start 2026-04-01 --end 2027-03-31"),
        Command("project list", "all projects with status and dates", (JSON,),
                listing(lambda s, a: [project_view(p) for p in policy.list_projects(s)], ["id", "status", "start_date", "end_date", "title"])),
        Command("project show", "one project with members and grants", (arg("project_id"), JSON), showing(project_details, print_project)),
        Command("project change", "change title, purpose, legal basis, dates, status or preset", (
            arg("project_id"),
            arg("--title", type=forms.parse_change),
            arg("--purpose", type=forms.parse_change, help="'-' clears it"),
            arg("--legal-basis", type=forms.parse_change, help="'-' clears it"),
            arg("--start", type=day("field_start_date"), help="YYYY-MM-DD"),
            arg("--end", type=day("field_end_date"), help="YYYY-MM-DD (inclusive)"),
            arg("--status", type=parsed(forms.parse_project_status), help="active, suspended or closed; only active projects admit researchers"),
            arg("--preset", type=preset, help=", ".join(preset_names())), JSON,
        ), changing(change_project, prepare=known_presets), CHANGE),
    )


MEMBERS_AND_GRANTS = (
    *(Command(f"member {action}", f"{action} a person {'to' if action == 'add' else 'from'} a project",
              (arg("project_id"), USERNAME, JSON), changing(change_member)) for action in ("add", "remove")),
    Command("grant add", "grant a dataset to a project for a period (default: the project's dates)", (
        arg("project_id"),
        arg("dataset_id"),
        arg("--from", dest="valid_from", type=day("field_valid_from"), help="first valid day, YYYY-MM-DD (default project start)"),
        arg("--until", dest="valid_until", type=day("field_valid_until"), help="last valid day, YYYY-MM-DD (default project end)"), JSON,
    ), changing(add_grant)),
    Command("grant list", "grants, revoked ones included", (arg("--project", help="only this project's grants"), JSON),
            listing(lambda s, a: [grant_view(g) for g in policy.list_grants(s, a.project)],
                    ["id", "project", "dataset", "valid_from", "valid_until", "revoked_at"], or_dash("revoked_at"))),
    Command("grant revoke", "revoke a grant now (its number from `grant list`)", (arg("grant_id", type=row_number("grant")), JSON),
            changing(revoke_grant)),
)

FACILITY_MANAGERS = "Open to facility managers, for their own facilities."
FACILITIES = (
    Command("facility add", "register a facility", (
        arg("name"),
        arg("--address", default="", help="postal address"),
        arg("--timezone", default="Asia/Tokyo", help="IANA time zone in which project dates are read (default Asia/Tokyo)"), JSON,
    ), changing(add_facility)),
    Command("facility change", "change a facility's address, time zone, booking rule, required accreditation or seats", (
        arg("name"),
        arg("--address", type=forms.parse_change, help="postal address; '-' clears it"),
        arg("--timezone", type=forms.parse_change, help="IANA time zone in which project dates, opening hours and accreditation expiry are read"),
        arg("--booking-required", action=argparse.BooleanOptionalAction, default=None,
            help="entry here needs a booking covering the moment of entry (--no-booking-required: not)"),
        arg("--accreditation-kind", metavar="KIND", type=forms.parse_change,
            help="kind of accreditation researchers need to enter here, e.g. onsite-training; '-' for none (administrators only)"),
        arg("--seats", type=forms.parse_change, help=f"how many people may be booked at once, 0-{forms.MAX_SEATS}; '-' for not limited"),
        JSON,
    ), changing(change_facility), CHANGE + " Example: onsite admin facility change 東京センター --seats 12. " + FACILITY_MANAGERS,
        managers=True),
    Command("facility list", "all facilities with their entry rules", (JSON,),
            listing(lambda s, a: [facility_view(f) for f in policy.list_facilities(s, a.scope)],
                    ["name", "timezone", "terminals", "seats", "booking_required", "accreditation_kind", "hours"],
                    lambda row: or_dash("accreditation_kind")(row) | {"hours": row["hours"][:50], "seats": row["seats"] or "-"}),
            FACILITY_MANAGERS, managers=True),
    Command("facility show", "one facility: hours, closed days, seats, booking and accreditation rules, terminals, managers",
            (arg("name"), JSON), showing(facility_details, print_facility), FACILITY_MANAGERS, managers=True),
    Command("facility hours", "set the weekly opening hours (replaces them all)", (
        arg("name"), arg("schedule", help="e.g. 'mon-fri 09:00-17:30', or 'always'"), JSON,
    ), changing(set_hours),
        "SCHEDULE lists days and intervals in the facility's time zone, separated by commas, e.g. "
        "'mon-fri 09:00-17:30, sat 10:00-12:00'; several intervals on one day are separate entries "
        "('mon 09:00-12:00, mon 13:00-17:00'). Opening time inclusive, closing time exclusive (24:00 is midnight); "
        "intervals cannot pass midnight. Days not listed are closed. 'always' (or '') removes the hours: always open. "
        "Sessions outside the hours are refused at log-in and stopped at the next re-check. " + FACILITY_MANAGERS, managers=True),
    Command("facility close-day", "close the facility for a whole day (holiday), in its time zone", (
        arg("name"), arg("day", type=day("field_closed_day"), help="YYYY-MM-DD"), arg("--note", default="", help="e.g. the holiday's name"), JSON,
    ), changing(close_day), FACILITY_MANAGERS, managers=True),
    Command("facility reopen-day", "undo close-day", (arg("name"), arg("day", type=day("field_closed_day"), help="YYYY-MM-DD"), JSON),
            changing(reopen_day), FACILITY_MANAGERS, managers=True),
    Command("facility holidays", "close the facility on every Japanese public holiday of a year (named in Japanese)", (
        arg("name"), arg("year", type=int, help="e.g. 2027"), JSON,
    ), changing(close_holidays),
        "The holidays come from the maintained `holidays` package (Japan's Act on National Holidays, substitute "
        "holidays included), each closed day noted with the holiday's Japanese name, e.g. 元日. Days already closed "
        "keep their note. " + FACILITY_MANAGERS, managers=True),
    Command("facility close", "close the facility now for an emergency and end every session running there", (
        arg("name"), arg("--reason", required=True, help=f"why, kept in the ledger and given to the sessions ended (at most {MAX_REASON} characters)"),
        JSON,
    ), run_emergency_close,
        "Nobody enters until `facility reopen` (entry refused: EMERGENCY_CLOSURE). Sessions started at the "
        "facility's terminals are ended through the running hub, as `sessions end` does; if the hub cannot be "
        "reached the closure stands and they stop at their next entry re-check. " + FACILITY_MANAGERS, managers=True),
    Command("facility reopen", "end an emergency closure", (arg("name"), JSON), changing(reopen_facility), FACILITY_MANAGERS,
            managers=True),
    Command("terminal add", "register a terminal address; only registered terminals may log in", (
        arg("facility", help="facility name"),
        arg("address", help="IPv4/IPv6 address or CIDR network, e.g. 192.0.2.10 or 2001:db8::/64"),
        arg("--label", default="", help="e.g. the seat number"),
        arg("--override", action="store_true", help="allow a network broader than a /24 (IPv4) or /56 (IPv6); recorded in the ledger"),
        JSON,
    ), changing(add_terminal),
        "A network that overlaps a terminal of another facility is refused (the facility, and so the time zone of "
        "the entry decision, would be ambiguous). A network broader than a /24 or /56 lets many machines in: it needs "
        "--override, and is flagged wherever terminals are shown. " + FACILITY_MANAGERS, managers=True),
    Command("terminal list", "all terminals with their facility", (JSON,),
            listing(lambda s, a: [terminal_view(t) for t in policy.list_terminals(s, a.scope)], ["address", "facility", "label", "override"]),
            FACILITY_MANAGERS, managers=True),
    Command("terminal remove", "unregister a terminal address", (arg("address"), JSON), changing(remove_terminal), FACILITY_MANAGERS,
            managers=True),
)

MANAGERS = (
    *(Command(f"manager {action}", f"{'make' if action == 'grant' else 'stop'} a person {'a' if action == 'grant' else 'being a'} "
              "manager of a facility", (USERNAME, arg("facility", help="facility name"), JSON), changing(change_manager),
              "A facility manager handles their facilities' terminals, opening hours, closures, seats, bookings, entry log "
              "and live sessions (the admin pages and these commands), and nothing of people, projects, grants or other "
              "facilities. Recorded as ROLE_GRANT / ROLE_REVOKE with the facility; the last facility revoked takes the role.")
      for action in ("grant", "revoke")),
    Command("manager list", "every facility with its managers", (JSON,),
            listing(managers, ["facility", "managers"], lambda row: row | {"managers": ",".join(row["managers"]) or "-"})),
)

ENTRY_RULES = (
    Command("accreditation add", "record a person's accreditation (e.g. completed training) with its expiry", (
        USERNAME,
        arg("kind", help="e.g. onsite-training (a-z, 0-9, '.', '_', '-')"),
        arg("--expiry", type=day("field_expiry"), required=True, help="last valid day, YYYY-MM-DD (inclusive)"),
        arg("--issued", type=day("field_issued"), help="first valid day, YYYY-MM-DD (default today)"), JSON,
    ), changing(add_accreditation),
        "Researchers entering a facility that names an accreditation kind (`facility change "
        "--accreditation-kind`) need one of that kind valid on the day, read in the facility's time zone: "
        "from --issued through --expiry, both inclusive."),
    Command("accreditation list", "accreditations, revoked ones included", (arg("--person", help="only this person's"), JSON),
            listing(lambda s, a: [accreditation_view(x) for x in policy.list_accreditations(s, a.person)],
                    ["id", "person", "kind", "issued", "expiry", "revoked_at"], or_dash("revoked_at"))),
    Command("accreditation revoke", "revoke an accreditation now (its number from `accreditation list`)",
            (arg("accreditation_id", type=row_number("accreditation")), JSON), changing(revoke_accreditation)),
    Command("booking add", "book a seat for a person at a facility", (
        USERNAME,
        arg("facility", help="facility name"),
        arg("--start", type=parsed(lambda t: forms.parse_time(t, "field_booking_start")), required=True, help="e.g. 2026-12-01T09:00"),
        arg("--end", type=parsed(lambda t: forms.parse_time(t, "field_booking_end")), required=True, help="e.g. 2026-12-01T12:00"), JSON,
    ), changing(add_booking),
        "Times without an offset are in the facility's time zone. The slot runs from --start "
        "(inclusive) to --end (exclusive), at most 24 hours, within one opening interval of the facility and "
        "not on a closed day, with a seat free for all of it (`facility change --seats`); it may not overlap "
        "another booking of the same person. At a facility with "
        "--booking-required, entry is allowed only while a booking covers the moment, and a session is stopped "
        "at the first re-check after its booking ends. " + FACILITY_MANAGERS, managers=True),
    Command("booking list", "bookings that have not ended yet (with --all: every booking), cancelled ones included", (
        arg("--person", help="only this person's"),
        arg("--facility", help="only this facility's"),
        arg("--all", action="store_true", help="include bookings that have ended"),
        JSON,
    ), listing(bookings, ["id", "person", "facility", "starts_at", "ends_at", "cancelled_at"], booking_cells), FACILITY_MANAGERS,
        managers=True),
    Command("booking cancel", "cancel a booking (its number from `booking list`)", (arg("booking_id", type=row_number("booking")), JSON),
            changing(cancel_booking), FACILITY_MANAGERS, managers=True),
    Command("booking seats", "seats booked and free per day at a facility", (
        arg("facility", help="facility name"),
        arg("--from", dest="first", type=day("field_start_date"), help="first day, YYYY-MM-DD (default today in the facility's zone)"),
        arg("--days", type=int, default=14, choices=range(1, 367), metavar="N", help="how many days (default 14)"), JSON,
    ), listing(seats, ["day", "booked", "free", "closed"], lambda row: row | {"free": "-" if row["free"] is None else row["free"]}),
        "booked: the most bookings at one moment of the day; free: seats left then ('-': not limited). " + FACILITY_MANAGERS,
        managers=True),
)

SESSIONS = (
    Command("sessions list", "who has a server on the running hub, with the projects their session opened", (JSON,), run_sessions_list,
            "Asks the running hub's API (the address and the `onsite-cli` token the hub wrote to its "
            "runtime directory when it started), so it works on the hub's machine while the hub runs. facility: that of the "
            "terminal the session started from. " + FACILITY_MANAGERS + " (sessions started there)", managers=True),
    Command("sessions end", "stop a person's server now (recorded as SESSION_END)", (
        USERNAME, arg("--reason", help=f"why, kept in the ledger (at most {MAX_REASON} characters)"), JSON,
    ), run_sessions_end,
        "Asks the running hub to stop the person's server; the kernel and its unsaved state are "
        "lost, files in the workspace stay. Recorded in the audit ledger as SESSION_END by admin:<your login> (and the session's SESSION_STOP), "
        "FAILED when the hub refuses. " + FACILITY_MANAGERS + " (sessions started there)", managers=True),
)

def by_group(commands: tuple[Command, ...]) -> dict[str, tuple[Command, ...]]:
    groups: dict[str, tuple[Command, ...]] = {}
    for command in commands:
        group = command.name.split(" ")[0]
        groups[group] = (*groups.get(group, ()), command)
    return groups


GROUPS = by_group(PEOPLE + MEMBERS_AND_GRANTS + FACILITIES + MANAGERS + ENTRY_RULES + SESSIONS)
"""Each group's commands ('person' -> person add, person import, …); `project` is built by `project_commands`."""


def add_actions(parser: argparse.ArgumentParser, commands: tuple[Command, ...]) -> None:
    """`commands` (all of one group, e.g. 'person …') as the actions under the group's `parser`."""
    group = commands[0].name.split(" ")[0]
    actions = parser.add_subparsers(dest=f"{group}_command", metavar="ACTION", required=True)
    for command in commands:
        action = actions.add_parser(command.name.split(" ")[1], help=command.help, description=command.description or None)
        for names, options in command.arguments:
            action.add_argument(*names, **options)
        action.set_defaults(run=scoped(command))


def run_init(args: argparse.Namespace, settings: Settings) -> int:
    """Create the store, or bring an existing one to the newest schema (the only command besides `onsite up` that creates one)."""
    created = not store_exists(settings.db_url)
    migrate(settings.db_url)
    if args.json:
        print_json({"store": store_name(settings), "home": str(settings.home), "created": created})
    else:
        print(Done("done_store_created" if created else "done_store_current", store=store_name(settings), home=str(settings.home))
              .text(cli_language()))
    return 0


def build(parser: argparse.ArgumentParser, name: str) -> None:
    """The parser of `onsite init` or `onsite admin NAME …` (the table of `onsite.cli`)."""
    if name == "init":
        parser.description = (
            "Create the store named by $ONSITE_DB_URL (default: SQLite onsite.sqlite in $ONSITE_HOME, default ./var), "
            "or bring an existing one to the newest schema. Every other command refuses to create a store, so that one "
            "run from another folder does not silently start an empty one; `onsite up` creates the demo's.")
        parser.add_argument(*JSON[0], **JSON[1])
        parser.set_defaults(run=run_init)
        return
    commands = project_commands() if name == "project" else GROUPS[name]
    add_actions(parser, commands)
