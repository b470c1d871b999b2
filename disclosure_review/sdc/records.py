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
docs/explanation/differencing.md), which settles most pairs of cells without touching their IBLTs; the pairs worth
bounding are found by joining the first `threshold` hashes of each cell (`sketch_meets`). Stored states (version 3)
are zstd frames read as needed: counts and sketches at once, labels and IBLT rows when first read; version 2 (one
zstd frame) and version 1 (zlib, no sketch: compared without it) are still read.

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
import json
import zlib
from collections.abc import Sequence

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from .shadow import GROUPING, RECORDS, ShadowTable, grouping_sets, source_columns
from .spec import TableSpec

RECORD_STATE_VERSION = 3  # 3: frames read as needed; 2 (one zstd frame, with the sketch) and 1 (zlib) still read
SUBTABLES = 4
SKETCH = 32  # hashes in a cell's bottom-k sketch (128 bytes)
MIN_WIDTH = 20
ELEMENT = "sdc_element"  # per record: its row id (high 32 bits) | its value fingerprint (low 32 bits)
_FINE = "sdc_fine"
_CHECK_SALT = np.uint64(0x9E3779B97F4A7C15)
_SKETCH_SALT = np.uint64(0xD1B54A32D192ED03)
_ZSTD = b"\0zst"  # stored states of version 2: this, the raw size (8 bytes), zstd; version 1: zlib (never \0 first)
_FRAMED = b"\0rs3"  # stored states of version 3 (`RecordState.to_bytes`)
CHUNK_CELLS = 32  # IBLT rows per stored frame, decompressed together


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


