"""What of a release request a researcher sees where (issue 14, item 2), invisible characters in released text
(item 6) and a tampered package at collection (item 7), against the real workflow and ledger.

The attacks through a real hub are in tests/security/test_review_exposure_attacks.py."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from workflow_factories import payload, submit, table_output, vote

from access_control import audit, policy
from access_control.enums import AuditEventType, Outcome
from access_control.models import Grant
from access_control.sessions import LiveSession, session_object, started_session
from disclosure_review.workflow import package, service
from disclosure_review.workflow.enums import Decision
from disclosure_review.workflow.exceptions import PackageError, PackageTampered, ReleaseRequestInvalid, VoteInvalid
from disclosure_review.workflow.service import Presence, Withheld
from disclosure_review.workflow.store import ReleaseOutput
from onsite_base.db import transaction

PASSING = "SELECT * FROM survey WHERE region <> 'C'"
TAG_A = chr(0xE0041)  # TAG LATIN CAPITAL LETTER A: invisible


def live(*projects: str) -> Presence:
    return Presence(LiveSession("alice", "127.0.0.1", frozenset(projects), datetime.now(timezone.utc)))


def access(world, request_id: int, username: str, presence: Presence):
    with transaction(world.factory) as s:
        request = service.view(s, request_id, username)
        return service.content_access(s, request, username, presence), [o.id for o in request.outputs]


def test_the_requester_sees_unreleased_content_only_in_a_session_of_the_project(world):
    note = {"name": "note", "kind": "file", "filename": "n.txt", "content_b64": base64.b64encode(b"x\n").decode(),
            "code": "open('n.txt')", "explanation": "a note"}
    request_id = submit(world, table_output(query=PASSING), note)
    for presence, why in ((Presence(), Withheld.NO_SESSION), (Presence(unknown=True), Withheld.HUB_UNAVAILABLE),
                          (live("another-project"), Withheld.NO_SESSION)):
        seen, outputs = access(world, request_id, "alice", presence)
        assert seen.request is why and seen.outputs == {o: why for o in outputs}
    seen, _ = access(world, request_id, "alice", live("p1"))
    assert seen.request is None and seen.outputs == {}
    # reviewers are staff: everything of a request they may review, wherever the check of their address let them in
    assert access(world, request_id, "bob", Presence())[0] == service.ContentAccess(None, {})


def test_an_output_whose_grant_is_revoked_is_withheld_even_in_a_session(world):
    note = {"name": "note", "kind": "file", "filename": "n.txt", "content_b64": base64.b64encode(b"x\n").decode(),
            "code": "open('n.txt')", "explanation": "a note"}
    request_id = submit(world, table_output(query=PASSING), note)
    with transaction(world.factory) as s:
        grant = s.scalar(select(Grant).where(Grant.project_id == "p1", Grant.dataset_id == "survey"))
        policy.revoke_grant(s, grant.id, actor="admin")
    seen, (table, file) = access(world, request_id, "alice", live("p1"))
    assert seen.outputs == {table: Withheld.GRANT_REVOKED}  # the file reads no dataset


def _record(world, action: AuditEventType, outcome: Outcome = Outcome.OK, **details) -> datetime:
    with transaction(world.factory) as s:
        return audit.record(s, action, actor="alice", object=session_object("alice"), outcome=outcome,
                            details=details).created_at


def test_the_running_session_is_the_ledger_start_of_the_server_the_hub_reports(world):
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    _record(world, AuditEventType.SESSION_START, client_address="::ffff:10.0.0.7", projects=["p1"])
    with transaction(world.factory) as s:
        found = started_session(s, "alice", before)
        assert found.terminal == "10.0.0.7" and found.projects == {"p1"}
        assert started_session(s, "alice", datetime.now(timezone.utc) + timedelta(seconds=1)) is None  # an older one
        assert started_session(s, "bob", before) is None
    _record(world, AuditEventType.SESSION_STOP, reason="revoked")
    with transaction(world.factory) as s:
        assert started_session(s, "alice", before) is None  # stopped since
    _record(world, AuditEventType.SESSION_START, Outcome.FAILED, client_address="10.0.0.7", projects=["p1"])
    with transaction(world.factory) as s:
        assert started_session(s, "alice", before) is None  # a failed set-up opened nothing


def test_labels_computed_from_the_data_with_invisible_characters_are_refused_at_submission(world):
    hidden = table_output(query=f"SELECT region || chr({0xE0041}) AS region FROM survey WHERE region <> 'C'")
    with pytest.raises(ReleaseRequestInvalid) as refused:
        submit(world, hidden)
    assert refused.value.key == "invisible_text" and "U+E0041 TAG LATIN CAPITAL LETTER A" in str(refused.value)
    assert "output 'by_region', row 1, value 1" in str(refused.value) and TAG_A not in str(refused.value)


@pytest.mark.parametrize("content", [f"id,income\n12345{TAG_A},1\n".encode(), "a\u202eb\n".encode(), b"a\x1bb\n"])
def test_a_text_file_with_invisible_characters_is_refused_at_submission(world, content):
    note = {"name": "note", "kind": "file", "filename": "n.csv", "content_b64": base64.b64encode(content).decode(),
            "code": "df.to_csv('n.csv')", "explanation": "a table"}
    with pytest.raises(ReleaseRequestInvalid, match=r"output 'note'.*line \d+, column \d+"):
        service.submit(world.factory, payload(note), "alice")


def test_a_comment_with_invisible_characters_is_refused(world):
    request_id = submit(world, table_output(query=PASSING))
    with pytest.raises(VoteInvalid, match="U\\+202E") as refused:
        vote(world, request_id, "bob", Decision.APPROVE, comment="fine \u202eenif")
    assert refused.value.key == "invisible_text"


def test_a_package_is_never_written_with_invisible_characters(world):
    # a row stored before the check (an older version): the package writer refuses it too
    request_id = submit(world, table_output(query=PASSING))
    with transaction(world.factory) as s:
        output = s.scalar(select(ReleaseOutput).where(ReleaseOutput.request_id == request_id))
        output.recomputed = {**output.recomputed, "rows": [["A" + TAG_A, 30], *output.recomputed["rows"][1:]]}
    vote(world, request_id, "bob", Decision.APPROVE)
    vote(world, request_id, "carol", Decision.APPROVE)  # packaging fails: the request stays APPROVED
    assert not (world.settings.egress_dir / str(request_id)).exists()
    with transaction(world.factory) as s, pytest.raises(PackageError, match="U\\+E0041"):
        service.release(s, request_id, settings=world.settings)


def test_a_tampered_package_names_the_file_and_both_digests(world):
    request_id = submit(world, table_output(query=PASSING))
    vote(world, request_id, "bob", Decision.APPROVE)
    vote(world, request_id, "carol", Decision.APPROVE)
    released = world.settings.egress_dir / str(request_id) / "by_region.csv"
    expected = package.sha256(released.read_bytes())
    released.write_text("region,count\nC,2\n")
    with transaction(world.factory) as s, pytest.raises(PackageTampered) as refused:
        service.collect(s, request_id, "alice")
    params = refused.value.params
    assert (params["file"], params["expected"], params["found"]) == (
        "by_region.csv", expected, package.sha256(b"region,count\nC,2\n"))
    released.unlink()
    with transaction(world.factory) as s, pytest.raises(PackageTampered) as refused:
        service.collect(s, request_id, "alice")
    assert refused.value.params["found"] == "missing"
