"""Ingress requests in the real reviewer app over HTTP: the session's API, the reviewers' pages (ja, en), XSRF."""
from __future__ import annotations

import base64
import json
import re

import pytest
import requests
from sqlalchemy import select

from onsite_base.db import make_engine, session_factory, transaction
from access_control.enums import AuditEventType, Outcome
from access_control.models import AuditEvent
from integration.test_review_web import login, server, xsrf_of  # noqa: F401  (server is a fixture)

pytestmark = pytest.mark.integration
CODES = "code,label\nA,北海道\nB,東北\nC,<script>alert(1)</script>\n".encode()


def bring_in(base: str, user: str = "alice", content: bytes = CODES, filename: str = "regions.csv",
             name: str = "region_names") -> requests.Response:
    body = {"project": "p1", "name": name, "description": "地域名(統計局の公表資料)", "filename": filename,
            "content_b64": base64.b64encode(content).decode()}
    return requests.post(base + "api/ingress", json=body, headers={"Authorization": f"token test-{user}"})


def reference_api(base: str, user: str, **body) -> requests.Response:
    return requests.post(base + "api/reference", json=body, headers={"Authorization": f"token test-{user}"})


def vote(browser: requests.Session, base: str, request_id: int, decision: str, comment: str = "") -> requests.Response:
    page = browser.get(base + f"ingress/{request_id}")
    return browser.post(base + f"ingress/{request_id}/vote",
                        data={"_xsrf": xsrf_of(page.text), "decision": decision, "comment": comment})


def audit_actions(settings) -> list[tuple[str, str, str]]:
    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as s:
            return [(e.action.value, e.actor, e.outcome.value) for e in s.scalars(
                select(AuditEvent).where(AuditEvent.action.in_([AuditEventType.INGRESS_SUBMIT, AuditEventType.INGRESS_DECIDE,
                                                                AuditEventType.INGRESS_COLLECT])).order_by(AuditEvent.seq))]
    finally:
        engine.dispose()


@pytest.mark.parametrize("lang,heading,schema,approved", [
    ("ja", "持込みデータ申請", "列と型", "承認済み(利用可能)"),
    ("en", "Ingress request", "Columns and types", "approved (usable)"),
])
def test_reviewers_see_schema_and_preview_and_two_approve(server, lang, heading, schema, approved):
    base, settings = server
    answer = bring_in(base)
    assert answer.status_code == 201, answer.text
    request_id, sha = answer.json()["id"], answer.json()["sha256"]
    assert answer.json()["columns"] == [{"name": "code", "type": "VARCHAR"}, {"name": "label", "type": "VARCHAR"}]

    bob = login(base, "bob", **{"Accept-Language": lang})
    queue = bob.get(base + "queue").text
    assert 'id="ingress-waiting"' in queue and ("1 件" if lang == "ja" else "1 ingress request") in queue
    listing = bob.get(base + "ingress")
    assert listing.ok and f'href="{base[base.index("/services"):]}ingress/{request_id}"' in listing.text
    page = bob.get(base + f"ingress/{request_id}")
    assert page.ok and heading in page.text and schema in page.text
    assert sha in page.text and "北海道" in page.text
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text  # escaped, never run

    assert vote(bob, base, request_id, "APPROVE").ok
    # not yet usable by the project
    assert reference_api(base, "alice", project="p1", name="region_names").status_code == 404
    carol = login(base, "carol", **{"Accept-Language": lang})
    decided = vote(carol, base, request_id, "APPROVE")
    assert decided.ok and approved in decided.text

    fetched = reference_api(base, "alice", project="p1", name="region_names")
    assert fetched.ok and base64.b64decode(fetched.json()["content_b64"]) == CODES and fetched.json()["sha256"] == sha
    listed = reference_api(base, "alice", project="p1").json()["references"]
    assert [(r["name"], r["rows"]) for r in listed] == [("region_names", 3)]
    assert [(a, who, outcome) for a, who, outcome in audit_actions(settings)] == [
        ("INGRESS_SUBMIT", "alice", "OK"), ("INGRESS_DECIDE", "bob", "OK"),
        ("INGRESS_COLLECT", "alice", "DENIED"),  # asked for before its approval
        ("INGRESS_DECIDE", "carol", "OK"), ("INGRESS_DECIDE", "carol", "OK"), ("INGRESS_COLLECT", "alice", "OK")]


