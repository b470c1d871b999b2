"""The bottom-k sketch filter of differencing (`sdc.records.sketch_apart`): it skips a pair of cells only when they
differ on `threshold` records or more, whatever the hash (collisions included) and the cells' sizes."""
from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_examples import examples

from disclosure_review.sdc import MARGIN_LABEL, TableKind, TableSpec, compute_shadow
from disclosure_review.sdc.records import (
    RECORD_COLUMN,
    SKETCH,
    RecordState,
    SketchIndex,
    bottom_k,
    fingerprints,
    records_sql,
    sketch_apart,
    sketch_entries,
    sketch_hashes,
    sketch_meets,
    state_of_records,
    traced_records,
)

T = 10


def _elements(ids: list[int], values: dict[int, int]) -> np.ndarray:
    """One element per record: its id (high half) and a value fingerprint (low half)."""
    return np.array([i << 32 | values.get(i, 0) for i in ids], dtype=np.uint64)


def _sketch(elements: np.ndarray, hash_of, k: int):
    sketch, sizes = bottom_k(np.zeros(len(elements), dtype=np.int64), hash_of(elements), 1, k)
    return sketch, sizes


def _apart(a, b) -> bool:
    """Whether the filter skips the pair of one-cell sketches `a`, `b` (each (sketch, sizes))."""
    (sa, na), (sb, nb) = a, b
    shared = np.array([len(sketch_meets(SketchIndex.of(sa, na), sketch_entries(sb, nb))[0])])
    assert shared[0] == len(set(sa[0, :min(na[0], sa.shape[1])]) & set(sb[0, :min(nb[0], sb.shape[1])]))
    return bool(sketch_apart(shared, na, nb, sa.shape[1], T)[0])


@st.composite
def pairs(draw):
    """Two cells: `shared` records alike, `only_a` and `only_b` records in one of them, `changed` records in both with
    another value; sizes from 0 to well over the sketch."""
    shared, only_a, only_b, changed = (draw(st.integers(0, n)) for n in (3 * SKETCH, 2 * T, 2 * T, 2 * T))
    ids = list(range(shared + only_a + only_b + changed))
    a_ids = ids[:shared] + ids[shared:shared + only_a] + ids[shared + only_a + only_b:]
    b_ids = ids[:shared] + ids[shared + only_a:]
    a = _elements(a_ids, {})
    b = _elements(b_ids, {i: 1 for i in ids[shared + only_a + only_b:]})
    return a, b, only_a + only_b + changed, shared


HASHES = {
    "sketch_hashes": sketch_hashes,
    # 40 values only: collisions within and across cells
    "colliding": lambda e: (sketch_hashes(e) % np.uint32(40)).astype(np.uint32),
}


@pytest.mark.parametrize("hash_name", HASHES)
@pytest.mark.parametrize("k", [SKETCH, 16, T, 8])
@settings(max_examples=examples(300), deadline=None, derandomize=True)
@given(case=pairs())
def test_property_the_filter_never_skips_a_pair_differing_on_fewer_than_threshold_records(hash_name, k, case):
    a, b, differing, shared = case
    if not len(a) or not len(b):
        return
    hash_of = HASHES[hash_name]
    apart = _apart(_sketch(a, hash_of, k), _sketch(b, hash_of, k))
    if apart:
        assert differing >= T
    if 1 <= differing < T:
        assert not apart
        # and the pair meets in the join of the first T hashes of each sketch (when it holds a record alike)
        if shared and k >= T:
            (sa, na), (sb, nb) = _sketch(a, hash_of, k), _sketch(b, hash_of, k)
            assert len(sketch_meets(SketchIndex.of(sa, na, T), sketch_entries(sb, nb, T))[0]) >= 1


