"""Session activity in the audit ledger, the hub API address the hub publishes, and the
kill of every process of a session account. Real ledger (SQLite and PostgreSQL), real
`onsite audit verify`, real JupyterHub app objects, real processes; no hub is started."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text
from tornado import web
from traitlets.config import Config

from access_control import audit
from onsite_base.db import make_engine, session_factory
from access_control.enums import AuditEventType, Outcome
from hub_config import isolation
from hub_config.audit_sink import MAX_FIELDS, clean_event, record_session_events
from hub_config.ports import free_port
from hub_config.settings import HUB_API_URL_FILE, HubSettings
from onsite import cli as onsite_cli
from onsite_base.settings import Settings
from hopper import HOPPER, beating, started


@pytest.fixture
def factory(db_url):
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


def test_clean_event_refuses_what_a_server_never_sends():
    assert clean_event({"kind": "execute", "code": "x = 1", "at": 1.5}) == {"kind": "execute", "code": "x = 1", "server_at": 1.5}
    for bad in ({"kind": "lost", "events": 3}, {"kind": "execute", "code": ["nested"]}, "execute",
                {"kind": "execute", **{f"f{i}": i for i in range(MAX_FIELDS)}}):
        with pytest.raises(web.HTTPError) as refused:
            clean_event(bad)
        assert refused.value.status_code == 400


def test_session_events_are_ledger_events_and_an_edit_is_caught_by_audit_verify(factory, db_url, tmp_path, monkeypatch, capsys):
    events = [clean_event({"kind": "execute", "code": "total = 6 * 7", "kernel_id": "k1"}),
              clean_event({"kind": "contents", "action": "save", "path": "p-demo/analysis.ipynb"}),
              clean_event({"kind": "refused", "method": "GET", "path": "files/x.csv", "reason": "downloads are switched off"})]
    last = record_session_events(factory, "tanaka", events)
    with factory() as session:
        stored = audit.find_events(session, action=AuditEventType.SESSION_ACTIVITY)[::-1]
        assert audit.verify(session).ok
    assert [e.seq for e in stored][-1] == last
    assert [(e.actor, e.object, e.outcome) for e in stored] == [("tanaka", "session:tanaka", Outcome.OK)] * 2 + [
        ("tanaka", "session:tanaka", Outcome.DENIED)]
    assert json.loads(stored[0].details)["code"] == "total = 6 * 7"

    monkeypatch.setenv("ONSITE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ONSITE_DB_URL", db_url)

    def verify() -> tuple[int, str]:
        capsys.readouterr()
        code = onsite_cli.main(["audit", "verify"])
        return code, capsys.readouterr().out

    code, out = verify()
    assert code == 0 and out.startswith(f"ok: {last} events (Merkle root "), out
    # Someone with database access rewrites the code a researcher ran.
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_event SET details = :d WHERE seq = :s"),
                         {"d": stored[0].details.replace("6 * 7", "6 * 8"), "s": stored[0].seq})
    finally:
        engine.dispose()
    code, out = verify()
    assert code == 1 and out.startswith(f"TAMPERED: first bad event {stored[0].seq}:") and "altered" in out


def hub_app(settings: Settings, site_config: str):
    """The hub application `onsite hub` runs, configured by Onsite and then by the site's file."""
    # heavy: hub_config.config loads jupyterhub.app and with it jsonschema (2-3 CPU-s): imported on the worker that
    # runs these tests (this file is an xdist group), not by every process that collects this file
    from hub_config.config import configure, hub_app_class

    c = Config()
    configure(c, settings, HubSettings())
    (settings.home / "onsite_config.py").write_text(site_config)
    app = hub_app_class(settings)(config=c)
    app.load_config_file("ignored")
    return app


@pytest.mark.parametrize("override", ["hub_port", "hub_bind_url"])
def test_the_hub_api_address_follows_the_sites_override(tmp_path, override):
    settings = Settings(home=tmp_path / "home", db_url=f"sqlite:///{tmp_path / 'onsite.sqlite'}")
    settings.home.mkdir()
    port = free_port()
    line = f"c.JupyterHub.hub_port = {port}\n" if override == "hub_port" else f"c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{port}'\n"
    app = hub_app(settings, line)
    app.init_hub()
    published = (settings.runtime_dir / HUB_API_URL_FILE).read_text().strip()
    assert published == f"http://127.0.0.1:{port}/hub/api" == app.hub.api_url.rstrip("/")


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a throwaway uid)")


@root_only
def test_a_process_hopping_pids_does_not_outlive_the_session():
    uid = 299_991
    assert uid not in {p.pw_uid for p in pwd.getpwall()}
    shared = Path(tempfile.mkdtemp(prefix="onsite-hopper-"))  # not under pytest's 0700 base directory
    os.chmod(shared, 0o777)
    beat = shared / "beat"
    subprocess.Popen(["/usr/bin/python3", "-I", "-c", HOPPER, str(beat)], user=uid, group=uid, extra_groups=[], cwd="/",
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    assert started(beat), "the hopper did not start"
    try:
        isolation.kill_account_processes(uid)
        assert not beating(beat)
    finally:
        subprocess.run(["/bin/sh", "-c", "kill -9 -1"], user=uid, group=uid, extra_groups=[])  # whatever happens
        shutil.rmtree(shared, ignore_errors=True)
