"""Protection applied by a reviewer through the reviewer app over HTTP (real app, real database, real DuckDB)."""
from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile

import pytest
from test_review_web import login, output_ids, server, submit, xsrf_of  # noqa: F401  (server is a fixture)
from workflow_factories import table_output

from sqlalchemy import select

from onsite_base.db import make_engine, session_factory
from access_control.enums import AuditEventType, Outcome
from access_control.models import AuditEvent
from disclosure_review.workflow.store import OutputProtection

pytestmark = pytest.mark.integration


def section(page: str, output_id: int) -> str:
    return page.split(f'id="output-{output_id}"')[1].split('<section class="output"')[0]


def hidden_fields(form_html: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form_html)}


def cells_of(table_html: str) -> dict[str, str]:
    """{row label: released value} of the first cells table in `table_html`."""
    table = table_html.split('<table class="cells">')[1].split("</table>")[0]
    rows = re.findall(r'<th scope="row">(.*?)</th>\s*<td class="num">(.*?)</td>', table, re.S)
    return {label: re.sub(r"<[^>]+>|[✗△]", "", value).strip() for label, value in rows}


def events(settings, action: AuditEventType) -> list[AuditEvent]:
    engine = make_engine(settings.db_url)
    with session_factory(engine)() as session:
        found = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).all()
    engine.dispose()
    return found


