"""The admin pages in a real subprocess on the real store, driven over HTTP.

Identity comes through the same narrow test seam as the reviewer app's tests
(a signed cookie set by PREFIX/test-login); everything else — handlers, XSRF,
policy functions, the ledger, SQLite and PostgreSQL — is the real thing.
The server is admin_web_server.py.
"""
from __future__ import annotations

import html
import json
import os
import re
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from argon2 import PasswordHasher

PREFIX = "/services/onsite-admin/"
ADMIN, RESEARCHER = "kato", "alice"
FACILITY, OTHER_FACILITY = "東京オンサイト施設", "Osaka room"


# ---------------------------------------------------------------- fixtures and helpers

from sqlalchemy import select, text  # noqa: E402

from access_control import entry, policy  # noqa: E402
from onsite_base.db import make_engine, session_factory, transaction  # noqa: E402
from access_control.enums import AuditEventType, Outcome, Role  # noqa: E402
from access_control.models import AuditEvent  # noqa: E402
from hub_config.config import free_port  # noqa: E402
from onsite.cli import main as onsite_main  # noqa: E402
from disclosure_review.sdc.rules import preset_names

pytestmark = pytest.mark.integration
TABLES = ("person", "person_role", "project", "membership", "dataset", "dataset_grant", "facility", "terminal", "audit_event")
TODAY = date.today()


def seed(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with transaction(session_factory(engine)) as session:
            policy.add_person(session, username=ADMIN, display_name="加藤 管理者", actor="test", roles=[Role.ADMINISTRATOR])
            policy.add_person(session, username=RESEARCHER, display_name="Alice", actor="test", roles=[Role.RESEARCHER])
            policy.add_project(session, presets=preset_names(), project_id="p1", title="既存の研究", actor="test",
                               start_date=TODAY - timedelta(days=10), end_date=TODAY + timedelta(days=100))
            policy.register_dataset(session, dataset_id="lfs", title_ja="労働力調査", title_en="Labour force survey",
                                    path="/data/lfs.duckdb", rows=1000, source_sha256="a" * 64, actor="test")
            policy.add_facility(session, name=FACILITY, address="東京都", actor="test")
            policy.add_facility(session, name=OTHER_FACILITY, actor="test")
            policy.add_terminal(session, facility=FACILITY, address="192.0.2.0/28", actor="test")
            policy.add_terminal(session, facility=OTHER_FACILITY, address="2001:db8::/64", actor="test")
    finally:
        engine.dispose()


@pytest.fixture
def server(db_url, settings, admin_app, tmp_path):
    seed(db_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}{PREFIX}"
    app = admin_app.start(port, PREFIX, os.environ | settings.environ(), tmp_path / "admin-app.log", probe=base + "people")
    yield base, settings
    app.stop()
    print(app.log_tail())  # the app's log, shown when a test fails


def login(base: str, user: str, **headers: str) -> requests.Session:
    browser = requests.Session()
    browser.headers.update(headers)
    assert browser.get(base + "test-login", params={"user": user}).ok
    return browser


def xsrf_of(page: str) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)


def form_error(page: str, form: str) -> str:
    match = re.search(rf'id="error-{form}">(.*?)</div>', page, re.S)
    assert match, f"no error shown next to form {form}"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))


