"""Ingress requests (reference data brought in) on SQLite and PostgreSQL: reading, review, use in recomputation."""
from __future__ import annotations

import base64
import io
import json
from datetime import date, timedelta
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, update
from workflow_factories import ADMIN, protect, submit, table_output

from access_control import policy
from onsite_base.db import transaction
from access_control.enums import AuditEventType, Outcome
from access_control.models import AuditEvent
from dataplane import reference
from disclosure_review.sdc.rules import preset_names
from disclosure_review.sdc.enums import Verdict
from disclosure_review.workflow import ingress, service
from disclosure_review.workflow.enums import Decision, IngressStatus
from disclosure_review.workflow.exceptions import (
    IngressInvalid,
    ReleasePermissionDenied,
    ReleaseRequestInvalid,
    ReleaseRequestNotFound,
    VoteInvalid,
)
from disclosure_review.workflow.policies import ReviewPolicy
from disclosure_review.workflow.store import IngressRequest

REGION_NAMES = b"code,label,population\nA,Hokkaido,5100000\nB,Tohoku,8600000\nC,Kanto,43000000\n"
JOINED = ("SELECT r.label AS region_label FROM survey s "
          "JOIN reference.region_names r ON s.region = r.code WHERE s.region <> 'C'")


def ingress_payload(content: bytes = REGION_NAMES, *, name: str = "region_names", filename: str = "regions.csv",
                    project: str = "p1") -> dict:
    return {"project": project, "name": name, "description": "Region names, published by the statistics bureau",
            "filename": filename, "content_b64": base64.b64encode(content).decode()}


def request_ingress(world, requester: str = "alice", **kwargs) -> int:
    with transaction(world.factory) as s:
        return ingress.submit(s, ingress_payload(**kwargs), requester).id


def decide(world, request_id: int, reviewer: str, decision: Decision, comment: str = "") -> IngressStatus:
    with transaction(world.factory) as s:
        return ingress.vote(s, request_id, reviewer, decision, comment=comment).status


def approved_ingress(world, **kwargs) -> int:
    request_id = request_ingress(world, **kwargs)
    decide(world, request_id, "bob", Decision.APPROVE)
    assert decide(world, request_id, "carol", Decision.APPROVE) is IngressStatus.APPROVED
    return request_id


def second_project(world) -> None:
    """p2, whose member erin brings her own reference data; it holds the same dataset grant."""
    today = date.today()
    with transaction(world.factory) as s:
        policy.add_project(s, presets=preset_names(), project_id="p2", title="Other", start_date=today - timedelta(days=1),
                           end_date=today + timedelta(days=30), actor=ADMIN, preset="acro-default")
        policy.add_member(s, "p2", "erin", actor=ADMIN)


