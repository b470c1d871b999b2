"""The admin pages for a facility manager (issue 16), over real HTTP against the real app and store: mika manages
Osaka only. Every page and form aimed at Tokyo — by the forms, by forged posts naming Tokyo's records, by URLs — is
refused with nothing changed and the attempt recorded; the administrator's pages are closed to her."""
from __future__ import annotations

import os
import re
from datetime import date, timedelta

import pytest
import requests
from sqlalchemy import text

from access_control import audit, policy
from access_control.enums import AuditEventType, Outcome, Role
from hub_config.config import free_port
from onsite_base.db import make_engine, session_factory, transaction

from test_admin_web import PREFIX, events, form_error, login, snapshot, xsrf_of

pytestmark = pytest.mark.integration
ADMIN, MANAGER, RESEARCHER = "kato", "mika", "alice"
TOKYO, OSAKA = "東京センター", "Osaka room"
DAY = next(d for d in (date.today() + timedelta(days=n) for n in range(7, 14))
           if d not in policy.japanese_holidays(d.year))  # within the two weeks of free seats the page shows, no holiday
TABLES = ("facility", "facility_hours", "facility_closure", "facility_manager", "terminal", "booking", "person", "person_role")


def seed(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with transaction(session_factory(engine)) as s:
            policy.add_person(s, username=ADMIN, display_name="加藤 管理者", roles=[Role.ADMINISTRATOR], actor="test")
            policy.add_person(s, username=MANAGER, display_name="Mika", actor="test")
            policy.add_person(s, username=RESEARCHER, display_name="Alice", roles=[Role.RESEARCHER], actor="test")
            for name, network in ((TOKYO, "192.0.2.0/28"), (OSAKA, "198.51.100.0/28")):
                policy.add_facility(s, name=name, actor="test")
                policy.add_terminal(s, facility=name, address=network, actor="test")
            policy.grant_facility_manager(s, MANAGER, OSAKA, actor="test")
            booking = policy.add_booking(s, username=RESEARCHER, facility=TOKYO, starts_at=policy.datetime.combine(DAY, policy.datetime.min.time()),
                                         ends_at=policy.datetime.combine(DAY, policy.datetime.min.time()) + timedelta(hours=3), actor="test")
            return booking.id
    finally:
        engine.dispose()


def rows(db_url: str) -> dict[str, list[tuple]]:
    return snapshot(db_url, TABLES)


@pytest.fixture
def server(db_url, settings, admin_app, tmp_path):
    tokyo_booking = seed(db_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}{PREFIX}"
    app = admin_app.start(port, PREFIX, os.environ | settings.environ(), tmp_path / "admin-app.log", probe=base + "people")
    yield base, settings, tokyo_booking
    app.stop()
    print(app.log_tail())


class Browser:
    def __init__(self, base: str, user: str) -> None:
        self.base, self.http = base, login(base, user)

    def get(self, page: str) -> requests.Response:
        return self.http.get(self.base + page)

    def post(self, page: str, action: str, data: dict[str, str]) -> requests.Response:
        token = xsrf_of(self.get(page).text)
        return self.http.post(self.base + action, data={**data, "_xsrf": token})


def test_a_manager_sees_only_her_facility(server):
    base, settings, _ = server
    mika = Browser(base, MANAGER)
    assert mika.http.get(base, allow_redirects=False).headers["Location"].endswith("facilities")
    for page in ("facilities", "terminals", "bookings", "entries", "sessions"):
        shown = mika.get(page)
        assert shown.status_code == 200, page
        assert TOKYO not in shown.text and "192.0.2.0/28" not in shown.text, page
        assert 'href="/services/onsite-admin/people"' not in shown.text  # no link to the administrators' pages
    facilities = mika.get("facilities").text
    assert OSAKA in facilities and 'id="facility-add"' not in facilities and 'name="accreditation_kind"' not in facilities
    bookings = mika.get("bookings").text
    assert RESEARCHER not in bookings  # no list of people to choose from: she types a user name


def test_a_managers_reads_of_the_entry_log_and_sessions_are_in_the_ledger(server):
    """Like her changes, each time mika reads her facility's entry log or live sessions is an ADMIN_ACCESS event
    (OK) naming her facilities, the rows shown and the filters; the administrator's reads are not recorded."""
    base, settings, _ = server
    mika, kato = Browser(base, MANAGER), Browser(base, ADMIN)
    assert mika.get("entries?outcome=DENIED&person=alice").status_code == 200
    assert mika.get("sessions").status_code == 200
    assert kato.get("entries").status_code == 200 and kato.get("sessions").status_code == 200
    reads = [e for e in events(settings.db_url, AuditEventType.ADMIN_ACCESS) if e.outcome is Outcome.OK]
    assert [(e.actor, e.object) for e in reads] == [(MANAGER, "read:entries"), (MANAGER, "read:sessions")]
    entries, sessions = (e.details_dict for e in reads)
    assert entries["facilities"] == [OSAKA] and entries["filters"] == {"outcome": "DENIED", "person": "alice"}
    assert entries["rows"] == 0 and entries["page"] == 1 and entries["path"].endswith("/entries")
    assert sessions["facilities"] == [OSAKA] and sessions["rows"] == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_managers_read_the_ledger_cannot_record_shows_nothing(server):
    """Fail closed: when the ledger refuses her read's event (here a trigger on audit_event refusing `read:` events,
    standing in for a ledger that cannot take a write), mika's entry log answers an error and shows no entry; the
    administrator, whose reads are not recorded, still reads it."""
    base, settings, _ = server
    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as s:
            audit.record(s, AuditEventType.ENTRY_DECIDE, actor="osakavisitor", object="person:osakavisitor",
                         outcome=Outcome.DENIED, details={"client_address": "198.51.100.3", "facility": OSAKA,
                                                          "terminal": "198.51.100.0/28", "reasons": ["NO_BOOKING"],
                                                          "stage": "login", "active_projects": []})
        mika, kato = Browser(base, MANAGER), Browser(base, ADMIN)
        assert "osakavisitor" in mika.get("entries").text
        with engine.begin() as conn:
            conn.execute(text(
                "CREATE FUNCTION refuse_reads() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.object LIKE 'read:%' THEN RAISE EXCEPTION 'ledger unwritable'; END IF; RETURN NEW; END $$"))
            conn.execute(text("CREATE TRIGGER refuse_reads BEFORE INSERT ON audit_event FOR EACH ROW EXECUTE FUNCTION refuse_reads()"))
        refused = mika.get("entries")
        assert refused.status_code == 500 and "osakavisitor" not in refused.text
        assert mika.get("sessions").status_code == 500
        assert "osakavisitor" in kato.get("entries").text
    finally:
        engine.dispose()


def test_the_administrators_pages_are_closed_to_a_manager(server):
    base, settings, _ = server
    mika = Browser(base, MANAGER)
    for page in ("people", f"people/{RESEARCHER}", "projects", "datasets", "accreditations"):
        refused = mika.get(page)
        assert refused.status_code == 403 and "施設管理者は担当施設のページ" in refused.text, page
    token = xsrf_of(mika.get("facilities").text)
    before = rows(settings.db_url)
    forged = mika.http.post(base + "people", data={"username": "eve", "display_name": "Eve", "role": "ADMINISTRATOR", "_xsrf": token})
    assert forged.status_code == 403
    assert rows(settings.db_url) == before
    reasons = [e.details_dict["reason"] for e in events(settings.db_url, AuditEventType.ADMIN_ACCESS, MANAGER)]
    assert reasons.count("a facility manager on an administrator's page") == 6


def test_forged_posts_at_another_facility_are_refused_and_recorded(server):
    base, settings, tokyo_booking = server
    mika = Browser(base, MANAGER)
    attacks = [
        ("terminals", "terminals", {"facility": TOKYO, "address": "192.0.2.64/28"}, "terminal-add"),
        ("terminals", "terminals/remove", {"address": "192.0.2.0/28"}, "terminals"),
        ("facilities", "facilities/change", {"name": TOKYO, "seats": "0"}, "facility-change"),
        ("facilities", "facilities/hours", {"name": TOKYO, "hours": "mon 09:00-10:00"}, "facility-hours"),
        ("facilities", "facilities/closed", {"name": TOKYO, "day": DAY.isoformat(), "op": "add"}, "facility-closed"),
        ("facilities", "facilities/holidays", {"name": TOKYO, "year": str(DAY.year)}, "facility-holidays"),
        ("facilities", "facilities/emergency", {"name": TOKYO, "reason": "drill", "op": "close"}, "facility-emergency"),
        ("facilities", "facilities/emergency", {"name": TOKYO, "op": "reopen"}, "facility-emergency"),
        ("bookings", "bookings", {"username": RESEARCHER, "facility": TOKYO, "starts_at": f"{DAY} 13:00",
                                  "ends_at": f"{DAY} 14:00"}, "booking-add"),
        ("bookings", f"bookings/{tokyo_booking}/cancel", {}, "bookings"),
    ]
    before = rows(settings.db_url)
    for page, action, data, form in attacks:
        answer = mika.post(page, action, data)
        assert answer.status_code == 400, action
        shown = form_error(answer.text, form)
        assert "unknown" in shown or "ありません" in shown or "登録されていません" in shown, (action, shown)
        assert TOKYO not in answer.text.replace(f'value="{TOKYO}"', "") or TOKYO in shown, action  # named only as she typed it
    assert rows(settings.db_url) == before
    recorded = [e for e in events(settings.db_url, AuditEventType.ADMIN_ACCESS, MANAGER)]
    assert len(recorded) == len(attacks) and all(e.outcome is Outcome.DENIED for e in recorded)
    # the entry log: a filter naming Tokyo shows nothing of it
    assert "entries-empty" in mika.get(f"entries?facility={TOKYO}").text


def test_a_manager_runs_her_facility_through_the_pages(server):
    base, settings, _ = server
    mika = Browser(base, MANAGER)
    done = mika.post("facilities", "facilities/change", {"name": OSAKA, "seats": "1", "booking_required": "yes"})
    assert done.status_code == 200 and "Osaka room" in done.text
    assert mika.post("facilities", "facilities/holidays", {"name": OSAKA, "year": str(DAY.year)}).status_code == 200
    shown = mika.get("facilities").text
    assert "元日" in shown or "天皇誕生日" in shown  # the holidays, named in Japanese
    refused = mika.post("terminals", "terminals", {"facility": OSAKA, "address": "10.0.0.0/16"})
    assert refused.status_code == 400 and "/24" in form_error(refused.text, "terminal-add")
    assert mika.post("terminals", "terminals", {"facility": OSAKA, "address": "10.0.0.0/16", "override": "yes"}).status_code == 200
    assert "広域ネットワーク" in mika.get("terminals").text
    ok = mika.post("bookings", "bookings", {"username": RESEARCHER, "facility": OSAKA, "starts_at": f"{DAY} 09:00", "ends_at": f"{DAY} 12:00"})
    assert ok.status_code == 200
    full = mika.post("bookings", "bookings", {"username": ADMIN, "facility": OSAKA, "starts_at": f"{DAY} 10:00", "ends_at": f"{DAY} 11:00"})
    assert full.status_code == 400 and "満席" in form_error(full.text, "booking-add")
    seats = re.search(r'<table class="list seats" id="seats-1">(.*?)</table>', mika.get("bookings").text, re.S).group(1)
    assert re.search(rf"<th scope=\"row\">{DAY}</th>\s*<td class=\"num\">1</td>\s*<td class=\"num\">0</td>", seats)
    closed = mika.post("facilities", "facilities/emergency", {"name": OSAKA, "reason": "停電", "op": "close"})
    assert closed.status_code == 502 and "閉鎖しました" in closed.text  # no hub here: closed, sessions stop at the re-check
    assert "停電" in mika.get("facilities").text
    assert mika.post("facilities", "facilities/emergency", {"name": OSAKA, "op": "reopen"}).status_code == 200
    actions = [e.action for e in events(settings.db_url, AuditEventType.FACILITY_CHANGE, MANAGER)]
    assert len(actions) == 4  # seats+booking, holidays, closure, reopening
    assert [e.details_dict.get("override") for e in events(settings.db_url, AuditEventType.TERMINAL_ADD, MANAGER)] == [True]