def snapshot(db_url: str, tables: tuple[str, ...] = TABLES) -> dict[str, list[tuple]]:
    """Every row of every policy table and the ledger (or of `tables`), to prove a refusal changed nothing."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return {t: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t}"))), key=repr) for t in tables}
    finally:
        engine.dispose()


def events(db_url: str, action: AuditEventType, actor: str | None = None) -> list[AuditEvent]:
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
            if actor is not None:
                query = query.where(AuditEvent.actor == actor)
            return list(session.scalars(query))
    finally:
        engine.dispose()


class Admin:
    """The administrator's browser: GETs a page, posts its form with the page's own _xsrf."""

    def __init__(self, base: str, **headers: str) -> None:
        self.base = base
        self.http = login(base, ADMIN, **headers)

    def post(self, page: str, action: str, data: dict[str, str | list[str]]) -> requests.Response:
        token = xsrf_of(self.http.get(self.base + page).text)
        return self.http.post(self.base + action, data={**data, "_xsrf": token}, allow_redirects=True)


# ---------------------------------------------------------------- tests


def test_non_admin_is_refused_and_the_refusal_is_recorded(server):
    base, settings = server
    alice = login(base, RESEARCHER)
    page = alice.get(base + "people")
    assert page.status_code == 403
    assert "管理画面は管理者だけが使えます" in page.text and ADMIN not in page.text  # no data leaks on the refusal
    # a form with a valid XSRF cookie/token pair (tornado's are not tied to a person) changes nothing
    admin_page = Admin(base).http
    token = xsrf_of(admin_page.get(base + "people").text)
    alice.cookies.set("_xsrf", admin_page.cookies.get("_xsrf"), path=PREFIX)
    before = snapshot(settings.db_url)
    attempt = alice.post(base + "people", data={"username": "mallory", "display_name": "M", "role": "ADMINISTRATOR", "_xsrf": token})
    assert attempt.status_code == 403
    stranger = login(base, "nobody").get(base + "projects")  # not in the policy store at all
    assert stranger.status_code == 403
    after = snapshot(settings.db_url)
    assert after["person"] == before["person"] and after["person_role"] == before["person_role"]
    refusals = [e for e in events(settings.db_url, AuditEventType.ADMIN_ACCESS)
                if e.details_dict.get("service") == "onsite-admin"]
    assert [(e.actor, e.outcome, e.details_dict["method"], e.details_dict["path"]) for e in refusals] == [
        (RESEARCHER, Outcome.DENIED, "GET", PREFIX + "people"),
        (RESEARCHER, Outcome.DENIED, "POST", PREFIX + "people"),
        ("nobody", Outcome.DENIED, "GET", PREFIX + "projects"),
    ]
    # without any identity: sent to log in, never shown a page
    anonymous = requests.get(base + "people", allow_redirects=False)
    assert anonymous.status_code == 302 and "oauth_callback" in anonymous.headers["Location"]


def test_a_disabled_administrator_is_refused(server):
    base, settings = server
    admin = Admin(base)
    engine = make_engine(settings.db_url)
    with transaction(session_factory(engine)) as session:
        policy.set_disabled(session, ADMIN, True, actor="test")
    engine.dispose()
    assert admin.http.get(base + "people").status_code == 403


def test_forms_without_the_xsrf_token_are_refused(server):
    base, settings = server
    admin = Admin(base)
    admin.http.get(base + "people")  # has the _xsrf cookie now
    before = snapshot(settings.db_url)
    bare = admin.http.post(base + "people", data={"username": "eve", "display_name": "Eve"})
    assert bare.status_code == 403 and "確認トークン" in bare.text
    forged = admin.http.post(base + "terminals", data={"facility": FACILITY, "address": "198.51.100.7", "_xsrf": "2|00|00|00"})
    assert forged.status_code == 403
    cross_site = requests.post(base + "people", data={"username": "eve", "display_name": "Eve", "_xsrf": "x"},
                               cookies={"_xsrf": "x"})  # no identity: a forged cookie/token pair from another site
    assert cross_site.status_code in (302, 403)
    assert snapshot(settings.db_url) == before


def test_management_through_the_forms_is_in_the_ledger(server):
    base, settings = server
    admin = Admin(base)

    r = admin.post("people", "people", {"username": "Ｈａｎａｋｏ", "display_name": "山田 花子", "email": "hanako@example.jp",
                                        "role": ["RESEARCHER", "REVIEWER"], "password": "Correct-horse-42"})
    assert r.status_code == 200 and r.url.startswith(base + "people/hanako")  # full-width input, canonical account
    assert "利用者 hanako を登録しました" in r.text and "山田 花子" in r.text
    person_add = events(settings.db_url, AuditEventType.PERSON_ADD, ADMIN)
    assert [(e.object, e.details_dict) for e in person_add] == [
        ("person:hanako", {"roles": ["RESEARCHER", "REVIEWER"], "password_set": True})
    ]

    r = admin.post("projects", "projects", {"project_id": "p2026-001", "title": "賃金構造の研究", "purpose": "論文",
                                            "legal_basis": "統計法第33条", "start_date": "2026-04-01", "end_date": "2027-03-31"})
    assert r.status_code == 200 and r.url.startswith(base + "projects/p2026-001")
    assert [(e.object, e.details_dict["start_date"], e.details_dict["end_date"])
            for e in events(settings.db_url, AuditEventType.PROJECT_ADD, ADMIN)] == [("project:p2026-001", "2026-04-01", "2027-03-31")]

    r = admin.post("projects/p2026-001", "projects/p2026-001/members", {"op": "add", "username": "hanako"})
    assert "hanako をプロジェクト p2026-001 のメンバーに追加しました" in r.text  # what was done, not "project changed"
    assert r.status_code == 200 and 'href="/services/onsite-admin/people/hanako"' in r.text.split('id="members"')[1]
    r = admin.post("datasets", "grants", {"project_id": "p2026-001", "dataset_id": "lfs", "valid_from": "2026-05-01", "valid_until": ""})
    assert r.status_code == 200 and "データセット lfs をプロジェクト p2026-001 に 2026-05-01〜2027-03-31 の期間許可しました" in r.text
    grant = events(settings.db_url, AuditEventType.GRANT_ADD, ADMIN)
    # an empty end date means the project's end, as in `onsite admin grant add`
    assert [e.details_dict for e in grant] == [{"project": "p2026-001", "dataset": "lfs", "valid_from": "2026-05-01", "valid_until": "2027-03-31"}]
    grant_id = int(grant[0].object.split(":")[1])

    r = admin.post("terminals", "terminals", {"facility": FACILITY, "address": "2001:db9::5", "label": "席 3"})
    assert r.status_code == 200 and "2001:db9::5/128" in r.text
    assert [(e.object, e.details_dict) for e in events(settings.db_url, AuditEventType.TERMINAL_ADD, ADMIN)] == [
        ("terminal:2001:db9::5/128", {"facility": FACILITY, "label": "席 3"})
    ]
    r = admin.post("facilities", "facilities", {"name": "札幌施設", "address": "北海道", "timezone": "Asia/Tokyo"})
    assert r.status_code == 200 and "札幌施設" in r.text
    r = admin.post("facilities", "facilities/change", {"name": "札幌施設", "address": "北海道札幌市", "timezone": ""})
    assert r.status_code == 200
    assert [e.details_dict for e in events(settings.db_url, AuditEventType.FACILITY_CHANGE, ADMIN)] == [
        {"before": {"address": "北海道"}, "after": {"address": "北海道札幌市"}}
    ]
    r = admin.post("people/hanako", "people/hanako/roles", {"op": "grant", "role": "ADMINISTRATOR"})
    r = admin.post("people/hanako", "people/hanako/roles", {"op": "revoke", "role": "REVIEWER"})
    r = admin.post("people/hanako", "people/hanako/password", {"password": "Another-horse-43"})
    assert r.status_code == 200 and "利用者 hanako のパスワードを設定しました" in r.text
    r = admin.post("people/hanako", "people/hanako/disable", {})
    assert r.status_code == 200 and 'id="person-state">無効化' in r.text.replace("\n", "")
    r = admin.post("projects/p2026-001", "projects/p2026-001", {"title": "賃金構造の研究", "end_date": "2027-06-30", "status": "SUSPENDED"})
    assert r.status_code == 200 and 'id="project-end">2027-06-30' in r.text
    r = admin.post("datasets", f"grants/{grant_id}/revoke", {})
    assert r.status_code == 200 and f"利用許可 {grant_id}(データセット lfs、プロジェクト p2026-001)を取り消しました" in r.text
    r = admin.post("terminals", "terminals/remove", {"address": "2001:db9::5/128"})
    assert r.status_code == 200 and "端末 2001:db9::5/128 の登録を削除しました" in r.text
    assert r.text.count("2001:db9::5/128") == 1  # said as done, no longer listed

    # the store holds exactly what the forms said, and the ledger says who did it
    engine = make_engine(settings.db_url)
    with session_factory(engine)() as session:
        hanako = policy.require_person(session, "hanako")
        assert hanako.role_set == {Role.RESEARCHER, Role.ADMINISTRATOR} and hanako.disabled
        assert PasswordHasher().verify(hanako.password_hash, "Another-horse-43")  # argon2, checked independently
        project = policy.require_project(session, "p2026-001")
        assert (project.end_date, project.status.value, project.legal_basis) == (date(2027, 6, 30), "SUSPENDED", "統計法第33条")
        assert [p.username for p in policy.members_of(session, "p2026-001")] == ["hanako"]
        assert policy.list_grants(session, "p2026-001")[0].revoked_at is not None
        mine = session.scalars(select(AuditEvent).where(AuditEvent.actor == ADMIN).order_by(AuditEvent.seq)).all()
    engine.dispose()
    assert [e.action.value for e in mine] == [
        "PERSON_ADD", "PROJECT_ADD", "MEMBER_ADD", "GRANT_ADD", "TERMINAL_ADD", "FACILITY_ADD", "FACILITY_CHANGE",
        "ROLE_GRANT", "ROLE_REVOKE", "PERSON_CHANGE", "PERSON_CHANGE", "PROJECT_CHANGE", "GRANT_REVOKE", "TERMINAL_REMOVE",
    ]


def test_accreditations_bookings_and_facility_rules_through_the_forms(server):
    base, settings = server
    admin = Admin(base)
    zone = ZoneInfo("Asia/Tokyo")  # FACILITY's time zone
    day = TODAY + timedelta(days=3)

    r = admin.post("facilities", "facilities/change", {"name": FACILITY, "booking_required": "yes", "accreditation_kind": "five-safes"})
    assert r.status_code == 200 and f"施設 {FACILITY} を変更しました" in r.text
    r = admin.post("facilities", "facilities/hours", {"name": FACILITY, "hours": "Mon-Sun 09:00-17:00"})
    assert r.status_code == 200 and "mon 09:00-17:00" in r.text.split(f'id="facility-{FACILITY}"')[1].split("</tr>")[0]
    r = admin.post("facilities", "facilities/closed", {"name": FACILITY, "day": str(day + timedelta(days=1)), "note": "休館日", "op": "add"})
    assert r.status_code == 200 and f"{day + timedelta(days=1)} (休館日)" in r.text

    r = admin.post("accreditations", "accreditations", {"username": RESEARCHER, "kind": "five-safes",
                                                        "issued": str(TODAY - timedelta(days=1)), "expiry": str(TODAY + timedelta(days=365))})
    assert r.status_code == 200 and f"{RESEARCHER} の five-safes({TODAY - timedelta(days=1)}〜{TODAY + timedelta(days=365)})を登録しました" in r.text
    r = admin.post("bookings", "bookings", {"username": RESEARCHER, "facility": FACILITY,
                                            "starts_at": f"{day} 10:00", "ends_at": f"{day} 12:00"})
    assert r.status_code == 200 and f"{RESEARCHER} の施設 {FACILITY} の席を {day} 10:00 JST〜{day} 12:00 JST で予約しました" in r.text
    assert f"<td>{day} 10:00 JST</td><td>{day} 12:00 JST</td>" in r.text  # shown as typed: facility time, zone shown

    engine = make_engine(settings.db_url)
    with session_factory(engine)() as session:
        place = policy.require_facility(session, FACILITY)
        assert (place.booking_required, place.accreditation_kind) == (True, "five-safes")
        assert [c.day for c in place.closures] == [day + timedelta(days=1)]
        [accreditation] = policy.list_accreditations(session, RESEARCHER)
        [booking] = policy.list_bookings(session, username=RESEARCHER)
        # the typed times are facility time: 10:00 in Tokyo is 01:00 UTC
        assert (booking.starts_at, booking.ends_at) == (datetime(day.year, day.month, day.day, 10, tzinfo=zone), datetime(day.year, day.month, day.day, 12, tzinfo=zone))
        accreditation_id, booking_id = accreditation.id, booking.id
    engine.dispose()

    r = admin.post("bookings", f"bookings/{booking_id}/cancel", {})
    assert r.status_code == 200 and f"予約 {booking_id}({RESEARCHER}、施設 {FACILITY})を取り消しました" in r.text
    r = admin.post("accreditations", f"accreditations/{accreditation_id}/revoke", {})
    assert r.status_code == 200 and f"認定 {accreditation_id}({RESEARCHER} の five-safes)を取り消しました" in r.text
    r = admin.post("accreditations", f"accreditations/{accreditation_id}/revoke", {})  # twice: refused, its moment as pages show times
    assert r.status_code == 400 and re.search(rf"認定 {accreditation_id} は \d{{4}}-\d\d-\d\d \d\d:\d\d JST に取り消し済みです", r.text)
    r = admin.post("facilities", "facilities/closed", {"name": FACILITY, "day": str(day + timedelta(days=1)), "op": "remove"})
    r = admin.post("facilities", "facilities/change", {"name": FACILITY, "booking_required": "no", "accreditation_kind": "-"})
    assert r.status_code == 200

    engine = make_engine(settings.db_url)
    with session_factory(engine)() as session:
        place = policy.require_facility(session, FACILITY)
        assert (place.booking_required, place.accreditation_kind, place.closures) == (False, None, [])
        assert policy.list_accreditations(session, RESEARCHER)[0].revoked_at is not None
        assert policy.list_bookings(session, username=RESEARCHER)[0].cancelled_at is not None
        mine = session.scalars(select(AuditEvent).where(AuditEvent.actor == ADMIN).order_by(AuditEvent.seq)).all()
    engine.dispose()
    assert [e.action.value for e in mine] == [
        "FACILITY_CHANGE", "FACILITY_CHANGE", "FACILITY_CHANGE", "ACCREDITATION_ADD", "BOOKING_ADD",
        "BOOKING_CANCEL", "ACCREDITATION_REVOKE", "FACILITY_CHANGE", "FACILITY_CHANGE",
    ]


BAD_INPUT = [
    # (page, form action, form id, data, words the refusal must contain)
    ("projects", "projects", "project-add",
     {"project_id": "p-bad", "title": "x", "start_date": "2026-05-01", "end_date": "2026-04-30"}, "before the start"),
    ("datasets", "grants", "grant-add",
     {"project_id": "p1", "dataset_id": "lfs", "valid_from": "2026-06-01", "valid_until": "2026-01-01"}, "before the start"),
    ("terminals", "terminals", "terminal-add", {"facility": FACILITY, "address": "192.0.2.300/24"}, "malformed terminal address"),
    ("terminals", "terminals", "terminal-add", {"facility": FACILITY, "address": "10.0.0.1/8"}, "did you mean 10.0.0.0/8"),
    ("projects/p1", "projects/p1/members", "members", {"op": "add", "username": "ghost"}, "unknown person 'ghost'"),
    ("people", "people", "person-add", {"username": "аlice", "display_name": "Cyrillic a"}, "is not allowed"),
    ("people", "people", "person-add", {"username": "bob", "display_name": "Bob", "password": "short"}, "password too short"),
    ("people/alice", "people/alice/password", "person-account", {"password": "alice-password"}, "must not contain the user name"),
    ("people/alice", "people/alice/roles", "person-roles", {"op": "grant", "role": "RESEARCHER"}, "already has role"),
    ("datasets", "grants/99999999999/revoke", "grants", {}, "unknown grant 99999999999"),
    ("facilities", "facilities", "facility-add", {"name": "Nagoya", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ("projects/p1", "projects/p1", "project-change", {"start_date": "2030-01-01"}, "before the start"),
    ("projects", "projects", "project-add", {"project_id": "p2", "title": "x", "start_date": "1 April", "end_date": "2026-05-01"}, "is not a date"),
    ("accreditations", "accreditations", "accreditation-add",
     {"username": RESEARCHER, "kind": "five-safes", "issued": "2026-06-01", "expiry": "2026-01-01"}, "before"),
    ("accreditations", "accreditations/99999/revoke", "accreditations", {}, "unknown accreditation 99999"),
    ("bookings", "bookings", "booking-add",
     {"username": RESEARCHER, "facility": FACILITY, "starts_at": "2020-01-01 10:00", "ends_at": "2020-01-01 12:00"}, "already past"),
    ("bookings", "bookings", "booking-add",
     {"username": RESEARCHER, "facility": FACILITY, "starts_at": "tomorrow", "ends_at": "2030-01-01 12:00"}, "is not a date-time"),
    ("bookings", "bookings/99999/cancel", "bookings", {}, "unknown booking 99999"),
    ("facilities", "facilities/hours", "facility-hours", {"name": FACILITY, "hours": "Mon 17:00-09:00"}, "closing time must be after opening time"),
    ("facilities", "facilities/closed", "facility-closed", {"name": FACILITY, "day": "2026-13-01", "op": "add"}, "is not a date"),
    ("facilities", "facilities/closed", "facility-closed", {"name": FACILITY, "day": "2030-01-01", "op": "remove"}, "is not closed on"),
    # issue 19: what could not work is refused, naming the field
    ("projects", "projects", "project-add", {"project_id": "p-x", "title": "x", "start_date": str(TODAY), "end_date": str(TODAY + timedelta(days=9)),
                                             "preset": "strict"}, "unknown rule preset 'strict'"),
    ("projects", "projects", "project-add", {"project_id": "p-x", "title": "x", "start_date": "2020-01-01", "end_date": "2020-12-31"},
     "end date 2020-12-31 is already past"),
    ("projects", "projects", "project-add", {"project_id": "p-x", "title": "x", "purpose": "字" * 2001, "start_date": str(TODAY),
                                             "end_date": str(TODAY + timedelta(days=9))}, "purpose is too long: at most 2000 characters"),
    ("projects/p1", "projects/p1", "project-change", {"end_date": str(TODAY - timedelta(days=1))}, "set its status to closed"),
    ("projects/p1", "projects/p1", "project-change", {"title": "新しい名称", "preset": "nope"}, "unknown rule preset 'nope'"),
    ("datasets", "grants", "grant-add", {"project_id": "p1", "dataset_id": "lfs", "valid_from": str(TODAY - timedelta(days=20))},
     "fall outside project 'p1'"),
    ("terminals", "terminals", "terminal-add", {"facility": FACILITY, "address": "fe80::1%eth0"}, "carries a zone id"),
    ("terminals", "terminals", "terminal-add", {"facility": FACILITY, "address": "169.254.0.9"}, "includes link-local addresses"),
    ("terminals", "terminals", "terminal-add", {"facility": FACILITY, "address": "ff02::1"}, "includes multicast addresses"),
    ("terminals", "terminals", "terminal-add", {"facility": FACILITY, "address": "198.51.100.7", "label": "x" * 201},
     "terminal label is too long: at most 200 characters"),
]


@pytest.mark.parametrize("page, action, form, data, words", BAD_INPUT, ids=[f"{b[2]}:{b[4]}" for b in BAD_INPUT])
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_bad_input_shows_the_reason_and_changes_nothing(server, page, action, form, data, words):
    base, settings = server
    admin = Admin(base, **{"Accept-Language": "en"})
    before = snapshot(settings.db_url)
    r = admin.post(page, action, data)
    assert r.status_code == 400
    shown = form_error(r.text, form)
    assert words in shown and "nothing was changed" in shown
    assert snapshot(settings.db_url) == before
    if data and "password" not in data:  # what was typed is kept in the form (passwords never are)
        typed = next(v for k, v in data.items() if k not in ("op",) and v)
        assert f'value="{html.escape(typed, quote=True)}"' in r.text or f'value="{typed}" selected' in r.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_refusal_speaks_the_page_language_and_links_the_page_that_shows_what_it_names(server):
    base, settings = server
    for language, says, link in (("ja", "利用者「alice」はすでに登録されています", "確認する: 利用者 › alice"),
                                 ("en", "person 'alice' already exists", "See: People › alice")):
        admin = Admin(base, **{"Accept-Language": language})
        r = admin.post("people", "people", {"username": "alice", "display_name": "Alice again"})
        assert r.status_code == 400 and says in form_error(r.text, "person-add")
        assert "onsite admin" not in r.text.split('id="error-person-add"')[1].split("</div>")[0]  # a page, not a command
        assert f'<a href="{PREFIX}people/alice" id="see-person-add">{link}</a>' in r.text
        r = admin.post("terminals", "terminals", {"facility": FACILITY, "address": "fe80::1%eth0"})
        shown = form_error(r.text, "terminal-add")
        if language == "ja":  # a Japanese page says it in Japanese, under its Japanese heading
            assert "入力に問題があります" in shown and "端末アドレス「fe80::1%eth0」にゾーン ID" in shown and "carries" not in shown


def test_bad_input_on_postgresql_too(server):
    """The same refusals through the forms on both stores (the full list runs on SQLite)."""
    base, settings = server
    admin = Admin(base, **{"Accept-Language": "en"})
    before = snapshot(settings.db_url)
    for page, action, form, data, words in (BAD_INPUT[0], BAD_INPUT[2], BAD_INPUT[4], BAD_INPUT[9]):
        r = admin.post(page, action, data)
        assert r.status_code == 400 and words in form_error(r.text, form)
    assert snapshot(settings.db_url) == before


# ---------------------------------------------------------------- the pages and `onsite admin` agree

# (page, form action, form id, form data, the same input as `onsite` arguments)
BOTH_FACES = [
    ("projects", "projects", "project-add", {"project_id": "p-bad", "title": "x", "start_date": "2026-05-01", "end_date": "2026-04-30"},
     ["admin", "project", "add", "p-bad", "--title", "x", "--start", "2026-05-01", "--end", "2026-04-30"]),
    ("projects/p1", "projects/p1/members", "members", {"op": "add", "username": "ghost"}, ["admin", "member", "add", "p1", "ghost"]),
    ("terminals", "terminals", "terminal-add", {"facility": FACILITY, "address": "10.0.0.1/8"},
     ["admin", "terminal", "add", FACILITY, "10.0.0.1/8"]),
    ("facilities", "facilities/hours", "facility-hours", {"name": FACILITY, "hours": "Mon 17:00-09:00"},
     ["admin", "facility", "hours", FACILITY, "Mon 17:00-09:00"]),
    ("facilities", "facilities/change", "facility-change", {"name": "Kyoto", "address": "x"},
     ["admin", "facility", "change", "Kyoto", "--address", "x"]),
    ("people/alice", "people/alice/roles", "person-roles", {"op": "grant", "role": "RESEARCHER"},
     ["admin", "role", "grant", RESEARCHER, "researcher"]),
    # parsed before the service call: argparse's usage error on the command line, the same text
    ("datasets", "grants", "grant-add", {"project_id": "p1", "dataset_id": "lfs", "valid_from": "１April"},
     ["admin", "grant", "add", "p1", "lfs", "--from", "１April"]),
    ("bookings", "bookings", "booking-add", {"username": RESEARCHER, "facility": FACILITY, "starts_at": "tomorrow", "ends_at": "x"},
     ["admin", "booking", "add", RESEARCHER, FACILITY, "--start", "tomorrow", "--end", "2030-01-01T10:00"]),
]


def refusal_detail(page: str, form: str) -> str:
    match = re.search(rf'id="error-{form}">.*?<p class="detail">(.*?)</p>', page, re.S)
    assert match, f"no refusal shown next to form {form}"
    return html.unescape(match.group(1)).strip()


def onsite_cli(settings, monkeypatch, capsys, locale: str, *argv: str) -> tuple[int, str, str]:
    """`onsite ARGV…` in-process under LANG=`locale`, on the server's store: (exit code, standard output, standard error)."""
    monkeypatch.setenv("ONSITE_HOME", str(settings.home))
    monkeypatch.setenv("ONSITE_DB_URL", settings.db_url)
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", locale)
    capsys.readouterr()
    try:
        code = onsite_main(list(argv))
    except SystemExit as e:  # argparse refusing an argument
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_pages_and_the_cli_refuse_the_same_input_with_the_same_words(server, monkeypatch, capsys):
    """Same input, same refusal, word for word: Japanese on a Japanese page and under LANG=ja_JP.UTF-8,
    English on an English page and under LANG=C.UTF-8; nothing changed either way."""
    base, settings = server
    before = snapshot(settings.db_url)
    for lang, locale in (("ja", "ja_JP.UTF-8"), ("en", "C.UTF-8")):
        admin = Admin(base, **{"Accept-Language": lang})
        for page, action, form, data, argv in BOTH_FACES:
            r = admin.post(page, action, data)
            shown = refusal_detail(r.text, form)
            code, _, err = onsite_cli(settings, monkeypatch, capsys, locale, *argv)
            assert (r.status_code, code) == (400, 2)
            assert shown in err, (lang, argv, shown, err)
            assert bool(re.search(r"[\u3040-\u30ff]", shown)) == (lang == "ja"), shown  # kana only in Japanese
    assert snapshot(settings.db_url) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_lock_out_state_is_the_same_on_the_pages_and_in_the_cli(server, monkeypatch, capsys):
    """An expired lock-out is ok on both faces, a running one locked, a disabled account disabled
    (even while locked): access_control.accounts decides it once."""
    base, settings = server
    now = datetime.now(timezone.utc)
    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            for name, locked_until, disabled in (("expired", now - timedelta(minutes=1), False),
                                                 ("current", now + timedelta(minutes=10), False),
                                                 ("both", now + timedelta(minutes=10), True)):
                policy.add_person(session, username=name, display_name=name, actor="test")
                person = policy.require_person(session, name)
                person.locked_until, person.disabled = locked_until, disabled
    finally:
        engine.dispose()
    expected = {"expired": "ok", "current": "locked", "both": "disabled", RESEARCHER: "ok"}

    listed = json.loads(onsite_cli(settings, monkeypatch, capsys, "C.UTF-8", "admin", "person", "list", "--json")[1])
    assert {p["username"]: p["state"] for p in listed if p["username"] in expected} == expected
    table = onsite_cli(settings, monkeypatch, capsys, "C.UTF-8", "admin", "person", "list")[1]
    assert {line.split()[0]: line.split()[-1] for line in table.splitlines()[1:] if line.split()[0] in expected} == expected

    page = Admin(base, **{"Accept-Language": "ja"}).http.get(base + "people").text
    rows = re.findall(r'people/([^"]+)">.*?<td class="state-(\w+)">([^<]*)</td>', page, re.S)
    assert {name: state for name, state, _ in rows if name in expected} == expected
    labels = {"ok": "有効", "locked": "ロック中", "disabled": "無効化"}
    assert all(label == labels[state] for name, state, label in rows)
    english = Admin(base, **{"Accept-Language": "en"})
    for name, state in expected.items():
        assert f'id="person-state">{state}' in english.http.get(base + f"people/{name}").text.replace("\n", "")