def parquet_bytes(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def events(world, action: AuditEventType) -> list[SimpleNamespace]:
    with transaction(world.factory) as s:
        found = s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
        return [SimpleNamespace(actor=e.actor, object=e.object, outcome=e.outcome, details=json.loads(e.details))
                for e in found]


# ---------------------------------------------------------------- reading the file


def test_the_service_reads_the_csv_itself_and_records_hash_schema_rows_and_copy(world):
    request_id = request_ingress(world)
    with transaction(world.factory) as s:
        r = ingress.view(s, request_id, "bob")
        assert (r.status, r.project_id, r.requester, r.name, r.file_format) == (
            IngressStatus.SUBMITTED, "p1", "alice", "region_names", "csv")
        assert r.sha256 == reference.sha256(REGION_NAMES) and r.content == REGION_NAMES
        assert (r.row_count, r.size_bytes, r.required_approvals) == (3, len(REGION_NAMES), 2)
        assert r.columns == [{"name": "code", "type": "VARCHAR"}, {"name": "label", "type": "VARCHAR"},
                             {"name": "population", "type": "BIGINT"}]
        assert r.preview["rows"][0] == ["A", "Hokkaido", 5100000]
    [event] = events(world, AuditEventType.INGRESS_SUBMIT)
    assert event.actor == "alice" and event.details["sha256"] == reference.sha256(REGION_NAMES)


def test_csv_codes_with_leading_zeros_stay_text():
    table = reference.read_reference("pref,muni,n\n01,01100,5\n13,13101,7\n".encode(), "codes.csv")
    assert reference.describe(table)[0] == [{"name": "pref", "type": "VARCHAR"}, {"name": "muni", "type": "VARCHAR"},
                                            {"name": "n", "type": "BIGINT"}]
    assert table["muni"].to_pylist() == ["01100", "13101"]


def test_parquet_is_accepted_with_its_types(world):
    table = pa.table({"year": pa.array([2020, 2021], pa.int16()), "cpi": [100.0, 101.2],
                      "day": pa.array([date(2020, 1, 1), date(2021, 1, 1)])})
    request_id = request_ingress(world, content=parquet_bytes(table), name="cpi", filename="cpi.parquet")
    with transaction(world.factory) as s:
        r = ingress.view(s, request_id, "alice")
        assert r.file_format == "parquet" and r.row_count == 2
        assert [c["type"] for c in r.columns] == ["SMALLINT", "DOUBLE", "DATE"]


@pytest.mark.parametrize("content,filename,message", [
    (b"PK\x03\x04 spreadsheet", "codes.xlsx", "only tables as CSV"),
    (b"#!/bin/sh\nrm -rf /\n", "codes.sh", "only tables as CSV"),
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "codes.csv", "not a text CSV"),
    (b"not parquet at all", "codes.parquet", "could not be read as Parquet"),
    (b"", "codes.csv", "is empty"),
    (b"code,label\n", "codes.csv", "no rows"),
    (b"code,code\n1,2\n", "codes.csv", "appear twice"),
    ("code,label\n1,東京\n".encode("shift_jis"), "codes.csv", "not UTF-8 text"),
    (b"code,label\n1,2,3\n", "codes.csv", "could not be read as CSV"),
])
def test_anything_but_a_csv_or_parquet_table_is_refused_with_what_to_fix(world, content, filename, message):
    with transaction(world.factory) as s, pytest.raises(IngressInvalid, match=message):
        ingress.submit(s, ingress_payload(content, filename=filename), "alice")
    with transaction(world.factory) as s:
        assert s.scalar(select(IngressRequest.id)) is None


def test_size_and_row_limits(world, monkeypatch):
    monkeypatch.setattr(reference, "MAX_ROWS", 2)
    with transaction(world.factory) as s, pytest.raises(IngressInvalid, match="3 rows; reference data is limited to 2"):
        ingress.submit(s, ingress_payload(), "alice")
    table = pa.table({"x": [1, 2, 3]})
    with transaction(world.factory) as s, pytest.raises(IngressInvalid, match="3 rows"):
        ingress.submit(s, ingress_payload(parquet_bytes(table), filename="x.parquet"), "alice")
    monkeypatch.setattr(reference, "MAX_BYTES", 10)
    with transaction(world.factory) as s, pytest.raises(IngressInvalid, match="limited to 10 bytes"):
        ingress.submit(s, ingress_payload(), "alice")


def test_nested_parquet_columns_are_refused(world):
    table = pa.table({"code": [1], "tags": [[1, 2]]})
    with transaction(world.factory) as s, pytest.raises(IngressInvalid, match="plain values only"):
        ingress.submit(s, ingress_payload(parquet_bytes(table), filename="t.parquet"), "alice")


def test_name_rules(world):
    with transaction(world.factory) as s, pytest.raises(IngressInvalid, match="reference.<name>"):
        ingress.submit(s, ingress_payload(name="Region Names"), "alice")
    with transaction(world.factory) as s, pytest.raises(IngressInvalid, match="name of a dataset"):
        ingress.submit(s, ingress_payload(name="survey"), "alice")
    request_ingress(world)
    with transaction(world.factory) as s, pytest.raises(IngressInvalid, match="already has reference data"):
        ingress.submit(s, ingress_payload(), "alice")


def test_only_members_of_the_project_bring_data_in(world):
    second_project(world)
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match="not a member of project p1"):
        ingress.submit(s, ingress_payload(), "erin")
    with transaction(world.factory) as s, pytest.raises(IngressInvalid, match="no project"):
        ingress.submit(s, ingress_payload(project="nope"), "alice")


# ---------------------------------------------------------------- review


