"""Record-level outputs (extracts) through the review service, on a dataset ingested with its metadata."""
from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pandas as pd
import pytest
from workflow_factories import ADMIN, World, payload, vote

from access_control import policy
from onsite_base.db import transaction
from dataplane.catalogue import DatasetMetadata, ingest
from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow import service
from disclosure_review.workflow.enums import Decision, OutputKind, ReleaseStatus
from disclosure_review.workflow.policies import ReviewPolicy

# (region, sex, age_group) -> records; ("C", "F", "90+") is a sample unique.
GROUPS = {("A", "M", "30-39"): 12, ("A", "F", "30-39"): 12, ("B", "M", "40-49"): 12, ("C", "F", "90+"): 1}
METADATA = {
    "id": "people",
    "title": {"ja": "人", "en": "People"},
    "variables": [
        {"name": "person_id", "label": {"ja": "番号", "en": "Id"}, "role": "direct_identifier"},
        {"name": "region", "label": {"ja": "地域", "en": "Region"}, "role": "key", "type": "VARCHAR"},
        {"name": "sex", "label": {"ja": "性別", "en": "Sex"}, "role": "key", "type": "VARCHAR"},
        {"name": "age_group", "label": {"ja": "年齢階級", "en": "Age group"}, "role": "key", "type": "VARCHAR"},
        {"name": "income", "label": {"ja": "収入", "en": "Income"}, "role": "sensitive", "type": "DOUBLE"},
        {"name": "weight", "label": {"ja": "ウェイト", "en": "Weight"}, "role": "weight", "type": "DOUBLE"},
    ],
}


def people_frame() -> pd.DataFrame:
    rows = [(region, sex, age) for (region, sex, age), n in GROUPS.items() for _ in range(n)]
    frame = pd.DataFrame(rows, columns=["region", "sex", "age_group"])
    frame.insert(0, "person_id", range(1, len(frame) + 1))
    frame["income"] = 1000.0 + frame["person_id"]
    frame["weight"] = 50.0
    return frame


def ingest_people(world: World) -> None:
    source = world.settings.home / "people.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    people_frame().to_csv(source, index=False)
    info = ingest(source, DatasetMetadata.from_dict(METADATA), "people", world.settings.datasets_dir, progress=False)
    today = date.today()
    with transaction(world.factory) as s:
        policy.register_dataset(s, dataset_id="people", title_ja="人", title_en="People", path=str(info.path),
                                rows=info.rows, source_sha256=info.source_sha256, actor=ADMIN)
        policy.add_grant(s, project_id="p1", dataset_id="people", valid_from=today - timedelta(days=1),
                         valid_until=today + timedelta(days=30), actor=ADMIN)


@pytest.fixture
def people(world: World) -> World:
    ingest_people(world)
    return world


def extract(name: str, query: str, keys=(), claimed=None) -> dict:
    spec = {"version": 1, "kind": "extract", "name": name, "query": query, "keys": list(keys),
            "weight": None, "household": None, "sensitive": []}
    out = {"name": name, "kind": "extract", "spec": spec}
    if claimed is not None:
        out["claimed"] = claimed
    return out


def submitted(world: World, *outputs: dict, policy_: ReviewPolicy | None = None):
    request = service.submit(world.factory, payload(*outputs), world.researcher, policy=policy_)
    return request.id, [(o.kind, o.verdict, o.verified, o.report, o.mismatch, o.recomputed) for o in request.outputs]


def below_k(frame: pd.DataFrame, keys: list[str], k: int) -> tuple[int, int]:
    """Records and key combinations with fewer than k records, by pandas (no missing values here)."""
    sizes = frame.groupby(keys).size()
    return int(sizes[sizes < k].sum()), int((sizes < k).sum())