def record_decisions(db_url: str) -> list[tuple[str, str, bool]]:
    """Real entry decisions through access_control.entry, written as the hub writes them."""
    engine = make_engine(db_url)
    attempts = [(ADMIN, "192.0.2.5"), (RESEARCHER, "192.0.2.6"), (RESEARCHER, "203.0.113.9"), ("ghost", "192.0.2.7"),
                (ADMIN, "2001:db8::1")]
    written = []
    try:
        factory = session_factory(engine)
        for username, address in attempts:
            with transaction(factory) as session:
                decision = entry.decide_entry(entry.load_entry_facts(session, username, address), datetime.now(timezone.utc))
                entry.record_entry(session, decision, username=username, client_address=address)
            written.append((username, address, decision.allowed))
    finally:
        engine.dispose()
    return written


def entry_rows(page: str) -> list[dict[str, str]]:
    rows = []
    for body in re.findall(r'<tr id="entry-\d+"[^>]*>(.*?)</tr>', page, re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "|", c)).strip("|") for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
        rows.append({"person": cells[1], "outcome": cells[2], "address": cells[4], "facility": cells[5], "reasons": cells[6]})
    return rows


def test_entry_log_filters_and_languages(server):
    base, settings = server
    written = record_decisions(settings.db_url)
    # alice is a researcher without membership of an active project: denied; ghost is unknown; 203.0.113.9 no terminal
    assert [allowed for _, _, allowed in written] == [True, False, False, False, True]
    admin = Admin(base)

    everything = entry_rows(admin.http.get(base + "entries").text)
    assert [(r["person"], r["address"]) for r in everything] == [(u, a) for u, a, _ in reversed(written)]  # newest first

    denied = entry_rows(admin.http.get(base + "entries", params={"outcome": "DENIED"}).text)
    assert [(r["person"], r["address"]) for r in denied] == [(u, a) for u, a, ok in reversed(written) if not ok]
    assert {r["outcome"] for r in denied} == {"拒否"}

    alice = entry_rows(admin.http.get(base + "entries", params={"person": "ＡＬＩＣＥ"}).text)  # normalised like a login
    assert [r["address"] for r in alice] == ["203.0.113.9", "192.0.2.6"]
    # reasons in the chosen language, from the entry decision's own texts
    assert [r for r in alice[0]["reasons"].split("|") if r] == [
        "本日有効な利用プロジェクトがありません(期間外、停止中または終了)。", "この端末は利用施設の端末として登録されていません。"]
    alice_en = entry_rows(admin.http.get(base + "entries", params={"person": "alice", "lang": "en"}).text)
    assert "You have no project that is active today" in alice_en[0]["reasons"]
    assert "This terminal is not registered at any facility." in alice_en[0]["reasons"]

    tokyo = entry_rows(admin.http.get(base + "entries", params={"facility": FACILITY}).text)
    assert sorted(r["address"] for r in tokyo) == ["192.0.2.5", "192.0.2.6", "192.0.2.7"]
    by_address = entry_rows(admin.http.get(base + "entries", params={"address": "2001:db8::1"}).text)
    assert [(r["person"], r["facility"]) for r in by_address] == [(ADMIN, OTHER_FACILITY)]

    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    in_range = entry_rows(admin.http.get(base + "entries", params={"since": today.isoformat(), "until": today.isoformat()}).text)
    assert len(in_range) == len(written)
    yesterday = (today - timedelta(days=1)).isoformat()
    assert entry_rows(admin.http.get(base + "entries", params={"since": yesterday, "until": yesterday}).text) == []
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert entry_rows(admin.http.get(base + "entries", params={"since": tomorrow}).text) == []
    backwards = admin.http.get(base + "entries", params={"since": tomorrow, "until": yesterday, "lang": "ja"})
    assert backwards.status_code == 400 and "終了日が開始日より前です" in backwards.text
    not_a_date = admin.http.get(base + "entries", params={"since": "tuesday", "lang": "en"})
    assert not_a_date.status_code == 400 and "is not a date: use YYYY-MM-DD" in html.unescape(not_a_date.text)


