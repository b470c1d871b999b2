"""The reviewer app in a real subprocess, driven over HTTP (identity through the test seam only)."""
from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
import zipfile
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "workflow"))
from workflow_factories import make_world, table_output  # noqa: E402

from sqlalchemy import select  # noqa: E402

from onsite_base.db import make_engine, session_factory  # noqa: E402
from access_control.enums import AuditEventType, Outcome  # noqa: E402
from access_control.models import AuditEvent  # noqa: E402
from disclosure_review.workflow import signing  # noqa: E402
from hub_config.config import free_port  # noqa: E402

pytestmark = pytest.mark.integration
PREFIX = "/services/onsite-review/"
PASSING = "SELECT * FROM survey WHERE region <> 'C'"
FORGED = {"verdict": "pass", "shadow": {"version": 1, "columns": ["region", "sdc_grouping", "sdc_records", "sdc_value"],
                                        "rows": [["C", 0, 200, 200]]}}


@pytest.fixture
def server(db_url, settings, review_app, tmp_path):
    engine = make_engine(db_url)
    make_world(session_factory(engine), settings)
    engine.dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}{PREFIX}"
    app = review_app.start(port, PREFIX, os.environ | settings.environ(), tmp_path / "review-app.log",
                           probe=base + "api/requests/1")
    yield base, settings
    app.stop()
    print(app.log_tail())  # the app's log, shown when a test fails


def login(base: str, user: str, **headers) -> requests.Session:
    browser = requests.Session()
    browser.headers.update(headers)
    assert browser.get(base + "test-login", params={"user": user}).ok
    return browser


def xsrf_of(html: str) -> str:
    return re.search(r'name="_xsrf" value="([^"]+)"', html).group(1)


def output_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<section class="output" id="output-(\d+)"', html)]