def sketch_entries(sketch: np.ndarray, sizes: np.ndarray, first: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A sketch's hashes as (row, hash) arrays, in row order: the `first` (smallest) of each row, default all."""
    k = sketch.shape[1] if first is None else min(first, sketch.shape[1])
    held = np.minimum(sizes, k)
    return np.repeat(np.arange(len(sketch), dtype=np.int64), held), sketch[:, :k][np.arange(k) < held[:, None]]


def shared_hashes(a: np.ndarray, a_len: np.ndarray, b: np.ndarray, b_len: np.ndarray) -> np.ndarray:
    """Per pair of sketches (rows of `a` and `b`, ascending as `bottom_k` gives them, the first `a_len` / `b_len`
    of each held): how many hashes both hold."""
    pair = np.arange(len(a), dtype=np.uint64)[:, None] << np.uint64(32)
    a_keys = (pair | a)[np.arange(a.shape[1]) < a_len[:, None]]  # ascending: by pair, then by hash
    b_keys = (pair | b)[np.arange(b.shape[1]) < b_len[:, None]]
    if not len(a_keys):
        return np.zeros(len(a), dtype=np.int64)
    at = np.minimum(np.searchsorted(a_keys, b_keys), len(a_keys) - 1)
    return np.bincount((b_keys[a_keys[at] == b_keys] >> np.uint64(32)).astype(np.int64), minlength=len(a))


# A table's sketch hashes bucketed by their low bits (uniform: bottom-k hashes are all small): 16 to 32 buckets a
# hash, so that most lookups find theirs empty, at most 2^BUCKET_BITS; a small table's index is not 2^20 buckets
# (~7 CPU-ms to build).
BUCKET_BITS = 20
SPARE_BITS = 4


@dataclasses.dataclass(frozen=True)
class SketchIndex:
    """A table's sketch hashes ready to be joined: its distinct hashes ordered by bucket (their low bits, a power of
    2 of buckets, above), where each bucket starts (and whether it holds any: most hashes of another table find theirs empty),
    and per distinct hash the cells holding it (`cells[cell_start[i]:cell_start[i + 1]]`)."""

    hashes: np.ndarray  # uint32, distinct
    bucket_start: np.ndarray  # int64 [2^bits + 1]
    occupied: np.ndarray  # bool [2^bits]
    cell_start: np.ndarray  # int64 [len(hashes) + 1]
    cells: np.ndarray  # int64

    @classmethod
    def of(cls, sketch: np.ndarray, sizes: np.ndarray, first: int | None = None) -> SketchIndex:
        """The index of `sketch_entries(sketch, sizes, first)`."""
        rows, hashes = sketch_entries(sketch, sizes, first)
        bits = min(len(hashes).bit_length() + SPARE_BITS, BUCKET_BITS)
        mask = np.uint32((1 << bits) - 1)
        keys = (hashes & mask).astype(np.uint64) << np.uint64(32) | hashes
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        first_of = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))[:len(keys)]  # none if empty
        distinct = (keys[first_of] & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        per_bucket = np.bincount(distinct & mask, minlength=1 << bits)
        return cls(distinct, np.concatenate(([0], np.cumsum(per_bucket))), per_bucket > 0,
                   np.append(first_of, len(keys)), rows[order])


def sketch_meets(a: SketchIndex, b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The join of two tables' sketch hashes (`a`: one table's index, `b`: the other's `sketch_entries`): pairs
    (cell of `a`, cell of `b`), each pair once per hash both cells' sketches hold. Only pairs sharing a hash meet
    (few: a record is in a few cells), so the cost follows the sketches' size, not the number of pairs of cells."""
    b_owner, b_hash = b
    bucket = b_hash & np.uint32(len(a.occupied) - 1)  # the index's own number of buckets, a power of 2
    hit = np.flatnonzero(a.occupied[bucket])
    b_owner, b_hash, bucket = b_owner[hit], b_hash[hit], bucket[hit]
    start = a.bucket_start[bucket]
    size = a.bucket_start[bucket + 1] - start
    match = np.full(len(hit), -1, dtype=np.int64)
    for step in range(int(size.max()) if len(size) else 0):  # a bucket's few distinct hashes, in turn
        at = np.minimum(start + step, len(a.hashes) - 1)
        found = (step < size) & (a.hashes[at] == b_hash)
        match[found] = at[found]
    found = np.flatnonzero(match >= 0)
    first, b_owner = match[found], b_owner[found]
    sizes = a.cell_start[first + 1] - a.cell_start[first]  # the cells of a holding each hash found
    starts = np.repeat(a.cell_start[first] - np.cumsum(sizes) + sizes, sizes)
    return a.cells[starts + np.arange(sizes.sum())], np.repeat(b_owner, sizes)


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


class StoredLabels(Sequence):
    """The cells' labels of a stored state, parsed when first read (a check reads them only to name findings)."""

    def __init__(self, frame: memoryview, raw_size: int, cells: int, dimensions: int):
        self._frame, self._raw_size, self._cells, self.dimensions = frame, raw_size, cells, dimensions

    @functools.cached_property
    def _labels(self) -> list[tuple]:
        try:
            labels = [tuple(label) for label in json.loads(_unpack(self._frame, self._raw_size))]
        except (ValueError, TypeError) as exc:
            raise DamagedState(f"labels: {exc}") from None
        if len(labels) != self._cells:
            raise DamagedState(f"{len(labels)} labels for {self._cells} cells")
        return labels

    def __len__(self) -> int:
        return self._cells

    def __getitem__(self, index):
        return self._labels[index]

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None


class StoredRows:
    """The IBLT rows of a stored state (`elements` or `checks`), decompressed CHUNK_CELLS rows at a time when first
    indexed: a check reads few rows of each earlier output (the sketches settle most pairs)."""

    def __init__(self, frames: list[tuple[memoryview, int]], cells: int, slots: int):
        self._frames, self._loaded = frames, np.zeros(len(frames), dtype=bool)
        self.elements = np.empty((cells, slots), dtype=np.uint64)  # pages not touched are not allocated
        self.checks = np.empty((cells, slots), dtype=np.uint32)

    def load(self, rows: np.ndarray) -> None:
        for chunk in np.unique(rows // CHUNK_CELLS):
            if self._loaded[chunk]:
                continue
            frame, raw_size = self._frames[chunk]
            raw = _unpack(frame, raw_size)
            start = chunk * CHUNK_CELLS
            n = min(CHUNK_CELLS, len(self.elements) - start)
            if len(raw) != 12 * n * self.elements.shape[1]:
                raise DamagedState(f"IBLT frame {chunk} holds {len(raw)} bytes")
            self.elements[start:start + n] = np.frombuffer(raw, "<u8", n * self.elements.shape[1]).reshape(n, -1)
            self.checks[start:start + n] = np.frombuffer(raw, "<u4", n * self.elements.shape[1],
                                                         8 * n * self.elements.shape[1]).reshape(n, -1)
            self._loaded[chunk] = True


class LazyRows:
    """One array of `StoredRows` (rows loaded when indexed; `np.asarray` loads all)."""

    def __init__(self, stored: StoredRows, name: str):
        self._stored, self._name = stored, name
        self._array: np.ndarray = getattr(stored, name)
        self.shape, self.dtype, self.nbytes = self._array.shape, self._array.dtype, self._array.nbytes

    def __len__(self) -> int:
        return len(self._array)

    def __getitem__(self, index):
        self._stored.load(np.arange(len(self._array))[index[0] if isinstance(index, tuple) else index])
        return self._array[index]

    def __array__(self, dtype=None, copy=None):
        self._stored.load(np.arange(len(self._array)))
        return self._array if dtype is None else self._array.astype(dtype)


class DamagedState(ValueError):
    """A part of a stored record state that cannot be read (found when the part is first read)."""

    def __init__(self, detail: str):
        super().__init__(f"record state: {detail}")


def _unpack(frame: memoryview, raw_size: int) -> bytes:
    try:
        return pa.decompress(frame, decompressed_size=raw_size, codec="zstd", asbytes=True)
    except OSError as exc:  # a damaged frame
        raise DamagedState(str(exc)) from None


@dataclasses.dataclass(frozen=True)
class RecordState:
    """Per cell of a table (shadow frame order): its labels, record count, IBLT (`elements`, `checks`) and
    bottom-k sketch (`sketch`, `sketch_sizes`, as `bottom_k` gives them; None in states stored before them).

    `counts` is -1 for a cell released blank (suppressed or deleted): it shows nothing to subtract. A state read
    from bytes (version 3) parses its labels and decompresses its IBLT rows only when they are read.
    """

    name: str
    width: int
    labels: Sequence[tuple[str | None, ...]]
    counts: np.ndarray  # int64 [cells]
    elements: np.ndarray | LazyRows  # uint64 [cells, SUBTABLES * width]
    checks: np.ndarray | LazyRows  # uint32 [cells, SUBTABLES * width]
    sketch: np.ndarray | None = None  # uint32 [cells, SKETCH]
    sketch_sizes: np.ndarray | None = None  # int64 [cells]
    grouping: np.ndarray | None = None  # int64 [cells]: GROUPING's bits, which cells are margins (None: stored before)

    @property
    def slots(self) -> int:
        return SUBTABLES * self.width

    @property
    def dimensions(self) -> int:
        """How many dimensions a cell's label has (0 for a table without cells)."""
        if isinstance(self.labels, StoredLabels):
            return self.labels.dimensions
        return len(self.labels[0]) if self.labels else 0

    @functools.cached_property
    def _sketch_indexes(self) -> dict[int, SketchIndex]:
        return {}

    def sketch_index(self, first: int) -> SketchIndex:
        """The index of each cell's `first` smallest sketch hashes, for `sketch_meets` (built once per check)."""
        if first not in self._sketch_indexes:
            self._sketch_indexes[first] = SketchIndex.of(self.sketch, self.sketch_sizes, first)
        return self._sketch_indexes[first]

    def readable(self) -> bool:
        """Whether every part of the state can be read (a stored state reads its parts when first needed)."""
        try:
            np.asarray(self.elements), list(self.labels)
        except DamagedState:
            return False
        return True

    def blanked(self, blank: set[tuple]) -> RecordState:
        """The state with the cells released blank (by label) left out of every comparison."""
        counts = np.array([-1 if label in blank else n for label, n in zip(self.labels, self.counts)], dtype=np.int64)
        return dataclasses.replace(self, counts=counts)

    def to_bytes(self) -> bytes:
        """Version 3: `_FRAMED`, a JSON header (4-byte length first), then zstd frames: the index (counts, sketch,
        grouping), the labels (JSON), and the IBLT rows, CHUNK_CELLS cells a frame."""
        cells = len(self.counts)
        index = [self.counts.astype("<i8")]
        if self.sketch is not None:
            index += [self.sketch.astype("<u4"), self.sketch_sizes.astype("<u2")]
        if self.grouping is not None:
            index.append(self.grouping.astype("<i8"))
        elements, checks = np.asarray(self.elements, dtype="<u8"), np.asarray(self.checks, dtype="<u4")
        frames = [b"".join(a.tobytes() for a in index),
                  json.dumps([list(label) for label in self.labels], ensure_ascii=False).encode()]
        frames += [elements[i:i + CHUNK_CELLS].tobytes() + checks[i:i + CHUNK_CELLS].tobytes()
                   for i in range(0, cells, CHUNK_CELLS)]
        packed = [pa.compress(frame, codec="zstd", asbytes=True) for frame in frames]
        header = json.dumps({
            "version": RECORD_STATE_VERSION, "name": self.name, "width": self.width, "cells": cells,
            "dimensions": self.dimensions, "sketch": 0 if self.sketch is None else self.sketch.shape[1],
            "grouping": self.grouping is not None, "chunk": CHUNK_CELLS,
            "frames": [[len(p), len(f)] for p, f in zip(packed, frames)],
        }, ensure_ascii=False).encode()
        return b"".join([_FRAMED, len(header).to_bytes(4, "little"), header, *packed])

    @classmethod
    def from_bytes(cls, data: bytes) -> RecordState:
        """A stored state, of any version (3: read as needed; 2: zstd; 1: zlib, no sketch)."""
        if data.startswith(_FRAMED):
            return cls._framed(memoryview(data))
        if data.startswith(_ZSTD):  # version 2
            size = int.from_bytes(data[len(_ZSTD):len(_ZSTD) + 8], "little")
            raw = pa.decompress(data[len(_ZSTD) + 8:], decompressed_size=size, codec="zstd", asbytes=True)
        else:
            raw = zlib.decompress(data)  # version 1
        size = int.from_bytes(raw[:4], "little")
        header = json.loads(raw[4:4 + size])
        if header.get("version") not in (1, 2):
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

    @classmethod
    def _framed(cls, data: memoryview) -> RecordState:
        start = len(_FRAMED) + 4
        size = int.from_bytes(data[len(_FRAMED):start], "little")
        header = json.loads(bytes(data[start:start + size]))
        if header.get("version") != 3 or header.get("chunk") != CHUNK_CELLS:
            raise ValueError(f"record state version {header.get('version')!r} is not supported")
        cells, width, k = int(header["cells"]), int(header["width"]), int(header["sketch"])
        frames, offset = [], start + size
        for packed, raw in header["frames"]:
            frames.append((data[offset:offset + packed], raw))
            offset += packed
        chunks = -(-cells // CHUNK_CELLS)
        index_size = cells * (8 + (4 * k + 2 if k else 0) + (8 if header["grouping"] else 0))
        if offset != len(data) or len(frames) != 2 + chunks or frames[0][1] != index_size:
            raise ValueError("record state: frames do not match the header")
        index = _unpack(*frames[0])
        counts = np.frombuffer(index, "<i8", cells)
        offset = 8 * cells
        sketch = sizes = grouping = None
        if k:
            sketch = np.frombuffer(index, "<u4", cells * k, offset).reshape(cells, k)
            sizes = np.frombuffer(index, "<u2", cells, offset + 4 * cells * k).astype(np.int64)
            offset += (4 * k + 2) * cells
        if header["grouping"]:
            grouping = np.frombuffer(index, "<i8", cells, offset)
        rows = StoredRows(frames[2:], cells, SUBTABLES * width)
        return cls(header["name"], width, StoredLabels(frames[1][0], frames[1][1], cells, int(header["dimensions"])),
                   counts, LazyRows(rows, "elements"), LazyRows(rows, "checks"), sketch, sizes, grouping)


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


def traced_records(con: duckdb.DuckDBPyConnection, spec: TableSpec, traced_query: str,
                   left_out: pl.DataFrame | None = None) -> pl.DataFrame:
    """The records of `spec`'s cells (`records_sql`), read once for both the record state and the cell key method.

    `left_out`: finest cells (their levels) whose records no released cell holds (redacted: the margins are
    the sums of the cells shown): their records are dropped. NotOneRowPerRecord for a join that repeats a record."""
    records = con.sql(records_sql(spec, traced_query)).pl()
    if records.get_column(RECORD_COLUMN).n_unique() != records.height:
        raise NotOneRowPerRecord(f"table {spec.name!r}: some record gives more than one row")
    if left_out is not None and left_out.height:
        d = [f"d{i}" for i in range(len(spec.dimensions))]
        left_out = left_out.rename(dict(zip(spec.dimensions, d))).with_columns(
            pl.col(x).cast(records.schema[x]) for x in d)
        records = records.join(left_out, on=d, how="anti", nulls_equal=True)
    return records


def state_of_records(shadow: ShadowTable, records: pl.DataFrame, dataset: str, threshold: int | None,
                     counts: Sequence[int] | None = None) -> RecordState:
    """The record state of `shadow`'s cells from their `traced_records`; `counts`: the records each cell holds
    (default: the shadow's; a redacted table's margins hold only the records of the cells shown)."""
    spec = shadow.spec
    cells = shadow.frame.select(*spec.dimensions, GROUPING)
    return build_state(spec.name, records, dataset, cells, spec.dimensions, grouping_sets(spec), GROUPING,
                       shadow.labels(), shadow.frame.get_column(RECORDS).to_list() if counts is None else counts,
                       width_for(threshold))
