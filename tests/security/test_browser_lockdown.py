"""Attacks through the browser's channel: download, export, upload, terminals, user config,
extension manager, kernel messages that would run code unrecorded; and the session activity
those actions leave in the audit ledger. Each runs as a real researcher account (tanaka)
against a real hub running as root.

What stays open, on purpose: `GET /api/contents/<path>` of notebooks, text files and
folder listings (JupyterLab cannot open a document without it; what is on screen is
on screen), and base64 reads of images (the image viewer). The boundary is the
facility terminal and the network (DESIGN.md); these switches are defence in depth.
"""
from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import websocket
from playwright.sync_api import sync_playwright
from jupyter_server.services.kernels.connection.base import (deserialize_msg_from_ws_v1, serialize_binary_message,
                                                             serialize_msg_to_ws_v1)
from sqlalchemy import select

from onsite_base.db import make_engine, session_factory
from access_control.enums import AuditEventType
from access_control.models import AuditEvent
from onsite.demo import DEMO_PROJECT
from functional.browser import CHROMIUM, CHROMIUM_ARGS, run_cell
from security._isolation_fixtures import isolated_hub, researcher_session  # noqa: F401 (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

NOTEBOOK = f"{DEMO_PROJECT}/analysis.ipynb"
CSV = f"{DEMO_PROJECT}/table.csv"
BINARY = f"{DEMO_PROJECT}/extract.bin"
IMAGE = f"{DEMO_PROJECT}/figure.png"
CSV_TEXT = "prefecture,count\n13,2841\n27,1903\n"
SECRET_BYTES = b"\x00ONSITE-MICRODATA-EXTRACT\xff" * 64
PNG_1X1 = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==")
MARKER = "onsite_audit_marker_7f3a"
CELL = 'print("run in chromium " + str(6 * 7))'


def xsrf(user) -> dict[str, str]:
    return {"X-XSRFToken": user.http.cookies.get("_xsrf", path=f"/user/{user.username}/") or ""}


def put(user, path: str, model: dict):
    return user.http.put(f"{user.server_url}/api/contents/{path}", json=model, headers=xsrf(user), timeout=60)