def test_entry_log_pages(server):
    base, settings = server
    engine = make_engine(settings.db_url)
    factory = session_factory(engine)
    with transaction(factory) as session:  # 120 decisions, one transaction (the ledger appends them in order)
        for n in range(120):
            address = f"192.0.2.{n % 14 + 1}"
            decision = entry.decide_entry(entry.load_entry_facts(session, ADMIN, address), datetime.now(timezone.utc))
            entry.record_entry(session, decision, username=ADMIN, client_address=address)
        seqs = [e.seq for e in session.scalars(select(AuditEvent).where(AuditEvent.action == AuditEventType.ENTRY_DECIDE))]
    engine.dispose()
    admin = Admin(base)
    seen: list[int] = []
    url = base + "entries?outcome=OK"
    pages = 0
    while url:
        page = admin.http.get(url).text
        seen += [int(s) for s in re.findall(r'<tr id="entry-(\d+)"', page)]
        following = re.search(r'<a href="([^"]+)" rel="next"', page)
        url = base + "entries" + html.unescape(following.group(1)) if following else ""
        pages += 1
    assert pages == 3 and seen == sorted(seqs, reverse=True)  # 50 + 50 + 20, newest first, none twice


def test_both_languages_render(server):
    base, _ = server
    admin = Admin(base)
    ja = admin.http.get(base + "people")
    assert '<html lang="ja">' in ja.text and "利用者を登録する" in ja.text and "研究者" in ja.text
    en = admin.http.get(base + "people", params={"lang": "en"})
    assert '<html lang="en">' in en.text and "Register a person" in en.text and en.cookies.get("lang") == "en"
    assert "Register a project" in admin.http.get(base + "projects").text  # remembered in the cookie
    fresh = Admin(base, **{"Accept-Language": "en-GB,en;q=0.9,ja;q=0.5"})
    assert '<html lang="en">' in fresh.http.get(base + "terminals").text
    # every page renders in both languages with no missing string (StrictUndefined, KeyError on unknown keys)
    for page in ("people", "people/alice", "projects", "projects/p1", "datasets", "facilities", "terminals", "accreditations",
                 "bookings", "entries", "sessions"):
        for lang in ("ja", "en"):
            r = admin.http.get(base + page, params={"lang": lang})
            assert r.status_code == 200, (page, lang, r.text[-500:])
            assert f'<html lang="{lang}">' in r.text
    # no hub in this test: the sessions page says so instead of failing
    sessions = admin.http.get(base + "sessions", params={"lang": "en"})
    assert 'id="hub-error"' in sessions.text and "The JupyterHub API did not answer" in sessions.text


