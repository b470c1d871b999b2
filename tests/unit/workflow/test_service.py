"""The workflow through its service functions, on SQLite and PostgreSQL, with real DuckDB recomputation."""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import stat
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from access_control import audit
from onsite_base.db import transaction
from access_control.enums import AuditEventType
from access_control.models import AuditEvent
from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow import service
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from disclosure_review.workflow.exceptions import (
    ReleasePermissionDenied,
    ReleaseRequestInvalid,
    VoteInvalid,
)
from disclosure_review.workflow.policies import ReviewPolicy
from disclosure_review.workflow.store import ReleaseRequest

from workflow_factories import REGION_COUNTS, payload, status_of, submit, table_output, vote

PASSING = "SELECT * FROM survey WHERE region <> 'C'"


def _request_count(world) -> int:
    with transaction(world.factory) as s:
        return s.scalar(select(func.count()).select_from(ReleaseRequest))


def _output(world, request_id: int, position: int = 0):
    with transaction(world.factory) as s:
        return service.view(s, request_id, "alice").outputs[position]


def _png_with_metadata() -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "person_id=4711 income=98765432")
    out = io.BytesIO()
    Image.new("RGB", (8, 4), (200, 10, 10)).save(out, format="PNG", pnginfo=info)
    return out.getvalue() + b"TRAILING-SECRET"


def test_passing_table_is_recomputed_from_source(world):
    request_id = submit(world, table_output(query=PASSING))
    output = _output(world, request_id)
    assert output.verdict is Verdict.PASS and output.verified
    cells = {tuple(row[:-1]): row[-1] for row in output.recomputed["rows"]}
    assert cells[("A",)] == REGION_COUNTS["A"] and cells[("B",)] == REGION_COUNTS["B"]
    assert cells[("Total",)] == REGION_COUNTS["A"] + REGION_COUNTS["B"]
    assert status_of(world, request_id) is ReleaseStatus.SUBMITTED


def test_forged_claimed_figures_are_ignored(world):
    forged = {
        "verdict": "pass",
        "shadow": {
            "version": 1,
            "columns": ["region", "sdc_grouping", "sdc_records", "sdc_value"],
            "rows": [["A", 0, 300, 300], ["B", 0, 250, 250], ["C", 0, 200, 200], [None, 1, 750, 750]],
        },
    }
    request_id = submit(world, table_output(claimed=forged))
    output = _output(world, request_id)
    assert output.verdict is Verdict.FAIL  # the real cell C holds 2 records
    cells = {tuple(row[:-1]): row[-1] for row in output.recomputed["rows"]}
    assert cells[("C",)] == 2
    assert output.claimed == forged  # kept for display only
    what = {m["what"]: m for m in output.mismatch}
    assert what["verdict"]["claimed"] == "pass" and what["verdict"]["recomputed"] == "fail"
    assert what["C: sdc_records"]["claimed"] == 200 and what["C: sdc_records"]["recomputed"] == 2


def test_query_on_a_dataset_not_granted_is_refused(world):
    with pytest.raises(ReleasePermissionDenied, match="no active grant for dataset.*secret"):
        submit(world, table_output(query="SELECT * FROM secret"))
    assert _request_count(world) == 0


def test_query_on_a_hidden_dataset_fails_closed(world):
    # The attached-catalogue name of a dataset not granted: never opened, so it cannot be read.
    request_id = submit(world, table_output(query="SELECT * FROM survey UNION ALL SELECT * FROM onsite_secret.microdata"))
    output = _output(world, request_id)
    assert output.verdict is Verdict.FAIL and not output.verified and output.error
    assert output.recomputed is None


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT content AS region FROM read_text('/etc/passwd')",
        "SELECT * FROM survey WHERE region IN (SELECT column0 FROM read_csv('/etc/passwd'))",
    ],
)
def test_query_reading_files_fails_closed(world, query):
    request_id = submit(world, table_output(query=query))
    output = _output(world, request_id)
    assert output.verdict is Verdict.FAIL and not output.verified
    assert "root" not in json.dumps(output.recomputed) and output.error