@pytest.fixture(scope="module")
def lab(isolated_hub):
    user, kernel = researcher_session(isolated_hub, "tanaka")
    notebook = {"cells": [{"cell_type": "code", "source": CELL, "metadata": {}, "outputs": [], "execution_count": None}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    assert put(user, NOTEBOOK, {"type": "notebook", "content": notebook}).status_code in (200, 201)
    assert put(user, CSV, {"type": "file", "format": "text", "content": CSV_TEXT}).status_code in (200, 201)
    result = user.execute(kernel, f"import os\nopen(os.path.expanduser('~/{BINARY}'), 'wb').write({SECRET_BYTES!r})\n"
                                  f"open(os.path.expanduser('~/{IMAGE}'), 'wb').write({PNG_1X1!r})")
    assert result.error is None, result.error
    return isolated_hub, user, kernel


DOWNLOADS = [
    ("GET", f"/files/{CSV}", "download a file through /files/"),
    ("GET", f"/files/{BINARY}?download=1", "download a binary file through /files/?download=1"),
    ("GET", f"/view/{CSV}", "open a file through /view/"),
    ("GET", f"/nbconvert/html/{NOTEBOOK}?download=true", "export a notebook as HTML (/nbconvert/html)"),
    ("GET", f"/nbconvert/script/{NOTEBOOK}", "export a notebook as a script (/nbconvert/script)"),
    ("GET", f"/nbconvert/notebook/{NOTEBOOK}?download=true", "download a notebook through /nbconvert/notebook"),
    ("GET", "/api/nbconvert", "list export formats (/api/nbconvert)"),
    ("GET", f"/api/contents/{BINARY}?type=file&format=base64", "binary read through the contents API (format=base64)"),
    ("GET", f"/api/contents/{BINARY}?type=file", "binary read through the contents API without format (the server falls back to base64)"),
    ("GET", f"/api/contents/{BINARY}", "binary read through the contents API without type or format"),
    ("GET", f"/api/contents/{CSV}?download=1", "contents API with ?download=1"),
]


@pytest.mark.parametrize("method, path, attempt", DOWNLOADS, ids=[d[1].split("?")[0] for d in DOWNLOADS])
def test_download_and_export_urls_are_refused(lab, method, path, attempt):
    hub, user, _ = lab
    r = user.http.request(method, user.server_url + path, headers=xsrf(user), timeout=60, allow_redirects=False)
    assert r.status_code in (403, 404), (path, r.status_code, r.text[:200])
    for secret in (CSV_TEXT.encode(), SECRET_BYTES[:32], base64.b64encode(SECRET_BYTES)[:32], CELL.encode()):
        assert secret not in r.content
    hub.record("browser: download", attempt, f"HTTP {r.status_code}")


def test_what_jupyterlab_needs_to_open_files_stays_open(lab):
    _, user, _ = lab
    text = user.http.get(f"{user.server_url}/api/contents/{CSV}?type=file&format=text&content=1", timeout=30)
    assert text.status_code == 200 and text.json()["content"] == CSV_TEXT
    notebook = user.http.get(f"{user.server_url}/api/contents/{NOTEBOOK}?content=1", timeout=30)
    assert notebook.status_code == 200 and notebook.json()["content"]["cells"][0]["source"] == CELL
    image = user.http.get(f"{user.server_url}/api/contents/{IMAGE}?type=file&format=base64", timeout=30)
    assert image.status_code == 200 and base64.b64decode(image.json()["content"]) == PNG_1X1


def upload(user, path: str, data: bytes, chunk: int | None = None):
    model = {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}
    if chunk is not None:
        model["chunk"] = chunk
    return put(user, path, model)


def test_upload_outside_the_intake_folder_is_refused(lab):
    hub, user, kernel = lab
    home = hub.settings.workspaces_dir / "tanaka"
    for path in (f"{DEMO_PROJECT}/tool.py", "tool.py", "intake/../tool.py"):
        r = upload(user, path, b"import socket\n")
        assert r.status_code in (400, 403, 404), (path, r.status_code)
        assert not (home / path).exists() and not (home / "tool.py").exists()
    hub.record("browser: upload", f"upload a file into {DEMO_PROJECT}/ (outside intake/)", f"HTTP {r.status_code}")
    link = user.execute(kernel, f"import os\nos.symlink('../{DEMO_PROJECT}', os.path.expanduser('~/intake/elsewhere'))")
    assert link.error is None
    through = upload(user, "intake/elsewhere/tool.py", b"import socket\n")
    assert through.status_code == 403 and not (home / DEMO_PROJECT / "tool.py").exists()
    hub.record("browser: upload", "upload through a symbolic link in intake/ to another folder", f"HTTP {through.status_code}")
    chunk = upload(user, f"{DEMO_PROJECT}/tool.py", b"import socket\n", chunk=2)  # a later chunk appends
    assert chunk.status_code == 403 and not (home / DEMO_PROJECT / "tool.py").exists()
    hub.record("browser: upload", f"upload a later chunk into {DEMO_PROJECT}/ (skips pre-save hooks)", f"HTTP {chunk.status_code}")
    ok = upload(user, "intake/reference.csv", b"code,label\n1,a\n")
    assert ok.status_code == 201 and (home / "intake" / "reference.csv").read_bytes() == b"code,label\n1,a\n"


def test_upload_over_the_size_limit_is_refused(lab):
    hub, user, kernel = lab
    home = hub.settings.workspaces_dir / "tanaka"
    # A chunked upload whose first 50 MB are already there: the next 1 MB chunk passes the limit.
    first = user.execute(kernel, "import os\nf = open(os.path.expanduser('~/intake/big.bin'), 'wb')\n"
                                 "f.truncate(50 * 1024 * 1024)\nf.close()")
    assert first.error is None, first.error
    r = upload(user, "intake/big.bin", os.urandom(1024 * 1024), chunk=2)
    assert r.status_code == 413, (r.status_code, r.text[:300])
    assert (home / "intake" / "big.bin").stat().st_size == 50 * 1024 * 1024
    hub.record("browser: upload", "upload past the 50 MB intake limit (chunked)", f"HTTP {r.status_code}")
    whole = upload(user, "intake/huge.bin", b"\0" * (70 * 1024 * 1024))
    assert whole.status_code >= 400 and not (home / "intake" / "huge.bin").exists()
    hub.record("browser: upload", "upload 70 MB in one request", f"HTTP {whole.status_code}")


def test_terminal_cannot_be_started(lab):
    hub, user, _ = lab
    r = user.http.post(f"{user.server_url}/api/terminals", headers=xsrf(user), timeout=30)
    assert r.status_code in (403, 404)
    assert user.http.get(f"{user.server_url}/api/terminals", timeout=30).status_code in (403, 404)
    hub.record("browser: terminal", "POST /api/terminals", f"HTTP {r.status_code}")


def test_no_language_server_can_be_started(lab):
    hub, user, _ = lab
    r = user.http.get(f"{user.server_url}/lsp/status", timeout=30)
    assert r.status_code == 404, (r.status_code, r.text[:300])
    hub.record("browser: language server", "GET /lsp/status (a language server runs beside the audited kernel)",
               f"HTTP {r.status_code}")


def test_extension_manager_cannot_install(lab):
    hub, user, _ = lab
    r = user.http.post(f"{user.server_url}/lab/api/extensions", json={"cmd": "install", "extension_name": "jupyterlab-git"},
                       headers=xsrf(user), timeout=60)
    assert r.status_code >= 400, (r.status_code, r.text[:200])
    assert "jupyterlab-git" not in subprocess.run([sys.executable, "-m", "pip", "list"], capture_output=True, text=True).stdout
    hub.record("browser: extensions", "install an extension through the extension manager", f"HTTP {r.status_code}")


def session_activity(settings, text: str = "") -> list[dict]:
    """SESSION_ACTIVITY events of the ledger whose details mention `text`, oldest first."""
    engine = make_engine(settings.db_url)
    try:
        with session_factory(engine)() as session:
            rows = session.scalars(select(AuditEvent).where(AuditEvent.action == AuditEventType.SESSION_ACTIVITY).order_by(AuditEvent.seq)).all()
            return [{"seq": e.seq, "actor": e.actor, "outcome": e.outcome.value, "details": json.loads(e.details)}
                    for e in rows if text in e.details]
    finally:
        engine.dispose()


def wait_for_activity(settings, text: str, count: int = 1, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    found = session_activity(settings, text)
    while len(found) < count and time.monotonic() < deadline:
        time.sleep(0.5)
        found = session_activity(settings, text)
    return found


def audit_verify(settings) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.environ()}
    return subprocess.run([sys.executable, "-m", "onsite.cli", "audit", "verify"], capture_output=True, text=True, env=env)


def test_session_events_reach_the_ledger_and_the_researcher_cannot_write_them(lab):
    hub, user, kernel = lab
    assert user.http.get(f"{user.server_url}/nbconvert/script/{NOTEBOOK}", timeout=30).status_code == 403
    run = user.execute(kernel, f"x = 6 * 7 * 1009  # {MARKER}\nprint(x)")
    assert run.error is None and run.stdout.strip() == "42378"
    executed = [e for e in wait_for_activity(hub.settings, MARKER) if e["details"]["kind"] == "execute"]
    assert executed and executed[0]["actor"] == "tanaka"
    assert executed[0]["details"]["code"] == f"x = 6 * 7 * 1009  # {MARKER}\nprint(x)"
    assert not any("42378" in json.dumps(e["details"]) for e in executed)  # the code, never its output
    # A cell's record is sent at once; the refusal before it waits for the next once-a-second batch.
    wait_for_activity(hub.settings, f"nbconvert/script/{NOTEBOOK}")
    events = session_activity(hub.settings)
    assert all(e["actor"] == "tanaka" for e in events)
    assert any(e["details"]["kind"] == "contents" and e["details"]["action"] == "save" and e["details"]["path"] == NOTEBOOK
               for e in events)
    assert any(e["details"]["kind"] == "kernel" and e["details"]["action"] == "start" for e in events)
    assert any(e["details"]["kind"] == "refused" and e["details"]["path"] == f"nbconvert/script/{NOTEBOOK}"
               and e["outcome"] == "DENIED" for e in events)

    # The kernel, and the server's account outside the kernel's namespaces, try to rewrite the ledger's database.
    store = hub.settings.home / "onsite.sqlite"
    tamper = user.execute(kernel, f"try:\n    open({str(store)!r}, 'r+b').write(b'x')\n    print('RESULT wrote')\n"
                                  "except OSError as e:\n    print('RESULT ' + type(e).__name__)")
    assert tamper.error is None and "RESULT wrote" not in tamper.stdout
    hub.record("audit", "rewrite the ledger's database file from the kernel", tamper.stdout.strip().removeprefix("RESULT "))
    uid = str(os.stat(hub.settings.workspaces_dir / "tanaka").st_uid)
    outside = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "/usr/bin/python3", "-I", "-c",
                              f"open({str(store)!r}, 'r+b').write(b'x')"], capture_output=True, text=True, cwd="/")
    assert outside.returncode != 0 and "PermissionError" in outside.stderr
    hub.record("audit", "rewrite the ledger's database file as the session's account", "PermissionError")
    # The researcher's browser session cannot post events in its own name either.
    forged = user.http.post(f"{hub.hub.url}/hub/api/onsite/session-events", json={"events": [{"kind": "execute", "code": "x"}]},
                            headers=user._hub_xsrf(), timeout=30)
    assert forged.status_code == 403
    hub.record("audit", "post a forged session event with the browser's hub cookie", f"HTTP {forged.status_code}")
    assert audit_verify(hub.settings).returncode == 0


