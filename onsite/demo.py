"""`onsite up` (demo set-up, then the hub) and `onsite hub` (the hub alone).

`onsite up` makes everything the one path needs, reusing what already exists:
the store's schema, the synthetic survey, the dataset `lfs_demo`, four demo
people (a researcher, two reviewers, an administrator) with passwords
generated once and kept in `$ONSITE_HOME/run/demo-logins.txt`, a demo project
granted the dataset from today, an accreditation of the researcher valid for a
year, and a facility whose terminals are this machine (127.0.0.1 and ::1),
always open, needing no booking and no accreditation (so the demo works at
any hour and for people tests add). Then it runs the hub until Ctrl-C.
"""
from __future__ import annotations

import argparse
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from access_control import policy
from access_control.enums import Role
from access_control.ldap import LdapSettings
from access_control.models import Project
from dataplane import catalogue
from disclosure_review.sdc.rules import preset_names
from hub_config.config import HubSettings, run_hub
from onsite import demo_data
from onsite.commands.admin import open_store
from onsite.migrations import migrate
from onsite_base.config import load_config
from onsite_base.db import PRIVATE_DIR, make_engine, session_factory, transaction
from onsite_base.settings import Settings

log = logging.getLogger(__name__)

ACTOR = "onsite-up"
DEMO_DATASET = "lfs_demo"
DEMO_PROJECT = "p-demo"
DEMO_FACILITY = "デモ施設(このコンピューター)"
DEMO_TERMINALS = ("127.0.0.1", "::1")
DEMO_TERMINAL_LABEL = "デモ端末(このコンピューター)"
DEMO_SEED = 2026
LOGINS_FILE = "demo-logins.txt"
DEMO_ACCREDITATION = "onsite-training"


@dataclass(frozen=True)
class DemoPerson:
    username: str
    display_name: str
    role: Role


DEMO_PEOPLE = (
    DemoPerson("tanaka", "田中 健一 (Tanaka Ken'ichi)", Role.RESEARCHER),
    DemoPerson("sato", "佐藤 美咲 (Sato Misaki)", Role.REVIEWER),
    DemoPerson("suzuki", "鈴木 誠 (Suzuki Makoto)", Role.REVIEWER),
    DemoPerson("takahashi", "高橋 由美 (Takahashi Yumi)", Role.ADMINISTRATOR),
)


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: Role
    display_name: str


def read_logins(path: Path) -> dict[str, str]:
    """username -> password from the demo log-ins file (tab separated: name, role, password)."""
    if not path.exists():
        return {}
    logins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _role, password = line.split("\t")[:3]
            logins[name] = password
    return logins


