"""Protection applied by reviewers, through the service functions, on SQLite and PostgreSQL with real DuckDB."""
from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from access_control import audit, policy
from onsite_base.db import session_factory, transaction
from access_control.enums import AuditEventType
from access_control.models import AuditEvent, Grant
from disclosure_review.sdc.rules import preset_names
from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow import service
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from disclosure_review.workflow.exceptions import ProtectionInvalid, ReleasePermissionDenied, VoteInvalid
from disclosure_review.workflow.store import OutputProtection

from workflow_factories import ADMIN, protect, status_of, submit, table_output, vote

BY_REGION_AND_SEX = "SELECT * FROM survey"


def _ids(world, request_id: int, position: int = 0) -> tuple[int, int]:
    with transaction(world.factory) as s:
        return request_id, service.view(s, request_id, "alice").outputs[position].id


def _protect(world, request_id: int, reviewer: str = "bob", position: int = 0, **form):
    _, output_id = _ids(world, request_id, position)
    return protect(world, request_id, output_id, reviewer, **form).revision


def _state(world, request_id: int, position: int = 0) -> dict:
    """Everything a refused protection must leave as it was."""
    with transaction(world.factory) as s:
        o = service.view(s, request_id, "alice").outputs[position]
        return {"verdict": o.verdict, "recomputed": o.recomputed, "report": o.report, "revision": o.revision,
                "votes": [(v.reviewer, v.decision) for v in o.votes],
                "events": s.scalar(select(func.count()).select_from(AuditEvent))}


def _cells(recomputed: dict) -> dict:
    return {tuple(row[:-1]): row[-1] for row in recomputed["rows"]}


def test_suppression_applied_by_a_reviewer_is_recomputed_recorded_and_audited(world):
    request_id = submit(world, table_output())
    assert _state(world, request_id)["verdict"] is Verdict.FAIL  # C has 2 records
    with transaction(world.factory) as s:
        size_before = service.view(s, request_id, "carol").outputs[0].size_bytes
    assert _protect(world, request_id, method="suppress", secondary="hypercube") == 1
    with transaction(world.factory) as s:
        o = service.view(s, request_id, "carol").outputs[0]
        assert o.size_bytes == service.kept_bytes(o.recomputed, o.shadow, o.report, o.mismatch, o.claimed,
                                                  content=o.content) != size_before  # the report has the protection
        cells = _cells(o.recomputed)
        assert cells[("C",)] is None  # the failing cell is blank, and so is a secondary one (else Total - A - B = C)
        assert sum(v is None for v in cells.values()) == 2 and cells[("Total",)] == 57
        assert o.verdict is Verdict.PASS and o.report["protection"]["method"] == "suppress"
        record = o.current_protection
        assert (record.reviewer, record.revision, record.verdict) == ("bob", 1, Verdict.PASS)
        assert record.previous["verdict"] == "fail" and _cells(record.previous["recomputed"])[("C",)] == 2
        assert o.current_spec["protection"]["method"] == "suppress" and o.spec["protection"] is None  # researcher's kept
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert (event.action, event.actor) == (AuditEventType.OUTPUT_PROTECT, "bob")
        details = json.loads(event.details)
        assert details["protection"]["method"] == "suppress" and details["verdict"] == "pass"
        assert details["previous_verdict"] == "fail" and audit.verify(s).ok


def test_rounding_and_merging_levels(world):
    crossed = table_output()
    crossed["spec"]["columns"] = ["sex"]
    request_id = submit(world, crossed)
    _protect(world, request_id, method="round", base="10")
    with transaction(world.factory) as s:
        cells = _cells(service.view(s, request_id, "bob").outputs[0].recomputed)
    interior = [v for k, v in cells.items() if "Total" not in k]
    assert interior and all(v % 10 == 0 for v in interior)
    # merge B and C of region into one level, no sdc protection: recomputed from the data, so it passes
    assert _protect(world, request_id, "carol", method="none", merge_variable="region", merge_levels="B\nC",
                    merge_label="B+C") == 2
    with transaction(world.factory) as s:
        o = service.view(s, request_id, "bob").outputs[0]
        cells = _cells(o.recomputed)
        assert cells[("B+C", "Total")] == 27 and cells[("A", "Total")] == 30 and ("C", "Total") not in cells
        assert o.verdict is Verdict.PASS and o.current_protection.reviewer == "carol"
        assert [p.revision for p in o.protections] == [1, 2]