def test_two_approvals_from_outside_the_project_approve(world):
    request_id = request_ingress(world)
    assert decide(world, request_id, "bob", Decision.APPROVE) is IngressStatus.SUBMITTED
    with transaction(world.factory) as s:
        assert ingress.approved_files(s, "p1") == {}
    assert decide(world, request_id, "carol", Decision.APPROVE) is IngressStatus.APPROVED
    with transaction(world.factory) as s:
        assert list(ingress.approved_files(s, "p1")) == ["region_names"]
    votes = events(world, AuditEventType.INGRESS_DECIDE)
    assert [(e.actor, e.details.get("decision"), e.details.get("to")) for e in votes] == [
        ("bob", "APPROVE", None), ("carol", "APPROVE", None), ("carol", None, "APPROVED")]


def test_one_approval_when_the_policy_says_so(world):
    with transaction(world.factory) as s:
        request_id = ingress.submit(s, ingress_payload(), "alice", policy=ReviewPolicy(required_approvals=1)).id
    assert decide(world, request_id, "bob", Decision.APPROVE) is IngressStatus.APPROVED


@pytest.mark.parametrize("reviewer,reason", [
    ("alice", "not a reviewer"),  # the requester, a researcher
    ("dave", "member of project p1"),  # a reviewer who belongs to the project
])
def test_the_requester_and_members_of_the_project_cannot_approve(world, reviewer, reason):
    request_id = request_ingress(world)
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match=reason):
        ingress.vote(s, request_id, reviewer, Decision.APPROVE)
    with transaction(world.factory) as s:
        assert ingress.queue(s, "bob")[0].id == request_id
        assert ingress.queue(s, "dave") == []
        with pytest.raises(ReleasePermissionDenied):
            ingress.view(s, request_id, "erin")


def test_a_reviewer_votes_once_and_a_rejection_needs_a_comment_and_decides(world):
    request_id = request_ingress(world)
    decide(world, request_id, "bob", Decision.APPROVE)
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match="already voted"):
        ingress.vote(s, request_id, "bob", Decision.APPROVE)
    with transaction(world.factory) as s, pytest.raises(VoteInvalid, match="comment"):
        ingress.vote(s, request_id, "carol", Decision.REJECT)
    with transaction(world.factory) as s, pytest.raises(VoteInvalid, match="approved or rejected"):
        ingress.vote(s, request_id, "carol", Decision.RETURN, comment="x")
    assert decide(world, request_id, "carol", Decision.REJECT, "no source given") is IngressStatus.REJECTED
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match="REJECTED"):
        ingress.vote(s, request_id, "bob", Decision.REJECT, comment="too late")
    with transaction(world.factory) as s:
        assert ingress.approved_files(s, "p1") == {}
    # the name is free again after a rejection
    assert request_ingress(world) != request_id


# ---------------------------------------------------------------- use in recomputation


def test_a_query_joining_a_dataset_with_approved_reference_data_is_recomputed_by_the_service(world):
    approved_ingress(world)
    request_id = submit(world, table_output(name="by_label", query=JOINED, rows=("region_label",)))
    with transaction(world.factory) as s:
        [output] = service.view(s, request_id, "bob").outputs
        assert output.verified, output.error
        assert output.verdict is Verdict.PASS
        counts = {row[0]: row[-1] for row in output.recomputed["rows"]}
        assert counts["Hokkaido"] == 30 and counts["Tohoku"] == 25 and "Kanto" not in counts


def test_reference_data_not_yet_approved_is_not_there(world):
    request_ingress(world)
    request_id = submit(world, table_output(query=JOINED, rows=("region_label",)))
    with transaction(world.factory) as s:
        [output] = service.view(s, request_id, "bob").outputs
        assert not output.verified and output.verdict is Verdict.FAIL
        assert "region_names" in output.error


def test_attack_a_query_naming_another_projects_reference_data_is_refused(world):
    second_project(world)
    with transaction(world.factory) as s:
        request_id = ingress.submit(s, ingress_payload(project="p2", name="p2_secret_codes"), "erin").id
    decide(world, request_id, "bob", Decision.APPROVE)
    decide(world, request_id, "carol", Decision.APPROVE)
    query = "SELECT s.region FROM survey s JOIN reference.p2_secret_codes r ON s.region = r.code"
    release_id = submit(world, table_output(query=query))
    with transaction(world.factory) as s:
        [output] = service.view(s, release_id, "bob").outputs
        assert not output.verified and output.verdict is Verdict.FAIL
        assert "p2_secret_codes" in output.error
        # and alice's session cannot read it either
        with pytest.raises(ReleasePermissionDenied, match="not a member of project p2"):
            ingress.collect(s, "p2", "p2_secret_codes", "alice")
        with pytest.raises(ReleaseRequestNotFound, match="another project"):
            ingress.collect(s, "p1", "p2_secret_codes", "alice")


