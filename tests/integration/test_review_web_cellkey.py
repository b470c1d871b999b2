"""Issue 13 over HTTP: the real reviewer app (a subprocess, the review rules from its config file) answers the
requester's API with a perturbed table's released cells only at the terminal of their running session (the Hub
stood in over HTTP, the ledger real), and those cells are the ones the release package later holds."""
from __future__ import annotations

import csv
import io
import json
import os
import sys
import threading
import zipfile
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "workflow"))
from workflow_factories import make_world, table_output  # noqa: E402

from access_control import audit  # noqa: E402
from access_control.enums import AuditEventType  # noqa: E402
from access_control.sessions import session_object  # noqa: E402
from dataplane import record_keys  # noqa: E402
from dataplane.catalogue import read_dataset_info  # noqa: E402
from hub_config.config import free_port  # noqa: E402
from onsite_base.db import make_engine, session_factory, transaction  # noqa: E402

pytestmark = pytest.mark.integration
PREFIX = "/services/onsite-review/"
PASSING = "SELECT * FROM survey WHERE region <> 'C'"
API = {"Authorization": "token test-alice"}


class HubStandIn(BaseHTTPRequestHandler):
    """GET users/<name>: alice's server runs (started a minute ago), nobody else's."""

    def do_GET(self) -> None:
        name = self.path.rstrip("/").split("/")[-1]
        started = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
        servers = {"": {"started": started, "ready": True, "pending": None}} if name == "alice" else {}
        body = json.dumps({"name": name, "servers": servers}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub():
    with ThreadingHTTPServer(("127.0.0.1", 0), HubStandIn) as server:  # the Hub's API URL while the test runs
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield "http://{}:{}/hub/api".format(*server.server_address)
        server.shutdown()


def serve(db_url, settings, review_app, tmp_path, hub_url: str, terminal: str):
    """The app over the world, the survey's record keys drawn, its tables perturbed; alice's session started from
    `terminal` with project p1 (the ledger's SESSION_START, after the Hub's start time)."""
    engine = make_engine(db_url)
    factory = session_factory(engine)
    make_world(factory, settings)
    survey = read_dataset_info(settings.datasets_dir / "survey.duckdb")
    record_keys.commit_keys(record_keys.write_keys(settings.datasets_dir, "survey", survey.rows, survey.source_sha256),
                            settings.datasets_dir, "survey")
    with transaction(factory) as s:
        audit.record(s, AuditEventType.SESSION_START, actor="alice", object=session_object("alice"),
                     details={"client_address": terminal, "projects": ["p1"]})
    engine.dispose()
    (settings.home / "onsite_config.py").write_text(
        'c.ReviewPolicy.cell_key_datasets = ["survey"]\nc.ReviewPolicy.required_approvals = 1\n')
    port = free_port()
    base = f"http://127.0.0.1:{port}{PREFIX}"
    env = os.environ | settings.environ() | {"TEST_HUB_API_URL": hub_url}
    return base, review_app.start(port, PREFIX, env, tmp_path / "review-app.log", probe=base + "api/requests/1")


def submit(base: str) -> requests.Response:
    body = {"project": "p1", "title": "Income by region", "purpose": "regional paper",
            "outputs": [table_output(query=PASSING)]}
    return requests.post(base + "api/requests", json=body, headers=API)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_session_sees_the_released_cells_the_package_holds(db_url, settings, review_app, tmp_path, hub):
    base, app = serve(db_url, settings, review_app, tmp_path, hub, terminal="127.0.0.1")
    try:
        answer = submit(base)
        assert answer.status_code == 201, answer.text
        [item] = answer.json()["outputs"]
        released = item["released"]
        assert item["cell_key"]["cells"] == len(released["rows"]) and set(released) == {"columns", "rows"}
        assert "key" not in json.dumps(answer.json()).replace("cell_key", "")
        request_id = answer.json()["id"]
        assert requests.get(base + f"api/requests/{request_id}", headers=API).json()["outputs"][0]["released"] == \
            released
        # a reviewer approves; the package alice collects holds exactly the cells her session was shown
        reviewer = requests.Session()
        assert reviewer.get(base + "test-login", params={"user": "bob"}).ok
        page = reviewer.get(base + f"requests/{request_id}").text
        xsrf = page.split('name="_xsrf" value="')[1].split('"')[0]
        output_id = int(page.split('<section class="output" id="output-')[1].split('"')[0])
        voted = reviewer.post(base + f"requests/{request_id}/outputs/{output_id}/vote",
                              data={"decision": "APPROVE", "_xsrf": xsrf})
        assert voted.ok, voted.text[-500:]
        status = requests.get(base + f"api/requests/{request_id}", headers=API).json()
        assert status["status"] == "RELEASED"
        alice = requests.Session()
        assert alice.get(base + "test-login", params={"user": "alice"}).ok
        package = zipfile.ZipFile(io.BytesIO(alice.get(base + f"requests/{request_id}/package.zip").content))
        [name] = [n for n in package.namelist() if n.endswith(".csv")]
        rows = list(csv.reader(io.StringIO(package.read(name).decode())))
        assert rows == [released["columns"], *[[str(v) for v in row] for row in released["rows"]]]
    finally:
        app.stop()
        print(app.log_tail())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_token_used_away_from_the_sessions_terminal_gets_no_cells(db_url, settings, review_app, tmp_path, hub):
    base, app = serve(db_url, settings, review_app, tmp_path, hub, terminal="192.0.2.7")  # alice's terminal elsewhere
    try:
        answer = submit(base)
        assert answer.status_code == 201, answer.text
        [item] = answer.json()["outputs"]
        assert "released" not in item and item["cell_key"]["cells"] > 0  # the information loss only
        status = requests.get(base + f"api/requests/{answer.json()['id']}", headers=API).json()
        assert "released" not in status["outputs"][0] and "rows" not in json.dumps(status)
    finally:
        app.stop()
        print(app.log_tail())