def test_an_edited_session_event_is_caught_by_audit_verify(lab):
    hub, user, kernel = lab
    mark = f"edited_{uuid.uuid4().hex[:8]}"
    assert user.execute(kernel, f"y = 1  # {mark}").error is None
    event = wait_for_activity(hub.settings, mark)[0]
    with sqlite3.connect(hub.settings.home / "onsite.sqlite", timeout=30) as db:
        original = db.execute("SELECT details FROM audit_event WHERE seq = ?", (event["seq"],)).fetchone()[0]
        db.execute("UPDATE audit_event SET details = ? WHERE seq = ?", (original.replace("y = 1", "y = 2"), event["seq"]))
    try:
        verdict = audit_verify(hub.settings)
        assert verdict.returncode == 1, verdict.stdout + verdict.stderr
        assert verdict.stdout.startswith(f"TAMPERED: first bad event {event['seq']}:"), verdict.stdout
        hub.record("audit", "edit the code of an executed cell in the ledger (database access)", "onsite audit verify: TAMPERED")
    finally:
        with sqlite3.connect(hub.settings.home / "onsite.sqlite", timeout=30) as db:
            db.execute("UPDATE audit_event SET details = ? WHERE seq = ?", (original, event["seq"]))
    assert audit_verify(hub.settings).returncode == 0