def test_reject_needs_a_comment_in_the_pages_language_then_rejects(server):
    base, _ = server
    request_id = bring_in(base).json()["id"]
    bob = login(base, "bob", **{"Accept-Language": "en"})
    refused = vote(bob, base, request_id, "REJECT")
    assert refused.status_code == 400 and "needs a comment" in refused.text
    bob_ja = login(base, "bob", **{"Accept-Language": "ja"})
    assert "理由のコメントが必要" in vote(bob_ja, base, request_id, "REJECT").text
    rejected = vote(bob, base, request_id, "REJECT", "cite the published source")
    assert rejected.ok and "rejected" in rejected.text
    alice = login(base, "alice", **{"Accept-Language": "en"})
    mine = alice.get(base + f"ingress/{request_id}")
    assert mine.ok and "cite the published source" in mine.text and 'class="vote"' not in mine.text


def test_members_of_the_project_and_forms_without_xsrf_are_refused(server):
    base, settings = server
    request_id = bring_in(base).json()["id"]
    dave = login(base, "dave", **{"Accept-Language": "en"})  # a reviewer who belongs to p1
    assert dave.get(base + f"ingress/{request_id}").status_code == 403
    assert 'ingress-queue-empty' in dave.get(base + "ingress").text
    bob = login(base, "bob")
    no_xsrf = bob.post(base + f"ingress/{request_id}/vote", data={"decision": "APPROVE"})
    assert no_xsrf.status_code == 403
    erin = login(base, "erin")  # a researcher of no project with this request
    assert erin.get(base + f"ingress/{request_id}").status_code == 403
    page = bob.get(base + f"ingress/{request_id}")
    assert re.search(r'name="decision" value="APPROVE"', page.text)  # bob may still vote
    denied = [e for e in audit_actions(settings) if e[2] == Outcome.DENIED.value]
    assert denied == []  # page views are not votes; the refused POST never reached the handler


def test_the_api_refuses_other_formats_and_other_projects(server):
    base, _ = server
    refused = bring_in(base, content=b"PK\x03\x04", filename="codes.xlsx")
    assert refused.status_code == 400 and "only tables as CSV" in refused.json()["message"]
    assert bring_in(base, user="erin").status_code == 403
    assert reference_api(base, "erin", project="p1").status_code == 403
    assert reference_api(base, "alice", project="p1", name="nothing").status_code == 404
    assert reference_api(base, "alice", nonsense=1).status_code == 400
    assert requests.post(base + "api/ingress", data=json.dumps({}), timeout=5).status_code == 401


def post_form(browser: requests.Session, base: str, request_id: int, action: str, **fields) -> requests.Response:
    page = browser.get(base + f"ingress/{request_id}")
    return browser.post(base + f"ingress/{request_id}/{action}", data={"_xsrf": xsrf_of(page.text), **fields})


def lifecycle_events(settings) -> list[tuple[str, str, str]]:
    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as s:
            return [(e.action.value, e.actor, e.outcome.value) for e in s.scalars(
                select(AuditEvent).where(AuditEvent.action.in_([AuditEventType.INGRESS_WITHDRAW,
                                                                AuditEventType.INGRESS_RETIRE])).order_by(AuditEvent.seq))]
    finally:
        engine.dispose()


@pytest.mark.parametrize("lang,button,done,status", [
    ("ja", "申請を取り下げる", "申請を取り下げました。", "取り下げ"),
    ("en", "Withdraw this request", "The request was withdrawn.", "withdrawn"),
])
def test_the_requester_withdraws_and_nobody_else_can_nor_vote_afterwards(server, lang, button, done, status):
    base, settings = server
    request_id = bring_in(base).json()["id"]
    bob = login(base, "bob", **{"Accept-Language": lang})
    page = bob.get(base + f"ingress/{request_id}").text
    assert button not in page  # only the requester sees the form
    bobs_token = xsrf_of(page)  # from the vote form, kept for the attack below
    # attack: a reviewer posts the withdrawal with a valid XSRF token of his own
    refused = post_form(bob, base, request_id, "withdraw")
    assert refused.status_code == 403 and ("申請者本人" if lang == "ja" else "Only the requester") in refused.text
    alice = login(base, "alice", **{"Accept-Language": lang})
    assert alice.post(base + f"ingress/{request_id}/withdraw").status_code == 403  # no XSRF token
    page = alice.get(base + f"ingress/{request_id}")
    assert button in page.text
    withdrawn = post_form(alice, base, request_id, "withdraw")
    assert withdrawn.ok and done in withdrawn.text and status in withdrawn.text and button not in withdrawn.text
    # attack: voting on the withdrawn request
    assert 'class="vote"' not in bob.get(base + f"ingress/{request_id}").text
    late = bob.post(base + f"ingress/{request_id}/vote", data={"_xsrf": bobs_token, "decision": "APPROVE"})
    assert late.status_code == 403 and ("これ以上投票できません" if lang == "ja" else "takes no more votes") in late.text
    assert lifecycle_events(settings) == [("INGRESS_WITHDRAW", "bob", "DENIED"), ("INGRESS_WITHDRAW", "alice", "OK")]
    assert reference_api(base, "alice", project="p1", name="region_names").status_code == 404


