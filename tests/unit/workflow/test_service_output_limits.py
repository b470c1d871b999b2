"""Output limits in the service (issue 14, item 5): cells counted before recomputing, bytes as received and as
stored, the project's requests waiting for review; each refusal names its limit. Real store, real DuckDB."""
from __future__ import annotations

import json

import duckdb
import pytest
from onsite_base.config import SettingInvalid

from disclosure_review import wire
from disclosure_review.sdc import histogram_table_spec
from disclosure_review.sdc.enums import Statistic, TableKind
from disclosure_review.sdc.shadow import compute_shadow
from disclosure_review.sdc.size import table_cells
from disclosure_review.sdc.spec import TableSpec
from disclosure_review.workflow import service
from disclosure_review.workflow.enums import ReleaseStatus
from disclosure_review.workflow.policies import ReviewPolicy
from disclosure_review.workflow.store import ReleaseRequest, waiting_size
from onsite_base.db import transaction
from workflow_factories import REGION_COUNTS, payload, submit, table_output

# survey: region (3 levels) × sex (2): 6 cells, 3 + 2 margins, 1 total = 12
BY_REGION_AND_SEX = {**table_output(name="by_region_sex"), "spec": {**table_output()["spec"], "name": "by_region_sex",
                                                                     "columns": ["sex"]}}


@pytest.mark.parametrize(("rows", "columns"), [(("a",), ()), (("a",), ("b",)), (("a", "b"), ("c",)), (("a",), ("b", "c"))])
def test_cells_are_counted_as_the_table_builds_them(rows, columns):
    con = duckdb.connect()
    con.sql("CREATE TABLE t AS SELECT i, i % 7 AS a, CASE WHEN i % 11 = 0 THEN NULL ELSE i % 5 END AS b, "
            "(i % 13)::VARCHAR AS c FROM range(2000) r(i)")
    spec = TableSpec(kind=TableKind.FREQUENCY, query="SELECT * FROM t WHERE i > 10", rows=rows, columns=columns,
                     value=None, statistic=Statistic.COUNT, name="x")
    assert table_cells(con, spec) == compute_shadow(con, spec).frame.height  # a missing value is a level too
    con.sql("CREATE TABLE h AS SELECT random() * 100 AS v FROM range(500)")
    histogram = histogram_table_spec("SELECT * FROM h", "v", tuple(range(0, 101, 10)), name="h")
    assert table_cells(con, histogram) == compute_shadow(con, histogram).frame.height == 11


def test_a_site_may_lower_a_limit_never_raise_it_past_the_wire():
    assert ReviewPolicy(max_cells_per_output=10).max_cells_per_output == 10
    with pytest.raises(SettingInvalid, match="max_cells_per_output must be at least 1 and at most 100,000"):
        ReviewPolicy(max_cells_per_output=wire.MAX_CELLS_PER_OUTPUT + 1)
    with pytest.raises(SettingInvalid, match="max_bytes_per_project must be at least 1"):
        ReviewPolicy(max_bytes_per_project=0)


def test_attack_a_table_past_the_cell_limit_is_refused_before_it_is_recomputed(world):
    with pytest.raises(wire.LimitExceeded) as refused:
        submit(world, BY_REGION_AND_SEX, policy_=ReviewPolicy(max_cells_per_output=11))
    assert refused.value.code == "output_cells" and refused.value.setting == "ReviewPolicy.max_cells_per_output"
    assert refused.value.args_["size"] == 12 and "split" in str(refused.value)
    assert "分けて" in refused.value.text("ja")
    with transaction(world.factory) as s:
        assert s.query(ReleaseRequest).count() == 0  # nothing stored


def test_attack_large_claims_are_refused_as_received(world):
    claims = {"cells": {"columns": ["region", "n"], "rows": [["A", 1]] * 5000}}
    with pytest.raises(wire.LimitExceeded) as refused:
        submit(world, table_output(claimed=claims), policy_=ReviewPolicy(max_bytes_per_output=20_000))
    assert refused.value.code == "output_bytes"
    with pytest.raises(wire.LimitExceeded, match="max_bytes_per_request"):
        submit(world, table_output(claimed=claims), policy_=ReviewPolicy(max_bytes_per_request=20_000))


def test_cells_per_request_count_what_the_service_computed(world):
    two = [table_output(name="a"), table_output(name="b")]  # 4 cells each: A, B, C and the total
    with pytest.raises(wire.LimitExceeded, match="max_cells_per_request"):
        submit(world, *two, policy_=ReviewPolicy(max_cells_per_request=7))
    assert submit(world, *two, policy_=ReviewPolicy(max_cells_per_request=8))


def test_a_project_cannot_flood_the_queue(world):
    policy = ReviewPolicy(max_cells_per_project=10)
    first = submit(world, table_output(name="a"), table_output(name="b"), policy_=policy)  # 8 cells waiting
    with pytest.raises(wire.LimitExceeded) as refused:
        submit(world, table_output(name="c"), policy_=policy)
    assert refused.value.code == "project_cells" and refused.value.args_["waiting"] == 8
    with transaction(world.factory) as s:
        assert waiting_size(s, "p1", [ReleaseStatus.SUBMITTED])[0] == 8
        service.withdraw(s, first, "alice")  # no longer waiting: room again
    assert submit(world, table_output(name="c"), policy_=policy)


def test_stored_outputs_carry_their_size(world):
    request_id = submit(world, table_output())
    with transaction(world.factory) as s:
        output = service.view(s, request_id, "alice").outputs[0]
        assert output.cells == len(REGION_COUNTS) + 1 and output.size_bytes > wire.json_size(output.recomputed)


def test_the_payload_is_measured_as_sent():
    sent = payload(table_output(name="出力"))
    assert wire.json_size(sent) == len(json.dumps(sent, ensure_ascii=False, separators=(",", ":")).encode())


def test_attack_the_forwarder_refuses_oversized_outbox_files_and_removes_them(tmp_path):
    from test_wire import VALID, _forward  # the real forwarder against a recording service

    fat = json.loads(json.dumps(VALID[""]))
    table = next(o for o in fat["outputs"] if o["kind"] == "table")
    table["claimed"] = {"cells": {"rows": [["x" * 1000]] * (wire.MAX_OUTPUT_BYTES // 1000)}}  # passes the schema
    (tmp_path / ("big" + wire.REQUEST_SUFFIX)).write_bytes(b" " * (wire.MAX_REQUEST_BYTES + 1))  # never parsed
    posted = _forward(tmp_path, {"fat": fat, "ok": VALID[""]})
    assert posted == [VALID[""]]
    big, fat_refusal = (json.loads((tmp_path / (rid + wire.ERROR_SUFFIX)).read_text()) for rid in ("big", "fat"))
    assert (big["status"], big["code"], big["limit"]) == (413, "request_bytes", "ReviewPolicy.max_bytes_per_request")
    assert (fat_refusal["status"], fat_refusal["code"]) == (413, "output_bytes")
    assert fat_refusal["args"]["name"] == table["name"] and "split" in fat_refusal["message"]
    assert not (tmp_path / ("big" + wire.REQUEST_SUFFIX)).exists() and not (tmp_path / ("fat" + wire.REQUEST_SUFFIX)).exists()
