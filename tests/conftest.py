"""Fixtures shared by every tier: databases on SQLite and on a real PostgreSQL."""
from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from xdist.scheduler import LoadScopeScheduling

from hub_config.isolation import remove_account, remove_group
from onsite.migrations import migrate
from onsite_base.db import make_engine, session_factory
from onsite_base.settings import Settings

PG_ADMIN_URL = os.environ.get("ONSITE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TESTS = Path(__file__).resolve().parent
SERVICE_TIERS = ("integration", "security", "functional")  # folders whose tests start real services
# pytest-xdist (make test: `-n 3 --dist loadgroup`): each file of these folders is an xdist group, run on
# one worker in order, so that a module fixture (a hub, a slapd) starts once. Files run beside each other:
# every hub has OS account names, uids and nftables tables of its own (functional.hubtools.HubNames), and
# the root unit tests of hub_config use fixed uids of their own below the hubs' range.
GROUPED_FOLDERS = ("integration", "security", "functional", "unit/hub_config")
# Folders that are one group together: their files share a session fixture (one slapd).
ONE_GROUP_FOLDERS = ("integration/ldap",)
# Files that are one group each, by the name given: a cost their tests share (an import, a module fixture) is
# paid by one worker, not by every one. The message corpus: ~1 CPU-s.
ONE_GROUP_FILES = {"unit/sdc/test_sdc_messages.py": "message corpus"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by what it needs, so that `make check` can leave out what needs services:
    `integration` for the folders that start slapd, hubs or Chromium, `postgresql` for every test
    that reaches the PostgreSQL fixtures (`pg_url`, or a database fixture's "postgresql" parameter)."""
    for item in items:
        if any(TESTS / tier in item.path.parents for tier in SERVICE_TIERS):
            item.add_marker(pytest.mark.integration)
        if needs_postgresql(item):
            item.add_marker(pytest.mark.postgresql)


# Seconds each scheduling unit took in a whole run (`make test ARGS=--store-durations` rewrites it): a group's
# by its name, an ungrouped test's by its file (shared by the file's tests).
DURATIONS = TESTS / "durations.json"
UNKNOWN_TEST_S = 1.0  # a test the file has no figure for (new since the last --store-durations run)
PREFETCH_S = 2.0  # a process is sent its next unit once what it holds is expected to take less than this


def duration_key(nodeid: str) -> str:
    """The unit tests/durations.json keeps a test's seconds under: its xdist group, else its file."""
    file = nodeid.split("::")[0]
    return xdist_group_of(TESTS.parent / file) or Path(file).relative_to("tests").as_posix()


class GroupScheduling(LoadScopeScheduling):
    """`--dist loadgroup` by `xdist_group_of`: a group's tests go to one worker, in order. Here, in the
    controller, because xdist's own `xdist_group` marks no longer group anything under pytest 9 (it
    renames `item._nodeid`, which pytest 9 does not read). Longest expected first (tests/durations.json;
    the longest-processing-time rule, so that no long group starts near the end), and a process gets its
    next unit only when it is nearly done: a unit never waits behind a long one on a busy process while
    another process runs out of work."""

    def _split_scope(self, nodeid: str) -> str:
        return xdist_group_of(TESTS.parent / nodeid.split("::")[0]) or nodeid

    def _seconds(self, nodeid: str) -> float:
        if not hasattr(self, "_per_test"):
            recorded = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
            counts: dict[str, int] = {}
            for test in self.collection:
                counts[duration_key(test)] = counts.get(duration_key(test), 0) + 1
            self._per_test = {key: recorded[key] / n for key, n in counts.items() if key in recorded}
        return self._per_test.get(duration_key(nodeid), UNKNOWN_TEST_S)

    def _pending(self, node) -> list[str]:
        return [nodeid for unit in self.assigned_work.get(node, {}).values() for nodeid, done in unit.items() if not done]

    def _assign_work_unit(self, node, shortest: bool = False) -> None:
        if not getattr(self, "_sorted", False):  # the first hand-out: the work queue is complete
            self._sorted = True
            units = sorted(self.workqueue.items(), key=lambda unit: -sum(map(self._seconds, unit[1])))
            self.workqueue.clear()
            self.workqueue.update(units)
        scope, work_unit = self.workqueue.popitem(last=shortest)
        self.assigned_work.setdefault(node, {})[scope] = work_unit
        collection = self.registered_collections[node]
        node.send_runtest_some([collection.index(nodeid) for nodeid, done in work_unit.items() if not done])

    def _reschedule(self, node) -> None:
        """A worker runs a test only once it knows the next one (or is told to shut down), so a process holding one
        test gets the shortest unit as its next; else more only when what it holds is nearly done."""
        if node.shutting_down:
            return
        while self.workqueue:
            pending = self._pending(node)
            if len(pending) < 2:
                self._assign_work_unit(node, shortest=bool(pending))
            elif sum(map(self._seconds, pending)) < PREFETCH_S:
                self._assign_work_unit(node)
            else:
                break
        if not self.workqueue:
            node.shutdown()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log) -> GroupScheduling | None:
    return GroupScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


def xdist_group_of(path: Path) -> str | None:
    """The test's file (or its folder of ONE_GROUP_FOLDERS) under GROUPED_FOLDERS, or its ONE_GROUP_FILES
    group, else None: any worker, one test at a time."""
    if not path.is_relative_to(TESTS):
        return None
    relative = path.relative_to(TESTS).as_posix()
    if relative in ONE_GROUP_FILES:
        return ONE_GROUP_FILES[relative]
    for folder in ONE_GROUP_FOLDERS:
        if relative.startswith(folder + "/"):
            return folder
    return relative if any(relative.startswith(folder + "/") for folder in GROUPED_FOLDERS) else None


def needs_postgresql(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec else ()
    return "pg_admin_url" in getattr(item, "fixturenames", ()) or any(
        isinstance(value, str) and value == "postgresql" for value in params)


def _pg_available() -> bool:
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False



def pytest_addoption(parser: pytest.Parser) -> None:
    # Here, not in tests/security/conftest.py, so that a whole-suite run (make test) can pass it too.
    parser.addoption("--update-security-doc", action="store_true",
                     help="rewrite the attempts table of docs/security.md from this run (tests/security)")
    parser.addoption("--store-durations", action="store_true",
                     help="write the seconds each scheduling unit took into tests/durations.json (units this "
                          "run did not run keep their figure): the order make test hands units out in")



class DurationRecorder:
    """--store-durations: sums each scheduling unit's setup, call and teardown seconds, in the process that
    started the run (xdist hands the workers' reports to it), and merges them into tests/durations.json."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        key = duration_key(report.nodeid)
        self.seconds[key] = self.seconds.get(key, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        recorded = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
        recorded.update({key: round(seconds, 1) for key, seconds in self.seconds.items()})
        DURATIONS.write_text(json.dumps(dict(sorted(recorded.items())), indent=0) + "\n")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("store_durations") and not is_xdist_worker(config):
        config.pluginmanager.register(DurationRecorder(), "onsite-durations")

@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    if not _pg_available():
        pytest.skip(f"no PostgreSQL answers at {PG_ADMIN_URL} (make test starts one)")
    return PG_ADMIN_URL


@contextmanager
def pg_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (a copy of `template`, else empty) for the block; its URL. Dropped after."""
    name = f"onsite_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield make_url(admin_url).set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (migration tests start here), dropped afterwards."""
    if request.node.get_closest_marker("postgresql") is None:  # make check must not reach PostgreSQL
        pytest.fail("this test reaches PostgreSQL without the `postgresql` marker: request `pg_url` as an "
                    "argument or through a fixture parametrized with \"postgresql\" (tests/conftest.py marks those)")
    with pg_database(pg_admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """The name of a PostgreSQL database migrated once per run, which `db_url` copies for each test.
    Named per run: another run on the same server keeps its own, and a new migration is always in it."""
    with pg_database(pg_admin_url) as url:
        migrate(url)
        yield make_url(url).database


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated once per run, which `db_url` copies for each test."""
    path = tmp_path_factory.mktemp("template") / "onsite.sqlite"
    migrate(f"sqlite:///{path}")
    # migrate() closes its connections, and the last one folds the write-ahead log into the file.
    assert not path.with_name(path.name + "-wal").exists(), "the migrated SQLite store kept its -wal file"
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated policy/workflow/audit store, on each backend in turn: a copy of the store migrated
    once per run (tests of migrating itself start from `pg_url` or an empty file instead)."""
    if request.param == "sqlite":
        path = shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "onsite.sqlite")
        yield f"sqlite:///{path}"
        return
    with pg_database(request.getfixturevalue("pg_admin_url"), request.getfixturevalue("pg_template")) as url:
        yield url


@pytest.fixture
def db(db_url):
    """A session factory over the migrated store."""
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(home=tmp_path / "home", db_url=db_url)


def onsite_account_names() -> tuple[set[str], set[str]]:
    users = {p.pw_name for p in pwd.getpwall() if p.pw_name.startswith("onsite")}
    groups = {g.gr_name for g in grp.getgrall() if g.gr_name.startswith("onsite")}
    return users, groups


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not is_xdist_worker(session.config):
        session.config._onsite_accounts_before = onsite_account_names()


@pytest.hookimpl(trylast=True)  # after the session's fixtures (hubs) are torn down
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Hub tests running as root create OS accounts and dataset groups (hub_config.isolation);
    remove the ones this run created, leaving any that existed before. In the process that started
    the run (under xdist: the controller, once every worker has finished), never in a worker while
    another worker's hub may still use its accounts. Only accounts whose home is under this run's
    temporary directory or gone, and their hubs' dataset groups: another test run on the machine keeps
    the accounts it is using."""
    before = getattr(session.config, "_onsite_accounts_before", None)
    if before is None or os.geteuid() != 0:
        return
    basetemp = session.config._tmp_path_factory.getbasetemp()
    (users_before, groups_before), (users_after, groups_after) = before, onsite_account_names()
    homes = {name: Path(pwd.getpwnam(name).pw_dir) for name in users_after - users_before}
    ours = {name for name, home in homes.items() if home.is_relative_to(basetemp) or not home.exists()}
    for name in ours:
        remove_account(name)
    hubs = {name.split("-", 1)[0] + "-ds-" for name in ours}
    for name in groups_after - groups_before - users_after:
        if name.startswith(tuple(hubs)):
            remove_group(name)
