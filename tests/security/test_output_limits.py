"""Output limits, and one large request never slowing another (issue 14, item 5), attacked through a real hub as root.

A researcher (tanaka, in a real kernel) asks for a table of millions of cells (annual income by age by hours
worked: every combination of observed levels is a cell), hands the service such a table behind a small forged
output, drops an oversized file into the outbox past the kernel's checks, and posts an oversized body and a
small body naming a huge table straight to the review service with the server's own Hub token. Every attempt
is refused with the limit, the size and what to do, audited naming the limit, and nothing is left behind.
A reviewer then pages through an allowed table of hundreds of cells, and the queue is shown to read no
output's contents, so a large request in the store costs the queue nothing.
"""
from __future__ import annotations

import html
import json
import re

import pytest
import requests
from sqlalchemy import event

from disclosure_review import wire
from disclosure_review.sdc.enums import Statistic, TableKind
from disclosure_review.sdc.spec import TableSpec
from disclosure_review.workflow import permissions, service
from functional.hubtools import HubUser
from functional.seeding import audit_events
from onsite.demo import DEMO_DATASET, DEMO_PROJECT
from onsite_base.db import make_engine, session_factory, transaction
from review_service.app import CELLS_PER_PAGE
from security._isolation_fixtures import isolated_hub, researcher_session, server_token  # noqa: F401 (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REVIEW = "/services/onsite-review"
HUGE = {"rows": ["annual_income"], "columns": ["age", "hours_worked"]}
"""Millions of cells from the demo's 500 records: income, age and hours have hundreds, tens and tens of levels."""

PRELUDE = """
import json, os, time, uuid
import analysis_kernel
from analysis_kernel import outputs
from dataplane.manifest import SessionManifest
from disclosure_review import wire
db = analysis_kernel.connect()
outbox = SessionManifest.load().outbox
before = set(os.listdir(outbox))
def attempt(fn):
    try:
        fn()
        return {"refused": None}
    except Exception as e:
        return {"refused": type(e).__name__, "message": str(e)}
"""


def run(user: HubUser, kernel: str, code: str) -> dict:
    result = user.execute(kernel, PRELUDE + code + "\nprint('RESULT ' + json.dumps(out, ensure_ascii=False))",
                          timeout=400)
    assert result.error is None, result.error
    return json.loads(result.stdout.split("RESULT ", 1)[1].splitlines()[0])


@pytest.fixture(scope="module")
def world(isolated_hub):
    tanaka, kernel = researcher_session(isolated_hub, "tanaka")
    return isolated_hub, tanaka, kernel


def limit_refusals(hub, setting: str) -> list[dict]:
    return [e for e in audit_events(hub.settings, "RELEASE_SUBMIT", "tanaka")
            if e["outcome"] == "DENIED" and e["details"].get("limit") == f"ReviewPolicy.{setting}"]


def says_the_limit(message: str, setting: str, limit: int) -> bool:
    """The refusal names the setting and the limit, and says what to do (in the session's language)."""
    return f"ReviewPolicy.{setting}" in message and f"{limit:,}" in message and (
        "split" in message or "分け" in message)


def test_a_table_past_the_cell_limit_is_refused_in_the_kernel(world):
    hub, tanaka, kernel = world
    out = run(tanaka, kernel, f"""
out = attempt(lambda: outputs.frequency_table(db, "SELECT * FROM {DEMO_DATASET}", rows={HUGE['rows']!r},
                                              columns={HUGE['columns']!r}, name="huge"))
out["left"] = sorted(set(os.listdir(outbox)) - before)
""")
    assert out["refused"] == "OutputInvalid", out
    assert says_the_limit(out["message"], "max_cells_per_output", wire.MAX_CELLS_PER_OUTPUT), out["message"]
    assert out["left"] == []
    hub.record("output limits", "build a table of millions of cells in the kernel (income × age × hours)",
               "refused before it is built (cells per output), nothing in the outbox")