def test_a_sample_unique_fails_and_forged_claims_are_ignored(people):
    forged = {"verdict": "pass", "risk": {"records": 0, "expected_reidentifications": 0.0, "max_individual_risk": 0.0}}
    # The spec names no key variable: the service takes them from the dataset's metadata anyway.
    _, [(kind, verdict, verified, report, mismatch, recomputed)] = submitted(
        people, extract("all_people", "SELECT region, sex, age_group, income FROM people", claimed=forged))
    frame = people_frame()
    records, combinations = below_k(frame, ["region", "sex", "age_group"], 3)
    assert (kind, verdict, verified) == (OutputKind.EXTRACT, Verdict.FAIL, True)
    assert report["roles"]["keys"] == ["region", "sex", "age_group"]
    assert report["roles"]["sensitive"] == ["income"]
    by_rule = {r["rule"]: r for r in report["results"]}
    assert by_rule["k_anonymity"]["verdict"] == "fail"
    assert by_rule["k_anonymity"]["parameters"]["records"] == records == 1
    assert by_rule["individual_risk"]["verdict"] == "fail"  # 1/f_k = 1 for the unique, no weight in the output
    risk = report["risk"]
    assert risk["k_anonymity"]["3"] == records and risk["combinations_below_k"] == combinations
    sizes = frame.groupby(["region", "sex", "age_group"])["region"].transform("size")
    assert risk["expected_reidentifications"] == pytest.approx(float((1 / sizes).sum()))
    assert risk["risky_combinations"][0]["values"] == {"region": "C", "sex": "F", "age_group": "90+"}
    assert recomputed["records"] == len(frame)
    assert {m["what"] for m in mismatch} == {"verdict", "records", "expected_reidentifications", "max_individual_risk"}


def test_a_k_anonymous_extract_passes_only_when_every_rule_decides(people):
    frame = people_frame()
    frame = frame[frame.region != "C"]
    # Every combination has 12 records: f_k >= 3 and 1/f_k = 0.083 <= 0.1, so both rules decide and hold.
    _, [(_, verdict, verified, report, _, _)] = submitted(
        people, extract("common", "SELECT region, sex, age_group FROM people WHERE region <> 'C'"))
    assert below_k(frame, ["region", "sex", "age_group"], 3) == (0, 0)
    assert (verdict, verified) == (Verdict.PASS, True)
    assert {r["rule"]: r["verdict"] for r in report["results"]}["individual_risk"] == "pass"
    # A renamed key variable cannot be placed: the check cannot decide, so review (never pass).
    _, [(_, verdict, _, report, _, _)] = submitted(
        people, extract("renamed", "SELECT region AS r, sex FROM people WHERE region <> 'C'"))
    assert verdict is Verdict.REVIEW
    assert report["roles"]["undeclared"] == ["r"]
    # No declared key variable at all in the output: review.
    _, [(_, verdict, _, _, _, _)] = submitted(people, extract("incomes", "SELECT income FROM people"))
    assert verdict is Verdict.REVIEW


def test_an_approved_extract_is_released_from_the_service_rerun(people):
    query = "SELECT region, sex, age_group FROM people WHERE region <> 'C' ORDER BY region, sex"
    request_id, [(_, verdict, _, _, _, _)] = submitted(
        people, extract("common", query), policy_=ReviewPolicy(required_approvals=1))
    assert verdict is Verdict.PASS
    assert vote(people, request_id, "bob", Decision.APPROVE) is ReleaseStatus.RELEASED
    released = (people.settings.egress_dir / str(request_id) / "common.csv").read_text("utf-8")
    expected = people_frame().query("region != 'C'").sort_values(["region", "sex"], kind="stable")
    rows = list(csv.reader(io.StringIO(released)))
    assert rows[0] == ["region", "sex", "age_group"]
    assert sorted(map(tuple, rows[1:])) == sorted(map(tuple, expected[["region", "sex", "age_group"]].values.tolist()))


def test_an_extract_of_an_ungranted_dataset_is_refused(people):
    from disclosure_review.workflow.exceptions import ReleasePermissionDenied

    with pytest.raises(ReleasePermissionDenied):
        submitted(people, extract("secret", "SELECT * FROM secret"))


def test_a_malformed_extract_spec_is_refused(people):
    from disclosure_review.workflow.exceptions import ReleaseRequestInvalid

    bad = extract("bad", "SELECT region FROM people")
    bad["spec"]["keys"] = "region"
    with pytest.raises(ReleaseRequestInvalid, match="keys must be a list"):
        submitted(people, bad)
    worse = extract("worse", "DELETE FROM people")
    with pytest.raises(ReleaseRequestInvalid, match="exactly one SELECT"):
        submitted(people, worse)