def test_every_message_has_both_languages():
    from admin_service.i18n import MESSAGES

    assert [k for k, v in MESSAGES.items() if set(v) != {"ja", "en"} or not all(v.values())] == []
    templates = Path(__file__).resolve().parents[2] / "admin_service" / "templates"
    used = {m for f in templates.glob("*.html") for m in re.findall(r"""t\(["']([a-z_]+)["'][,)]""", f.read_text())}
    assert len(used) > 80 and used - MESSAGES.keys() == set()
    from access_control.models import ProjectStatus

    built = {f"role_{r.value}" for r in Role} | {f"status_{s.value}" for s in ProjectStatus} | {f"outcome_{o.value}" for o in Outcome}
    assert built | {"state_ok", "state_disabled", "state_locked"} <= MESSAGES.keys()


# ---------------------------------------------------------------- under a real hub

@pytest.fixture
def hub_home():
    """State outside pytest's base directory: a root hub opens the path to the session
    account (o+x), and any other pytest run on the machine resets /tmp/pytest-of-root to 0700."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="onsite-admin-web-"))
    yield top / "home"
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.timeout(300)
def test_live_sessions_under_a_real_hub(hub_home):
    """Hub OAuth, the service token's scopes, who is in a session, and ending it (SESSION_END, then the one SESSION_STOP)."""
    from functional.hubtools import HubUser, RunningHub
    from functional.seeding import audit_events, seed_demo
    from onsite.demo import DEMO_PROJECT

    settings, logins = seed_demo(hub_home, rows=300)
    # hub_config.config registers onsite-admin itself: no site override
    hub = RunningHub(settings.home).start()
    try:
        service = f"{hub.url}{PREFIX}"
        deadline = time.monotonic() + 30
        while requests.get(service, allow_redirects=False, timeout=5).status_code in (404, 502, 503):
            assert time.monotonic() < deadline, hub.log_tail()
            time.sleep(0.3)

        researcher = HubUser(hub, "tanaka")
        assert researcher.login(logins["tanaka"].password).status_code == 302
        assert researcher.start_server().status_code in (201, 202)
        assert researcher.http.get(service + "people").status_code == 403  # the hub refuses OAuth to a researcher

        admin = HubUser(hub, "takahashi")
        assert admin.login(logins["takahashi"].password).status_code == 302
        deadline = time.monotonic() + 60
        while True:  # the page shows the server as the hub reports it: starting, then running
            page = admin.http.get(service + "sessions", params={"lang": "en"})
            assert page.status_code == 200 and page.url.startswith(service + "sessions"), page.text[-2000:]
            row = re.search(r'<tr id="session-tanaka">(.*?)</tr>', page.text, re.S)
            assert row, page.text[-3000:]
            cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
            if "running" in cells[4] or time.monotonic() > deadline:
                break
            assert "pending (spawn)" in cells[4]
            time.sleep(0.5)
        assert cells[1] == DEMO_PROJECT  # the projects the spawner opened (SESSION_START)
        assert cells[2].endswith(" JST")  # the facility's zone, shown
        started = datetime.strptime(cells[2], "%Y-%m-%d %H:%M JST").replace(tzinfo=ZoneInfo("Asia/Tokyo"))
        assert abs((datetime.now(timezone.utc) - started).total_seconds()) < 300
        assert "running" in cells[4]

        stop = admin.http.post(service + "sessions/tanaka/stop", data={"_xsrf": xsrf_of(page.text)})
        assert stop.status_code == 200 and "asked the hub to end the session of tanaka" in stop.text
        deadline = time.monotonic() + 30
        while researcher.http.get(f"{hub.url}/hub/api/users/tanaka", headers=researcher._hub_xsrf()).json()["servers"]:
            assert time.monotonic() < deadline, "the server did not stop"
            time.sleep(0.5)
        ends = audit_events(settings, "SESSION_END")
        assert [(e["actor"], e["outcome"], e["object"], e["details"]["requested_by"]) for e in ends] == [
            ("takahashi", "OK", "session:tanaka", "takahashi")]
        stops = [e for e in audit_events(settings, "SESSION_STOP") if e["object"] == "session:tanaka"]
        assert len(stops) == 1 and stops[0]["details"]["stopped_by"] == "hub"  # one per session, from the spawner
        assert 'id="sessions-empty"' in admin.http.get(service + "sessions").text
        assert admin.http.post(service + "sessions/tanaka/stop").status_code == 403  # XSRF under the Hub too
    finally:
        hub.stop()