# --- kernel messages that would run code without an execute_request on record -----------

V1 = "v1.kernel.websocket.jupyter.org"


def kernel_socket(user, kernel: str, protocol: str | None = None):
    url = user.server_url.replace("http://", "ws://") + f"/api/kernels/{kernel}/channels"
    cookie = "; ".join(f"{c.name}={c.value}" for c in user.http.cookies)
    return websocket.create_connection(url, header=[f"Cookie: {cookie}"], timeout=60,
                                       subprotocols=[protocol] if protocol else None)


def message(msg_type: str, content: dict, parent: dict | None = None) -> dict:
    header = {"msg_id": uuid.uuid4().hex, "username": "tanaka", "session": uuid.uuid4().hex, "msg_type": msg_type,
              "version": "5.3", "date": "2026-01-01T00:00:00Z"}
    return {"header": header, "parent_header": parent or {}, "metadata": {}, "content": content, "buffers": []}


def execute_content(code: str, **extra) -> dict:
    return {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False,
            "stop_on_error": True, **extra}


def receive(ws, v1: bool) -> dict:
    raw = ws.recv()
    if v1:
        channel, parts = deserialize_msg_from_ws_v1(raw)
        return {"channel": channel, "header": json.loads(parts[0]), "parent_header": json.loads(parts[1]),
                "content": json.loads(parts[3])}
    return json.loads(raw)