def test_copy_to_is_refused_at_submission(world, tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(ReleaseRequestInvalid, match="SELECT"):
        submit(world, table_output(query=f"COPY (SELECT * FROM survey) TO '{target}'"))
    assert not target.exists() and _request_count(world) == 0


def test_timeout_interrupts_the_query(world):
    slow = "SELECT s.region FROM survey s, range(1000000000) r WHERE hash(r.range + length(s.region)) = 42"
    request_id = submit(world, table_output(query=slow), policy_=ReviewPolicy(query_timeout_s=0.3))
    output = _output(world, request_id)
    assert output.verdict is Verdict.FAIL and "stopped" in output.error


def test_identity_is_never_taken_from_the_payload(world):
    bad = payload(table_output(query=PASSING)) | {"requester": "bob"}
    with pytest.raises(ReleaseRequestInvalid, match="unknown key"):
        service.submit(world.factory, bad, "alice")


@pytest.mark.parametrize(
    "broken,message",
    [
        ({"project": "p1", "title": "t", "purpose": "p", "outputs": []}, "non-empty list"),
        (payload({"name": "x", "kind": "notebook"}), "kind must be"),
        (payload({"name": "../evil", "kind": "table", "spec": {}}), "name"),
        (payload(table_output(), table_output()), "used twice"),
        (payload({"name": "f", "kind": "file", "filename": "a.exe", "content_b64": "AA==", "code": "x", "explanation": "y"}), "cannot be released"),
        (payload({"name": "f", "kind": "file", "filename": "a.png", "content_b64": "not base64!", "code": "x", "explanation": "y"}), "base64"),
        (payload({"name": "f", "kind": "file", "filename": "a.png", "content_b64": "aGVsbG8=", "code": "x", "explanation": "y"}), "not readable as an image"),
        (payload(table_output(query=PASSING), project="nope"), "no project"),
    ],
)
def test_bad_payloads_are_refused_and_change_nothing(world, broken, message):
    with pytest.raises(ReleaseRequestInvalid, match=message):
        service.submit(world.factory, broken, "alice")
    assert _request_count(world) == 0


def test_non_member_cannot_submit(world):
    with pytest.raises(ReleasePermissionDenied, match="not a member"):
        submit(world, table_output(query=PASSING), requester="erin")


def test_reviewer_on_own_project_and_requester_are_refused(world):
    request_id = submit(world, table_output(query=PASSING))
    with pytest.raises(ReleasePermissionDenied, match="member of project p1"):
        vote(world, request_id, "dave", Decision.APPROVE)
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match="not a reviewer"):
        output = service.view(s, request_id, "alice").outputs[0]
        service.vote(s, output.id, "alice", Decision.APPROVE, settings=world.settings)
    own = submit(world, table_output(query=PASSING), requester="dave")  # dave is a reviewer too
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match="own release request"):
        output = service.view(s, own, "dave").outputs[0]
        service.vote(s, output.id, "dave", Decision.APPROVE, settings=world.settings)
    with transaction(world.factory) as s:
        assert [r.id for r in service.queue(s, "bob")] == [request_id, own]
        assert service.queue(s, "dave") == []  # never shown their own project's requests
        with pytest.raises(ReleasePermissionDenied, match="not a reviewer"):
            service.queue(s, "alice")


def test_a_reviewer_votes_once_per_output(world):
    request_id = submit(world, table_output(query=PASSING))
    assert vote(world, request_id, "bob", Decision.APPROVE) is ReleaseStatus.PARTIALLY_REVIEWED
    with pytest.raises(ReleasePermissionDenied, match="already voted"):
        vote(world, request_id, "bob", Decision.APPROVE)
    assert _output(world, request_id).decision is None  # one approval of the two required


def test_failing_output_needs_a_written_override(world):
    request_id = submit(world, table_output())
    assert _output(world, request_id).verdict is Verdict.FAIL
    with pytest.raises(VoteInvalid, match="override reason"):
        vote(world, request_id, "bob", Decision.APPROVE, comment="fine")
    assert status_of(world, request_id) is ReleaseStatus.SUBMITTED
    vote(world, request_id, "bob", Decision.APPROVE, override_reason="C is published in the census tables")
    vote(world, request_id, "carol", Decision.APPROVE, override_reason="agreed: published figure")
    assert status_of(world, request_id) is ReleaseStatus.RELEASED
    manifest = json.loads((world.settings.egress_dir / str(request_id) / "manifest.json").read_text())
    reasons = [v["override_reason"] for v in manifest["outputs"][0]["votes"]]
    assert reasons == ["C is published in the census tables", "agreed: published figure"]