@pytest.mark.parametrize(
    "form,key",
    [
        ({"method": "round", "base": "0"}, "protection_base"),
        ({"method": "round", "base": "five"}, "protection_base"),
        ({"method": "shuffle"}, "protection_method"),
        ({"method": "suppress", "secondary": "random"}, "protection_secondary"),
        ({"method": "none", "merge_variable": "age", "merge_levels": "A\nB", "merge_label": "AB"}, "merge_variable_unknown"),
        ({"method": "none", "merge_variable": "region", "merge_levels": "A\nZ", "merge_label": "AZ"}, "merge_level_unknown"),
        ({"method": "none", "merge_variable": "region", "merge_levels": "B", "merge_label": "B"}, "merge_levels_few"),
        ({"method": "none", "merge_variable": "region", "merge_levels": "B\nC", "merge_label": "A"}, "merge_label_taken"),
        ({"method": "none", "merge_variable": "region", "merge_levels": "B\nC", "merge_label": "Total"}, "merge_label"),
        ({"method": "none", "merge_levels": "B\nC", "merge_label": "BC"}, "merge_variable_missing"),
    ],
)
def test_bad_parameters_are_refused_and_change_nothing(world, form, key):
    request_id = submit(world, table_output())
    before = _state(world, request_id)
    with pytest.raises(ProtectionInvalid) as refused:
        _protect(world, request_id, **form)
    assert refused.value.key == key and str(refused.value)
    assert _state(world, request_id) == before


def test_only_counts_and_sums_can_be_protected(world):
    spec = table_output()
    spec["spec"] |= {"kind": "magnitude", "value": "income", "statistic": "mean"}
    request_id = submit(world, spec)
    with pytest.raises(ProtectionInvalid) as refused:
        _protect(world, request_id, method="suppress")
    assert refused.value.key == "protection_statistic"
    _protect(world, request_id, method="none", merge_variable="region", merge_levels="B\nC", merge_label="B+C")
    with transaction(world.factory) as s:  # merging works for any statistic: the mean is recomputed from records
        cells = _cells(service.view(s, request_id, "bob").outputs[0].recomputed)
    assert ("B+C",) in cells


def test_rounding_needs_a_base_when_the_preset_has_none(world):
    today = date.today()
    with transaction(world.factory) as s:
        policy.add_project(s, presets=preset_names(), project_id="p2", title="Handbook", start_date=today - timedelta(days=1),
                           end_date=today + timedelta(days=30), actor=ADMIN, preset="jp-onsite")
        policy.add_member(s, "p2", "alice", actor=ADMIN)
        policy.add_grant(s, project_id="p2", dataset_id="survey", valid_from=today - timedelta(days=1),
                         valid_until=today + timedelta(days=30), actor=ADMIN)
    from workflow_factories import payload

    request_id = service.submit(world.factory, payload(table_output(), project="p2"), "alice").id
    with pytest.raises(ProtectionInvalid) as refused:
        _protect(world, request_id, method="round")
    assert refused.value.key == "round_base_required"
    assert _protect(world, request_id, method="round", base="5") == 1


def test_reviewers_cannot_protect_their_own_projects_requests(world):
    request_id = submit(world, table_output())
    before = _state(world, request_id)
    for person, key in (("dave", "project_member"), ("alice", "not_reviewer"), ("erin", "not_reviewer")):
        with pytest.raises(ReleasePermissionDenied) as refused:
            _protect(world, request_id, person, method="suppress")
        assert refused.value.key == key
    assert _state(world, request_id) == before


def test_changing_the_protection_withdraws_approvals_of_the_old_content(world):
    request_id = submit(world, table_output())
    vote(world, request_id, "bob", Decision.APPROVE, override_reason="C is a published census figure")
    assert _protect(world, request_id, "carol", method="suppress") == 1
    with transaction(world.factory) as s:
        o = service.view(s, request_id, "bob").outputs[0]
        assert o.votes == [] and o.decision is None  # bob approved the unprotected table, not this one
        assert [v["reviewer"] for v in o.current_protection.invalidated] == ["bob"]
        details = json.loads(s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first().details)
        assert details["invalidated_approvals"] == ["bob"]
    vote(world, request_id, "carol", Decision.APPROVE)
    assert status_of(world, request_id) is not ReleaseStatus.RELEASED  # one approval of the new content
    vote(world, request_id, "bob", Decision.APPROVE, revision=1)  # bob votes again, on what he now sees
    assert status_of(world, request_id) is ReleaseStatus.RELEASED

    root = world.settings.egress_dir / str(request_id)
    rows = list(csv.reader(io.StringIO((root / "by_region.csv").read_text())))
    released = {r[0]: r[1] for r in rows[1:]}
    assert released["C"] == "" and released["Total"] == "57"  # the protected cells, not the computed 2
    manifest = json.loads((root / "manifest.json").read_text())
    protections = manifest["outputs"][0]["protections"]
    # reviewers are not named to researchers: pseudonyms in the order they first acted (bob approved first)
    assert [(p["reviewer"], p["choice"]["method"], p["invalidated_approvals"]) for p in protections] == [
        ("reviewer-2", "suppress", ["reviewer-1"])]
    assert {v["reviewer"] for v in manifest["outputs"][0]["votes"]} == {"reviewer-1", "reviewer-2"}


def test_a_vote_on_content_changed_since_the_page_was_loaded_is_refused(world):
    request_id = submit(world, table_output())
    _protect(world, request_id, "carol", method="suppress")
    with pytest.raises(VoteInvalid) as refused:
        vote(world, request_id, "bob", Decision.APPROVE, revision=0)
    assert refused.value.key == "content_changed" and _state(world, request_id)["votes"] == []


