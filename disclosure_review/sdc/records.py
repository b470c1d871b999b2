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

Each cell also keeps a bottom-k sketch: the `SKETCH` (32) smallest distinct 32-bit hashes of its elements, 128
bytes. Two sketches bound how many records their cells differ on (`sketch_apart`, proven in
docs/explanation/differencing.md), which settles most pairs of cells without touching their IBLTs. Stored states
(version 2) are zstd-compressed; version 1 states (zlib, no sketch) are still read and compared without it.

The state is built from the query's rows by numpy: fingerprints, slots, and
the XOR of each finest cell's elements into its slots (`np.bitwise_xor.at`);
margins are XORs of finest cells.

Row ids identify records only within one file of a dataset; a dataset ingested
again gets new ids (its outputs then differ on every record: never flagged).
Datasets of 2^32 rows or more are not traced.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import zlib
from collections.abc import Sequence

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from .shadow import GROUPING, RECORDS, ShadowTable, grouping_sets, source_columns
from .spec import TableSpec

RECORD_STATE_VERSION = 2  # 2: with the bottom-k sketch; 1 (without) is still read
SUBTABLES = 4
SKETCH = 32  # hashes in a cell's bottom-k sketch (128 bytes)
MIN_WIDTH = 20
ELEMENT = "sdc_element"  # per record: its row id (high 32 bits) | its value fingerprint (low 32 bits)
_FINE = "sdc_fine"
_CHECK_SALT = np.uint64(0x9E3779B97F4A7C15)
_SKETCH_SALT = np.uint64(0xD1B54A32D192ED03)
_ZSTD = b"\0zst"  # stored states from version 2: this, the raw size (8 bytes), zstd; version 1: zlib (never \0 first)


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


def sketch_hashes(elements: np.ndarray) -> np.ndarray:
    """The 32-bit hash of each element that bottom-k sketches keep."""
    return (_mix(elements ^ _SKETCH_SALT) >> np.uint64(32)).astype(np.uint32)


