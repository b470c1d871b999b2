"""The `onsite` command line.

The commands are a table (`COMMANDS`): each names its help line and the module that implements it. Only the
module of the command being run is imported (`build_parser`), so `onsite --help` and `onsite admin person list`
start in a fraction of a second instead of loading JupyterHub, the review web app and the disclosure checks
that other commands need. The module's `build(parser, name)` fills in the command's parser (description,
arguments, actions); a command is a function `(args, settings) -> int` stored as `args.run`. A `UserError`
prints its message (a refusal of the service layer in the administrator's language) and exits 2 without a
traceback: the command changed nothing. Only `onsite init` and `onsite up` create a store; every other
command refuses, naming the store it looked for (`onsite.commands.admin.open_store`).
Every audit event a command writes names its client as `local` and the OS
account that ran it (the hub and the services started from here name each
request's own client address instead).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from dataclasses import dataclass

from access_control import audit
from access_control.errors import cli_text
from onsite.commands.language import cli_language
from onsite_base import times
from onsite_base.errors import UserError
from onsite_base.os_user import os_login
from onsite_base.settings import Settings


@dataclass(frozen=True)
class Command:
    """`onsite NAME`: its line in --help, and either the module whose `build(parser, NAME)` fills in its parser
    or the commands grouped under it."""

    name: str
    help: str
    module: str = ""
    group: tuple[Command, ...] = ()


ADMIN_COMMANDS = (
    Command("person", "people: add, import, list, show, disable, enable, passwd, unlock", "onsite.commands.admin"),
    Command("role", "grant or revoke a role", "onsite.commands.admin"),
    Command("project", "projects: add, list, show, change", "onsite.commands.admin"),
    Command("member", "add or remove a project member", "onsite.commands.admin"),
    Command("grant", "grant datasets to projects: add, list, revoke", "onsite.commands.admin"),
    Command("facility", "on-site facilities: add, change, list, show, hours, close-day, reopen-day, holidays, close, reopen",
            "onsite.commands.admin"),
    Command("manager", "facility managers: grant, revoke, list", "onsite.commands.admin"),
    Command("terminal", "terminals (IP addresses or networks) of facilities: add, list, remove", "onsite.commands.admin"),
    Command("sessions", "live sessions on the hub: list, end", "onsite.commands.admin"),
    Command("accreditation", "accreditations of people: add, list, revoke", "onsite.commands.admin"),
    Command("booking", "bookings of seats at facilities: add, list, cancel, seats", "onsite.commands.admin"),
    Command("dataset", "ingest, list and describe datasets", "onsite.commands.datasets"),
)

COMMANDS = (
    Command("admin", "manage datasets, people, projects, grants, facilities and terminals", group=ADMIN_COMMANDS),
    Command("up", "set up the demo (data, people, project, facility) if missing, then run the hub", "onsite.demo"),
    Command("hub", "run the hub (no demo set-up)", "onsite.demo"),
    Command("audit", "verify, list, export or anchor the ledger; sign tree heads, prove, check proofs, witness",
            "onsite.commands.audit"),
    Command("init", "create the policy, workflow and audit store (or update its schema)", "onsite.commands.admin"),
    Command("demo-data", "write the synthetic household survey used by the demo, tests and benchmarks", "onsite.commands.datasets"),
    Command("review", "list and inspect release and ingress requests, retry a release package, render the states reference",
            "onsite.commands.review"),
    Command("release", "verify a signed release package offline; the review service's signing key",
            "onsite.commands.release"),
    Command("review-service", "run the reviewer web app (normally started by JupyterHub as the service onsite-review)",
            "onsite.commands.review_service"),
    Command("settings", "show the settings in effect, or the settings reference (--markdown)", "onsite.commands.settings"),
    Command("bench", "run side-by-side benchmarks against peers", "bench.cli"),
)
def add_commands(parent: argparse.ArgumentParser, commands: tuple[Command, ...], words: list[str], group: str = "") -> None:
    """Each of `commands` under `parent` with its help line; only the one `words` names is built, so only its
    module is imported."""
    sub = parent.add_subparsers(dest=f"{group}_command" if group else "command", metavar="OBJECT" if group else "COMMAND",
                                required=True)
    for command in commands:
        parser = sub.add_parser(command.name, help=command.help)
        if words[:1] != [command.name]:
            continue
        if command.group:
            add_commands(parser, command.group, words[1:], command.name)
        else:
            importlib.import_module(command.module).build(parser, command.name)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: every command listed, the one `argv` runs built in full."""
    parser = argparse.ArgumentParser(
        prog="onsite",
        description="Onsite: secure on-site microdata analysis. State lives in $ONSITE_HOME "
        "(default ./var); the policy store is $ONSITE_DB_URL (default SQLite in $ONSITE_HOME). Settings come from "
        "the config file ($ONSITE_CONFIG, else $ONSITE_HOME/onsite_config.py), then the environment: "
        "`onsite settings`.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    # The words before the first option name the command: `onsite` and `onsite admin` take no option with a value.
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")]
    add_commands(parser, COMMANDS, words)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings: Settings | None = None
    try:
        settings = Settings.load()
        with audit.client_context(audit.Client(audit.LOCAL, os_user=os_login())):
            return args.run(args, settings) or 0
    except UserError as e:
        zone = settings.timezone if settings else times.DEFAULT_TIMEZONE
        print(f"onsite: error: {cli_text(e, cli_language(), zone)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