def reply_to(ws, msg_id: str, v1: bool = False, want: str = "reply", timeout: float = 60) -> dict | None:
    """The first message answering `msg_id` whose type ends with `want`, or None after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            msg = receive(ws, v1)
        except websocket.WebSocketTimeoutException:
            return None
        if msg["parent_header"].get("msg_id") == msg_id and msg["header"]["msg_type"].endswith(want):
            return msg
    return None


def test_code_in_a_message_only_the_kernel_can_decode_is_recorded(lab):
    """A raw 0xff byte: strict JSON decoding fails, the kernel's decoder replaces it and runs the code."""
    hub, user, kernel = lab
    mark = f"undecodable_{uuid.uuid4().hex[:8]}"
    msg = message("execute_request", {})
    content = json.dumps(execute_content(f"open('{mark}', 'w').write('ran')  # \x00")).encode().replace(b"\\u0000", b"\xff")
    parts = [json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata")] + [content]
    ws = kernel_socket(user, kernel, V1)
    try:
        ws.send_binary(serialize_msg_to_ws_v1(parts, "shell"))
        reply = reply_to(ws, msg["header"]["msg_id"], v1=True, timeout=20)
    finally:
        ws.close()
    ran = (hub.settings.workspaces_dir / "tanaka" / mark).exists()
    recorded = [e for e in wait_for_activity(hub.settings, mark, timeout=10) if e["details"]["kind"] == "execute"]
    assert ran == bool(recorded) and (reply is not None) == ran  # it ran only if it is on record
    hub.record("kernel messages", "execute_request with a byte only the kernel's decoder accepts (v1 protocol)",
               "recorded, then run" if ran else "dropped")


def test_a_binary_frame_of_the_legacy_protocol_is_recorded(lab):
    hub, user, kernel = lab
    mark = f"binary_{uuid.uuid4().hex[:8]}"
    msg = message("execute_request", execute_content(f"open('{mark}', 'w').write('ran')"))
    msg["channel"] = "shell"
    ws = kernel_socket(user, kernel)
    try:
        ws.send_binary(serialize_binary_message(msg))
        reply = reply_to(ws, msg["header"]["msg_id"], timeout=20)
    finally:
        ws.close()
    ran = (hub.settings.workspaces_dir / "tanaka" / mark).exists()
    recorded = [e for e in wait_for_activity(hub.settings, mark, timeout=10) if e["details"]["kind"] == "execute"]
    assert ran and reply is not None and recorded  # JupyterLab-compatible, and on record
    hub.record("kernel messages", "execute_request as a binary frame of the legacy protocol", "recorded, then run")


def test_user_expressions_are_recorded(lab):
    """The kernel evaluates an execute_request's user_expressions, even with no code at all."""
    hub, user, kernel = lab
    mark = f"expression_{uuid.uuid4().hex[:8]}"
    msg = message("execute_request", execute_content("", user_expressions={"r": f"open('{mark}', 'w').write('ran')"}))
    msg["channel"] = "shell"
    ws = kernel_socket(user, kernel)
    try:
        ws.send(json.dumps(msg))
        assert reply_to(ws, msg["header"]["msg_id"], timeout=30) is not None
    finally:
        ws.close()
    assert (hub.settings.workspaces_dir / "tanaka" / mark).exists()  # it did run
    recorded = [e for e in wait_for_activity(hub.settings, mark) if e["details"]["kind"] == "execute"]
    assert recorded and mark in recorded[0]["details"]["user_expressions"]
    hub.record("kernel messages", "run code as user_expressions of an empty execute_request", "recorded, then run")


def test_the_debugger_cannot_run_code(lab):
    hub, user, kernel = lab
    msg = message("debug_request", {"type": "request", "seq": 1, "command": "initialize",
                                    "arguments": {"clientID": "attacker", "adapterID": "python"}})
    msg["channel"] = "control"
    ws = kernel_socket(user, kernel)
    try:
        ws.send(json.dumps(msg))
        reply = reply_to(ws, msg["header"]["msg_id"], timeout=10)
    finally:
        ws.close()
    assert reply is None  # never reached the kernel
    refused = [e for e in wait_for_activity(hub.settings, "debug_request") if e["details"]["kind"] == "refused"]
    assert refused and refused[0]["outcome"] == "DENIED"
    hub.record("kernel messages", "debug_request (the debugger's evaluate runs code unrecorded)", "dropped, refusal recorded")


def test_code_typed_into_input_is_recorded(lab):
    hub, user, kernel = lab
    mark = f"stdin_{uuid.uuid4().hex[:8]}"
    msg = message("execute_request", execute_content("exec(input())", allow_stdin=True))
    msg["channel"] = "shell"
    ws = kernel_socket(user, kernel)
    try:
        ws.send(json.dumps(msg))
        asked = reply_to(ws, msg["header"]["msg_id"], want="input_request", timeout=30)
        assert asked is not None
        answer = message("input_reply", {"status": "ok", "value": f"open('{mark}', 'w').write('ran')"}, parent=asked["header"])
        answer["channel"] = "stdin"
        ws.send(json.dumps(answer))
        assert reply_to(ws, msg["header"]["msg_id"], timeout=30) is not None
    finally:
        ws.close()
    assert (hub.settings.workspaces_dir / "tanaka" / mark).exists()
    typed = [e for e in wait_for_activity(hub.settings, mark) if e["details"]["kind"] == "input"]
    assert typed and typed[0]["details"]["value"] == f"open('{mark}', 'w').write('ran')"
    hub.record("kernel messages", "run code typed into input() (exec(input()))", "the typed code is recorded")


def test_a_burst_of_cells_is_recorded_in_full(lab):
    """More executions than the hub takes in one request must not stall the record."""
    hub, user, kernel = lab
    mark, count = f"burst_{uuid.uuid4().hex[:8]}", 1100
    ws = kernel_socket(user, kernel)
    try:
        ids = []
        for i in range(count):
            msg = message("execute_request", execute_content(f"pass  # {mark} {i}", silent=True))
            msg["channel"] = "shell"
            ws.send(json.dumps(msg))
            ids.append(msg["header"]["msg_id"])
        assert reply_to(ws, ids[-1], timeout=120) is not None
    finally:
        ws.close()
    recorded = wait_for_activity(hub.settings, mark, count=count, timeout=60)
    assert len(recorded) == count
    later = f"after_{mark}"
    assert user.execute(kernel, f"z = 0  # {later}").error is None
    assert wait_for_activity(hub.settings, later)
    hub.record("audit", f"run {count} cells within a second (more than one request to the hub holds)", "every one recorded")


def test_user_config_cannot_reenable_terminals_or_downloads(lab):
    hub, user, kernel = lab
    config = ("c.ServerApp.terminals_enabled = True\nc.ContentsManager.files_handler_class = "
              "'jupyter_server.files.handlers.FilesHandler'\nc.ServerApp.authorizer_class = 'jupyter_server.auth.authorizer.AllowAllAuthorizer'\n")
    written = user.execute(kernel, "import os\nfor d in ('~/.jupyter', '~/.jupyter/labconfig'):\n    os.makedirs(os.path.expanduser(d), exist_ok=True)\n"
                                   f"open(os.path.expanduser('~/.jupyter/jupyter_server_config.py'), 'w').write({config!r})\n"
                                   "open(os.path.expanduser('~/.jupyter/labconfig/page_config.json'), 'w').write('{\"disabledExtensions\": {}}')")
    assert written.error is None
    # Restart the server so it would read the planted config.
    api = f"{hub.hub.url}/hub/api/users/tanaka/server"
    assert user.http.delete(api, headers=user._hub_xsrf(), timeout=60).status_code in (202, 204)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and user.http.get(api[:-len("/server")], headers=user._hub_xsrf(), timeout=10).json()["servers"]:
        time.sleep(0.5)
    user.start_server()
    assert user.open_server().status_code == 200
    terminal = user.http.post(f"{user.server_url}/api/terminals", headers=xsrf(user), timeout=30)
    files = user.http.get(f"{user.server_url}/files/{CSV}", timeout=30)
    binary = user.http.get(f"{user.server_url}/api/contents/{BINARY}?type=file&format=base64", timeout=30)
    assert terminal.status_code in (403, 404) and files.status_code in (403, 404) and binary.status_code == 403
    hub.record("browser: user config", "~/.jupyter config re-enabling terminals", f"HTTP {terminal.status_code}")
    hub.record("browser: user config", "~/.jupyter config re-enabling /files/ and an allow-all authorizer",
               f"HTTP {files.status_code} / {binary.status_code}")


# --- real Chromium ---------------------------------------------------------------------

SCREENSHOTS = Path("/tmp/onsite-security-screens")


def menu_labels(page) -> list[str]:
    return [t.strip() for t in page.locator(".lm-Menu:visible .lm-Menu-itemLabel").all_inner_texts()]


@pytest.mark.browser
def test_jupyterlab_in_chromium_shows_no_download_or_export(lab):
    hub, user, _ = lab
    # The menu labels below are JupyterLab's English ones; sessions open in Japanese by default, so this
    # researcher picks English first, as Settings → Language does (a user setting kept in the home).
    locale = f"{user.server_url}/lab/api/settings/@jupyterlab/translation-extension:plugin"
    assert user.http.put(locale, json={"raw": '{"locale": "en"}'}, headers=user._server_xsrf()).status_code == 204
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{hub.hub.url}/hub/login")
            page.fill("input[name=username]", "tanaka")
            page.fill("input[name=password]", hub.logins["tanaka"].password)
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_url("**/user/tanaka/lab**", timeout=120_000)
            page.wait_for_selector(".jp-DirListing-content", timeout=120_000)
            page.goto(f"{hub.hub.url}/user/tanaka/lab/tree/{NOTEBOOK}")
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            # No kernel dialog: the preferred kernel starts by itself (autoStartDefaultKernel in labconfig).
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                                   ".jp-StatusBar-TextItem:has-text('Idle')", timeout=120_000)
            run_cell(page, "run in chromium 42", index=0)

            page.click(".lm-MenuBar-itemLabel:text-is('File')")
            page.wait_for_selector(".lm-Menu:visible")
            file_menu = menu_labels(page)
            page.screenshot(path=str(SCREENSHOTS / "file-menu.png"))
            page.keyboard.press("Escape")

            item = page.locator(".jp-DirListing-item:has-text('analysis.ipynb')").first
            item.wait_for(timeout=30_000)
            item.click(button="right")
            page.wait_for_selector(".lm-Menu:visible")
            context_menu = menu_labels(page)
            page.screenshot(path=str(SCREENSHOTS / "context-menu.png"))
            page.keyboard.press("Escape")

            direct = page.goto(f"{hub.hub.url}/user/tanaka/files/{CSV}")
            direct_status = direct.status if direct else 0
            body = page.content()
        except Exception:
            page.screenshot(path=str(SCREENSHOTS / "failure.png"))
            raise
        finally:
            browser.close()
    assert "Open…" in file_menu or "Open from Path…" in file_menu, file_menu  # the menu did open
    assert "Rename…" in context_menu or "Rename" in context_menu, context_menu
    for labels, where in ((file_menu, "File menu"), (context_menu, "file browser context menu")):
        forbidden = [l for l in labels if l.startswith(("Download", "Save and Export", "Export", "Open in New Browser Tab",
                                                         "Copy Download Link", "New Terminal", "Terminal"))]
        assert forbidden == [], (where, forbidden)
    assert direct_status in (403, 404) and CSV_TEXT.splitlines()[1] not in body
    # JupyterLab speaks the v1 kernel websocket protocol (binary frames): its cell is in the ledger too.
    assert any(e["details"].get("code") == CELL and e["actor"] == "tanaka" for e in wait_for_activity(hub.settings, "run in chromium"))
    hub.record("browser: Chromium", "Download / Export entries in the File menu", "absent")
    hub.record("browser: Chromium", "Download / Open in New Browser Tab in the file context menu", "absent")
    hub.record("browser: Chromium", f"open /files/{CSV} in the browser", f"HTTP {direct_status}")
