"""Record state of a table's cells: which records contribute, and what each contributes, in a fixed size.

Differencing compares cells by their records, not their labels. Each record a
cell counts is one *element*, 64 bits: the high half is the record's row id in
its dataset's file (which the review service derives itself, never the query),
the low half fingerprints the value and weight it contributes (salted with the
dataset id, so that records of two datasets never match). A cell keeps its elements
in an invertible Bloom lookup table (IBLT): `SUBTABLES` sub-tables of `width`
slots, each element XOR-ed into one slot of each sub-table with a 32-bit check.
The XOR of two cells' tables is the table of their symmetric difference, and
peeling it lists exactly the differing elements when they are few — so two cells
that differ in fewer than the threshold number of records (in which records, or
in the value a record contributes) are found, without the earlier query being
run again, and cells over unrelated populations are not.

Sizes (measured in bench/bench_differencing.py): `width` = max(20, 2 × threshold)
slots per sub-table, 12 bytes a slot: 960 bytes a cell up to threshold 10,
however many records it holds. A difference of fewer than `threshold` records is
at most 2 × (threshold − 1) elements (a changed value is the old and the new
element), fewer than `width`: it can never fill a sub-table, so a table with
every slot set is a difference of at least `threshold` records, exactly.

The state is built from the query's rows by numpy (fingerprints, slots) and
DuckDB (the XOR aggregate over every cell and margin at once).

Row ids identify records only within one file of a dataset; a dataset ingested
again gets new ids (its outputs then differ on every record: never flagged).
Datasets of 2^32 rows or more are not traced.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zlib
from collections.abc import Sequence

import duckdb
import numpy as np
import polars as pl

from .shadow import GROUPING, RECORDS, ShadowTable, grouping_sets, source_columns
from .spec import TableSpec

RECORD_STATE_VERSION = 1
SUBTABLES = 4
MIN_WIDTH = 20
ELEMENT = "sdc_element"  # per record: its row id (high 32 bits) | its value fingerprint (low 32 bits)
_SLOT = "sdc_slot"
_CHECK = "sdc_check"
_CHECK_SALT = np.uint64(0x9E3779B97F4A7C15)


def width_for(threshold: int | None) -> int:
    """Slots per sub-table for a preset's threshold (see the module docstring)."""
    return max(MIN_WIDTH, 2 * int(threshold or 0))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a fixed, well-spread 64-bit hash (uint64 arithmetic wraps)."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def slots_and_check(elements: np.ndarray, width: int) -> tuple[list[np.ndarray], np.ndarray]:
    """For each element, its slot in each sub-table (one array per sub-table) and its 32-bit check."""
    h = _mix(elements)
    # 16 bits of the hash per sub-table, mapped onto its `width` slots by a multiply and shift
    slots = [(((h >> np.uint64(16 * j)) & np.uint64(0xFFFF)).astype(np.uint32) * np.uint32(width) >> np.uint32(16))
             + np.uint32(j * width) for j in range(SUBTABLES)]
    check = (_mix(h ^ _CHECK_SALT) >> np.uint64(32)).astype(np.uint32)
    return slots, check