def submit(base: str, *outputs) -> requests.Response:
    body = {"project": "p1", "title": "Income by region", "purpose": "regional paper", "outputs": list(outputs)}
    return requests.post(base + "api/requests", json=body, headers={"Authorization": "token test-alice"})


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_review_through_the_web(server):
    base, settings = server
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 0, 255)).save(png, format="PNG")
    figure = {"name": "figure", "kind": "file", "filename": "f.png", "content_b64": base64.b64encode(png.getvalue()).decode(),
              "code": "plt.plot(x)", "explanation": "a line"}

    # --- API: token only; the requester is the token's user
    assert requests.post(base + "api/requests", json={}).status_code == 401
    answer = submit(base, table_output("passing", PASSING), table_output("small", "SELECT * FROM survey WHERE region = 'C'", claimed=FORGED), figure)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["status"] == "SUBMITTED"
    assert [(o["name"], o["verdict"]) for o in created["outputs"]] == [("passing", "pass"), ("small", "fail"), ("figure", "review")]
    request_id = created["id"]
    refused = submit(base, table_output("secret", "SELECT * FROM secret"))
    assert refused.status_code == 403 and "secret" in refused.json()["message"]
    bad = submit(base, {"name": "x", "kind": "table", "spec": {"kind": "frequency"}})
    assert bad.status_code == 400 and "spec" in bad.json()["message"]
    # a browser session (cookie) cannot use the API: no cross-site submission
    assert login(base, "alice").post(base + "api/requests", json={}).status_code == 401

    # --- queue: reviewers only, never their own project's requests
    bob = login(base, "bob")
    queue = bob.get(base + "queue")
    assert queue.status_code == 200 and f'href="{PREFIX}requests/{request_id}"' in queue.text
    dave_queue = login(base, "dave").get(base + "queue")
    assert dave_queue.status_code == 200 and "queue-empty" in dave_queue.text
    assert login(base, "alice").get(base + "queue").status_code == 403
    assert login(base, "dave").get(base + f"requests/{request_id}").status_code == 403

    # --- request page: failing cell marked, checks, claimed vs recomputed
    page = bob.get(base + f"requests/{request_id}").text
    passing_id, small_id, figure_id = output_ids(page)
    small = page.split(f'id="output-{small_id}"')[1].split('<section class="output"')[0]
    failing_row = re.search(r'<tr class="cell-fail">\s*<th scope="row">C</th>\s*<td class="num">(.*?)</td>', small, re.S)
    assert failing_row and "✗" in failing_row.group(1) and float(failing_row.group(1).rsplit(" ", 1)[-1]) == 2
    assert "mismatch-row" in small and "200" in small  # the forged claim, shown as differing
    assert "plt.plot(x)" in page and "unverified" in page

    # --- votes: XSRF required; override required to approve a failing output
    vote_url = base + f"requests/{request_id}/outputs/{small_id}/vote"
    no_token = bob.post(vote_url, data={"decision": "APPROVE", "override_reason": "published"})
    assert no_token.status_code == 403
    token = xsrf_of(page)
    no_reason = bob.post(vote_url, data={"decision": "APPROVE", "_xsrf": token})
    assert no_reason.status_code == 400
    assert "承認するには例外承認の理由を書いてください" in re.search(r'id="vote-error">(.*?)</p>', no_reason.text).group(1)
    ok = bob.post(vote_url, data={"decision": "APPROVE", "override_reason": "published census figure", "_xsrf": token})
    assert ok.status_code == 200 and 'id="request-status"' in ok.text
    twice = bob.post(vote_url, data={"decision": "APPROVE", "override_reason": "again", "_xsrf": token})
    assert twice.status_code == 403 and "すでに投票しています" in twice.text
    in_english = bob.post(vote_url + "?lang=en", data={"decision": "APPROVE", "override_reason": "x", "_xsrf": token})
    assert "You have already voted on output small" in in_english.text
    with session_factory(make_engine(settings.db_url))() as session:
        refusals = session.scalars(
            select(AuditEvent).where(AuditEvent.action == AuditEventType.OUTPUT_DECIDE, AuditEvent.outcome == Outcome.DENIED)
        ).all()
    assert ["override reason" in e.details for e in refusals] == [True, False, False]  # every refusal is an audit event

    carol = login(base, "carol")
    carol_page = carol.get(base + f"requests/{request_id}").text
    assert "published census figure" not in carol_page  # bob's vote hidden until carol votes
    carol_token = xsrf_of(carol_page)
    for output_id, extra in ((passing_id, {}), (small_id, {"override_reason": "agree"}), (figure_id, {"comment": "axis only"})):
        r = carol.post(base + f"requests/{request_id}/outputs/{output_id}/vote", data={"decision": "APPROVE", "_xsrf": carol_token, **extra})
        assert r.status_code == 200, r.text
    for output_id, extra in ((passing_id, {}), (figure_id, {"comment": "fine"})):
        r = bob.post(base + f"requests/{request_id}/outputs/{output_id}/vote", data={"decision": "APPROVE", "_xsrf": token, **extra})
        assert r.status_code == 200, r.text

    # --- researcher: status, download for the requester only
    status = requests.get(base + f"api/requests/{request_id}", headers={"Authorization": "token test-alice"}).json()
    assert status["status"] == "RELEASED" and {o["decision"] for o in status["outputs"]} == {"APPROVE"}
    alice = login(base, "alice")
    assert f'requests/{request_id}/package.zip' in alice.get(base + f"requests/{request_id}").text
    assert bob.get(base + f"requests/{request_id}/package.zip").status_code == 403
    download = alice.get(base + f"requests/{request_id}/package.zip")
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        manifest = json.loads(archive.read(f"release-{request_id}/manifest.json"))
        assert sorted(f["name"] for f in manifest["files"]) == ["figure.png", "passing.csv", "small.csv"]
        small_csv = archive.read(f"release-{request_id}/small.csv").decode()
    cells = dict(line.split(",") for line in small_csv.splitlines()[1:])
    assert float(cells["C"]) == 2  # the service's recomputed count, not the forged 200
    # --- signed: the key's fingerprint on the researcher's page, the zip verifies with the public keyring alone
    [key] = signing.read_keyring(signing.ReleaseSigning.of(settings).keyring_path(settings.home))
    page = alice.get(base + f"requests/{request_id}").text
    assert f'<code id="signing-key-fingerprint">{key.fingerprint}</code>' in page and "署名鍵のフィンガープリント" in page
    assert "Signing key fingerprint" in alice.get(base + f"requests/{request_id}?lang=en").text
    assert manifest["signing_key"]["fingerprint"] == key.fingerprint
    zipped = Path(settings.home) / "collected.zip"
    zipped.write_bytes(download.content)
    assert signing.verify(signing.read_package(zipped), [key]).ok
    assert (settings.egress_dir / str(request_id) / "small.csv").read_text() == small_csv


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_language_switch(server):
    base, _ = server
    alice = login(base, "alice")
    assert "自分の公表申請" in alice.get(base + "mine").text  # Japanese first
    english = alice.get(base + "mine", params={"lang": "en"})
    assert "My release requests" in english.text and english.cookies.get("lang") == "en"
    assert "My release requests" in alice.get(base + "mine").text  # remembered in the cookie
    assert "自分の公表申請" in alice.get(base + "mine", params={"lang": "ja"}).text
    fresh = login(base, "alice", **{"Accept-Language": "en-GB,en;q=0.9,ja;q=0.5"})
    assert '<html lang="en">' in fresh.get(base + "mine").text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_researcher_pages(server):
    base, _ = server
    request_id = submit(base, table_output("passing", PASSING)).json()["id"]
    erin = login(base, "erin")  # a researcher of no project of this request
    assert erin.get(base + f"requests/{request_id}").status_code == 403
    assert f"requests/{request_id}" not in erin.get(base + "mine").text
    assert requests.get(base + f"api/requests/{request_id}", headers={"Authorization": "token test-erin"}).status_code == 403

    alice = login(base, "alice")
    page = alice.get(base + f"requests/{request_id}").text
    assert "shadow" not in page.split('<section class="output"')[1].lower()  # shadow statistics are for reviewers
    withdraw = base + f"requests/{request_id}/withdraw"
    assert alice.post(withdraw).status_code == 403  # no XSRF token
    bob = login(base, "bob")
    assert bob.post(withdraw, data={"_xsrf": xsrf_of(bob.get(base + f"requests/{request_id}").text)}).status_code == 403
    done = alice.post(withdraw, data={"_xsrf": xsrf_of(page)})
    assert done.status_code == 200 and "status-withdrawn" in done.text
    assert "queue-empty" in bob.get(base + "queue").text