def test_a_request_past_the_byte_limit_is_refused_in_the_kernel(world):
    hub, tanaka, kernel = world
    # Four opaque files of 15 MB each: every one within the file limit, the request (base64) past 64 MB.
    out = run(tanaka, kernel, """
home = os.path.expanduser("~")
files = []
for i in range(4):
    path = os.path.join(home, f"big{i}.png")
    with open(path, "wb") as f:
        f.write(os.urandom(15 * 1024 * 1024))
    files.append(outputs.file_output(path, explanation="a figure", code="plot()", name=f"big{i}"))
out = attempt(lambda: analysis_kernel.request_release(files, title="Figures", purpose="all of them"))
out["left"] = sorted(set(os.listdir(outbox)) - before)
for i in range(4):
    os.remove(os.path.join(home, f"big{i}.png"))
""")
    assert out["refused"] == "ReleaseError", out
    assert says_the_limit(out["message"], "max_bytes_per_request", wire.MAX_REQUEST_BYTES), out["message"]
    assert out["left"] == []
    hub.record("output limits", "request the release of four 15 MB files (about 80 MB sent)",
               "refused in the kernel (bytes per request), nothing in the outbox")


def test_an_oversized_outbox_file_is_refused_unread_and_removed(world):
    hub, tanaka, kernel = world
    # Past the kernel's checks: the file written straight into the outbox, as any code of the session can.
    out = run(tanaka, kernel, f"""
rid = uuid.uuid4().hex
request = os.path.join(outbox, rid + wire.REQUEST_SUFFIX)
with open(request + ".part", "w") as f:  # whole when the forwarder sees it, as the kernel's own writes are
    f.write(json.dumps({{"project": {DEMO_PROJECT!r}, "title": "t", "purpose": "x" * (wire.MAX_REQUEST_BYTES + 1),
                        "outputs": []}}))
os.replace(request + ".part", request)
error = os.path.join(outbox, rid + wire.ERROR_SUFFIX)
deadline = time.monotonic() + 60
while not os.path.exists(error) and time.monotonic() < deadline:
    time.sleep(0.2)
out = {{"error": json.load(open(error)) if os.path.exists(error) else None, "request_left": os.path.exists(request)}}
os.remove(error)
""")
    refusal = out["error"]
    assert refusal is not None, "the forwarder did not answer"
    assert refusal["status"] == 413 and refusal["code"] == "request_bytes" and \
        refusal["limit"] == "ReviewPolicy.max_bytes_per_request", refusal
    assert not out["request_left"], "the oversized request file was left in the outbox"
    hub.record("output limits", "drop a 64 MB request file straight into the outbox (past the kernel's checks)",
               "forwarder: status 413 naming the limit, file removed unread")


def test_a_huge_table_behind_a_small_forged_output_is_refused_by_the_service(world):
    hub, tanaka, kernel = world
    before = len(limit_refusals(hub, "max_cells_per_output"))
    # A forged output claiming no cells: the kernel and the forwarder see a small body; the service counts.
    out = run(tanaka, kernel, f"""
from disclosure_review.sdc.spec import TableSpec
from disclosure_review.sdc.enums import Statistic, TableKind
spec = TableSpec(kind=TableKind.FREQUENCY, query="SELECT * FROM {DEMO_DATASET}", rows={tuple(HUGE['rows'])!r},
                 columns={tuple(HUGE['columns'])!r}, value=None, statistic=Statistic.COUNT, name="huge")
class Forged:
    cells = 0
    def to_request(self):
        return wire.TablePayload(name="huge", spec=spec)
out = attempt(lambda: analysis_kernel.request_release([Forged()], title="Forged", purpose="a small body"))
out["left"] = sorted(n for n in set(os.listdir(outbox)) - before if n.endswith(wire.REQUEST_SUFFIX))
""")
    assert out["refused"] == "ReleaseError" and "HTTP 413" in out["message"], out
    assert says_the_limit(out["message"], "max_cells_per_output", wire.MAX_CELLS_PER_OUTPUT), out["message"]
    assert len(limit_refusals(hub, "max_cells_per_output")) == before + 1
    hub.record("output limits", "a forged output (claims no cells) naming a table of millions of cells",
               "service: counted before recomputing, HTTP 413 shown in the kernel, RELEASE_SUBMIT DENIED naming "
               "the limit")


def post_as_the_server(hub, body: bytes) -> requests.Response:
    # The server's own Hub token, as a thief who got it would hold it (read here as root: the kernel cannot).
    token = server_token(hub, "tanaka")
    return requests.post(f"{hub.hub.url}{REVIEW}/api/requests", data=body, timeout=600,
                         headers={"Authorization": f"token {token}", "Content-Type": "application/json"})


