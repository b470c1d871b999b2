"""Disclosure between outputs, end to end (#12): a researcher's real kernel sends pairs of tables whose difference is
one person, and reviewers vote on the review service's pages behind the real Hub.

The six cases: two tables in one request, two pending requests approved in turn (the approval that would disclose
is refused on the page, naming both outputs), one person's value set to 0 or to NULL in the recorded SQL, two
tables over unrelated populations with the same labels (not flagged), and a one-level sum (everyone minus two
tables released apart that cover all but one person).
"""
from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import select

from access_control.models import Project
from disclosure_review.workflow.store import ReleaseOutput
from functional.hubtools import HubUser, RunningHub
from functional.seeding import seed_demo
from onsite.demo import DEMO_DATASET, DEMO_PROJECT
from onsite_base.db import make_engine, session_factory, transaction

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REVIEW = "/services/onsite-review"
D = DEMO_DATASET
KERNEL_CODE = f"""
import json
import analysis_kernel
from analysis_kernel import outputs

db = analysis_kernel.connect()
# one adult whose income no one else has: the researcher singles them out by a value, not an identifier
[(x,)] = db.sql("SELECT annual_income FROM {D} WHERE age >= 20 AND annual_income IS NOT NULL "
                "GROUP BY 1 HAVING count(*) = 1 ORDER BY 1 LIMIT 1").fetchall()
everyone = "SELECT * FROM {D}"
but_one = f"SELECT * FROM {D} WHERE annual_income IS DISTINCT FROM {{x}}"
adults = "SELECT * FROM {D} WHERE age >= 20"
adults_but_one = f"SELECT * FROM {D} WHERE age >= 20 AND annual_income IS DISTINCT FROM {{x}}"
# and one aged 50 or more: "under 50" and "50 and over but them" released apart, everyone minus the two is them
[(y,)] = db.sql("SELECT annual_income FROM {D} WHERE age >= 50 AND annual_income IS NOT NULL "
                "GROUP BY 1 HAVING count(*) = 1 ORDER BY 1 LIMIT 1").fetchall()
under_50 = "SELECT * FROM {D} WHERE age < 50"
over_50_but_one = f"SELECT * FROM {D} WHERE age >= 50 AND annual_income IS DISTINCT FROM {{y}}"
changed = f"SELECT sex, CASE WHEN annual_income = {{x}} THEN {{{{to}}}} ELSE annual_income END AS annual_income FROM {D}"

def ask(title, *tables):
    return analysis_kernel.request_release(list(tables), title=title, purpose="between outputs", timeout=240)

answers = {{
    "same_request": ask("one request", outputs.frequency_table(db, everyone, rows="sex", name="everyone"),
                        outputs.frequency_table(db, but_one, rows="sex", name="but_one")),
    "sum_parts": ask("two halves", outputs.frequency_table(db, under_50, rows="sex", name="under_50"),
                     outputs.frequency_table(db, over_50_but_one, rows="sex", name="over_50_but_one")),
    "incomes": ask("incomes", outputs.magnitude_table(db, everyone, rows="sex", value="annual_income",
                                                     statistic="sum", name="incomes")),
    "zeroed": ask("zeroed", outputs.magnitude_table(db, changed.format(to=0), rows="sex", value="annual_income",
                                                   statistic="sum", name="incomes_zeroed")),
    "nulled": ask("nulled", outputs.magnitude_table(db, changed.format(to="NULL"), rows="sex",
                                                   value="annual_income", statistic="sum", name="incomes_nulled")),
    "first_pending": ask("adults", outputs.frequency_table(db, adults, rows="urban_rural", name="adults")),
    "second_pending": ask("adults but one", outputs.frequency_table(db, adults_but_one, rows="urban_rural",
                                                                  name="adults_but_one")),
    "unrelated_1": ask("north", outputs.frequency_table(db, "SELECT * FROM {D} WHERE prefecture = '01'", rows="sex",
                                                        name="sex_in_01")),
    "unrelated_2": ask("south", outputs.frequency_table(db, "SELECT * FROM {D} WHERE prefecture = '47'", rows="sex",
                                                        name="sex_in_47")),
}}
print("RESULT " + json.dumps(answers))
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    home = tmp_path_factory.mktemp("onsite-between")
    settings, logins = seed_demo(home, rows=3000)
    engine = make_engine(settings.db_url)
    with transaction(session_factory(engine)) as s:  # differencing fails under this preset (acro-default: review)
        s.get(Project, DEMO_PROJECT).preset = "jp-onsite"
    engine.dispose()
    with RunningHub(home) as hub:
        yield hub, settings, logins


def differencing(settings, request_id: int) -> dict[str, dict]:
    """{output name: its stored differencing result}, read from the store."""
    engine = make_engine(settings.db_url)
    try:
        with session_factory(engine)() as s:
            rows = s.execute(select(ReleaseOutput.name, ReleaseOutput.report)
                             .where(ReleaseOutput.request_id == request_id)).all()
    finally:
        engine.dispose()
    return {name: next(r for r in report["results"] if r["rule"] == "differencing") for name, report in rows}


def vote(reviewer: HubUser, request_id: int, decision: str, **fields: str):
    page = reviewer.http.get(f"{reviewer.hub.url}{REVIEW}/requests/{request_id}", timeout=30).content.decode()
    action = html.unescape(re.search(rf'action="([^"]*requests/{request_id}/outputs/\d+/vote)"', page).group(1))
    xsrf = html.unescape(re.search(r'name="_xsrf" value="([^"]+)"', page).group(1))
    return reviewer.http.post(f"{reviewer.hub.url}{action}", data={"_xsrf": xsrf, "decision": decision, **fields},
                              timeout=60)


def test_between_outputs_attacks_are_caught_and_unrelated_tables_are_not(running):
    hub, settings, logins = running
    researcher = HubUser(hub, "tanaka")
    assert researcher.login(logins["tanaka"].password).status_code == 302
    assert researcher.start_server().status_code in (201, 202)
    assert researcher.open_server().status_code == 200
    result = researcher.execute(researcher.start_kernel(), KERNEL_CODE, timeout=720)
    assert result.error is None, result.error
    answers = json.loads(next(l for l in result.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])
    ids = {case: answer["id"] for case, answer in answers.items()}
    verdicts = {o["name"]: o["verdict"].lower() for a in answers.values() for o in a["outputs"]}

    # 1. Two tables of one request differing by one person: both fail, each naming the other.
    same = differencing(settings, ids["same_request"])
    assert verdicts["everyone"] == verdicts["but_one"] == "fail"
    assert same["everyone"]["verdict"] == same["but_one"]["verdict"] == "fail"
    assert "of 'everyone' and cell" in same["everyone"]["message"] and "of 'but_one' differ on 1 records" in \
        same["everyone"]["message"]
    # 6. A one-level sum: everyone (of the first request) minus "under 50" minus "50 and over but one" is one person.
    parts = differencing(settings, ids["sum_parts"])
    assert verdicts["under_50"] == verdicts["over_50_but_one"] == "fail"
    for name in ("under_50", "over_50_but_one"):
        assert parts[name]["verdict"] == "fail", parts[name]["message"]
        assert f"cell Total of '#{ids['same_request']} everyone' minus the total of " in parts[name]["message"]
        assert "leaves 1 records" in parts[name]["message"]
    # 3. One person's value set to 0, or to NULL, in the recorded SQL: the same records, one contribution differs.
    for case, name in (("zeroed", "incomes_zeroed"), ("nulled", "incomes_nulled")):
        found = differencing(settings, ids[case])[name]
        assert verdicts[name] == "fail" and found["verdict"] == "fail", found["message"]
        assert f"of '#{ids['incomes']} incomes' differ on 1 records" in found["message"]
    # 5. Unrelated populations under the same labels: not flagged.
    assert differencing(settings, ids["unrelated_2"])["sex_in_47"]["verdict"] == "pass"
    assert verdicts["sex_in_47"] == "pass"

    # 2. Two pending requests approved in turn: the later (flagged against the pending one) is approved with an
    # override; the approval that would complete the earlier is refused on the page, naming both.
    assert verdicts["adults"] == "pass" and verdicts["adults_but_one"] == "fail"
    first, second = HubUser(hub, "sato"), HubUser(hub, "suzuki")
    for reviewer in (first, second):
        assert reviewer.login(logins[reviewer.username].password).status_code == 302
        assert vote(reviewer, ids["second_pending"], "APPROVE",
                    override_reason="judged against the pending table").status_code == 200
    assert (settings.egress_dir / str(ids["second_pending"])).exists()
    assert vote(first, ids["first_pending"], "APPROVE").status_code == 200
    refused = vote(second, ids["first_pending"], "APPROVE")
    page = refused.content.decode()
    assert refused.status_code == 400 and 'id="vote-error"' in page, page[:500]
    assert f"#{ids['second_pending']} adults_but_one" in page
    assert not (settings.egress_dir / str(ids["first_pending"])).exists()