def test_attack_a_stored_copy_changed_after_approval_is_not_used(world):
    request_id = approved_ingress(world)
    with transaction(world.factory) as s:
        forged = REGION_NAMES.replace(b"Hokkaido", b"Forged__")
        s.execute(update(IngressRequest).where(IngressRequest.id == request_id).values(content=forged))
    release_id = submit(world, table_output(query=JOINED, rows=("region_label",)))
    with transaction(world.factory) as s:
        [output] = service.view(s, release_id, "bob").outputs
        assert not output.verified and output.verdict is Verdict.FAIL
        assert "does not match its approved SHA-256" in output.error
        with pytest.raises(reference.ReferenceInvalid, match="approved SHA-256"):
            reference.verified_table(ingress.collect(s, "p1", "region_names", "alice"))


def test_reference_views_are_read_only_in_the_recompute_connection(world):
    from dataplane.catalogue import guarded_connection

    table = reference.read_reference(REGION_NAMES, "regions.csv")
    con = guarded_connection({}, references={"region_names": table})
    with pytest.raises(Exception, match="base table"):
        con.execute("DELETE FROM reference.region_names")
    with pytest.raises(Exception):
        con.execute("SELECT * FROM read_csv('/etc/passwd')")
    assert con.execute("SELECT count(*) FROM reference.region_names").fetchone() == (3,)


def test_collect_for_a_member_is_audited(world):
    approved_ingress(world)
    with transaction(world.factory) as s:
        found = ingress.collect(s, "p1", "region_names", "alice")
        assert found.content == REGION_NAMES
        listed = ingress.describe_approved(s, "p1", "alice")
        assert [(r["name"], r["rows"]) for r in listed] == [("region_names", 3)]
    [event] = events(world, AuditEventType.INGRESS_COLLECT)
    assert (event.actor, event.object, event.outcome) == ("alice", "reference/p1/region_names", Outcome.OK)


# ---------------------------------------------------------------- migration


def test_migration_wf0003_adds_and_drops_the_ingress_tables(database_at):
    from alembic import command
    from sqlalchemy import inspect, text

    from onsite.migrations import migrate

    url, cfg, engine = database_at("wf0002")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO release_request (id, project_id, requester, title, purpose, status, preset, "
            "required_approvals, created_at, updated_at) VALUES (1, 'p1', 'alice', 't', 'p', 'SUBMITTED', "
            "'acro-default', 2, '2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
    migrate(url)
    with engine.connect() as conn:
        assert {"ingress_request", "ingress_vote"} <= set(inspect(conn).get_table_names())
    command.downgrade(cfg, "wf0002")
    with engine.connect() as conn:
        assert "ingress_request" not in inspect(conn).get_table_names()
        assert conn.execute(text("SELECT title FROM release_request")).scalar_one() == "t"


def test_an_extract_with_columns_from_reference_data_needs_human_judgement(world):
    from test_extracts import extract, ingest_people, submitted

    ingest_people(world)
    approved_ingress(world)
    query = ("SELECT p.region, p.sex, p.age_group, r.label FROM people p "
             "JOIN reference.region_names r ON p.region = r.code WHERE p.region <> 'C'")
    _, [(_, verdict, verified, report, _, recomputed)] = submitted(world, extract("labelled", query))
    assert verified and recomputed["records"] == 36
    assert verdict is Verdict.REVIEW and report["roles"]["undeclared"] == ["label"]


def test_a_reviewer_protects_a_table_joined_with_reference_data_and_the_service_recomputes_it(world):
    approved_ingress(world)
    query = "SELECT r.label AS region_label FROM survey s JOIN reference.region_names r ON s.region = r.code"
    request_id = submit(world, table_output(query=query, rows=("region_label",)))
    with transaction(world.factory) as s:
        [output] = service.view(s, request_id, "bob").outputs
        assert output.verified and output.verdict is Verdict.FAIL  # Kanto (region C) has 2 records
    assert protect(world, request_id, output.id, "bob", method="suppress").verdict is Verdict.PASS
    with transaction(world.factory) as s:
        cells = {row[0]: row[-1] for row in service.output_of(s, request_id, output.id).recomputed["rows"]}
        assert cells["Hokkaido"] == 30 and cells["Kanto"] is None


# ---------------------------------------------------------------- withdrawal and retirement


def add_administrator(world, username: str = "root") -> str:
    from access_control.enums import Role

    with transaction(world.factory) as s:
        policy.add_person(s, username=username, display_name="Root", actor=ADMIN, roles=[Role.ADMINISTRATOR])
    return username


def retire(world, request_id: int, actor: str = "bob", reason: str = "the code list was revised") -> IngressRequest:
    with transaction(world.factory) as s:
        return ingress.retire(s, request_id, actor, reason)


def test_the_requester_withdraws_an_undecided_request_and_the_name_is_free_again(world):
    request_id = request_ingress(world)
    decide(world, request_id, "bob", Decision.APPROVE)
    with transaction(world.factory) as s:
        assert ingress.withdraw(s, request_id, "alice").status is IngressStatus.WITHDRAWN
        assert ingress.queue(s, "carol") == [] and ingress.approved_files(s, "p1") == {}
    [event] = events(world, AuditEventType.INGRESS_WITHDRAW)
    assert (event.actor, event.object, event.details["to"]) == ("alice", f"ingress_request/{request_id}", "WITHDRAWN")
    assert request_ingress(world) != request_id


@pytest.mark.parametrize("who", ["erin", "bob", "dave"])  # another researcher, a reviewer, a fellow member
def test_attack_withdrawing_another_researchers_request_is_refused(world, who):
    request_id = request_ingress(world)
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match="only the requester"):
        ingress.withdraw(s, request_id, who)
    with transaction(world.factory) as s:
        assert ingress.view(s, request_id, "alice").status is IngressStatus.SUBMITTED