def bottom_k(owners: np.ndarray, hashes: np.ndarray, n: int, k: int = SKETCH) -> tuple[np.ndarray, np.ndarray]:
    """Per owner (of `n`): the `k` smallest distinct hashes it holds, ascending (uint32 [n, k], 0 after them), and
    how many distinct hashes it holds, `k` + 1 standing for more than `k` (the sketch is then not all of them)."""
    keys = np.unique((owners.astype(np.uint64) << np.uint64(32)) | hashes.astype(np.uint64))
    owner = (keys >> np.uint64(32)).astype(np.int64)
    distinct = np.bincount(owner, minlength=n)
    rank = np.arange(len(keys)) - np.repeat(np.cumsum(distinct) - distinct, distinct)
    kept = rank < k
    sketch = np.zeros((n, k), dtype=np.uint32)
    sketch[owner[kept], rank[kept]] = (keys[kept] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return sketch, np.minimum(distinct, k + 1)


def sketch_entries(sketch: np.ndarray, sizes: np.ndarray, ordered: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A sketch's hashes as (row, hash) arrays, by hash when `ordered`."""
    held = np.arange(sketch.shape[1]) < np.minimum(sizes, sketch.shape[1])[:, None]
    rows = np.broadcast_to(np.arange(len(sketch), dtype=np.int64)[:, None], sketch.shape)[held]
    if not ordered:
        return rows, sketch[held]
    keys = np.sort((sketch[held].astype(np.uint64) << np.uint64(32)) | rows.astype(np.uint64))
    return (keys & np.uint64(0xFFFFFFFF)).astype(np.int64), (keys >> np.uint64(32)).astype(np.uint32)


@dataclasses.dataclass(frozen=True)
class SketchIndex:
    """A table's sketch hashes ready to be joined: (cell, hash) by hash, where each hash's run ends, and a bitmap
    of the hashes' top 20 bits (most hashes of another table are ruled out by one look-up)."""

    cells: np.ndarray
    hashes: np.ndarray
    run_end: np.ndarray
    present: np.ndarray

    @classmethod
    def of(cls, sketch: np.ndarray, sizes: np.ndarray) -> SketchIndex:
        cells, hashes = sketch_entries(sketch, sizes)
        present = np.zeros(1 << 20, dtype=bool)
        present[hashes >> np.uint32(12)] = True
        return cls(cells, hashes, np.searchsorted(hashes, hashes, side="right"), present)


def shared_hashes(a: SketchIndex, b: tuple[np.ndarray, np.ndarray], b_rows_all: int, a_rows: np.ndarray,
                  b_rows: np.ndarray) -> np.ndarray:
    """Per pair (`a_rows[i]`, `b_rows[i]`): the hashes both sketches hold; `a`: one table's index, `b`: the other's
    `sketch_entries` (in any order), `b_rows_all` the rows of `b`'s table.

    A join of the two tables' sketch hashes: only pairs sharing a hash meet (few: a record is in a few cells), so
    the cost is the sketches' size, not the number of pairs asked for."""
    b_owner, b_hash = b
    maybe = np.flatnonzero(a.present[b_hash >> np.uint32(12)])
    order = maybe[np.argsort(b_hash[maybe], kind="stable")]  # sorted needles search faster
    b_owner, b_hash = b_owner[order], b_hash[order]
    lo = np.searchsorted(a.hashes, b_hash, side="left")
    found = np.flatnonzero(a.hashes[np.minimum(lo, len(a.hashes) - 1)] == b_hash) if len(a.hashes) else lo[:0]
    lo, b_owner = lo[found], b_owner[found]
    sizes = a.run_end[lo] - lo  # the run of a's entries each found hash meets
    starts = np.repeat(lo - np.cumsum(sizes) + sizes, sizes)
    met = a.cells[starts + np.arange(sizes.sum())] * b_rows_all + np.repeat(b_owner, sizes)
    keys, counts = np.unique(met, return_counts=True)
    asked = a_rows.astype(np.int64) * b_rows_all + b_rows
    if not len(keys):
        return np.zeros(len(asked), dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, asked), len(keys) - 1)
    return np.where(keys[at] == asked, counts[at], 0)


def sketch_apart(shared: np.ndarray, a_sizes: np.ndarray, b_sizes: np.ndarray, k: int, threshold: int) -> np.ndarray:
    """Per pair of cells (the hashes their bottom-k sketches share, and their sizes as `bottom_k` gives them): True
    when the sketches prove the cells differ on at least `threshold` records (docs/explanation/differencing.md
    gives the proof).

    With `s` hashes shared and `r` records differing: s >= min(len_a, len_b) - r (the sketches hold prefixes of
    the hashes the cells share); and when both sketches are complete (all of a cell's hashes), each cell's hashes
    the other lacks come from its own differing records, so r >= max(len_a, len_b) - s.
    """
    a_len, b_len = np.minimum(a_sizes, k), np.minimum(b_sizes, k)
    complete = (a_sizes <= k) & (b_sizes <= k)
    return (shared <= np.minimum(a_len, b_len) - threshold) | (
        complete & (np.maximum(a_len, b_len) - shared >= threshold))


@dataclasses.dataclass(frozen=True)
class RecordState:
    """Per cell of a table (shadow frame order): its labels, record count, IBLT (`elements`, `checks`) and
    bottom-k sketch (`sketch`, `sketch_sizes`, as `bottom_k` gives them; None in states stored before them).

    `counts` is -1 for a cell released blank (suppressed or deleted): it shows nothing to subtract.
    """

    name: str
    width: int
    labels: list[tuple[str | None, ...]]
    counts: np.ndarray  # int64 [cells]
    elements: np.ndarray  # uint64 [cells, SUBTABLES * width]
    checks: np.ndarray  # uint32 [cells, SUBTABLES * width]
    sketch: np.ndarray | None = None  # uint32 [cells, SKETCH]
    sketch_sizes: np.ndarray | None = None  # int64 [cells]
    grouping: np.ndarray | None = None  # int64 [cells]: GROUPING's bits, which cells are margins (None: stored before)

    @property
    def slots(self) -> int:
        return SUBTABLES * self.width

    @functools.cached_property
    def sketch_index(self) -> SketchIndex:
        """The sketches' hashes indexed for `shared_hashes` (built once for the new table of a check)."""
        return SketchIndex.of(self.sketch, self.sketch_sizes)

    def blanked(self, blank: set[tuple]) -> RecordState:
        """The state with the cells released blank (by label) left out of every comparison."""
        counts = np.array([-1 if label in blank else n for label, n in zip(self.labels, self.counts)], dtype=np.int64)
        return dataclasses.replace(self, counts=counts)

    def to_bytes(self) -> bytes:
        sketched = self.sketch is not None
        header = json.dumps({"version": RECORD_STATE_VERSION if sketched else 1, "name": self.name,
                             "width": self.width, "labels": [list(label) for label in self.labels],
                             **({"sketch": self.sketch.shape[1]} if sketched else {}),
                             **({"grouping": self.grouping.tolist()} if self.grouping is not None else {})},
                            ensure_ascii=False).encode()
        body = io.BytesIO()
        body.write(len(header).to_bytes(4, "little") + header)
        arrays = [self.counts.astype("<i8"), self.elements.astype("<u8"), self.checks.astype("<u4")]
        if sketched:
            arrays += [self.sketch.astype("<u4"), self.sketch_sizes.astype("<u2")]
        for array in arrays:
            body.write(array.tobytes())
        raw = body.getvalue()
        if not sketched:
            return zlib.compress(raw, 1)
        # zstd: about the size of zlib's, decompressed about 7x faster (a check reads every earlier output's state)
        return _ZSTD + len(raw).to_bytes(8, "little") + pa.compress(raw, codec="zstd", asbytes=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> RecordState:
        if data.startswith(_ZSTD):
            size = int.from_bytes(data[len(_ZSTD):len(_ZSTD) + 8], "little")
            raw = pa.decompress(data[len(_ZSTD) + 8:], decompressed_size=size, codec="zstd", asbytes=True)
        else:
            raw = zlib.decompress(data)  # version 1
        size = int.from_bytes(raw[:4], "little")
        header = json.loads(raw[4:4 + size])
        if header.get("version") not in (1, RECORD_STATE_VERSION):
            raise ValueError(f"record state version {header.get('version')!r} is not supported")
        cells, slots = len(header["labels"]), SUBTABLES * int(header["width"])
        offset = 4 + size
        counts = np.frombuffer(raw, "<i8", cells, offset)
        offset += 8 * cells
        elements = np.frombuffer(raw, "<u8", cells * slots, offset).reshape(cells, slots)
        offset += 8 * cells * slots
        checks = np.frombuffer(raw, "<u4", cells * slots, offset).reshape(cells, slots)
        sketch = sizes = None
        if "sketch" in header:
            k = int(header["sketch"])
            offset += 4 * cells * slots
            sketch = np.frombuffer(raw, "<u4", cells * k, offset).reshape(cells, k)
            sizes = np.frombuffer(raw, "<u2", cells, offset + 4 * cells * k).astype(np.int64)
        grouping = np.array(header["grouping"], dtype=np.int64) if "grouping" in header else None
        return cls(header["name"], int(header["width"]), [tuple(label) for label in header["labels"]],
                   counts, elements, checks, sketch, sizes, grouping)


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
    # Each record's finest cell (its dimensions' values, nulls alike), then the finest cells' tables by numpy's
    # unbuffered XOR (one pass over the records per sub-table).
    keys = records.select(d)
    fine = keys.unique().with_row_index(_FINE)
    record_fine = keys.join(fine, on=d, how="left", nulls_equal=True, maintain_order="left").get_column(_FINE)
    record_fine = record_fine.to_numpy().astype(np.int64)
    slot_count = SUBTABLES * width
    fine_elements = np.zeros(fine.height * slot_count, dtype=np.uint64)
    fine_checks = np.zeros(fine.height * slot_count, dtype=np.uint32)
    for j in range(SUBTABLES):
        at = record_fine * slot_count + slots[j]
        np.bitwise_xor.at(fine_elements, at, elements)
        np.bitwise_xor.at(fine_checks, at, check)
    fine_elements = fine_elements.reshape(fine.height, slot_count)
    fine_checks = fine_checks.reshape(fine.height, slot_count)
    fine_sketch, fine_sizes = bottom_k(record_fine, sketch_hashes(elements), fine.height)
    sketch_owners: list[np.ndarray] = []
    sketch_values: list[np.ndarray] = []
    cut = np.zeros(cells.height, dtype=bool)  # cells holding a finest cell of more than SKETCH hashes
    # Every grouping set's cells are XORs of finest cells (XOR is associative): each finest cell is located in the
    # shadow frame once per grouping set, by its dimensions there (the others null) and GROUPING's bits.
    cell_index = cells.rename(dict(zip(dimensions, d))).with_row_index("sdc_cell")
    fine = fine.with_columns(pl.col(x).cast(cell_index.schema[x]) for x in d)
    table = np.zeros((cells.height, slot_count), dtype=np.uint64)
    checks = np.zeros((cells.height, slot_count), dtype=np.uint32)
    for positions in grouping_sets:
        bits = sum(1 << (k - 1 - i) for i in range(k) if i not in positions)
        located = fine.select(
            _FINE, *(pl.col(x) if i in positions else pl.lit(None, cell_index.schema[x]).alias(x)
                     for i, x in enumerate(d)),
            pl.lit(bits, cell_index.schema[grouping]).alias(grouping),
        ).join(cell_index, on=[*d, grouping], how="inner", nulls_equal=True)
        rows, sources = located.get_column("sdc_cell").to_numpy(), located.get_column(_FINE).to_numpy()
        np.bitwise_xor.at(table, rows, fine_elements[sources])
        np.bitwise_xor.at(checks, rows, fine_checks[sources])
        # a cell's sketch: the bottom k of its finest cells' sketches (the bottom k of a union is in theirs)
        held = np.arange(SKETCH) < np.minimum(fine_sizes[sources], SKETCH)[:, None]
        sketch_owners.append(np.broadcast_to(rows[:, None], held.shape)[held])
        sketch_values.append(fine_sketch[sources][held])
        cut[rows[fine_sizes[sources] > SKETCH]] = True
    sketch, sizes = bottom_k(np.concatenate(sketch_owners), np.concatenate(sketch_values), cells.height)
    sizes = np.where(cut, SKETCH + 1, sizes)  # its finest cells' sketches hold SKETCH of its hashes, not all
    return RecordState(name, width, labels, np.asarray(counts, dtype=np.int64), table, checks, sketch, sizes,
                       cells.get_column(grouping).to_numpy().astype(np.int64))


@dataclasses.dataclass(frozen=True)
class Difference:
    """What separates two cells: at least `records` records differ (in membership or value); exactly that many
    when `exact`. `shared`: records both cells hold (when exact)."""

    records: int
    exact: bool
    shared: int = 0


def peel_many(elements: np.ndarray, checks: np.ndarray, width: int, limit: int | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Peel many IBLTs (rows of `elements`, `checks`) at once: the elements listed, as (row, element) arrays, and
    per row the slots left set when peeling sticks — or stops: a row stops once `limit` elements are listed (its
    difference is then known to be large; the slots it leaves set say so).

    A slot is pure when it holds one element: its check matches and the slot is that element's. Sub-tables are
    peeled in turn: within one, pure slots hold different elements, so each is removed from its four slots once.
    """
    set_slots = (elements != 0) | (checks != 0)
    left = np.zeros(len(elements), dtype=np.int64)
    ids = np.flatnonzero(set_slots.any(axis=1))  # the rows still being peeled, compacted as they finish
    elements, checks = elements[ids], checks[ids]
    slots_per_row = elements.shape[1]
    found_rows: list[np.ndarray] = []
    found: list[np.ndarray] = []
    listed = np.zeros(len(left), dtype=np.int64)
    idle = j = 0
    while len(ids) and idle < SUBTABLES:
        e, c = elements[:, j * width:(j + 1) * width], checks[:, j * width:(j + 1) * width]
        where = np.nonzero((e != 0) | (c != 0))
        candidates = e[where]
        slots, check = slots_and_check(candidates, width)
        pure = (check == c[where]) & (slots[j] == j * width + where[1])
        idle = 0 if pure.any() else idle + 1
        if pure.any():
            row, element, check = where[0][pure], candidates[pure], check[pure]
            found_rows.append(ids[row])
            found.append(element)
            listed += np.bincount(ids[row], minlength=len(listed))
            flat_elements, flat_checks = elements.reshape(-1), checks.reshape(-1)
            for s in slots:
                at = row * slots_per_row + s[pure]
                np.bitwise_xor.at(flat_elements, at, element)
                np.bitwise_xor.at(flat_checks, at, check)
        j = (j + 1) % SUBTABLES
        if j == 0 or idle == SUBTABLES:
            busy = ((elements != 0) | (checks != 0)).any(axis=1)
            if limit is not None:
                stopped = busy & (listed[ids] >= limit)
                left[ids[stopped]] = np.count_nonzero((elements[stopped] != 0) | (checks[stopped] != 0), axis=1)
                busy &= ~stopped
            if not busy.all():
                ids, elements, checks = ids[busy], elements[busy], checks[busy]
    left[ids] = np.count_nonzero((elements != 0) | (checks != 0), axis=1)  # stuck
    if not found:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64), left
    return np.concatenate(found_rows), np.concatenate(found), left


def peel(elements: np.ndarray, checks: np.ndarray, width: int) -> tuple[list[int], int]:
    """The elements of one IBLT (a difference of two) listed by peeling; and the slots left set when it sticks."""
    _, found, left = peel_many(elements[np.newaxis], checks[np.newaxis], width)
    return [int(e) for e in found], int(left[0])


def difference(a_elements: np.ndarray, a_checks: np.ndarray, a_count: int, b_elements: np.ndarray,
               b_checks: np.ndarray, b_count: int, width: int) -> Difference:
    """How many records two cells differ on (`differences` for one pair)."""
    records, exact, shared = differences((a_elements ^ b_elements)[np.newaxis], (a_checks ^ b_checks)[np.newaxis],
                                         np.array([a_count]), np.array([b_count]), width)
    return Difference(int(records[0]), bool(exact[0]), int(shared[0]))


def distinct_records(rows: np.ndarray, found: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row (of `n`), from the elements peeled from it: how many records they are, and how many of those are
    two elements (one record with two values)."""
    keys = (rows.astype(np.uint64) << np.uint64(32)) | (found >> np.uint64(32))
    unique, per_record = np.unique(keys, return_counts=True)
    owner = (unique >> np.uint64(32)).astype(np.int64)
    return np.bincount(owner, minlength=n), np.bincount(owner, weights=per_record == 2, minlength=n).astype(np.int64)


def differences(xored_elements: np.ndarray, xored_checks: np.ndarray, a_counts: np.ndarray, b_counts: np.ndarray,
                width: int, threshold: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair of cells (the XOR of their tables, and their counts): how many records they differ on (in which
    records they hold or in a value), whether that is exact, and how many records they share (when exact).

    When peeling sticks, every slot left holds two or more elements and each record is at most two
    elements, so at least `left / 4` records differ beyond those listed: `records` is then that lower bound.
    Given `threshold`, a pair stops being peeled once 2 x (threshold - 1) + 1 elements (so `threshold` records or
    more) are listed: it is not exact, and `records` is at least `threshold`.
    """
    limit = None if threshold is None else 2 * (threshold - 1) + 1
    rows, found, left = peel_many(xored_elements, xored_checks, width, limit)
    records, changed = distinct_records(rows, found, len(left))
    moved = records - changed  # in one cell only
    only_a = (moved + a_counts - b_counts) // 2  # |A \ B| - |B \ A| = a_count - b_count
    exact = left == 0
    records = np.where(exact, records, np.maximum(records, (left + 3) // 4))
    return records, exact, np.where(exact, a_counts - only_a, 0)


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
                         threshold: int | None, *, left_out: pl.DataFrame | None = None,
                         counts: Sequence[int] | None = None) -> RecordState:
    """The record state of `shadow`'s cells, from `traced_query` (whose row ids are those of `dataset`) run on
    `con`, the connection the cells came from.

    `left_out`: finest cells (their levels) whose records no released cell holds (redacted: the margins are
    the sums of the cells shown); `counts`: then the records each cell holds (default: the shadow's)."""
    spec = shadow.spec
    records = con.sql(records_sql(spec, traced_query)).pl()
    if records.get_column(RECORD_COLUMN).n_unique() != records.height:
        raise NotOneRowPerRecord(f"table {spec.name!r}: some record gives more than one row")
    if left_out is not None and left_out.height:
        d = [f"d{i}" for i in range(len(spec.dimensions))]
        left_out = left_out.rename(dict(zip(spec.dimensions, d))).with_columns(
            pl.col(x).cast(records.schema[x]) for x in d)
        records = records.join(left_out, on=d, how="anti", nulls_equal=True)
    cells = shadow.frame.select(*spec.dimensions, GROUPING)
    return build_state(spec.name, records, dataset, cells, spec.dimensions, grouping_sets(spec), GROUPING,
                       shadow.labels(), shadow.frame.get_column(RECORDS).to_list() if counts is None else counts,
                       width_for(threshold))