def protections(settings) -> list[OutputProtection]:
    engine = make_engine(settings.db_url)
    with session_factory(engine)() as session:
        found = session.scalars(select(OutputProtection).order_by(OutputProtection.id)).all()
    engine.dispose()
    return found


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_reviewer_applies_protection_through_the_web(server):
    base, settings = server
    answer = submit(base, table_output("small"))
    assert answer.status_code == 201 and answer.json()["outputs"][0]["verdict"] == "fail"
    request_id = answer.json()["id"]
    page_url = base + f"requests/{request_id}"

    bob = login(base, "bob")
    page = bob.get(page_url).text
    (output_id,) = output_ids(page)
    protect_url = base + f"requests/{request_id}/outputs/{output_id}/protection"
    mine = section(page, output_id)
    assert 'class="protect-form"' in mine and "<code>region</code>: A, B, C" in mine
    token = xsrf_of(page)

    # --- refused: no XSRF token; a reviewer of the project; a researcher; nothing saved, refusals audited
    assert bob.post(protect_url, data={"method": "suppress", "action": "save"}).status_code == 403
    dave = login(base, "dave")
    dave.cookies.set("_xsrf", "0" * 32, path="/")
    forged = {"method": "suppress", "action": "preview", "_xsrf": "0" * 32}
    refused = dave.post(protect_url, data=forged)
    assert refused.status_code == 403 and "プロジェクト p1 のメンバーです" in refused.text
    erin = login(base, "erin")
    erin.cookies.set("_xsrf", "0" * 32, path="/")
    assert erin.post(protect_url, data=forged).status_code == 403
    assert 'class="protect-form"' not in login(base, "alice").get(page_url).text  # the requester cannot protect
    denied = [e for e in events(settings, AuditEventType.OUTPUT_PROTECT) if e.outcome is Outcome.DENIED]
    assert [e.actor for e in denied] == ["dave", "erin"]

    # --- bad parameters: a clear error beside the form, what was typed kept, nothing saved
    bad = bob.post(protect_url, data={"method": "round", "base": "0", "action": "preview", "_xsrf": token})
    assert bad.status_code == 400
    error = re.search(rf'id="protection-error-{output_id}">(.*?)</p>', bad.text).group(1)
    assert "丸めの基数は 1 から 1000000 までの整数" in error
    assert re.search(rf'id="base-{output_id}" name="base" inputmode="numeric" value="0"', bad.text)
    unknown = bob.post(protect_url + "?lang=en", data={
        "method": "none", "merge_variable": "region", "merge_levels": "B\nZ", "merge_label": "B or Z",
        "action": "preview", "_xsrf": token})
    assert unknown.status_code == 400
    assert "Z: not a level of region (its levels: A, B, C)" in html.unescape(unknown.text)
    assert "B\nZ</textarea>" in unknown.text and 'value="B or Z"' in unknown.text
    assert protections(settings) == []
    bob.get(page_url, params={"lang": "ja"})  # back to Japanese (the language is kept in a cookie)

    # --- preview: the service's recomputation with suppression, its verdict; nothing saved yet
    preview = bob.post(protect_url, data={"method": "suppress", "secondary": "hypercube", "action": "preview", "_xsrf": token})
    assert preview.status_code == 200
    shown = preview.text.split(f'id="protection-preview-{output_id}"')[1]
    cells = cells_of(shown)
    assert cells["C"] == "" and cells["Total"] == "57" and list(cells.values()).count("") == 2
    assert 'verdict-pass' in shown.split('class="preview-verdict"')[1][:80]
    checks = re.findall(r'<td class="check-message">(.*?)</td>', shown.split('<table class="list checks">')[1].split("</table>")[0])
    assert "該当セルはすべて秘匿済み(4 セル中 1 セル: 寄与するレコードが 10 未満(しきい値規則: n &lt; 10 は不合格))" in checks
    assert all(re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", m) for m in checks)  # the protection's own message too
    assert protections(settings) == []
    assert cells_of(section(bob.get(page_url).text, output_id))["C"] == "2"  # the output itself is unchanged

    # --- save: recomputed again by the service, recorded with who and when
    save_form = shown.split('class="protect-save"')[1].split("</form>")[0]
    fields = hidden_fields(save_form)
    assert fields["method"] == "suppress" and fields["previewed"]
    unpreviewed = bob.post(protect_url, data={**fields, "previewed": "", "_xsrf": token, "action": "save"})
    assert unpreviewed.status_code == 400 and "保存する前にプレビュー" in unpreviewed.text
    saved = bob.post(protect_url, data={**fields, "_xsrf": token, "action": "save"})
    assert saved.status_code == 200 and "秘匿処理を保存しました" in saved.text
    assert [(p.reviewer, p.revision) for p in protections(settings)] == [("bob", 1)]
    assert cells_of(section(saved.text, output_id))["C"] == ""
    assert 'name="method" value="suppress" checked' in section(saved.text, output_id)  # the form starts from it
    # a saved form sent again is of an old revision now
    again = bob.post(protect_url, data={**fields, "_xsrf": token, "action": "save"})
    assert again.status_code == 400 and "別の審査者が変更しました" in again.text

    # --- the second reviewer sees who applied which protection, and approves that content
    carol = login(base, "carol")
    carol_page = carol.get(page_url, params={"lang": "en"}).text
    applied = carol_page.split(f'id="protection-applied-{output_id}"')[1].split("</div>")[0]
    assert '<td class="applied-by">bob</td>' in applied and "Cell suppression" in applied
    vote_url = base + f"requests/{request_id}/outputs/{output_id}/vote"
    carol_token = xsrf_of(carol_page)
    assert carol.post(vote_url, data={"decision": "APPROVE", "revision": "1", "_xsrf": carol_token}).status_code == 200

    # --- bob changes the protection (merging B and C instead): carol's approval is withdrawn
    merge = {"method": "none", "merge_variable": "region", "merge_levels": "B\nC", "merge_label": "B+C"}
    page = bob.get(page_url).text
    preview = bob.post(protect_url, data={**merge, "revision": "1", "action": "preview", "_xsrf": token}).text
    shown = preview.split(f'id="protection-preview-{output_id}"')[1]
    assert cells_of(shown) == {"A": "30", "B+C": "27", "Total": "57"}
    assert "承認は取り消されます" in shown
    fields = hidden_fields(shown.split('class="protect-save"')[1].split("</form>")[0])
    assert bob.post(protect_url, data={**fields, "action": "save", "_xsrf": token}).status_code == 200
    carol_page = carol.get(page_url).text
    assert '<td class="invalidated">carol</td>' in carol_page
    stale = carol.post(vote_url, data={"decision": "APPROVE", "revision": "1", "_xsrf": carol_token})
    assert stale.status_code == 400 and "look at the table again before voting" in re.search(r'id="vote-error">(.*?)</p>', stale.text).group(1)
    for browser, browser_token in ((carol, carol_token), (bob, token)):
        r = browser.post(vote_url, data={"decision": "APPROVE", "revision": "2", "_xsrf": browser_token})
        assert r.status_code == 200, r.text

    # --- released from the protected cells; the researcher, outside a session (no hub here), sees only the status
    alice = login(base, "alice")
    alice_page = alice.get(page_url).text
    assert f'id="protection-applied-{output_id}"' not in alice_page and "applied-by" not in alice_page
    assert 'id="request-withheld"' in alice_page
    download = alice.get(base + f"requests/{request_id}/package.zip")
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        rows = list(csv.reader(io.StringIO(archive.read(f"release-{request_id}/small.csv").decode())))
        manifest = json.loads(archive.read(f"release-{request_id}/manifest.json"))
    assert {r[0]: r[1] for r in rows[1:]} == {"A": "30", "B+C": "27", "Total": "57"}
    assert [(p["reviewer"], p["choice"]["method"], p["invalidated_approvals"])
            for p in manifest["outputs"][0]["protections"]] == [("reviewer-1", "suppress", []), ("reviewer-1", "none", ["reviewer-2"])]
    assert "bob" not in json.dumps(manifest) and "carol" not in json.dumps(manifest)  # reviewers not named to researchers
    bobs = [e for e in events(settings, AuditEventType.OUTPUT_PROTECT) if e.actor == "bob"]
    assert [json.loads(e.details)["protection"]["method"] for e in bobs if e.outcome is Outcome.OK] == ["suppress", "none"]
    refused_saves = [json.loads(e.details)["reason"] for e in bobs if e.outcome is Outcome.DENIED]
    assert ["preview" in refused_saves[0], "meanwhile" in refused_saves[1]] == [True, True]  # unpreviewed, stale
