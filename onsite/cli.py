"""The `onsite` command line.

Each area registers its own commands (`register(subparsers)`); a command is a
function `(args, settings) -> int` stored as `args.run`. A `UserError` prints
its message (a refusal of the service layer in the administrator's language) and exits 2 without a
traceback: the command changed nothing. Only `onsite init` and `onsite up` create a store; every other
command refuses, naming the store it looked for (`onsite.commands.admin.open_store`).
Every audit event a command writes names its client as `local` and the OS
account that ran it (the hub and the services started from here name each
request's own client address instead).
"""
from __future__ import annotations

import argparse
import getpass
import importlib
import logging
import sys

from access_control import audit
from access_control.errors import cli_text
from onsite.commands.admin import cli_language
from onsite_base.errors import UserError
from onsite_base.settings import Settings

# (module, group): group None registers top-level commands, "admin" under `onsite admin`.
COMMAND_MODULES = [
    ("onsite.demo", None),
    ("onsite.commands.admin", None),
    ("onsite.commands.admin", "admin"),
    ("onsite.commands.datasets", None),
    ("onsite.commands.datasets", "admin"),
    ("onsite.commands.review", None),
    ("onsite.commands.settings", None),
    ("bench.cli", None),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onsite",
        description="Onsite: secure on-site microdata analysis. State lives in $ONSITE_HOME "
        "(default ./var); the policy store is $ONSITE_DB_URL (default SQLite in $ONSITE_HOME). Settings come from "
        "the config file ($ONSITE_CONFIG, else $ONSITE_HOME/onsite_config.py), then the environment: "
        "`onsite settings`.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    admin = top.add_parser(
        "admin", help="manage datasets, people, projects, grants, facilities and terminals"
    ).add_subparsers(dest="admin_command", metavar="OBJECT", required=True)
    groups = {None: top, "admin": admin}
    for module_name, group in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        register = module.register if group is None else module.register_admin
        register(groups[group])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        with audit.client_context(audit.Client(audit.LOCAL, os_user=getpass.getuser())):
            return args.run(args, Settings.load()) or 0
    except UserError as e:
        print(f"onsite: error: {cli_text(e, cli_language())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
