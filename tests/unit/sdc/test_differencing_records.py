"""Differencing by records (`sdc.records`, `sdc.differencing`): cells compared by the records they hold and the
values those contribute, never by their labels; property tests over random tables and record subsets."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_examples import examples

from disclosure_review.sdc import MARGIN_LABEL, TableKind, TableSpec, Verdict, compute_shadow, load_preset
from disclosure_review.sdc.differencing import OtherOutput, check_differencing, findings_between, sum_findings
from disclosure_review.sdc.records import (
    SUBTABLES,
    RecordState,
    difference,
    slots_and_check,
    state_of_records,
    traced_records,
    width_for,
)
from disclosure_review.sdc.enums import Statistic

JP = load_preset("jp-onsite")  # threshold 10, differencing fails
ACRO = load_preset("acro-default")  # threshold 10, differencing goes to review
T = int(JP.threshold)
N = 400
RNG = np.random.default_rng(20261207)
PEOPLE = pl.DataFrame({
    "id": np.arange(N), "area": RNG.choice(["a", "b", "c"], N), "sex": RNG.choice(["f", "m"], N),
    "income": RNG.integers(100, 900, N).astype(float),
})


@pytest.fixture(scope="module")
def con():
    con = duckdb.connect(":memory:")
    con.register("data", PEOPLE)
    yield con
    con.close()


def state(con, where: str = "true", value: str = "income", kind=TableKind.FREQUENCY, rows=("area",), columns=("sex",),
          name: str = "t", threshold: int = T) -> RecordState:
    """A table's record state, its rows traced by `id` as the review service traces them by the file's row id."""
    query = f"SELECT id, area, sex, {value} AS income FROM data WHERE {where}"
    spec = TableSpec(kind, query, rows=rows, columns=columns, name=name,
                     **({"value": "income", "statistic": Statistic.SUM} if kind is TableKind.MAGNITUDE else {}))
    traced = f"SELECT *, id AS sdc_record FROM ({query}) AS q"
    return state_of_records(compute_shadow(con, spec), traced_records(con, spec, traced), "people", threshold)


def total_pair(a: RecordState, b: RecordState):
    """The finding on the two grand totals, if any."""
    total = (MARGIN_LABEL,) * len(a.labels[0])
    return [f for f in findings_between(a, OtherOutput("b", b), T) if f.cell == total and f.other_cell == total]


def test_everyone_but_one_is_caught_in_every_cell_holding_that_one(con):
    everyone = state(con, name="everyone")
    but_one = state(con, "id <> 7", name="but_one")
    result = check_differencing(but_one, "but_one", [OtherOutput("#1 everyone", everyone)], JP)
    area, sex = PEOPLE.row(7, named=True)["area"], PEOPLE.row(7, named=True)["sex"]
    assert result.verdict is Verdict.FAIL
    assert set(result.cells) == {(area, sex), (area, MARGIN_LABEL), (MARGIN_LABEL, sex), (MARGIN_LABEL,) * 2}
    assert f"cell {area} / {sex} of 'but_one' and cell {area} / {sex} of '#1 everyone' differ on 1 records" \
        in result.message
    assert check_differencing(but_one, "but_one", [OtherOutput("e", everyone)], ACRO).verdict is Verdict.REVIEW


@pytest.mark.parametrize("changed", ["CASE WHEN id = 7 THEN 0 ELSE income END",
                                     "CASE WHEN id = 7 THEN NULL ELSE income END"])
def test_one_value_changed_over_the_same_records_is_caught(con, changed):
    plain = state(con, kind=TableKind.MAGNITUDE, name="income")
    other = state(con, value=changed, kind=TableKind.MAGNITUDE, name="changed")
    [finding] = total_pair(other, plain)
    assert finding.exact and finding.records == 1
    assert check_differencing(other, "changed", [OtherOutput("income", plain)], JP).verdict is Verdict.FAIL


def test_labels_play_no_part(con):
    # unrelated populations of any labels: never flagged; the same records under other labels: nothing differs
    low, high = state(con, "id < 200", name="low"), state(con, "id >= 200", name="high")
    small_a, small_b = state(con, "id < 4", name="a"), state(con, "id BETWEEN 4 AND 7", name="b")
    assert check_differencing(high, "high", [OtherOutput("low", low)], JP).verdict is Verdict.PASS
    assert check_differencing(small_b, "b", [OtherOutput("a", small_a)], JP).verdict is Verdict.PASS  # disjoint
    by_area = state(con, rows=("area",), columns=(), name="by_area")
    by_sex = state(con, rows=("sex",), columns=(), name="by_sex")
    assert check_differencing(by_sex, "by_sex", [OtherOutput("by_area", by_area)], JP).verdict is Verdict.PASS
    # a value over other records: every record differs (sum of income vs a count)
    counts = state(con, name="counts")
    sums = state(con, kind=TableKind.MAGNITUDE, name="sums")
    assert check_differencing(sums, "sums", [OtherOutput("counts", counts)], JP).verdict is Verdict.PASS


def test_cells_released_blank_and_untraced_outputs(con):
    everyone, but_one = state(con, name="everyone"), state(con, "id <> 7", name="but_one")
    hidden = everyone.blanked(set(everyone.labels))
    assert check_differencing(but_one, "but_one", [OtherOutput("e", hidden)], JP).verdict is Verdict.PASS
    untraced = check_differencing(but_one, "but_one", [OtherOutput("e", None)], JP)
    assert untraced.verdict is Verdict.REVIEW and "not compared (records not traced): ['e']" in untraced.message
    assert check_differencing(None, "x", [OtherOutput("e", everyone)], JP).verdict is Verdict.REVIEW
    assert check_differencing(but_one, "x", [], JP).verdict is Verdict.PASS
    assert check_differencing(but_one, "x", [OtherOutput("e", everyone)], JP.replace(threshold=None)).verdict \
        is Verdict.REVIEW


def test_state_size_and_round_trip(con):
    everyone = state(con)
    again = RecordState.from_bytes(everyone.to_bytes())
    assert again.labels == everyone.labels and again.labels[3] == everyone.labels[3] and len(again.labels) == 12
    assert (np.asarray(again.elements) == everyone.elements).all() and (np.asarray(again.checks) == everyone.checks).all()
    assert (again.counts == everyone.counts).all() and (again.grouping == everyone.grouping).all()
    assert (again.sketch == everyone.sketch).all() and (again.sketch_sizes == everyone.sketch_sizes).all()
    assert (again.elements[[5, 2]] == everyone.elements[[5, 2]]).all() and (again.checks[7] == everyone.checks[7]).all()
    assert again.dimensions == everyone.dimensions == 2
    assert len(everyone.to_bytes()) / len(everyone.labels) < 1024  # the goal: under 1 KB a cell
    assert width_for(10) == 20 and width_for(15) == 30 and everyone.slots == SUBTABLES * 20


STORED = Path(__file__).resolve().parents[2] / "data" / "record_states"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_states_stored_in_older_formats_are_read_and_compared_alike(con, version):
    # written by the code of 08bdc4c/e643b17 from `state(con, "id < 300")`: v1 zlib without a sketch, v2 one zstd frame
    old = RecordState.from_bytes((STORED / f"{version}.bin").read_bytes())
    now = state(con, "id < 300", name="under_300")
    assert old.labels == now.labels and (old.counts == now.counts).all()
    assert (old.elements == now.elements).all() and (old.checks == now.checks).all()
    assert (old.sketch is None) == (version == "v1")
    but_one = state(con, "id < 300 AND id <> 7", name="but_one")
    expected = check_differencing(but_one, "but_one", [OtherOutput("u", now)], JP)
    assert expected.verdict is Verdict.FAIL
    assert check_differencing(but_one, "but_one", [OtherOutput("u", old)], JP).to_dict() == expected.to_dict()
    # and stored again in the current format
    assert check_differencing(but_one, "but_one", [OtherOutput("u", RecordState.from_bytes(old.to_bytes()))],
                              JP).to_dict() == expected.to_dict()


def test_a_stored_state_damaged_where_it_is_read_late_is_not_compared_never_passed(con):
    everyone, but_one = state(con, name="everyone"), state(con, "id <> 7", name="but_one")
    data = bytearray(everyone.to_bytes())
    size = int.from_bytes(data[4:8], "little")
    header = json.loads(bytes(data[8:8 + size]))
    iblt = 8 + size + sum(packed for packed, _ in header["frames"][:2])  # the first frame of IBLT rows
    data[iblt:iblt + 4] = b"oops"
    damaged = RecordState.from_bytes(bytes(data))  # read: counts and sketches are fine, the rows are read later
    assert not damaged.readable() and everyone.readable()
    result = check_differencing(but_one, "but_one", [OtherOutput("damaged", damaged), OtherOutput("ok", everyone)], JP)
    assert result.verdict is Verdict.FAIL and "'ok'" in result.message
    assert "not compared (records not traced): ['damaged']" in result.message
    alone = check_differencing(but_one, "but_one", [OtherOutput("damaged", RecordState.from_bytes(bytes(data)))], JP)
    assert alone.verdict is Verdict.REVIEW and "['damaged']" in alone.message
    with pytest.raises(ValueError):
        RecordState.from_bytes(bytes(data[:-3]))  # frames that do not add up are refused when read


def test_a_threshold_over_the_sketch_length_compares_by_counts(con):
    # threshold 40 > 32 hashes: the sketch filter proves nothing, every pair near by count is peeled
    everyone, but_35 = state(con, threshold=40), state(con, "id >= 35", name="but_35", threshold=40)
    [finding] = [f for f in findings_between(but_35, OtherOutput("e", everyone), 40)
                 if f.cell == (MARGIN_LABEL,) * 2 and f.other_cell == (MARGIN_LABEL,) * 2]
    assert finding.exact and finding.records == 35


def test_a_difference_peeling_cannot_list_is_undecided_never_passed():
    # two elements forced into the same slots: no slot is pure, so the count is only bounded
    width = width_for(T)
    elements, checks = np.zeros(SUBTABLES * width, np.uint64), np.zeros(SUBTABLES * width, np.uint32)
    pair = np.array([5 << 32 | 1, 6 << 32 | 2], dtype=np.uint64)
    _, check = slots_and_check(pair, width)
    for slot in (0, width, 2 * width, 3 * width):
        elements[slot] = pair[0] ^ pair[1]
        checks[slot] = check[0] ^ check[1]
    diff = difference(elements, checks, 50, np.zeros_like(elements), np.zeros_like(checks), 48, width)
    assert not diff.exact and diff.records == 1  # at least one record: fewer than the threshold, undecided


@st.composite
def subsets(draw):
    """A random table's records (a subset of PEOPLE) and another differing in `moved` records (in or out) and
    `changed` values (the same record, another value)."""
    size = draw(st.integers(2 * T + 2, N - 2 * T))
    ids = draw(st.permutations(range(N)))
    base = set(ids[:size])
    moved = draw(st.integers(0, 2 * T))
    changed = draw(st.integers(0 if moved else 1, 2 * T))
    flips = set(ids[size - moved // 2: size + (moved - moved // 2)])  # some leave, some join
    other = base ^ flips
    value_changes = sorted(set(ids[:size - moved // 2]) & other)[:changed]
    return base, other, moved, value_changes, draw(st.sampled_from([("area",), ("sex",), ("area", "sex")]))


def _where(ids) -> str:
    return "id IN (" + ", ".join(map(str, sorted(ids))) + ")"


@settings(max_examples=examples(60), deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(subsets())
def test_property_a_pair_differing_on_fewer_than_threshold_records_is_always_caught_and_never_otherwise(con, case):
    base, other, moved, value_changes, dims = case
    rows, columns = dims[:1], dims[1:]
    differing = moved + len(value_changes)
    a = state(con, _where(base), kind=TableKind.MAGNITUDE, rows=rows, columns=columns)
    changed = ("income" if not value_changes
               else f"CASE WHEN id IN ({', '.join(map(str, value_changes))}) THEN income + 1 ELSE income END")
    b = state(con, _where(other), value=changed, kind=TableKind.MAGNITUDE, rows=rows, columns=columns)
    found = total_pair(a, RecordState.from_bytes(b.to_bytes()))  # stored: its rows read as the check needs them
    if differing < T:
        assert [(f.exact, f.records) for f in found] == [(True, differing)]
    else:
        assert found == []


@st.composite
def two_tables(draw):
    """Two random tables' records (subsets of PEOPLE, cells of 0 to ~60 records) and values changed in the second."""
    ids = draw(st.permutations(range(N)))
    a = set(ids[:draw(st.integers(0, 120))])
    b = set(ids[draw(st.integers(0, 20)):draw(st.integers(20, 140))])
    changed = sorted(a & b)[:draw(st.integers(0, 3))]
    return a, b, changed


