"""Issue 13: the notebook shows a table released perturbed (cell key method) beside the table computed in the
session, with the information loss — the perturbed cells coming from the review service's own recomputation, only
to the requester at the terminal of their running session, and never a record key."""
from __future__ import annotations

import csv
import json
from datetime import datetime, timezone

import pytest
from workflow_factories import submit, table_output, vote

from access_control.sessions import LiveSession
from analysis_kernel.outputs import TableOutput
from analysis_kernel.release import _print_verdicts as print_verdicts
from dataplane import record_keys
from dataplane.catalogue import guarded_connection, read_dataset_info
from disclosure_review.sdc import load_preset
from disclosure_review.sdc.protect import evaluate_table
from disclosure_review.sdc.spec import TableSpec
from disclosure_review.workflow import service
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from disclosure_review.workflow.policies import ReviewPolicy
from disclosure_review.workflow.service import Presence
from onsite_base.db import transaction
from review_service.app import request_summary

QUERY = "SELECT * FROM survey WHERE region <> 'C'"  # regions A (30) and B (25): passes
POLICY = ReviewPolicy(cell_key_datasets=["survey"], required_approvals=1)


def at_terminal(*projects: str) -> Presence:
    return Presence(LiveSession("alice", "127.0.0.1", frozenset(projects), datetime.now(timezone.utc)))


@pytest.fixture
def perturbed(world):
    """A request of alice's (project p1) whose table the service released perturbed, and the dataset's keys."""
    survey = world.settings.datasets_dir / "survey.duckdb"
    info = read_dataset_info(survey)
    record_keys.commit_keys(record_keys.write_keys(world.settings.datasets_dir, "survey", info.rows,
                                                   info.source_sha256), world.settings.datasets_dir, "survey")
    keys = record_keys.read_keys(world.settings.datasets_dir, "survey", info.rows, info.source_sha256)
    return submit(world, table_output(query=QUERY), policy_=POLICY), keys


def summary_for(world, request_id: int, presence: Presence, user: str = "alice") -> dict:
    """What the API answers `user` asking from `presence` (ReleaseApiHandler.summary without the Hub)."""
    with transaction(world.factory) as s:
        request = service.view(s, request_id, user)
        return request_summary(request, service.content_access(s, request, user, presence))


def test_the_preview_holds_the_released_cells_the_package_later_holds(world, perturbed) -> None:
    request_id, keys = perturbed
    answer = summary_for(world, request_id, at_terminal("p1"))
    [item] = answer["outputs"]
    assert set(item) == {"name", "verdict", "verified", "error", "decision", "cell_key", "released"}
    assert set(item["released"]) == {"columns", "rows"}
    assert item["cell_key"]["cells"] == len(item["released"]["rows"])
    # nothing about keys: no key value (the 32-bit fixed-point numbers) appears anywhere in the answer
    numbers = {v for row in item["released"]["rows"] for v in row if isinstance(v, (int, float))}
    assert not numbers & set(int(k) for k in keys) and "key" not in json.dumps(answer).replace("cell_key", "")
    assert vote(world, request_id, "bob", Decision.APPROVE) is ReleaseStatus.RELEASED
    package = list(csv.reader((world.settings.egress_dir / str(request_id) / "by_region.csv").open()))
    assert package[0] == item["released"]["columns"]
    assert package[1:] == [[str(v) for v in row] for row in item["released"]["rows"]]


@pytest.mark.parametrize("presence, user", [
    (Presence(), "alice"),                 # a token used elsewhere than the session's terminal
    (at_terminal("p2"), "alice"),          # a session that did not open the request's project
    (Presence(unknown=True), "alice"),     # the Hub could not say: fail closed
])
def test_the_released_cells_are_not_sent_away_from_the_sessions_terminal(world, perturbed, presence, user) -> None:
    request_id, _ = perturbed
    [item] = summary_for(world, request_id, presence, user)["outputs"]
    assert "released" not in item and item["cell_key"]["cells"] > 0  # the figures only, as before
    with transaction(world.factory) as s:  # a caller that gives no content access: no cells either
        assert "released" not in request_summary(service.view(s, request_id, user))["outputs"][0]


def test_a_table_not_perturbed_carries_no_released_cells(world) -> None:
    request_id = submit(world, table_output(query=QUERY), policy_=ReviewPolicy())
    [item] = summary_for(world, request_id, at_terminal("p1"))["outputs"]
    assert "released" not in item and "cell_key" not in item


@pytest.mark.parametrize("lang, computed, released, loss", [("en", "computed", "released", "information loss"),
                                                            ("ja", "計算値", "公表値", "情報損失")])
def test_the_notebook_shows_the_computed_and_the_released_cells_side_by_side(world, perturbed, capsys, lang,
                                                                             computed, released, loss) -> None:
    request_id, _ = perturbed
    answer = summary_for(world, request_id, at_terminal("p1"))
    spec = TableSpec.from_dict(table_output(query=QUERY)["spec"])
    con = guarded_connection({"survey": str(world.settings.datasets_dir / "survey.duckdb")})
    try:
        protected = evaluate_table(con, spec, load_preset("acro-default"))
    finally:
        con.close()
    table = TableOutput(spec, protected.shadow, protected.report, protected, None, lang)
    beside = table.released_beside(answer)
    view = beside.table
    assert view.columns == ["region", computed, released]
    service_rows = {str(row[0]): row[-1] for row in answer["outputs"][0]["released"]["rows"]}
    session_rows = {str(row[0]): row[-1] for row in table.table.iter_rows()}
    assert {r: (c, p) for r, c, p in view.iter_rows()} == {r: (session_rows[r], service_rows[r]) for r in service_rows}
    assert any(c != p for _, c, p in view.iter_rows()) or answer["outputs"][0]["cell_key"]["changed"] == 0
    page = beside._repr_html_()
    assert f"<th>{computed}</th><th>{released}</th>" in page and loss in page
    print_verdicts(answer, lang, [table])
    shown = capsys.readouterr().out
    assert computed in shown and released in shown and loss in shown
    # without the released cells (asked elsewhere), nothing to show beside the table
    assert table.released_beside(summary_for(world, request_id, Presence())) is None