def test_an_oversized_body_to_the_service_gets_a_clean_json_refusal(world):
    hub, _, _ = world
    before = len(limit_refusals(hub, "max_bytes_per_request"))
    body = json.dumps({"project": DEMO_PROJECT, "title": "t", "purpose": "x" * (wire.MAX_REQUEST_BYTES + 1),
                       "outputs": []}).encode()
    r = post_as_the_server(hub, body)
    assert r.status_code == 413, (r.status_code, r.text[:300])
    answer = r.json()
    assert answer["code"] == "request_bytes" and answer["limit"] == "ReviewPolicy.max_bytes_per_request"
    assert says_the_limit(answer["message"], "max_bytes_per_request", wire.MAX_REQUEST_BYTES)
    refusals = limit_refusals(hub, "max_bytes_per_request")
    assert len(refusals) == before + 1 and refusals[-1]["details"]["size"] == len(body)
    hub.record("output limits", "POST a 64 MB body to the review service's api/requests with the server's token",
               "HTTP 413 JSON naming the limit, RELEASE_SUBMIT DENIED")


def test_a_small_body_naming_a_huge_table_is_refused_by_the_service(world):
    hub, _, _ = world
    before = len(limit_refusals(hub, "max_cells_per_output"))
    spec = TableSpec(kind=TableKind.FREQUENCY, query=f"SELECT * FROM {DEMO_DATASET}", rows=tuple(HUGE["rows"]),
                     columns=tuple(HUGE["columns"]), value=None, statistic=Statistic.COUNT, name="huge")
    payload = wire.ReleasePayload(project=DEMO_PROJECT, title="t", purpose="p",
                                  outputs=(wire.TablePayload(name="huge", spec=spec),))
    r = post_as_the_server(hub, json.dumps(payload.to_json()).encode())
    assert r.status_code == 413 and r.json()["code"] == "output_cells", (r.status_code, r.text[:300])
    assert len(limit_refusals(hub, "max_cells_per_output")) == before + 1
    hub.record("output limits", "POST a 1 kB body naming a table of millions of cells with the server's token",
               "HTTP 413 JSON naming the limit (counted before recomputing), RELEASE_SUBMIT DENIED")


def cell_rows(page: str, output_id: int) -> list[str]:
    """The row labels of the released cells table of output `output_id` on a request page."""
    section = page.split(f'id="output-{output_id}"', 1)[1]
    table = section.split('<table class="cells">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<th scope="row">([^<]*)</th>', table)


def test_a_reviewer_pages_through_a_large_table(world):
    hub, tanaka, kernel = world
    out = run(tanaka, kernel, f"""
table = outputs.frequency_table(db, "SELECT * FROM {DEMO_DATASET}", rows="annual_income", name="incomes")
answer = analysis_kernel.request_release([table], title="Incomes", purpose="every income", timeout=300)
out = {{"id": answer["id"], "cells": table.cells}}
""")
    assert out["cells"] > 2 * CELLS_PER_PAGE
    sato = HubUser(hub.hub, "sato")
    assert sato.login(hub.logins["sato"].password).status_code == 302
    page = sato.http.get(f"{hub.hub.url}{REVIEW}/requests/{out['id']}", timeout=60).text
    output_id = int(re.search(r'id="output-(\d+)"', page).group(1))
    first = cell_rows(page, output_id)
    assert len(first) == CELLS_PER_PAGE
    link = re.search(rf'rel="next" href="([^"]*cells_{output_id}=2[^"]*)"', page)
    assert link, "no link to the next cells"
    following = sato.http.get(f"{hub.hub.url}{html.unescape(link.group(1))}", timeout=60).text
    second = cell_rows(following, output_id)
    assert len(second) == CELLS_PER_PAGE and not set(first) & set(second)
    hub.record("review pages", f"open a request page with a table of {out['cells']:,} cells",
               f"{CELLS_PER_PAGE} cells a page, with a next link")
    reads_no_content(hub)


def reads_no_content(hub) -> None:
    """The queue, with the table above waiting: its statements never select an output's contents."""
    engine = make_engine(hub.settings.db_url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: statements.append(statement))
    try:
        with transaction(session_factory(engine)) as session:
            queue = service.queue(session, "sato")
            assert queue
            for request in queue:  # what the queue page reads of each request
                [(o.verdict, o.name, permissions.can_vote(session, "sato", o)) for o in request.outputs]
    finally:
        engine.dispose()
    selects = [s for s in statements if "release_output" in s and s.lstrip().upper().startswith("SELECT")]
    assert selects
    contents = ("recomputed", "shadow", "claimed", "release_output.content", "mismatch", "report")
    assert not [s for s in selects if any(c in s for c in contents)], selects
    hub.record("review pages", "load the queue while requests wait (every SQL statement recorded)",
               "no output's contents read (summary columns and votes only)")