@dataclasses.dataclass(frozen=True)
class RecordState:
    """Per cell of a table (shadow frame order): its labels, record count and IBLT (`elements`, `checks`).

    `counts` is -1 for a cell released blank (suppressed or deleted): it shows nothing to subtract.
    """

    name: str
    width: int
    labels: list[tuple[str | None, ...]]
    counts: np.ndarray  # int64 [cells]
    elements: np.ndarray  # uint64 [cells, SUBTABLES * width]
    checks: np.ndarray  # uint32 [cells, SUBTABLES * width]

    @property
    def slots(self) -> int:
        return SUBTABLES * self.width

    def blanked(self, blank: set[tuple]) -> RecordState:
        """The state with the cells released blank (by label) left out of every comparison."""
        counts = np.array([-1 if label in blank else n for label, n in zip(self.labels, self.counts)], dtype=np.int64)
        return dataclasses.replace(self, counts=counts)

    def to_bytes(self) -> bytes:
        header = json.dumps({"version": RECORD_STATE_VERSION, "name": self.name, "width": self.width,
                             "labels": [list(label) for label in self.labels]}, ensure_ascii=False).encode()
        body = io.BytesIO()
        body.write(len(header).to_bytes(4, "little") + header)
        for array in (self.counts.astype("<i8"), self.elements.astype("<u8"), self.checks.astype("<u4")):
            body.write(array.tobytes())
        return zlib.compress(body.getvalue(), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> RecordState:
        raw = zlib.decompress(data)
        size = int.from_bytes(raw[:4], "little")
        header = json.loads(raw[4:4 + size])
        if header.get("version") != RECORD_STATE_VERSION:
            raise ValueError(f"record state version {header.get('version')!r} is not supported")
        cells, slots = len(header["labels"]), SUBTABLES * int(header["width"])
        offset = 4 + size
        counts = np.frombuffer(raw, "<i8", cells, offset)
        offset += 8 * cells
        elements = np.frombuffer(raw, "<u8", cells * slots, offset).reshape(cells, slots)
        offset += 8 * cells * slots
        checks = np.frombuffer(raw, "<u4", cells * slots, offset).reshape(cells, slots)
        return cls(header["name"], int(header["width"]), [tuple(label) for label in header["labels"]],
                   counts, elements, checks)


def fingerprints(values: np.ndarray, weights: np.ndarray, dataset: str) -> np.ndarray:
    """32 bits per record for the value and weight it contributes (NULL and NaN alike; -0.0 as 0.0), salted with
    the dataset (row ids of two datasets are then different records)."""
    salt = np.uint64(int.from_bytes(hashlib.sha256(dataset.encode()).digest()[:8], "little"))

    def bits(x: np.ndarray) -> np.ndarray:
        x = np.where(np.isnan(x), np.nan, x + 0.0)  # one NaN pattern, and -0.0 + 0.0 is 0.0
        return x.astype(np.float64).view(np.uint64)

    return (_mix(bits(values) ^ _mix(bits(weights) ^ salt)) >> np.uint64(32)).astype(np.uint64)


def build_state(name: str, records: pl.DataFrame, dataset: str, cells: pl.DataFrame, dimensions: Sequence[str],
                grouping_sets: Sequence[tuple[int, ...]], grouping: str, labels: list[tuple], counts: Sequence[int],
                width: int) -> RecordState:
    """The record state of a table's cells.

    `records`: one row per record of the query: `d0…` (as the cells group them), `RECORD_COLUMN` (its row id in
    `dataset`), `v` and `w` (the value and weight it contributes, as the cells count them).
    `cells`: the shadow frame's dimension columns and `grouping` (frame order); `labels` and `counts` per cell.
    """
    k = len(dimensions)
    d = [f"d{i}" for i in range(k)]
    ids = records.get_column(RECORD_COLUMN).to_numpy()
    if len(ids) and (ids.min() < 0 or ids.max() >= 1 << 32):
        raise NotOneRowPerRecord(f"table {name!r}: row ids beyond 32 bits")
    values = records.get_column("v").cast(pl.Float64).to_numpy(allow_copy=True)
    weights = records.get_column("w").cast(pl.Float64).to_numpy(allow_copy=True)
    elements = (ids.astype(np.uint64) << np.uint64(32)) | fingerprints(values, weights, dataset)
    slots, check = slots_and_check(elements, width)
    columns = {x: records.get_column(x) for x in d} | {ELEMENT: elements, _CHECK: check}
    columns |= {f"{_SLOT}{j}": slots[j] for j in range(SUBTABLES)}
    keyed = ", ".join([*d, _SLOT])
    per_slot = " UNION ALL ".join(f"SELECT {', '.join(d)}, {_SLOT}{j} AS {_SLOT}, {ELEMENT}, {_CHECK} FROM r"
                                  for j in range(SUBTABLES))
    sets = ", ".join("(" + ", ".join([*(d[i] for i in positions), _SLOT]) + ")" for positions in grouping_sets)
    # DuckDB's XOR aggregate over every grouping set at once (a separate in-memory connection: our data only)
    con = duckdb.connect(":memory:")
    try:
        con.register("r", pl.DataFrame(columns).to_arrow())
        xor = f"bit_xor({ELEMENT}) AS {ELEMENT}, bit_xor({_CHECK}) AS {_CHECK}"
        # the finest cells from the records, their margins from those few rows (XOR is associative)
        located = con.sql(
            f"WITH fine AS (SELECT {keyed}, {xor} FROM ({per_slot}) GROUP BY ALL) "
            f"SELECT {', '.join(d)}, CAST(GROUPING({', '.join(d)}) AS BIGINT) AS {grouping}, {_SLOT}, {xor} "
            f"FROM fine GROUP BY GROUPING SETS ({sets})").pl()
    finally:
        con.close()
    cell_index = cells.rename(dict(zip(dimensions, d))).with_row_index("sdc_cell")
    # The records' dimension types are the cells' (the same expressions); nulls match nulls, margins by `grouping`.
    located = located.with_columns(pl.col(x).cast(cell_index.schema[x]) for x in d).join(
        cell_index, on=[*d, grouping], how="inner", nulls_equal=True)
    table = np.zeros((cells.height, SUBTABLES * width), dtype=np.uint64)
    checks = np.zeros((cells.height, SUBTABLES * width), dtype=np.uint32)
    rows, cols = located.get_column("sdc_cell").to_numpy(), located.get_column(_SLOT).to_numpy()
    table[rows, cols] = located.get_column(ELEMENT).to_numpy()
    checks[rows, cols] = located.get_column(_CHECK).to_numpy()
    return RecordState(name, width, labels, np.asarray(counts, dtype=np.int64), table, checks)


@dataclasses.dataclass(frozen=True)
class Difference:
    """What separates two cells: at least `records` records differ (in membership or value); exactly that many
    when `exact`. `shared`: records both cells hold (when exact)."""

    records: int
    exact: bool
    shared: int = 0


def peel(elements: np.ndarray, checks: np.ndarray, width: int) -> tuple[list[int], int]:
    """The elements of an IBLT (a difference of two) listed by peeling; and the slots left set when it sticks."""
    elements, checks = elements.copy(), checks.copy()
    found: list[int] = []
    pending = list(np.flatnonzero((elements != 0) | (checks != 0)))
    while pending:
        slot = pending.pop()
        e = elements[slot]
        if e == 0 and checks[slot] == 0:
            continue
        slots, check = slots_and_check(np.array([e], dtype=np.uint64), width)
        slots = [int(s[0]) for s in slots]
        if check[0] != checks[slot] or slot not in slots:
            continue  # more than one element here (for now)
        found.append(int(e))
        for s in slots:
            elements[s] ^= e
            checks[s] ^= check[0]
            pending.append(int(s))
    left = int(np.count_nonzero((elements != 0) | (checks != 0)))
    return found, left


def difference(a_elements: np.ndarray, a_checks: np.ndarray, a_count: int, b_elements: np.ndarray,
               b_checks: np.ndarray, b_count: int, width: int) -> Difference:
    """How many records two cells differ on, exactly when peeling lists the difference.

    When peeling sticks, every slot left holds two or more elements and each record is at most two
    elements, so at least `left / 4` records differ beyond those listed: `records` is that lower bound
    when it already settles the question, else None ("undecided").
    """
    found, left = peel(a_elements ^ b_elements, a_checks ^ b_checks, width)
    per_record: dict[int, int] = {}
    for element in found:
        per_record[element >> 32] = per_record.get(element >> 32, 0) + 1
    if left:
        return Difference(max(len(per_record), (left + 3) // 4), exact=False)
    changed = sum(1 for n in per_record.values() if n == 2)  # the same record with another value
    moved = len(per_record) - changed  # in one cell only
    only_a = (moved + a_count - b_count) // 2  # |A \ B| - |B \ A| = a_count - b_count
    return Difference(len(per_record), exact=True, shared=a_count - only_a)


class NotOneRowPerRecord(ValueError):
    """A traced query gave some record more than one row (a join that repeats it): its cells are not traced."""


RECORD_COLUMN = "sdc_record"
"""The column a traced query adds: a 64-bit identity of the dataset row each result row comes from."""


def records_sql(spec: TableSpec, traced_query: str) -> str:
    """Per record of `traced_query` (the spec's query with `RECORD_COLUMN`, the row id, added): its dimensions, as
    the cells group them, its row id, and the value and weight it contributes."""
    columns, where = source_columns(spec)
    dims = ", ".join(f"d{i}" for i in range(len(spec.dimensions)))
    return (f"WITH src AS (SELECT {', '.join(columns)}, {RECORD_COLUMN} FROM (\n{traced_query}\n) AS q{where})\n"
            f"SELECT {dims}, {RECORD_COLUMN}, v, w FROM src")


def compute_record_state(con: duckdb.DuckDBPyConnection, shadow: ShadowTable, traced_query: str, dataset: str,
                         threshold: int | None) -> RecordState:
    """The record state of `shadow`'s cells, from `traced_query` (whose row ids are those of `dataset`) run on
    `con`, the connection the cells came from."""
    spec = shadow.spec
    records = con.sql(records_sql(spec, traced_query)).pl()
    if records.get_column(RECORD_COLUMN).n_unique() != records.height:
        raise NotOneRowPerRecord(f"table {spec.name!r}: some record gives more than one row")
    cells = shadow.frame.select(*spec.dimensions, GROUPING)
    return build_state(spec.name, records, dataset, cells, spec.dimensions, grouping_sets(spec), GROUPING,
                       shadow.labels(), shadow.frame.get_column(RECORDS).to_list(),
                       width_for(threshold))
