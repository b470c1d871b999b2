"""A record-level extract through the reviewer app over HTTP: risk summary shown, records never, CSV released."""
from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
import requests
from test_review_web import login, mismatch_rows, output_ids, server, submit, xsrf_of  # noqa: F401  (server is a fixture)
from test_extracts import extract, ingest_people, people_frame  # tests/unit/workflow, put on sys.path by test_review_web
from workflow_factories import World

from onsite_base.db import make_engine, session_factory

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_extract_review_through_the_web(server):  # noqa: F811
    base, settings = server
    engine = make_engine(settings.db_url)
    ingest_people(World(factory=session_factory(engine), settings=settings))
    engine.dispose()
    forged = {"verdict": "pass", "risk": {"records": 3, "expected_reidentifications": 0.0}}
    risky = extract("with_incomes", "SELECT region, sex, age_group, income FROM people", claimed=forged)
    safe = extract("common", "SELECT region, sex, age_group FROM people WHERE region <> 'C'")
    answer = submit(base, risky, safe)
    assert answer.status_code == 201, answer.text
    assert [(o["name"], o["verdict"]) for o in answer.json()["outputs"]] == [("with_incomes", "fail"), ("common", "pass")]
    request_id = answer.json()["id"]

    bob = login(base, "bob")
    page = bob.get(base + f"requests/{request_id}", params={"lang": "en"}).text
    risky_id, safe_id = output_ids(page)
    section = page.split(f'id="output-{risky_id}"')[1].split('<section class="output"')[0]
    frame = people_frame()
    sizes = frame.groupby(["region", "sex", "age_group"]).size()
    assert re.search(rf'id="extract-records-{risky_id}">{len(frame)}<', section)
    assert re.search(rf'id="extract-below-k-{risky_id}">{int(sizes[sizes < 3].sum())}<', section)
    assert re.search(rf'id="extract-max-risk-{risky_id}">1.0000<', section)  # the unique: 1/f_k = 1
    combination = re.search(r'<tr class="risky-combination">(.*?)</tr>', section, re.S).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", combination)[:3] == ["C", "F", "90+"]
    assert "Record-level extract" in section and "mismatch-row" in section  # the forged claim shown as differing
    below_k = int(sizes[sizes < 3].sum())
    assert f'<td class="check-message">{below_k} records in key combinations of fewer than 3 records</td>' in section
    japanese = bob.get(base + f"requests/{request_id}", params={"lang": "ja"}).text.split(f'id="output-{risky_id}"')[1]
    assert f'<td class="check-message">3 レコード未満のキーの組合せに属するレコード {below_k} 件(k-匿名性)</td>' in japanese
    # the forged claim's figures named in the page's language
    assert [row[0] for row in mismatch_rows(page, risky_id)] == ["verdict", "records", "expected_reidentifications"]
    ja_page = bob.get(base + f"requests/{request_id}", params={"lang": "ja"}).text
    assert mismatch_rows(ja_page, risky_id)[:2] == [("判定", "合格", "不合格"), ("レコード数", "3", str(len(frame)))]
    assert mismatch_rows(ja_page, risky_id)[2][0] == "期待再識別数"
    # The records themselves are never on the page: no income as a number of the page's text (not inside a
    # tag, where e.g. the XSRF token's timestamp may hold the same digits).
    shown = re.sub(r"<[^>]*>", " ", page)
    for income in frame["income"]:
        for written in {f"{income:g}", f"{income}"}:
            assert not re.search(rf"(?<![\d.]){re.escape(written)}(?![\d.])", shown), written

    token = xsrf_of(page)
    carol = login(base, "carol")
    carol_token = xsrf_of(carol.get(base + f"requests/{request_id}").text)
    r = bob.post(base + f"requests/{request_id}/outputs/{risky_id}/vote",
                 data={"decision": "REJECT", "comment": "a sample unique", "_xsrf": token})
    assert r.status_code == 200, r.text  # one rejection decides
    for who, xsrf in ((bob, token), (carol, carol_token)):
        r = who.post(base + f"requests/{request_id}/outputs/{safe_id}/vote", data={"decision": "APPROVE", "_xsrf": xsrf})
        assert r.status_code == 200, r.text
    download = login(base, "alice").get(base + f"requests/{request_id}/package.zip")
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        names = sorted(n.rsplit("/", 1)[-1] for n in archive.namelist())
        released = archive.read(f"release-{request_id}/common.csv").decode()
    assert names == ["common.csv", "manifest.json", "manifest.sig"]
    rows = list(csv.reader(io.StringIO(released)))
    expected = frame[frame.region != "C"][["region", "sex", "age_group"]]
    assert rows[0] == ["region", "sex", "age_group"]
    assert sorted(map(tuple, rows[1:])) == sorted(map(tuple, expected.values.tolist()))
    status = requests.get(base + f"api/requests/{request_id}", headers={"Authorization": "token test-alice"}).json()
    assert status["status"] == "RELEASED"
