"""The operations view through real HTTP (the admin app in its own process, a real store): every facility at a
glance, its JSON refresh following the ledger, one facility in full, usage by month as a table, a chart and
CSV; administrators only, the JSON endpoint included."""
from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests
from test_admin_web import ADMIN, FACILITY, OTHER_FACILITY, RESEARCHER, events, login, seed, server  # noqa: F401  (server is a fixture)
from traitlets.config import Config

from access_control import audit, policy
from access_control.addresses import service_check
from admin_service.app import SERVICE_NAME, make_app
from hub_config.config import free_port
from access_control.enums import AuditEventType, Outcome
from disclosure_review.workflow.enums import Decision, OutputKind, ReleaseStatus
from disclosure_review.workflow.store import ReleaseOutput, ReleasePackage, ReleaseRequest
from disclosure_review.sdc.enums import Verdict
from onsite_base.db import make_engine, session_factory, transaction

pytestmark = pytest.mark.integration


def write(db_url: str, work) -> None:
    engine = make_engine(db_url)
    try:
        with transaction(session_factory(engine)) as session:
            work(session)
    finally:
        engine.dispose()


def start_session(db_url: str, username: str, address: str) -> None:
    """SESSION_START as the spawner writes it."""
    write(db_url, lambda s: audit.record(s, AuditEventType.SESSION_START, actor=username, object=f"session:{username}",
                                         outcome=Outcome.OK, details={"client_address": address, "projects": ["p1"]}))


def facility_number(db_url: str, name: str) -> int:
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            return policy.require_facility(session, name).id
    finally:
        engine.dispose()