def test_release_package_is_rendered_by_the_service(world):
    png = _png_with_metadata()
    figure = {
        "name": "figure", "kind": "file", "filename": "plot.png", "content_b64": base64.b64encode(png).decode(),
        "code": "plt.bar(...)", "explanation": "bars of the released table",
    }
    request_id = submit(world, table_output(query=PASSING), figure)
    assert _output(world, request_id, 1).verdict is Verdict.REVIEW and not _output(world, request_id, 1).verified
    with pytest.raises(VoteInvalid, match="comment"):
        vote(world, request_id, "bob", Decision.APPROVE, position=1)
    for reviewer in ("bob", "carol"):
        vote(world, request_id, reviewer, Decision.APPROVE, position=0)
        vote(world, request_id, reviewer, Decision.APPROVE, position=1, comment="only the released counts")
    assert status_of(world, request_id) is ReleaseStatus.RELEASED

    root = world.settings.egress_dir / str(request_id)
    assert stat.S_IMODE(root.stat().st_mode) == 0o750
    manifest = json.loads((root / "manifest.json").read_text())
    names = sorted(p.name for p in root.iterdir())
    assert names == ["by_region.csv", "figure.png", "manifest.json", "manifest.sig"]
    for entry in manifest["files"]:
        data = (root / entry["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        assert stat.S_IMODE((root / entry["name"]).stat().st_mode) == 0o640
    rows = list(csv.reader(io.StringIO((root / "by_region.csv").read_text())))
    assert rows[0] == ["region", "count"]
    assert {r[0]: float(r[1]) for r in rows[1:]} == {"A": 30, "B": 25, "Total": 55}
    released_png = (root / "figure.png").read_bytes()
    assert b"person_id" not in released_png and b"TRAILING-SECRET" not in released_png
    from PIL import Image

    assert Image.open(io.BytesIO(released_png)).getpixel((0, 0)) == (200, 10, 10)
    assert [o["decision"] for o in manifest["outputs"]] == ["APPROVE", "APPROVE"]
    assert {v["reviewer"] for v in manifest["outputs"][1]["votes"]} == {"reviewer-1", "reviewer-2"}  # not named
    assert "bob" not in json.dumps(manifest) and "carol" not in json.dumps(manifest)
    assert "sdc_" not in (root / "by_region.csv").read_text()

    with transaction(world.factory) as s:
        with pytest.raises(ReleasePermissionDenied, match="only the requester"):
            service.collect(s, request_id, "bob")
        name, data = service.collect(s, request_id, "alice")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == [f"release-{request_id}/{n}" for n in names]
        assert archive.read(f"release-{request_id}/by_region.csv") == (root / "by_region.csv").read_bytes()
    with transaction(world.factory) as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
        assert audit.verify(s).ok
    assert actions.count(AuditEventType.OUTPUT_DECIDE) == 4
    assert AuditEventType.RELEASE_PACKAGE in actions and actions[-1] is AuditEventType.RELEASE_COLLECT


def test_tampered_package_is_not_collected(world):
    request_id = submit(world, table_output(query=PASSING))
    vote(world, request_id, "bob", Decision.APPROVE)
    vote(world, request_id, "carol", Decision.APPROVE)
    (world.settings.egress_dir / str(request_id) / "by_region.csv").write_text("region,count\nC,2\n")
    with transaction(world.factory) as s, pytest.raises(Exception, match="changed after release"):
        service.collect(s, request_id, "alice")


def test_one_rejection_rejects_the_output(world):
    request_id = submit(world, table_output())
    with pytest.raises(VoteInvalid, match="comment"):
        vote(world, request_id, "bob", Decision.REJECT)
    vote(world, request_id, "bob", Decision.REJECT, comment="cell C has 2 people")
    assert status_of(world, request_id) is ReleaseStatus.REJECTED
    assert not (world.settings.egress_dir / str(request_id)).exists()


def test_return_and_withdraw(world):
    returned = submit(world, table_output(query=PASSING))
    vote(world, returned, "bob", Decision.RETURN, comment="add a purpose per table")
    assert status_of(world, returned) is ReleaseStatus.RETURNED
    with pytest.raises(ReleasePermissionDenied, match="no more votes"):
        vote(world, returned, "carol", Decision.APPROVE)

    taken_back = submit(world, table_output(query=PASSING))
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match="only the requester"):
        service.withdraw(s, taken_back, "bob")
    with transaction(world.factory) as s:
        service.withdraw(s, taken_back, "alice")
    assert status_of(world, taken_back) is ReleaseStatus.WITHDRAWN
    with transaction(world.factory) as s:
        assert service.queue(s, "bob") == []


def test_one_required_approval_is_configurable(world):
    request_id = submit(world, table_output(query=PASSING), policy_=ReviewPolicy(required_approvals=1))
    assert vote(world, request_id, "bob", Decision.APPROVE) is ReleaseStatus.RELEASED
    assert Path(world.settings.egress_dir / str(request_id) / "by_region.csv").exists()


def test_submit_returns_the_stored_request_as_the_api_reports_it(world):
    from review_service.app import request_summary

    summary = request_summary(service.submit(world.factory, payload(table_output(query=PASSING)), "alice"))
    assert summary["status"] == ReleaseStatus.SUBMITTED.value and "return_comment" not in summary  # status only
    assert summary["outputs"] == [{"name": "by_region", "verdict": "pass", "verified": True, "error": None,
                                   "decision": None}]
    with transaction(world.factory) as s:
        assert service.view(s, summary["id"], "alice").outputs[0].verdict is Verdict.PASS


def test_grant_revoked_while_checking_refuses_the_submission(world):
    from access_control import policy as access_policy

    with transaction(world.factory) as s:
        authorized = service.authorize(s, payload(table_output(query=PASSING)), "alice")
    checked = service.check_outputs(authorized)
    assert checked[0].verdict is Verdict.PASS
    with transaction(world.factory) as s:
        grant = access_policy.list_grants(s, "p1")[0]
        access_policy.revoke_grant(s, grant.id, actor="admin")
    with pytest.raises(ReleasePermissionDenied, match="no active grant"):
        with transaction(world.factory) as s:
            service.record_submission(s, authorized, checked)
    assert _request_count(world) == 0


def test_memory_limit_stops_a_query(world):
    greedy = "SELECT s.region, string_agg(r.range::VARCHAR, ',') AS sex FROM survey s, range(3000000) r GROUP BY s.region"
    request_id = submit(
        world, table_output(query=greedy, rows=("region", "sex")), policy_=ReviewPolicy(query_memory_limit="30MB")
    )
    output = _output(world, request_id)
    assert output.verdict is Verdict.FAIL and "memory" in output.error.lower()


def test_differencing_against_the_projects_released_tables(world):
    first = submit(world, table_output("by_sex_ab", PASSING, rows=("sex",)), policy_=ReviewPolicy(required_approvals=1))
    assert _output(world, first).verdict is Verdict.PASS
    vote(world, first, "bob", Decision.APPROVE)
    assert status_of(world, first) is ReleaseStatus.RELEASED
    # All regions by sex minus the released A+B by sex = region C's 2 people, split by sex.
    second = submit(world, table_output("by_sex_all", "SELECT * FROM survey", rows=("sex",)))
    output = _output(world, second)
    differencing = next(r for r in output.report["results"] if r["rule"] == "differencing")
    assert differencing["verdict"] != "pass" and "by_sex_ab" in differencing["message"]
    assert output.verdict is not Verdict.PASS


@pytest.mark.parametrize("status", list(ReleaseStatus))
def test_every_status_is_reached_through_the_service_with_its_audit_event(world, status):
    from access_control.enums import Outcome
    from disclosure_review.workflow.transitions import STATUS_AUDIT_EVENT
    from workflow_factories import create_request_at_status

    request_id = create_request_at_status(world, status)
    if status is not ReleaseStatus.REVIEWED:  # REVIEWED is momentary: the same vote moves it on
        assert status_of(world, request_id) is status
    with transaction(world.factory) as s:
        events = [
            e for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))
            if e.object == f"release_request/{request_id}" and e.action is STATUS_AUDIT_EVENT[status]
        ]
    entered = [e for e in events if json.loads(e.details).get("to", ReleaseStatus.SUBMITTED.value) == status.value]
    assert len(entered) == 1 and entered[0].outcome is Outcome.OK


def test_failed_package_write_is_retried(world):
    from workflow_factories import create_request_at_status

    request_id = create_request_at_status(world, ReleaseStatus.APPROVED)
    assert not (world.settings.egress_dir / str(request_id)).exists()
    with transaction(world.factory) as s:
        package = service.release(s, request_id, settings=world.settings, actor="cli:root")
    assert status_of(world, request_id) is ReleaseStatus.RELEASED
    assert Path(package.path, "by_region.csv").is_file()


def test_submission_budget_bounds_all_queries_together(world):
    slow = "SELECT s.region FROM survey s, range(1000000000) r WHERE hash(r.range + length(s.region)) = 42"
    budget = ReviewPolicy(query_timeout_s=30, submission_budget_s=0.5)
    started = time.monotonic()
    request_id = submit(world, table_output("slow1", slow), table_output("slow2", slow), table_output("ok", PASSING), policy_=budget)
    assert time.monotonic() - started < 15  # not 3 x 30 s
    verdicts = [_output(world, request_id, i).verdict for i in range(3)]
    assert verdicts == [Verdict.FAIL] * 3  # no time left for "ok": not run, so never pass
    assert "time budget" in _output(world, request_id, 2).error