def test_retiring_through_the_page_needs_a_reason_and_the_right_person_then_the_data_is_gone(server):
    from access_control import policy
    from access_control.enums import Role

    base, settings = server
    engine = make_engine(settings.db_url)
    with transaction(session_factory(engine)) as s:
        policy.add_person(s, username="root", display_name="Root", actor="admin", roles=[Role.ADMINISTRATOR])
    engine.dispose()
    request_id = bring_in(base).json()["id"]
    for reviewer in ("bob", "carol"):
        assert vote(login(base, reviewer), base, request_id, "APPROVE").ok
    alice = login(base, "alice", **{"Accept-Language": "ja"})
    assert 'id="ingress-retire"' not in alice.get(base + f"ingress/{request_id}").text
    # attack: the requester posts a retirement with a valid token (from the withdraw form of another request)
    other = bring_in(base, name="other_codes").json()["id"]
    token = xsrf_of(alice.get(base + f"ingress/{other}").text)
    assert alice.post(base + f"ingress/{request_id}/retire", data={"_xsrf": token, "reason": "x"}).status_code == 403
    root = login(base, "root", **{"Accept-Language": "ja"})
    listing = root.get(base + "ingress").text
    assert 'id="ingress-in-use"' in listing and "reference.region_names" in listing
    assert 'id="ingress-retire"' in root.get(base + f"ingress/{request_id}").text
    no_reason = post_form(root, base, request_id, "retire", reason=" ")
    assert no_reason.status_code == 400 and "利用終了の理由を書いてください" in no_reason.text
    assert root.post(base + f"ingress/{request_id}/retire", data={"reason": "x"}).status_code == 403  # no XSRF
    retired = post_form(root, base, request_id, "retire", reason="2025年版に改訂された")
    assert retired.ok and "利用を終了しました。" in retired.text and "2025年版に改訂された" in retired.text
    assert 'id="ingress-retire"' not in retired.text and "利用終了" in retired.text
    gone = reference_api(base, "alice", project="p1", name="region_names")
    assert gone.status_code == 404 and "retired" in gone.json()["message"] and "2025年版" in gone.json()["message"]
    assert reference_api(base, "alice", project="p1").json()["references"] == []
    mine = alice.get(base + f"ingress/{request_id}").text  # the requester reads why
    assert "2025年版に改訂された" in mine
    assert lifecycle_events(settings) == [("INGRESS_RETIRE", "alice", "DENIED"), ("INGRESS_RETIRE", "root", "DENIED"),
                                          ("INGRESS_RETIRE", "root", "OK")]


@pytest.mark.parametrize("lang,texts", [
    ("ja", {"own": "自分の持込みデータ申請は審査できません。", "twice": "持込みデータ region_names にはすでに投票しています。",
            "choose": "承認か却下を選んでください。", "closed": "この申請は「却下」のため、これ以上投票できません。",
            "missing": "持込みデータ申請 999 はありません。", "reason": "「却下」には、研究者への理由のコメントが必要です。"}),
    ("en", {"own": "You cannot review your own ingress request.",
            "twice": "You have already voted on ingress request region_names: each reviewer votes once.",
            "choose": "Choose approve or reject.", "closed": "This request is rejected: it takes no more votes.",
            "missing": "There is no ingress request 999.",
            "reason": "Choosing reject needs a comment telling the researcher why."}),
])
def test_refusals_on_ingress_pages_speak_of_ingress_in_the_pages_language(server, lang, texts):
    base, _ = server
    own = bring_in(base, user="dave", name="daves_codes").json()["id"]  # dave reviews, and belongs to p1
    dave = login(base, "dave", **{"Accept-Language": lang})
    refused = vote(dave, base, own, "APPROVE")
    assert refused.status_code == 403 and texts["own"] in refused.text and "release request" not in refused.text

    request_id = bring_in(base).json()["id"]
    bob = login(base, "bob", **{"Accept-Language": lang})
    token = xsrf_of(bob.get(base + f"ingress/{request_id}").text)  # the form is gone once he voted: keep its token

    def bobs_vote(decision: str) -> requests.Response:
        return bob.post(base + f"ingress/{request_id}/vote", data={"_xsrf": token, "decision": decision})

    no_reason = bobs_vote("REJECT")
    assert no_reason.status_code == 400 and texts["reason"] in no_reason.text
    assert bobs_vote("APPROVE").ok
    twice = bobs_vote("APPROVE")
    assert twice.status_code == 403 and texts["twice"] in twice.text
    unknown = bobs_vote("MAYBE")
    assert unknown.status_code == 400 and texts["choose"] in unknown.text
    assert vote(login(base, "carol"), base, request_id, "REJECT", "cite the source").ok
    closed = bobs_vote("APPROVE")
    assert closed.status_code == 403 and texts["closed"] in closed.text
    missing = bob.get(base + "ingress/999")
    assert missing.status_code == 404 and texts["missing"] in missing.text