def write_logins(path: Path, logins: list[DemoLogin]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# Onsite demo log-ins (user, role, password); generated once by `onsite up`\n")
        for login in logins:
            f.write(f"{login.username}\t{login.role.value}\t{login.password}\n")


def new_password(username: str) -> str:
    while True:
        password = secrets.token_urlsafe(12)
        if username not in password.lower():
            return password


def demo_data_file(settings: Settings, rows: int, seed: int) -> Path:
    return settings.home / "demo" / f"{DEMO_DATASET}-{rows}-{seed}.parquet"


def ensure_dataset(settings: Settings, factory, *, dataset_id: str = DEMO_DATASET, rows: int, seed: int = DEMO_SEED,
                   progress: bool = True) -> Path:
    """Generate the synthetic survey and ingest it as `dataset_id`, unless already there."""

    target = settings.datasets_dir / f"{dataset_id}.duckdb"
    with transaction(factory) as session:
        registered = policy.get_dataset(session, dataset_id) is not None
    if target.exists() and registered:
        log.info("dataset %s already ingested at %s", dataset_id, target)
        return target

    def register(info) -> None:
        with transaction(factory) as session:
            policy.register_dataset(
                session,
                dataset_id=dataset_id,
                title_ja=info.metadata.title.ja,
                title_en=info.metadata.title.en,
                path=str(target),
                rows=info.rows,
                source_sha256=info.source_sha256,
                actor=ACTOR,
                replace=registered,
            )

    if target.exists():
        register(catalogue.read_dataset_info(target))
        return target
    source = demo_data_file(settings, rows, seed)
    if not source.exists():
        demo_data.generate(rows, seed, source, progress=progress)
    metadata = catalogue.load_metadata(demo_data.METADATA_PATH)
    catalogue.ingest(source, metadata, dataset_id, settings.datasets_dir, progress=progress, before_commit=register)
    return target


def ensure_people(settings: Settings, factory) -> list[DemoLogin]:
    """The demo people with their roles; passwords from the log-ins file, new ones only when missing."""

    path = settings.runtime_dir / LOGINS_FILE
    known = read_logins(path)
    logins = []
    with transaction(factory) as session:
        for person in DEMO_PEOPLE:
            password = known.get(person.username)
            if policy.get_person(session, person.username) is None:
                password = password or new_password(person.username)
                policy.add_person(session, username=person.username, display_name=person.display_name,
                                  actor=ACTOR, roles=[person.role], password=password)
            elif password is None:
                # The person exists but its password was not kept: issue a new one.
                password = new_password(person.username)
                policy.set_password(session, person.username, password, actor=ACTOR)
            if person.role not in policy.person_roles(session, person.username):
                policy.grant_role(session, person.username, person.role, actor=ACTOR)
            logins.append(DemoLogin(person.username, password, person.role, person.display_name))
    write_logins(path, logins)
    return logins


def ensure_project(settings: Settings, factory, *, today: date, researcher: str, dataset_id: str = DEMO_DATASET) -> None:
    """The demo project (researcher as member) with a grant of the dataset valid from today."""

    with transaction(factory) as session:
        project = session.get(Project, DEMO_PROJECT)
        if project is None:
            project = policy.add_project(session, project_id=DEMO_PROJECT, title="デモ分析 (Demo analysis of household income)",
                                         purpose="Try the whole path: query, tables, release request, review.",
                                         start_date=today, end_date=today + timedelta(days=365), actor=ACTOR, today=today,
                                         presets=preset_names())
        elif project.end_date < today:  # a demo store from more than a year ago: the project runs on
            policy.change_project(session, DEMO_PROJECT, end_date=today + timedelta(days=365), actor=ACTOR, today=today)
        if researcher not in {p.username for p in policy.members_of(session, DEMO_PROJECT)}:
            policy.add_member(session, DEMO_PROJECT, researcher, actor=ACTOR)
        grants = [g for g in policy.list_grants(session, DEMO_PROJECT)
                  if g.dataset_id == dataset_id and g.revoked_at is None and g.valid_from <= today <= g.valid_until]
        if not grants:  # a grant lies within its project's dates
            policy.add_grant(session, project_id=DEMO_PROJECT, dataset_id=dataset_id, valid_from=max(today, project.start_date),
                             valid_until=project.end_date, actor=ACTOR, today=today)


def ensure_accreditation(settings: Settings, factory, *, today: date, researcher: str) -> None:
    """The researcher's demo accreditation, valid today and for a year."""

    with transaction(factory) as session:
        held = [a for a in policy.list_accreditations(session, researcher)
                if a.kind == DEMO_ACCREDITATION and a.revoked_at is None and a.issued <= today <= a.expiry]
        if not held:
            policy.add_accreditation(session, username=researcher, kind=DEMO_ACCREDITATION, issued=today,
                                     expiry=today + timedelta(days=365), actor=ACTOR)


def ensure_facility(settings: Settings, factory, *, terminals: tuple[str, ...] = DEMO_TERMINALS) -> None:
    with transaction(factory) as session:
        if DEMO_FACILITY not in {f.name for f in policy.list_facilities(session)}:
            policy.add_facility(session, name=DEMO_FACILITY, actor=ACTOR)
        registered = {t.address for t in policy.list_terminals(session)}  # stored normalised
        for address in terminals:
            if str(policy.parse_network(address)) not in registered:
                policy.add_terminal(session, facility=DEMO_FACILITY, address=address, actor=ACTOR, label=DEMO_TERMINAL_LABEL)


def make_state_private(settings: Settings) -> None:
    """The state directory closed to other accounts before anything is written to it.

    `home`, datasets/ and workspaces/ lose group and other read and write (0711 at
    most: session accounts traverse them, as the spawner keeps them); run/ (secrets,
    log-ins), egress/ and demo/ (the source microdata) are 0700. The SQLite store is
    made 0600 by `onsite_base.db.make_engine`. Otherwise all of it would be readable
    by every account of the machine from `onsite up` until the first session is spawned.
    """
    home = settings.home
    for traversed in (home, settings.datasets_dir, settings.workspaces_dir):
        traversed.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        os.chmod(traversed, stat.S_IMODE(traversed.stat().st_mode) & 0o711)
    for private in (settings.runtime_dir, settings.egress_dir, home / "demo"):
        private.mkdir(exist_ok=True, mode=PRIVATE_DIR)
        os.chmod(private, PRIVATE_DIR)


def set_up_demo(settings: Settings, *, rows: int = 200_000, seed: int = DEMO_SEED, today: date | None = None,
                progress: bool = True) -> list[DemoLogin]:
    """Everything `onsite up` needs before the hub starts; idempotent."""

    today = today or date.today()
    make_state_private(settings)
    migrate(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        factory = session_factory(engine)
        ensure_dataset(settings, factory, rows=rows, seed=seed, progress=progress)
        logins = ensure_people(settings, factory)
        researcher = next(login.username for login in logins if login.role is Role.RESEARCHER)
        ensure_project(settings, factory, today=today, researcher=researcher)
        ensure_accreditation(settings, factory, today=today, researcher=researcher)
        ensure_facility(settings, factory)
    finally:
        engine.dispose()
    return logins


def banner(url: str, logins: list[DemoLogin], logins_file: Path) -> str:
    width = max(len(login.username) for login in logins)
    lines = ["", "=" * 72, f"  Onsite: open {url} in a browser on this machine", "", "  Log in as:"]
    for login in logins:
        lines.append(f"    {login.username:<{width}}  {login.password}   {login.role.value.lower():<13} {login.display_name}")
    lines += ["", f"  (kept in {logins_file})", "  Stop with Ctrl-C.", "=" * 72, ""]
    return "\n".join(lines)


def hub_from_args(args: argparse.Namespace) -> tuple[HubSettings, LdapSettings | None]:
    """The hub's settings from the config file and the environment, --ip/--port over them;
    the LDAP directory if one is configured."""

    config = load_config([HubSettings, LdapSettings])
    given = {name: getattr(args, name) for name in ("ip", "port") if getattr(args, name) is not None}
    return HubSettings(config=config, **given), LdapSettings.configured(config)


def run_up(args: argparse.Namespace, settings: Settings) -> int:
    hub, ldap = hub_from_args(args)
    logins = set_up_demo(settings, rows=args.rows, seed=args.seed)
    text = banner(f"http://{hub.ip}:{hub.port}/", logins, settings.runtime_dir / LOGINS_FILE)
    print(text, flush=True)  # and again once the hub answers, below its start-up log
    return run_hub(settings, hub, ldap, on_ready=lambda: print(text, flush=True))


def run_hub_command(args: argparse.Namespace, settings: Settings) -> int:
    hub, ldap = hub_from_args(args)
    open_store(settings)  # the hub alone creates no store: `onsite init` (or `onsite up`) does
    url = f"http://{hub.ip}:{hub.port}/"
    return run_hub(settings, hub, ldap, on_ready=lambda: print(f"Onsite hub running at {url} (stop with Ctrl-C)", flush=True))


def _address_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ip", help="address the hub listens on, over HubSettings.ip ($ONSITE_HUB_IP; default "
                                     "127.0.0.1: only this machine; the terminals of your facilities must be able "
                                     "to reach it)")
    parser.add_argument("--port", type=int, help="port the hub listens on, over HubSettings.port ($ONSITE_HUB_PORT; "
                                                 "default 8000)")


def build(parser: argparse.ArgumentParser, name: str) -> None:
    """The parser of `onsite up` or `onsite hub` (the table of `onsite.cli`)."""
    if name == "up":
        parser.description = (
            "Create what the demo needs, reusing whatever exists: the store's schema, a synthetic "
            f"household survey ingested as dataset {DEMO_DATASET}, a researcher, two reviewers and an administrator "
            f"(passwords generated once, kept in $ONSITE_HOME/run/{LOGINS_FILE}), project {DEMO_PROJECT} granted the "
            "dataset from today, and a facility whose terminals are this machine. Then run JupyterHub until Ctrl-C.")
        parser.add_argument("--rows", type=int, default=200_000, help="rows of demo data to generate the first time (default 200000)")
        parser.add_argument("--seed", type=int, default=DEMO_SEED, help=f"random seed of the demo data (default {DEMO_SEED})")
        parser.set_defaults(run=run_up)
    else:
        parser.description = (
            "Run JupyterHub with the Onsite configuration (authenticator with entry decisions, spawner, "
            "review service) on the policy store $ONSITE_DB_URL and the state in $ONSITE_HOME. Settings: the config "
            "file ($ONSITE_CONFIG, else $ONSITE_HOME/onsite_config.py), then the environment; see "
            "docs/reference/settings.md.")
        parser.set_defaults(run=run_hub_command)
    _address_arguments(parser)
