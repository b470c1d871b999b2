"""The review pages a newcomer reads (#19), over HTTP against the real app: codes with their labels from the
dataset metadata, check parameters as a list, times in the facility's zone, and the released package
(files, SHA-256, votes) with reviewers not named to the researcher. `labelled_world` is shared with the
Chromium test (test_review_web_labels_browser.py)."""
from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import date, timedelta

import pytest
from test_review_web import login, output_ids, server, submit, xsrf_of  # noqa: F401  (server is a fixture)
from test_extracts import extract  # tests/unit/workflow, put on sys.path by test_review_web
from workflow_factories import ADMIN, table_output

from access_control import policy
from dataplane.catalogue import DatasetMetadata, ingest
from disclosure_review.workflow.store import ReleasePackage
from onsite_base.db import make_engine, session_factory, transaction

pytestmark = pytest.mark.integration

# prefecture x sex: 19 (Yamanashi) x 2 (female) has 2 records, the small cell the threshold rule flags
COUNTS = {("13", 1): 20, ("13", 2): 20, ("19", 1): 12, ("19", 2): 2}
METADATA = {
    "id": "labour",
    "title": {"ja": "労働調査", "en": "Labour survey"},
    "variables": [
        {"name": "person_id", "label": {"ja": "個人番号", "en": "Person"}, "role": "other", "type": "INTEGER"},
        {"name": "prefecture", "label": {"ja": "都道府県", "en": "Prefecture"}, "role": "key", "type": "VARCHAR",
         "codes": {"13": {"ja": "東京都", "en": "Tokyo"}, "19": {"ja": "山梨県", "en": "Yamanashi"}}},
        {"name": "sex", "label": {"ja": "性別", "en": "Sex"}, "role": "key", "type": "TINYINT",
         "codes": {"1": {"ja": "男", "en": "Male"}, "2": {"ja": "女", "en": "Female"}}},
    ],
}
TABLE = table_output("by_prefecture_sex", "SELECT * FROM labour", rows=("prefecture", "sex"))
PASSING = table_output("by_sex", "SELECT * FROM labour WHERE prefecture = '13'", rows=("sex",))
EXTRACT = extract("records", "SELECT prefecture, sex FROM labour")


def labelled_world(settings) -> None:
    """Dataset `labour` (with code lists in its metadata), ingested for real and granted to project p1."""
    source = settings.home / "labour.csv"
    rows = [(prefecture, sex) for (prefecture, sex), n in COUNTS.items() for _ in range(n)]
    source.write_text("person_id,prefecture,sex\n" + "".join(f"{i},{p},{s}\n" for i, (p, s) in enumerate(rows, 1)))
    info = ingest(source, DatasetMetadata.from_dict(METADATA), "labour", settings.datasets_dir, progress=False)
    engine = make_engine(settings.db_url)
    today = date.today()
    with transaction(session_factory(engine)) as s:
        policy.register_dataset(s, dataset_id="labour", title_ja="労働調査", title_en="Labour survey", path=str(info.path),
                                rows=info.rows, source_sha256=info.source_sha256, actor=ADMIN)
        policy.add_grant(s, project_id="p1", dataset_id="labour", valid_from=today - timedelta(days=1),
                         valid_until=today + timedelta(days=30), actor=ADMIN)
    engine.dispose()


def section(page: str, output_id: int) -> str:
    return page.split(f'id="output-{output_id}"')[1].split('<section class="output"')[0]