def eventually(fetch, done, timeout_s: float = 30.0):
    """`fetch()` again until `done(result)`: the usage tables are folded by the service's keeper thread, which a
    page wakes without waiting for it, so a page may show the ledger as of a moment before."""
    deadline = time.monotonic() + timeout_s
    while not done(result := fetch()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return result


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_the_overview_and_its_refresh_follow_the_ledger(server):
    base, settings = server
    admin = login(base, ADMIN, **{"Accept-Language": "en"})
    tokyo = facility_number(settings.db_url, FACILITY)
    page = admin.get(base + "operations")
    assert page.status_code == 200
    text = text_of(page.text)
    assert FACILITY in text and OTHER_FACILITY in text and "Asia/Tokyo" in text
    assert f'data-refresh-url="{base.removeprefix("http://" + base.split("/")[2])}operations.json"' in page.text
    assert re.search(rf'data-live="f{tokyo}.in_use">0<', page.text)

    before = eventually(lambda: admin.get(base + "operations.json").json(), lambda j: ":" in j["figures"]["as_of"])
    assert before["figures"][f"f{tokyo}.in_use"] == "0"
    start_session(settings.db_url, RESEARCHER, "192.0.2.3")
    after = eventually(lambda: admin.get(base + "operations.json").json(), lambda j: j["figures"][f"f{tokyo}.in_use"] == "1")
    assert after["figures"][f"f{tokyo}.in_use"] == "1" and after["figures"]["as_of"] >= before["figures"]["as_of"]

    ja = admin.get(base + "operations.json", params={"lang": "ja"}).json()
    assert ja["figures"][f"f{tokyo}.open"] in ("開室中", "閉室中")

    detail = admin.get(base + f"operations/{tokyo}")
    assert detail.status_code == 200 and RESEARCHER in text_of(detail.text) and "192.0.2.0/28" in detail.text
    assert admin.get(base + "operations/999999").status_code == 404
    assert admin.get(base + "operations.json", params={"facility": "x"}).status_code == 400


def test_only_administrators_see_the_view_and_its_json_and_refusals_are_recorded(server):
    base, settings = server
    alice = login(base, RESEARCHER)
    for path in ("operations", "operations.json", "usage", "usage.csv"):
        response = alice.get(base + path)
        assert response.status_code == 403, path
        assert "data-live" not in response.text and "in_use" not in response.text and "sessions," not in response.text
    refused = [e for e in events(settings.db_url, AuditEventType.ADMIN_ACCESS, RESEARCHER) if e.outcome is Outcome.DENIED]
    assert len(refused) == 4 and "operations.json" in refused[1].details


def refuse_entry(db_url: str, username: str, address: str, facility: str, terminal: str) -> None:
    """An ENTRY_DECIDE DENIED as the hub writes it."""
    write(db_url, lambda s: audit.record(s, AuditEventType.ENTRY_DECIDE, actor=username, object=f"person:{username}",
                                         outcome=Outcome.DENIED, details={"client_address": address, "facility": facility,
                                                                          "terminal": terminal, "reasons": ["NO_BOOKING"],
                                                                          "stage": "login", "active_projects": []}))


def test_a_facility_manager_sees_only_her_facilities_in_the_operations_view(server):
    """mika manages Osaka. The overview, its refresh and usage show Osaka only: Tokyo's row, its live session, its
    refusal (and one from no terminal) are nowhere. Tokyo's page, refresh and usage asked for by number answer as a
    number no facility has (404), each attempt an ADMIN_ACCESS DENIED; her reads of the view are ADMIN_ACCESS OK."""
    base, settings = server
    write(settings.db_url, lambda s: (policy.add_person(s, username="mika", display_name="Mika", actor="test"),
                                      policy.grant_facility_manager(s, "mika", OTHER_FACILITY, actor="test")))
    tokyo, osaka = facility_number(settings.db_url, FACILITY), facility_number(settings.db_url, OTHER_FACILITY)
    start_session(settings.db_url, RESEARCHER, "192.0.2.3")
    refuse_entry(settings.db_url, "tokyoguest", "192.0.2.4", FACILITY, "192.0.2.0/28")
    refuse_entry(settings.db_url, "nowhereguest", "203.0.113.5", "", "")
    refuse_entry(settings.db_url, "osakaguest", "2001:db8::9", OTHER_FACILITY, "2001:db8::/64")
    admin = login(base, ADMIN, **{"Accept-Language": "en"})
    eventually(lambda: admin.get(base + "operations.json").json(), lambda j: j["figures"][f"f{tokyo}.in_use"] == "1")
    mika = login(base, "mika", **{"Accept-Language": "en"})

    page = mika.get(base + "operations")
    assert page.status_code == 200 and OTHER_FACILITY in page.text and "osakaguest" in page.text
    assert "<h1>Your facilities now</h1>" in page.text
    figures = mika.get(base + "operations.json").json()
    assert {key.split(".")[0] for key in figures["figures"]} == {f"f{osaka}", "as_of"}
    assert [r["person"] for r in figures["refusals"]] == ["osakaguest"]
    usage_page = mika.get(base + "usage")
    usage_csv = list(csv.DictReader(io.StringIO(mika.get(base + "usage.csv").text)))
    assert usage_page.status_code == 200 and {r["facility"] for r in usage_csv} == {OTHER_FACILITY}
    assert mika.get(base + f"operations/{osaka}").status_code == 200
    for shown in (page.text, json.dumps(figures, ensure_ascii=False), usage_page.text):
        assert FACILITY not in shown and f"f{tokyo}." not in shown and f"usage-{tokyo}-" not in shown
        assert RESEARCHER not in shown and "tokyoguest" not in shown and "nowhereguest" not in shown
        assert "192.0.2" not in shown and 'id="witnesses' not in shown

    for path in (f"operations/{tokyo}", f"operations.json?facility={tokyo}", f"usage?facility={tokyo}",
                 f"usage.csv?facility={tokyo}", "operations/999999"):
        response = mika.get(base + path)
        assert response.status_code == 404, path
        assert FACILITY not in response.text and RESEARCHER not in response.text and "figures" not in response.text
    mine = events(settings.db_url, AuditEventType.ADMIN_ACCESS, "mika")
    refused = [e.details_dict for e in mine if e.outcome is Outcome.DENIED]
    assert [r["facility"] for r in refused] == [str(tokyo)] * 4 + ["999999"]
    reads = [e.details_dict for e in mine if e.outcome is Outcome.OK]
    assert [(r["read"], r["facilities"], r["rows"]) for r in reads] == [("operations", [OTHER_FACILITY], 1)] * 3  # its refusal


def serve_in_thread(app) -> str:
    """The app on a free loopback port in a thread of this process; its base URL."""
    port = free_port()
    ready = threading.Event()

    async def main() -> None:
        app.listen(port, address="127.0.0.1")
        ready.set()
        await asyncio.Event().wait()

    threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
    assert ready.wait(10)
    return f"http://127.0.0.1:{port}/admin/"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_refresh_endpoint_refuses_an_administrator_from_another_address(db_url, settings):
    """The address check every admin page passes (HubServiceHandler.prepare with the service's ClientCheck, as
    `run` installs it) guards operations.json too: the administrator's own identity, coming through the proxy
    from an address that is neither a staff network nor a terminal, gets 403 and the refusal is recorded."""
    seed(db_url)
    app = make_app(settings, prefix="/admin/", test_identity=lambda handler: ADMIN)
    app.settings["check_client"] = service_check(Config(), SERVICE_NAME)
    base = serve_in_thread(app)
    assert requests.get(base + "operations.json", timeout=30).status_code == 200  # from this machine: a staff network
    for path in ("operations.json", "operations", "usage.csv"):
        response = requests.get(base + path, headers={"X-Forwarded-For": "203.0.113.9"}, timeout=30)
        assert response.status_code == 403 and "figures" not in response.text, path
    refused = [e for e in events(db_url, AuditEventType.ENTRY_DECIDE, ADMIN) if e.details_dict.get("stage") == "request"]
    assert [(e.outcome, e.details_dict["client_address"]) for e in refused] == [(Outcome.DENIED, "203.0.113.9")] * 3


def test_usage_table_chart_and_csv(server):
    base, settings = server
    now = datetime.now(timezone.utc)
    start_session(settings.db_url, RESEARCHER, "192.0.2.3")

    def released_request(session) -> None:
        request = ReleaseRequest(project_id="p1", requester=RESEARCHER, title="t", purpose="p", status=ReleaseStatus.RELEASED,
                                 preset="acro-default", required_approvals=2, created_at=now + timedelta(seconds=1))
        for position, decision in enumerate((Decision.APPROVE, Decision.APPROVE, Decision.REJECT)):
            request.outputs.append(ReleaseOutput(position=position, name=f"o{position}", kind=OutputKind.FILE, verdict=Verdict.REVIEW,
                                                 decision=decision, decided_at=now + timedelta(hours=3)))
        session.add(request)
        session.flush()
        session.add(ReleasePackage(request_id=request.id, path="/x", manifest_sha256="0" * 64, files=[], created_at=now + timedelta(hours=3)))
        policy.add_facility(session, name="=HYPERLINK(1)", actor="test")

    write(settings.db_url, released_request)
    admin = login(base, ADMIN, **{"Accept-Language": "en"})
    tokyo = facility_number(settings.db_url, FACILITY)
    month = (now + timedelta(hours=3)).astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m")

    def cells(page) -> list[str]:
        row = re.search(rf'<tr id="usage-{tokyo}-{month}">(.*?)</tr>', page.text, re.S).group(1)
        return [text_of(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]

    page = eventually(lambda: admin.get(base + "usage"), lambda p: cells(p)[2] == "1")
    assert page.status_code == 200 and "<svg" in page.text and "Sessions and hours a month" in page.text
    shown = cells(page)
    assert shown[0] == FACILITY and shown[2] == "1" and shown[4] == "1" and shown[5] == "2" and shown[6] == "3.0"

    response = admin.get(base + "usage.csv", params={"facility": str(tokyo)})
    assert response.headers["Content-Type"].startswith("text/csv") and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 12 and {r["facility"] for r in rows} == {FACILITY}
    mine = next(r for r in rows if r["month"] == month)
    assert (mine["sessions"], mine["researchers"], mine["outputs_released"], mine["turnaround_hours"]) == ("1", "1", "2", "3.0")
    everything = list(csv.DictReader(io.StringIO(admin.get(base + "usage.csv").text)))
    assert "'=HYPERLINK(1)" in {r["facility"] for r in everything}  # a spreadsheet shows it as text, never runs it