def approve_reference(base: str, name: str) -> int:
    request_id = bring_in(base, name=name).json()["id"]
    for reviewer in ("bob", "carol"):
        assert vote(login(base, reviewer), base, request_id, "APPROVE").ok
    return request_id


def release_vote(browser: requests.Session, base: str, request_id: int, output_id: int, decision: str,
                 comment: str = "") -> requests.Response:
    page = browser.get(base + f"requests/{request_id}")
    return browser.post(base + f"requests/{request_id}/outputs/{output_id}/vote",
                        data={"_xsrf": xsrf_of(page.text), "decision": decision, "comment": comment, "revision": "0"})


@pytest.mark.parametrize("lang,warning,no_approve,reject", [
    ("ja", "この出力のクエリが読む持込みデータ reference.region_names は、", "承認: できません。", "却下"),
    ("en", "The query of this output reads reference data reference.region_names, retired on", "Approve: not possible.",
     "reject"),
])
def test_a_release_request_reading_retired_reference_data_warns_and_offers_no_approval(server, lang, warning, no_approve,
                                                                                      reject):
    from integration.test_review_web import output_ids, output_section, submit
    from workflow_factories import table_output

    base, _ = server
    retiring = approve_reference(base, "region_names")
    approve_reference(base, "kept_names")
    joined = "SELECT r.label AS region_label FROM survey s JOIN reference.{} r ON s.region = r.code WHERE s.region <> 'C'"
    answer = submit(base, table_output("by_retired", joined.format("region_names"), rows=("region_label",)),
                    table_output("by_kept", joined.format("kept_names"), rows=("region_label",)))
    assert answer.status_code == 201, answer.text
    request_id = answer.json()["id"]
    bob = login(base, "bob", **{"Accept-Language": lang})
    before = bob.get(base + f"requests/{request_id}").text
    assert "retired-reference" not in before and before.count('name="decision" value="APPROVE"') == 2

    assert post_form(bob, base, retiring, "retire", reason="2025年版に改訂された").ok
    page = bob.get(base + f"requests/{request_id}")
    retired_id, kept_id = output_ids(page.text)
    retired, kept = output_section(page.text, retired_id), output_section(page.text, kept_id)
    assert warning in retired and "2025年版に改訂された" in retired and "bob" in retired
    assert f'id="retired-{retired_id}-region_names"' in retired
    assert no_approve in retired and 'value="APPROVE"' not in retired and 'id="override-' not in retired
    assert f'value="REJECT" required> {reject}</label>' in retired
    # the non-retired reference: no warning, approval offered as before
    assert "retired-reference" not in kept and no_approve not in kept and 'name="decision" value="APPROVE"' in kept
    # the author of the request sees the warning too, without any vote form
    alice = login(base, "alice", **{"Accept-Language": lang}).get(base + f"requests/{request_id}").text
    assert warning in output_section(alice, retired_id) and 'class="vote"' not in alice

    # attack: posting an approval the page no longer offers is still refused by the service
    forced = release_vote(bob, base, request_id, retired_id, "APPROVE")
    assert forced.status_code == 400 and 'id="vote-error"' in forced.text
    assert release_vote(bob, base, request_id, retired_id, "REJECT", "reads retired reference data").ok
    decided = output_section(bob.get(base + f"requests/{request_id}").text, retired_id)
    assert "retired-reference" not in decided  # decided outputs: nothing left to approve