def row_heads(html: str) -> list[list[str]]:
    """The row headers of the first table of released cells in `html`."""
    table = html.split('<table class="cells">')[1].split("</table>")[0]
    return [re.findall(r'<th scope="row">(.*?)</th>', row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_codes_labelled_parameters_listed_times_zoned(server):
    base, settings = server
    labelled_world(settings)
    answer = submit(base, TABLE, EXTRACT)
    assert answer.status_code == 201, answer.text
    request_id = answer.json()["id"]
    bob = login(base, "bob")
    ja = bob.get(base + f"requests/{request_id}", params={"lang": "ja"}).text
    en = bob.get(base + f"requests/{request_id}", params={"lang": "en"}).text
    table_id, extract_id = output_ids(ja)

    # cells: "code label" in the page's language; the margins stay as computed
    assert ["19 山梨県", "2 女"] in row_heads(section(ja, table_id))
    assert ["19 Yamanashi", "2 Female"] in row_heads(section(en, table_id))
    assert ["13 Tokyo", "1 Male"] in row_heads(section(en, table_id))
    assert not any(head == ["19", "2"] for head in row_heads(section(en, table_id)))  # no bare code left
    # the checks: the flagged cell by its labels, the parameters as a list (never raw JSON)
    checks = section(en, table_id).split('<table class="list checks">')[1].split("</table>")[0]
    assert "<li>19 Yamanashi / 2 Female</li>" in checks
    assert "<dt>threshold</dt><dd>10</dd>" in checks and "{&#34;" not in checks and '{"' not in checks
    checks_ja = section(ja, table_id).split('<table class="list checks">')[1].split("</table>")[0]
    assert "<li>19 山梨県 / 2 女</li>" in checks_ja and "<dt>しきい値</dt><dd>10</dd>" in checks_ja
    # the extract's riskiest combinations, labelled
    combination = re.search(r'<tr class="risky-combination">(.*?)</tr>', section(en, extract_id), re.S).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", combination)[:2] == ["19 Yamanashi", "2 Female"]
    assert "<dt>k</dt><dd>" in section(en, extract_id) and "{&#34;" not in section(en, extract_id)
    # times: the facility's zone (Asia/Tokyo unless set), shown
    submitted = re.search(r"<dt>Submitted</dt><dd>(.*?)</dd>", en).group(1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d JST", submitted), submitted
    queue = bob.get(base + "queue", params={"lang": "en"}).text
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d JST</td>", queue) and " UTC" not in queue


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_released_package_for_reviewers_and_pseudonyms_for_the_researcher(server):
    base, settings = server
    labelled_world(settings)
    request_id = submit(base, PASSING).json()["id"]
    for reviewer in ("bob", "carol"):
        who = login(base, reviewer)
        page = who.get(base + f"requests/{request_id}").text
        [output_id] = output_ids(page)
        r = who.post(base + f"requests/{request_id}/outputs/{output_id}/vote",
                     data={"decision": "APPROVE", "_xsrf": xsrf_of(page)})
        assert r.status_code == 200, r.text
    zipped = login(base, "alice").get(base + f"requests/{request_id}/package.zip")
    assert zipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        files = {n.rsplit("/", 1)[-1]: archive.read(n) for n in archive.namelist()}
    manifest = json.loads(files["manifest.json"])
    # the researcher's package: reviewers by pseudonym, in the order they voted; no name anywhere
    assert [v["reviewer"] for v in manifest["outputs"][0]["votes"]] == ["reviewer-1", "reviewer-2"]
    assert b"bob" not in files["manifest.json"] and b"carol" not in files["manifest.json"]

    bob = login(base, "bob")
    queue = bob.get(base + "queue", params={"lang": "en"}).text
    assert f'href="/services/onsite-review/requests/{request_id}#package"' in queue  # released requests are reachable
    page = bob.get(base + f"requests/{request_id}", params={"lang": "en"}).text
    package = page.split('id="package"')[1].split("</section>")[0]
    digest = re.search(r'<code id="manifest-sha256">([0-9a-f]{64})</code>', package).group(1)
    assert digest == hashlib.sha256(files["manifest.json"]).hexdigest()
    row = re.search(r'<tr class="package-file">(.*?)</tr>', package, re.S).group(1)
    assert '<td class="file-name">by_sex.csv</td>' in row
    assert f'<code class="sha256">{hashlib.sha256(files["by_sex.csv"]).hexdigest()}</code>' in row
    reviewers = re.findall(r'<span class="package-reviewer">(.*?)</span>', row)
    assert reviewers == ["bob (reviewer-1)", "carol (reviewer-2)"]  # the reviewer sees who is behind each pseudonym
    assert re.search(r'id="package-released-at">\d{4}-\d\d-\d\d \d\d:\d\d JST<', package)
    japanese = bob.get(base + f"requests/{request_id}", params={"lang": "ja"}).text
    assert "公表パッケージ" in japanese and "承認" in japanese.split('id="package"')[1].split("</section>")[0]

    # the researcher's page: the same package, pseudonyms only
    mine = login(base, "alice").get(base + f"requests/{request_id}", params={"lang": "en"}).text
    theirs = mine.split('id="package"')[1].split("</section>")[0]
    assert re.findall(r'<span class="package-reviewer">(.*?)</span>', theirs) == ["reviewer-1", "reviewer-2"]
    assert "bob" not in theirs and "carol" not in theirs

    # a package changed after release: the reviewer is told, nothing of it is shown as good
    engine = make_engine(settings.db_url)
    with session_factory(engine)() as s:
        root = s.query(ReleasePackage).filter_by(request_id=request_id).one().path
    engine.dispose()
    (settings.egress_dir / str(request_id) / "by_sex.csv").write_text("sex,count\n1,1\n")
    assert str(settings.egress_dir / str(request_id)) == root
    tampered = bob.get(base + f"requests/{request_id}", params={"lang": "en"}).text.split('id="package"')[1]
    assert 'id="package-tampered"' in tampered and "by_sex.csv" in tampered and "package-file" not in tampered
