"""A reviewer applies targeted record swapping to an extract on the review page, over HTTP: the service re-runs the
extract with it, the CSV released is the swapped one, and what was swapped (and the seed) reaches reviewers only."""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import date, timedelta

import pandas as pd
import pytest
import requests
from test_review_web import login, output_ids, server, submit, xsrf_of  # noqa: F401  (server is a fixture)
from test_extract_swapping import HOUSEHOLDS, METADATA, census_frame  # tests/unit/workflow, on sys.path as above
from test_extracts import extract
from workflow_factories import ADMIN

from access_control import policy
from dataplane.catalogue import DatasetMetadata, ingest
from onsite_base.db import make_engine, session_factory, transaction

pytestmark = pytest.mark.integration

QUERY = "SELECT hid, pref, muni, hsize, age_group FROM census ORDER BY hid"
SWAP = {"method": "record_swap", "swap_hierarchy": "pref, muni", "swap_similar": "hsize", "swap_rate": "0.1",
        "swap_seed": "11"}


def ingest_census(settings) -> None:
    source = settings.home / "census.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    census_frame().to_csv(source, index=False)
    info = ingest(source, DatasetMetadata.from_dict(METADATA), "census", settings.datasets_dir, progress=False)
    engine = make_engine(settings.db_url)
    today = date.today()
    with transaction(session_factory(engine)) as s:
        policy.register_dataset(s, dataset_id="census", title_ja="国勢調査", title_en="Census", path=str(info.path),
                                rows=info.rows, source_sha256=info.source_sha256, actor=ADMIN)
        policy.add_grant(s, project_id="p1", dataset_id="census", valid_from=today - timedelta(days=1),
                         valid_until=today + timedelta(days=30), actor=ADMIN)
    engine.dispose()


def post_protection(who: requests.Session, base: str, request_id: int, output_id: int, **form) -> requests.Response:
    page = who.get(base + f"requests/{request_id}").text
    return who.post(base + f"requests/{request_id}/outputs/{output_id}/protection",
                    params={"lang": form.pop("lang", "en")}, data={"_xsrf": xsrf_of(page), **form})


def section_of(page: str, output_id: int) -> str:
    return page.split(f'id="output-{output_id}"')[1].split('<section class="output"')[0]


def swap_figure(html: str, name: str) -> str:
    """A figure of the swap summary by its English label."""
    return re.search(rf"<dt>{name}</dt><dd[^>]*>([^<]*)</dd>", html).group(1).strip()


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_reviewer_swaps_an_extract_and_only_reviewers_see_how(server):  # noqa: F811
    base, settings = server
    ingest_census(settings)
    answer = submit(base, extract("households", QUERY))
    assert answer.status_code == 201, answer.text
    request_id = answer.json()["id"]
    bob, carol, alice = (login(base, user) for user in ("bob", "carol", "alice"))
    page = bob.get(base + f"requests/{request_id}", params={"lang": "en"}).text
    [output_id] = output_ids(page)
    assert 'class="protect-form swap-form"' in section_of(page, output_id)

    # The requester cannot apply it: refused, nothing stored.
    r = post_protection(alice, base, request_id, output_id, action="preview", **SWAP)
    assert r.status_code == 403, r.text
    assert 'class="protect-form' not in alice.get(base + f"requests/{request_id}").text

    # Bad input: the reason, in the page's language, beside the form.
    r = post_protection(bob, base, request_id, output_id, action="preview", **{**SWAP, "swap_rate": "1.5"})
    assert r.status_code == 400 and "The swap rate must be a number above 0 and at most 1 (you gave: 1.5)" in r.text
    r = post_protection(bob, base, request_id, output_id, action="preview", lang="ja",
                        **{**SWAP, "swap_hierarchy": "pref, town"})
    assert r.status_code == 400 and "town はこの個票データの変数ではありません" in r.text
    r = post_protection(bob, base, request_id, output_id, action="preview", **{**SWAP, "swap_seed": "-3"})
    assert r.status_code == 400 and "The seed must be a whole number" in r.text

    # Preview, then save what was previewed.
    r = post_protection(bob, base, request_id, output_id, action="preview", **SWAP)
    assert r.status_code == 200, r.text
    preview = r.text.split(f'id="protection-preview-{output_id}"')[1]
    digest = re.search(r'name="previewed" value="([0-9a-f]{64})"', preview).group(1)
    r = post_protection(bob, base, request_id, output_id, action="save", previewed=digest, revision="0", **SWAP)
    assert r.status_code == 200, r.text

    reviewer_page = section_of(bob.get(base + f"requests/{request_id}", params={"lang": "en"}).text, output_id)
    summary = reviewer_page.split(f'id="swap-summary-{output_id}"')[1].split("</dl>")[0]
    assert swap_figure(summary, "Households") == str(HOUSEHOLDS)
    swapped = int(swap_figure(summary, "Households swapped \\(target\\)").split()[0])
    assert swapped >= 0.1 * HOUSEHOLDS
    assert "Seed" in reviewer_page and "pref → muni" in reviewer_page  # the parameters, for reviewers
    r = post_protection(bob, base, request_id, output_id, action="preview", **{**SWAP, "swap_seed": "8"})
    assert r.status_code == 200, r.text  # a new preview beside the saved swap: every element id once on the page
    ids = re.findall(r'\bid="([^"]+)"', r.text)
    assert f"swap-summary-{output_id}-preview" in ids and not {i for i in ids if ids.count(i) > 1}

    # The researcher's page: no swap report, no parameters, no seed.
    researcher_page = section_of(alice.get(base + f"requests/{request_id}", params={"lang": "en"}).text, output_id)
    for hidden in ("swap-summary", "swap-pair", "Record swapping (reviewers only)", "Seed", "pref → muni"):
        assert hidden not in researcher_page, hidden

    for who in (bob, carol):  # swapping leaves key combinations below k (verdict fail): approved with a reason
        r = who.post(base + f"requests/{request_id}/outputs/{output_id}/vote",
                     data={"decision": "APPROVE", "override_reason": "key values of swapped households are perturbed",
                           "_xsrf": xsrf_of(who.get(base + f"requests/{request_id}").text)})
        assert r.status_code == 200, r.text
    download = alice.get(base + f"requests/{request_id}/package.zip")
    assert download.status_code == 200
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        released = archive.read(f"release-{request_id}/households.csv").decode()
        manifest = archive.read(f"release-{request_id}/manifest.json").decode()
    # The released CSV is the swapped re-run: the households the reviewers saw swapped live elsewhere now, the
    # rest of each record is as it was.
    after = pd.DataFrame(list(csv.DictReader(io.StringIO(released)))).astype({"hid": int, "hsize": int,
                                                                               "age_group": int})
    before = census_frame()[["hid", "pref", "muni", "hsize", "age_group"]]
    assert (after.drop(columns=["pref", "muni"]).values == before.drop(columns=["pref", "muni"]).values).all()
    moved = after.loc[after["muni"].values != before["muni"].values, "hid"].nunique()
    assert moved == swapped
    # The package names the method, never its parameters nor what was swapped.
    protections = json.loads(manifest)["outputs"][0]["protections"]
    assert [p["choice"]["method"] for p in protections] == ["record_swap"]
    for hidden in ("swapping", "seed", "partner", "hierarchy", '"11"'):
        assert hidden not in manifest, hidden