def _members(ids: set, label) -> set:
    rows = PEOPLE.filter(pl.col("id").is_in(sorted(ids)))
    for column, value in zip(("area", "sex"), label):
        if value != MARGIN_LABEL:
            rows = rows.filter(pl.col(column) == value)
    return set(rows.get_column("id").to_list())


@settings(max_examples=examples(40), deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(two_tables())
def test_property_every_pair_of_cells_differing_on_fewer_than_threshold_records_is_found(con, case):
    # all cells, margins included, of a stored table against a new one, by the sketch join (small and large cells)
    a_ids, b_ids, changed = case
    value = ("income" if not changed
             else f"CASE WHEN id IN ({', '.join(map(str, changed))}) THEN income + 1 ELSE income END")
    a = state(con, _where(a_ids) if a_ids else "false", kind=TableKind.MAGNITUDE, name="a")
    b = state(con, _where(b_ids) if b_ids else "false", value=value, kind=TableKind.MAGNITUDE, name="b")
    found = {(f.cell, f.other_cell): (f.records, f.exact)
             for f in findings_between(a, OtherOutput("b", RecordState.from_bytes(b.to_bytes())), T)}
    expected = {}
    for cell_a in a.labels:
        for cell_b in b.labels:
            in_a, in_b = _members(a_ids, cell_a), _members(b_ids, cell_b)
            differing = len(in_a ^ in_b) + len(in_a & in_b & set(changed))
            alike = len(in_a & in_b) - len(in_a & in_b & set(changed))
            if 1 <= differing < T and alike and max(len(in_a), len(in_b)) >= T:
                expected[(cell_a, cell_b)] = (differing, True)
    assert found == expected


# ---------------------------------------------------------------- sums of cells (one level)


def test_a_total_minus_two_other_outputs_leaving_three_records_is_caught_whichever_comes_last(con):
    # "everyone", "under 150" and "150 to 396" released apart: everyone minus the two is persons 397-399
    outputs = {"everyone": state(con, name="everyone"), "low": state(con, "id < 150", name="low"),
               "high": state(con, "id >= 150 AND id < 397", name="high")}
    for new in outputs:
        others = [OtherOutput(name, s) for name, s in outputs.items() if name != new]
        result = check_differencing(outputs[new], new, others, JP)
        assert result.verdict is Verdict.FAIL, new
        assert (MARGIN_LABEL,) * 2 in result.cells
        assert "cell Total / Total of 'everyone' minus the total of " in result.message
        assert "leaves 3 records" in result.message
        assert check_differencing(outputs[new], new, others, ACRO).verdict is Verdict.REVIEW


def test_a_sum_of_the_shown_cells_stands_for_a_blank_total(con):
    everyone = state(con, name="everyone")
    but_one = state(con, "id <> 7", name="but_one")
    total = (MARGIN_LABEL,) * 2
    hidden_total = but_one.blanked({total})  # its total blank: the sum of its shown cells is still known
    [finding] = sum_findings(everyone, "everyone", [OtherOutput("but_one", hidden_total)], T)
    assert finding.exact and finding.records == 1 and [p.summed for p in finding.parts] == [True]
    assert check_differencing(everyone, "everyone", [OtherOutput("but_one", hidden_total)], JP).verdict \
        is Verdict.FAIL
    # a large cell blank too: the shown cells sum to far less, nothing is revealed
    area, sex = PEOPLE.row(0, named=True)["area"], PEOPLE.row(0, named=True)["sex"]
    assert sum_findings(everyone, "everyone", [OtherOutput("b", but_one.blanked({total, (area, sex)}))], T) == []


def test_overlapping_or_unrelated_outputs_are_not_summed_into_findings(con):
    everyone = state(con, name="everyone")
    overlapping = [OtherOutput("low", state(con, "id < 200", name="low")),
                   OtherOutput("high", state(con, "id >= 190", name="high"))]
    assert check_differencing(everyone, "everyone", overlapping, JP).verdict is Verdict.PASS
    elsewhere = [OtherOutput("a", state(con, "area = 'a'", name="a")), OtherOutput("b", state(con, "area = 'b'"))]
    assert check_differencing(state(con, "area = 'c'", name="c"), "c", elsewhere, JP).verdict is Verdict.PASS
    # counts, not sums: every record's contribution differs, nothing cancels
    sums = state(con, kind=TableKind.MAGNITUDE, name="sums")
    assert check_differencing(sums, "sums", [o for o in overlapping], JP).verdict is Verdict.PASS


@st.composite
def splits(draw):
    """A population, two other outputs that split it but for `gap` of its records, plus `extra` records of
    their own (outside it), and `changed` records whose value differs in the parts. The XOR cannot tell a record
    outside the total (-1) from one in both parts (-2, cancelled): with `extra`, a finding may be `review`."""
    ids = draw(st.permutations(range(N)))
    size = draw(st.integers(4 * T, N - 2 * T))
    gap, extra = draw(st.integers(0, 2 * T)), draw(st.integers(0, T))
    changed = draw(st.integers(0 if gap or extra else 1, T))
    whole = ids[:size]
    inside = whole[gap:]
    cut = draw(st.integers(T, len(inside) - T))
    low, high = inside[:cut] + ids[size:size + extra], inside[cut:]
    return whole, low, high, gap, extra, sorted(inside[:changed])


@settings(max_examples=examples(60), deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(splits())
def test_property_a_total_minus_two_parts_leaving_fewer_than_threshold_is_always_caught_and_never_otherwise(con, case):
    whole, low, high, gap, extra, changed = case
    kind = {"kind": TableKind.MAGNITUDE, "rows": ("area",), "columns": ()}
    value = ("income" if not changed
             else f"CASE WHEN id IN ({', '.join(map(str, changed))}) THEN income + 1 ELSE income END")
    w = state(con, _where(whole), name="w", **kind)
    parts = [OtherOutput("low", state(con, _where(low), value=value, **kind)),
             OtherOutput("high", state(con, _where(high), value=value, **kind))]
    total = (MARGIN_LABEL,)
    found = [f for f in sum_findings(w, "w", parts, T) if f.other_cell == total and len(f.parts) == 2]
    differing = gap + extra + len(changed)
    if differing < T:
        [finding] = found
        # parts inside the total: exact; records outside it or changed values may hide records that cancel
        assert finding.records == differing and (finding.exact or extra or changed)
    else:
        assert found == []


def test_cells_both_under_the_threshold_are_left_to_the_threshold_rule(con):
    # 8 and 7 records: each cell fails the threshold rule on its own; one of 8 against 17 is still compared
    small, smaller = state(con, "id < 8", name="small"), state(con, "id < 7", name="smaller")
    assert check_differencing(smaller, "smaller", [OtherOutput("small", small)], JP).verdict is Verdict.PASS
    larger = state(con, "id < 17", name="larger")
    assert check_differencing(small, "small", [OtherOutput("larger", larger)], JP).verdict is Verdict.FAIL