def test_the_filter_skips_unrelated_and_far_apart_cells():
    # what it is for: cells of other populations, large or small, are settled without peeling
    large_a, large_b = _elements(list(range(500)), {}), _elements(list(range(500, 1000)), {})
    small_a, small_b = _elements(list(range(12)), {}), _elements(list(range(100, 115)), {})
    near_a, near_b = _elements(list(range(200)), {}), _elements(list(range(3, 200)), {})
    for a, b in [(large_a, large_b), (small_a, small_b)]:
        assert _apart(_sketch(a, sketch_hashes, SKETCH), _sketch(b, sketch_hashes, SKETCH))
    assert not _apart(_sketch(near_a, sketch_hashes, SKETCH), _sketch(near_b, sketch_hashes, SKETCH))


def test_bottom_k_sizes_say_whether_the_sketch_is_all_of_a_cell():
    owners = np.array([0, 0, 0, 1, 1, 1, 1, 1], dtype=np.int64)
    hashes = np.array([9, 3, 3, 5, 1, 4, 2, 8], dtype=np.uint32)
    sketch, sizes = bottom_k(owners, hashes, 3, 3)
    assert sketch.tolist() == [[3, 9, 0], [1, 2, 4], [0, 0, 0]]
    assert sizes.tolist() == [2, 4, 0]  # 4: more than k


@pytest.fixture(scope="module")
def con():
    rng = np.random.default_rng(7)
    n = 600
    people = pl.DataFrame({"id": np.arange(n), "area": rng.choice(["a", "b", "c", "d"], n),
                           "sex": rng.choice(["f", "m"], n), "income": rng.integers(100, 900, n).astype(float)})
    con = duckdb.connect(":memory:")
    con.register("data", people)
    yield con
    con.close()


@pytest.mark.parametrize("where", ["true", "id % 7 = 0", "id < 30"])
def test_every_cells_sketch_is_the_bottom_k_of_its_own_records_margins_included(con, where):
    # margins are built from their finest cells' sketches: the same as from their records, sizes included
    query = f"SELECT id, area, sex, income FROM data WHERE {where}"
    spec = TableSpec(TableKind.FREQUENCY, query, rows=("area",), columns=("sex",), name="t")
    traced = f"SELECT *, id AS {RECORD_COLUMN} FROM ({query}) AS q"
    shadow = compute_shadow(con, spec)
    state = state_of_records(shadow, traced_records(con, spec, traced), "people", T)
    records = con.sql(records_sql(spec, traced)).pl()
    elements = (records.get_column(RECORD_COLUMN).to_numpy().astype(np.uint64) << np.uint64(32)) | fingerprints(
        records.get_column("v").cast(pl.Float64).to_numpy(), records.get_column("w").cast(pl.Float64).to_numpy(),
        "people")
    for i, label in enumerate(state.labels):
        inside = np.ones(records.height, dtype=bool)
        for column, value in zip(("d0", "d1"), label):
            if value != MARGIN_LABEL:
                inside &= (records.get_column(column) == value).to_numpy()
        sketch, sizes = _sketch(elements[inside], sketch_hashes, SKETCH)
        assert (state.sketch[i] == sketch[0]).all() and state.sketch_sizes[i] == sizes[0], label
    assert (state.sketch_sizes > SKETCH).any() == (where != "id < 30")
    again = RecordState.from_bytes(state.to_bytes())
    assert (again.sketch == state.sketch).all() and (again.sketch_sizes == state.sketch_sizes).all()


def test_states_stored_without_a_sketch_are_read_and_compared_as_before(con):
    query = "SELECT id, area, sex, income FROM data"
    spec = TableSpec(TableKind.FREQUENCY, query, rows=("area",), columns=("sex",), name="t")
    traced = f"SELECT *, id AS {RECORD_COLUMN} FROM ({query}) q"
    state = state_of_records(compute_shadow(con, spec), traced_records(con, spec, traced), "people", T)
    old = RecordState(state.name, state.width, state.labels, state.counts, state.elements, state.checks)
    again = RecordState.from_bytes(old.to_bytes())
    assert again.sketch is None and (again.elements == state.elements).all()