def test_a_protection_prepared_on_old_content_or_differing_from_its_preview_is_refused(world):
    request_id, output_id = _ids(world, submit(world, table_output()))
    form = {"method": "round", "base": "5"}
    preview = service.preview_protection(world.factory, request_id, output_id, "bob", form, revision=0)
    with pytest.raises(ProtectionInvalid) as refused:
        service.protect(world.factory, request_id, output_id, "bob", form, previewed="", revision=0)
    assert refused.value.key == "preview_first"
    _protect(world, request_id, "carol", method="suppress")
    # bob's page shows revision 0: refused when he saves, before anything is recomputed
    with pytest.raises(ProtectionInvalid) as refused:
        service.protect(world.factory, request_id, output_id, "bob", form, previewed=preview.digest, revision=0)
    assert refused.value.key == "protection_changed"
    # carol saved while bob's save was recomputing: its last step checks again
    with pytest.raises(ProtectionInvalid) as refused:
        with transaction(world.factory) as s:
            service.apply_protection(s, preview.job, preview.checked, previewed=preview.digest)
    assert refused.value.key == "protection_changed"
    with pytest.raises(ProtectionInvalid) as refused:
        service.protect(world.factory, request_id, output_id, "bob", form, previewed=preview.digest[::-1], revision=1)
    assert refused.value.key == "preview_stale"
    service.protect(world.factory, request_id, output_id, "bob", form, previewed=preview.digest, revision=1)
    assert _state(world, request_id)["revision"] == 2


def test_a_recomputation_that_fails_is_not_saved(world):
    request_id, output_id = _ids(world, submit(world, table_output()))
    form = {"method": "suppress"}
    preview = service.preview_protection(world.factory, request_id, output_id, "bob", form)
    before = _state(world, request_id)
    with transaction(world.factory) as s:  # between the preview and the save
        grant = s.scalars(select(Grant).where(Grant.project_id == "p1")).one()
        policy.revoke_grant(s, grant.id, actor=ADMIN)
    before["events"] += 1
    with pytest.raises(ProtectionInvalid) as refused:
        service.protect(world.factory, request_id, output_id, "bob", form, previewed=preview.digest)
    assert refused.value.key == "protection_failed" and "survey" in str(refused.value)
    assert _state(world, request_id) == before
    assert service.preview_protection(world.factory, request_id, output_id, "bob", form).digest == ""


def test_decided_outputs_and_files_cannot_be_protected(world):
    figure = {"name": "notes", "kind": "file", "filename": "notes.txt", "content_b64": "aGVsbG8=",
              "code": "print('hello')", "explanation": "a note"}
    request_id = submit(world, table_output(), table_output("second", query="SELECT * FROM survey WHERE region <> 'C'"),
                        figure)
    vote(world, request_id, "bob", Decision.REJECT, comment="not needed")
    for position, key in ((0, "already_decided"), (2, "not_a_table")):
        with pytest.raises(ReleasePermissionDenied) as refused:
            _protect(world, request_id, "carol", position, method="suppress")
        assert refused.value.key == key
    vote(world, request_id, "bob", Decision.RETURN, position=1, comment="explain the second table")
    with pytest.raises(ReleasePermissionDenied) as refused:
        _protect(world, request_id, "carol", 1, method="suppress")
    assert refused.value.key == "not_protectable_status"
    with transaction(world.factory) as s:
        assert s.scalar(select(func.count()).select_from(OutputProtection)) == 0


def test_merged_levels_are_sql_literals_never_code():
    import duckdb

    from disclosure_review.workflow.protection import Merge, recoding_query

    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('a''b', 1), ('c', 2), ('d', 3)) v(level, n)")
    hostile = Merge("level", ("a'b", "c') OR TRUE OR ('"), "x'); DROP TABLE t; --")
    rows = con.execute(recoding_query("SELECT * FROM t", hostile) + " ORDER BY n").fetchall()
    assert rows == [("x'); DROP TABLE t; --", 1), ("c", 2), ("d", 3)]  # only the exact level a'b was merged
    assert con.execute("SELECT count(*) FROM t").fetchone() == (3,)


def test_migration_wf0002_keeps_requests_and_downgrades(database_at):
    from alembic import command
    from sqlalchemy import inspect, text

    from onsite.migrations import migrate

    url, cfg, engine = database_at("wf0001")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO release_request (id, project_id, requester, title, purpose, status, preset, "
            "required_approvals, created_at, updated_at) VALUES (1, 'p1', 'alice', 't', 'p', 'SUBMITTED', "
            "'acro-default', 2, '2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
        conn.execute(text(
            "INSERT INTO release_output (id, request_id, position, name, kind, verdict, verified) "
            "VALUES (1, 1, 0, 'old', 'TABLE', 'pass', true)"))
    migrate(url)
    with transaction(session_factory(engine)) as s:
        output = service.output_of(s, 1, 1)
        assert (output.name, output.revision, output.current_spec, output.protections) == ("old", 0, None, [])
    command.downgrade(cfg, "wf0001")
    with engine.connect() as conn:
        assert "output_protection" not in inspect(conn).get_table_names()
        assert conn.execute(text("SELECT name FROM release_output")).scalar_one() == "old"