def check_messages(page: str, output_id: int) -> list[str]:
    section = page.split(f'id="output-{output_id}"')[1].split('<section class="output"')[0]
    return re.findall(r'<td class="check-message">(.*?)</td>', section)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_check_messages_in_the_readers_language(server):
    from disclosure_review.workflow.store import ReleaseOutput

    base, settings = server
    request_id = submit(base, table_output("small")).json()["id"]
    page_url = base + f"requests/{request_id}"
    japanese_page = login(base, "bob").get(page_url).text
    (output_id,) = output_ids(japanese_page)
    japanese = check_messages(japanese_page, output_id)
    assert "4 セル中 1 セル: 寄与するレコードが 10 未満(しきい値規則: n &lt; 10 は不合格)" in japanese
    assert all(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", m) for m in japanese)
    english = check_messages(login(base, "bob").get(page_url, params={"lang": "en"}).text, output_id)
    assert "1 of 4 cells: fewer than 10 contributing records (threshold rule: n &lt; 10 fails)" in english
    assert len(english) == len(japanese)

    # a report stored before messages had ids shows its stored English text, in either language
    engine = make_engine(settings.db_url)
    with session_factory(engine)() as session, session.begin():
        output = session.get(ReleaseOutput, output_id)
        output.report = output.report | {
            "results": [{k: v for k, v in r.items() if k not in ("code", "args")} for r in output.report["results"]]}
    engine.dispose()
    assert check_messages(login(base, "bob").get(page_url).text, output_id) == english


def output_section(page: str, output_id: int) -> str:
    return page.split(f'id="output-{output_id}"')[1].split('<section class="output"')[0]


def mismatch_rows(page: str, output_id: int) -> list[tuple[str, str, str]]:
    """(what, claimed, recomputed) of each claimed figure that differs from the recomputation."""
    return re.findall(r'<tr class="mismatch-row"><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>', output_section(page, output_id))


def recompute_error(page: str, output_id: int) -> str:
    return re.search(r'<span class="error-text">(.*?)</span>', output_section(page, output_id), re.S).group(1)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_recomputation_texts_in_the_readers_language(server):
    from access_control.models import Project
    from disclosure_review.workflow.store import ReleaseOutput

    base, settings = server
    forged = FORGED | {"cells": {"columns": ["region", "sdc_value"], "rows": [["C", 200]]}}
    answer = submit(base, table_output("small", claimed=forged), table_output("broken", "SELECT no_such_column FROM survey"))
    request_id = answer.json()["id"]
    assert answer.json()["outputs"][1]["error"] == "recompute_failed"  # the API: a code (the text may quote data)
    page_url = base + f"requests/{request_id}"
    bob = login(base, "bob")
    ja, en = bob.get(page_url).text, bob.get(page_url, params={"lang": "en"}).text
    small_id, broken_id = output_ids(ja)
    assert mismatch_rows(ja, small_id)[:2] == [("判定", "合格", "不合格"), ("公表されるセル C", "200", "2")]
    assert ("C のレコード数", "200", "2") in mismatch_rows(ja, small_id)
    assert mismatch_rows(en, small_id)[:2] == [("verdict", "pass", "fail"), ("released C", "200", "2")]
    assert ("C: sdc_records", "200", "2") in mismatch_rows(en, small_id)
    raised = "table &#39;broken&#39;: the query could not be computed: Binder Error"  # quoted as raised
    assert recompute_error(ja, broken_id).startswith("実行時のエラー: " + raised)
    assert recompute_error(en, broken_id).startswith(raised)

    # an error the service writes itself reads wholly in either language
    engine = make_engine(settings.db_url)
    with session_factory(engine)() as session, session.begin():
        session.get(Project, "p1").preset = "no_such_preset"
    engine.dispose()
    unloadable = submit(base, table_output("small")).json()["id"]
    ja = bob.get(base + f"requests/{unloadable}", params={"lang": "ja"}).text  # the cookie remembers the last choice
    (unloadable_output,) = output_ids(ja)
    assert recompute_error(ja, unloadable_output).startswith("審査基準「no_such_preset」を読み込めません: ")
    en = bob.get(base + f"requests/{unloadable}", params={"lang": "en"}).text
    assert recompute_error(en, unloadable_output).startswith("rule preset &#39;no_such_preset&#39;: ")

    # outputs stored before the texts had ids show their stored English, in either language
    engine = make_engine(settings.db_url)
    with session_factory(engine)() as session, session.begin():
        session.get(ReleaseOutput, unloadable_output).error_message = None
        old = session.get(ReleaseOutput, small_id)
        old.mismatch = [{k: v for k, v in m.items() if k not in ("code", "args")} for m in old.mismatch]
    engine.dispose()
    ja = bob.get(base + f"requests/{unloadable}", params={"lang": "ja"}).text
    assert '<html lang="ja">' in ja and recompute_error(ja, unloadable_output) == recompute_error(en, unloadable_output)
    old_rows = mismatch_rows(bob.get(page_url, params={"lang": "ja"}).text, small_id)
    assert old_rows[:2] == [("verdict", "pass", "fail"), ("released C", "200", "2")]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_refusals_in_the_readers_language(server):
    base, _ = server
    request_id = submit(base, table_output("passing", PASSING)).json()["id"]
    bob_ja, bob_en = login(base, "bob"), login(base, "bob", **{"Accept-Language": "en"})
    missing = bob_ja.get(base + "requests/999")
    assert missing.status_code == 404 and "公表申請 999 はありません。" in missing.text
    assert "There is no release request 999." in bob_en.get(base + "requests/999").text

    page = bob_ja.get(base + f"requests/{request_id}").text
    (output_id,) = output_ids(page)
    vote_url = base + f"requests/{request_id}/outputs/{output_id}/vote"
    no_output = bob_ja.post(base + f"requests/{request_id}/outputs/999/vote", data={"decision": "APPROVE", "_xsrf": xsrf_of(page)})
    assert no_output.status_code == 404 and "この申請に出力 999 はありません。" in no_output.text
    no_decision = bob_ja.post(vote_url, data={"decision": "MAYBE", "_xsrf": xsrf_of(page)})
    assert no_decision.status_code == 400 and "承認・却下・差し戻しのいずれかを選んでください。" in no_decision.text
    en_token = xsrf_of(bob_en.get(base + f"requests/{request_id}").text)
    assert "Choose approve, reject or return." in bob_en.post(vote_url, data={"decision": "MAYBE", "_xsrf": en_token}).text
    no_reason = bob_ja.post(vote_url, data={"decision": "RETURN", "_xsrf": xsrf_of(page)})
    assert no_reason.status_code == 400 and "「差し戻し」には、研究者への理由のコメントが必要です。" in no_reason.text
    no_reason = bob_en.post(vote_url, data={"decision": "RETURN", "_xsrf": en_token})
    assert "Choosing return needs a comment telling the researcher why." in no_reason.text

    alice = login(base, "alice")
    alice.post(base + f"requests/{request_id}/withdraw", data={"_xsrf": xsrf_of(alice.get(base + f"requests/{request_id}").text)})
    closed = bob_ja.post(vote_url, data={"decision": "APPROVE", "_xsrf": xsrf_of(page)})
    assert closed.status_code == 403
    assert "この申請は「取り下げ」のため、これ以上投票できません。" in re.search(r'id="vote-error">(.*?)</p>', closed.text).group(1)
    closed_en = bob_en.post(vote_url, data={"decision": "APPROVE", "_xsrf": en_token})
    assert "This request is withdrawn: it takes no more votes." in closed_en.text