def test_a_decided_request_can_no_longer_be_withdrawn(world):
    request_id = approved_ingress(world)
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match="APPROVED: it can no longer"):
        ingress.withdraw(s, request_id, "alice")


def test_attack_voting_on_a_withdrawn_request_is_refused(world):
    request_id = request_ingress(world)
    decide(world, request_id, "bob", Decision.APPROVE)
    with transaction(world.factory) as s:
        ingress.withdraw(s, request_id, "alice")
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match="WITHDRAWN: it takes no more"):
        ingress.vote(s, request_id, "carol", Decision.APPROVE)
    with transaction(world.factory) as s:
        assert ingress.view(s, request_id, "alice").status is IngressStatus.WITHDRAWN
        assert ingress.approved_files(s, "p1") == {}


def test_retiring_needs_a_reason_and_an_administrator_or_eligible_reviewer(world):
    root = add_administrator(world)
    request_id = approved_ingress(world)
    for who, reason in (("alice", "not a reviewer"), ("erin", "not a reviewer"), ("dave", "member of project p1")):
        with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match=reason):
            ingress.retire(s, request_id, who, "I want it gone")
    with transaction(world.factory) as s, pytest.raises(IngressInvalid, match="give the reason"):
        ingress.retire(s, request_id, root, "  ")
    retired = retire(world, request_id, root, "superseded by the 2025 code list")
    assert (retired.status, retired.retired_by, retired.retired_reason) == (
        IngressStatus.RETIRED, root, "superseded by the 2025 code list")
    assert retired.retired_at is not None
    [event] = events(world, AuditEventType.INGRESS_RETIRE)
    assert (event.actor, event.details["reason"], event.details["sha256"]) == (
        root, "superseded by the 2025 code list", reference.sha256(REGION_NAMES))
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match="only approved"):
        ingress.retire(s, request_id, "bob", "again")
    waiting = request_ingress(world, name="other_codes")
    with transaction(world.factory) as s, pytest.raises(ReleasePermissionDenied, match="only approved"):
        ingress.retire(s, waiting, "bob", "not approved yet")
    with transaction(world.factory) as s:
        assert ingress.view(s, request_id, root).status is IngressStatus.RETIRED  # administrators see it
        assert ingress.in_use(s, root) == [] and ingress.in_use(s, "alice") == []


