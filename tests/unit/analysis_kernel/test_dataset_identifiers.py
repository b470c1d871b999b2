"""Identifying columns in a dataset's metadata (`identifiers`, household ids) and the tracker check that reads
them through a guarded connection, as the kernel and the review service do."""
from __future__ import annotations

import pytest

from analysis_kernel.connection import AnalysisConnection
from analysis_kernel.outputs import extract_output, frequency_table
from dataplane.catalogue import DatasetMetadata, MetadataInvalid, guarded_connection, read_metadata
from dataplane.manifest import SessionManifest
from disclosure_review.queries import tracker_check
from disclosure_review.sdc import Verdict


def metadata(**extra) -> dict:
    variables = [("person_id", "other"), ("household_id", "household"), ("name", "direct_identifier"),
                 ("age", "key"), ("income", "sensitive")]
    return {"id": "lfs", "title": {"ja": "労働力調査", "en": "LFS"}, **extra,
            "variables": [{"name": n, "label": {"ja": n, "en": n}, "role": r} for n, r in variables]}


def test_identifiers_and_household_ids_identify() -> None:
    parsed = DatasetMetadata.from_dict(metadata(identifiers=["person_id"]))
    assert parsed.identifying == ["person_id", "household_id"]
    assert DatasetMetadata.from_dict(parsed.to_dict()) == parsed
    assert DatasetMetadata.from_dict(metadata()).identifying == ["household_id"]


@pytest.mark.parametrize(("identifiers", "says"), [
    (["pid"], "identifiers pid are no declared variables kept at ingest"),
    (["name"], "identifiers name are no declared variables kept at ingest"),  # dropped at ingest
    ("person_id", "identifiers must be a list of variable names"),
    ([1], "identifiers must be a list of variable names"),
])
def test_bad_identifiers_are_refused_saying_what_to_fix(identifiers, says) -> None:
    with pytest.raises(MetadataInvalid, match=says):
        DatasetMetadata.from_dict(metadata(identifiers=identifiers))


def test_the_demo_dataset_declares_its_ids(demo_dataset) -> None:
    assert read_metadata(demo_dataset).identifying == ["household_id", "person_id"]


@pytest.mark.parametrize(("query", "verdict"), [
    ("SELECT * FROM demo_household WHERE person_id <> 17", Verdict.REVIEW),
    ("SELECT * FROM demo_household d WHERE d.household_id IN (1, 2)", Verdict.REVIEW),
    ("SELECT * FROM demo_household WHERE sex = '1'", Verdict.PASS),
    ("SELECT * FROM demo_household WHERE person_no = 1", Verdict.PASS),  # member number: no unit id
])
def test_the_check_takes_the_ids_from_the_attached_datasets(demo_dataset, query, verdict) -> None:
    con = guarded_connection({"demo_household": demo_dataset})
    try:
        assert tracker_check(con, query, ["demo_household"]).verdict is verdict
    finally:
        con.close()


def test_the_notebook_shows_the_tracker_reason_before_release(demo_dataset, write_manifest) -> None:
    manifest = SessionManifest.load(write_manifest({"p1": {"demo_household": demo_dataset}}))
    db = AnalysisConnection(guarded_connection(manifest.projects["p1"].datasets), "p1", manifest)
    try:
        table = frequency_table(db, "SELECT * FROM demo_household WHERE person_id <> 17", rows="sex")
        assert table.report.result("tracker").verdict is Verdict.REVIEW
        assert table.verdict is not Verdict.PASS
        sample = extract_output(db, "SELECT sex, prefecture FROM demo_household USING SAMPLE 100")
        assert sample.verdict is not Verdict.PASS
        assert any(r.startswith("tracker (review):") and r.endswith("sampling (USING SAMPLE)") for r in sample.reasons())
    finally:
        db.close()