def test_attack_retired_reference_data_is_refused_to_sessions_and_new_release_requests(world):
    request_id = approved_ingress(world)
    retire(world, request_id)
    with transaction(world.factory) as s:
        with pytest.raises(ReleaseRequestNotFound, match=r"retired on .* by bob \(the code list was revised\)"):
            ingress.collect(s, "p1", "region_names", "alice")
        assert ingress.describe_approved(s, "p1", "alice") == []
    # one of two outputs reads the retired data: the whole request is refused, saying which
    with pytest.raises(ReleaseRequestInvalid, match="region_names.*retired"):
        service.submit(world.factory, {"project": "p1", "title": "t", "purpose": "p", "outputs": [
            table_output(name="plain", query="SELECT * FROM survey WHERE region <> 'C'"),
            table_output(name="by_label", query=JOINED, rows=("region_label",))]}, "alice")
    with transaction(world.factory) as s, pytest.raises(IngressInvalid, match="retired"):
        ingress.submit(s, ingress_payload(), "alice")  # the name stays taken: never other data under it


def test_attack_a_submitted_requests_recomputation_or_approval_needing_retired_data_is_refused_released_stay(world):
    from disclosure_review.workflow.exceptions import ProtectionInvalid
    from workflow_factories import vote

    request_id = approved_ingress(world)
    released = submit(world, table_output(name="by_label", query=JOINED, rows=("region_label",)))
    vote(world, released, "bob", Decision.APPROVE)
    vote(world, released, "carol", Decision.APPROVE)
    waiting = submit(world, table_output(
        query="SELECT r.label AS region_label FROM survey s JOIN reference.region_names r ON s.region = r.code",
        rows=("region_label",)))
    passing = submit(world, table_output(name="by_label", query=JOINED, rows=("region_label",)))
    retire(world, request_id)
    with transaction(world.factory) as s:
        [output] = service.view(s, waiting, "bob").outputs
        assert output.verdict is Verdict.FAIL  # Kanto's 2 records, as submitted
    with pytest.raises(ProtectionInvalid, match="cannot be recomputed: reference data 'region_names'.*retired"):
        protect(world, waiting, output.id, "bob", method="suppress")
    with transaction(world.factory) as s:
        [output] = service.view(s, waiting, "bob").outputs
        assert output.verdict is Verdict.FAIL and output.revision == 0  # nothing changed, never a pass
        assert service.view(s, released, "alice").status.value == "RELEASED"
        name, package = service.collect(s, released, "alice")
        assert package.startswith(b"PK")
    # an output computed while the data was approved is not approved after its retirement (it differs from the
    # waiting one by Kanto's 2 records: approving it needs a reason, given, and is refused for the retired data)
    with pytest.raises(VoteInvalid, match="by_label cannot be approved: reference data 'region_names'.*retired"):
        vote(world, passing, "bob", Decision.APPROVE, comment="checked", override_reason="checked")
    assert vote(world, passing, "bob", Decision.REJECT, comment="reads retired reference data").value == "REJECTED"


def test_migration_wf0004_adds_the_retirement_columns_and_refuses_to_lose_them(database_at):
    from alembic import command
    from sqlalchemy import inspect, text

    from onsite.migrations import migrate

    url, cfg, engine = database_at("wf0003")
    insert = text(
        "INSERT INTO ingress_request (id, project_id, requester, name, description, filename, file_format, sha256, "
        "size_bytes, row_count, columns, preview, content, status, required_approvals, created_at) VALUES "
        "(1, 'p1', 'alice', 'codes', 'd', 'c.csv', 'csv', :sha, 3, 1, '[]', '{}', :content, 'APPROVED', 2, "
        "'2026-11-01 00:00:00')")
    with engine.begin() as conn:
        conn.execute(insert, {"sha": "0" * 64, "content": b"a\n1"})
    migrate(url)
    with engine.begin() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("ingress_request")}
        assert {"retired_at", "retired_by", "retired_reason"} <= columns
        assert conn.execute(text("SELECT name, retired_by FROM ingress_request")).one() == ("codes", None)
        conn.execute(text("UPDATE ingress_request SET status = 'RETIRED', retired_by = 'bob'"))
    with pytest.raises(RuntimeError, match="1 ingress request"):
        command.downgrade(cfg, "wf0003")
    with engine.begin() as conn:
        conn.execute(text("UPDATE ingress_request SET status = 'APPROVED', retired_by = NULL"))
    command.downgrade(cfg, "wf0003")
    with engine.connect() as conn:
        assert "retired_at" not in {c["name"] for c in inspect(conn).get_columns("ingress_request")}
        assert conn.execute(text("SELECT name FROM ingress_request")).scalar_one() == "codes"
