"""The cell key method (issue 13): perturbing large tables, and record keys at ingest.

Run with the other benchmarks (`python -m bench cellkey --rows N`), on the demo dataset of N rows (default 10M;
`Context.demo_dataset()`, opened as the review service opens it). Its record keys are the ones ingest drew (a
dataset ingested before keys existed gets them drawn once here).

Cases:
- counts_100k: persons by municipality x single year of age with margins (about 93,000 cells at 10M rows).
  Ours is what the review service adds to a recomputed table (`workflow.cellkey.perturb_table`: read the keys,
  the records of each cell, key sums per cell with polars, the vectorised lookup). The peer is the simplest
  correct method: DuckDB joins the records with a table of their keys and sums them per cell (GROUPING SETS,
  modulo 2^32), then cellKey's own rule per cell in a loop (the first row of the ptable whose p_int_ub exceeds
  the cell key, as `lookup_freq` does with `sapply`). No published timings of cellKey exist to compare with.
- sums_10k: the sum of annual income by prefecture x sex x age with margins (about 10,500 cells), top-3
  contributions. Peer: DuckDB gives each cell's key sum and its three largest contributions, then cellKey's
  `.perturb_cell_flex` arithmetic per cell in a loop.
- ingest_keys: drawing and writing the N record keys (`dataplane.record_keys.write_keys`) against the whole
  ingest of the demo Parquet file, which includes them: the ratio is the keys' share of ingest time (goal < 10 %).
  Timed once after a warm-up.

Both perturbation cases check first that ours and the peer release the same values.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from bench import Case, Context
from dataplane import record_keys
from dataplane.catalogue import (attached_metadata, attached_name, guarded_connection, ingest, load_metadata,
                                 read_dataset_info)
from disclosure_review.sdc import TableKind, TableSpec, compute_shadow
from disclosure_review.sdc.ckm.cellkey import KEY_SCALE, flex_share, kth_keys
from disclosure_review.sdc.enums import Statistic
from disclosure_review.sdc.records import records_sql, traced_records
from disclosure_review.sdc.shadow import GROUPING
from disclosure_review.workflow.cellkey import count_ptable, magnitude_settings, perturb_table
from disclosure_review.workflow.policies import ReviewPolicy
from disclosure_review.workflow.recompute import traced_query
from onsite.demo_data import METADATA_PATH

POLICY = ReviewPolicy()


def _ensure_keys(path: Path) -> None:
    info = read_dataset_info(path)
    try:
        record_keys.read_keys(path.parent, info.id, info.rows, info.source_sha256)
    except record_keys.RecordKeysInvalid:  # ingested before record keys existed: drawn once, as ingest would
        record_keys.commit_keys(record_keys.write_keys(path.parent, info.id, info.rows, info.source_sha256),
                                path.parent, info.id)


def _peer_cells(path: Path, spec: TableSpec, con: duckdb.DuckDBPyConnection, top_k: int) -> pl.DataFrame:
    """Per cell: records, key sum mod 2^32 and the top contributions, by plain SQL."""
    info = read_dataset_info(path)
    keys = record_keys.read_keys(path.parent, info.id, info.rows, info.source_sha256)
    traced, _ = traced_query(con, spec.query, {info.id: str(path)})
    plain = duckdb.connect()
    plain.execute(f"ATTACH '{path}' AS \"{attached_name(info.id)}\" (READ_ONLY)")  # the traced query reads it so
    plain.register("record_keys", pl.DataFrame({"rowid": np.arange(len(keys)), "k": keys.astype(np.int64)}))
    k = len(spec.dimensions)
    d = [f"d{i}" for i in range(k)]
    sets = ", ".join("(" + ", ".join(d[i] for i in positions) + ")" for positions in
                     [tuple(range(k)), tuple(range(len(spec.rows))), tuple(range(len(spec.rows), k)), ()])
    top = f", list(v ORDER BY abs(v) DESC)[1:{top_k}] AS top" if top_k else ""
    return plain.sql(
        f"WITH r AS ({records_sql(spec, traced)}) SELECT {', '.join(d)}, grouping({', '.join(d)}) AS {GROUPING}, "
        f"count(*) AS n, sum(k) % {KEY_SCALE} AS ks, sum(v) AS s{top} FROM r JOIN record_keys ON r.sdc_record = record_keys.rowid "
        f"GROUP BY GROUPING SETS ({sets})").pl()


def _peer_counts(path: Path, spec: TableSpec, con: duckdb.DuckDBPyConnection) -> list[int]:
    table = count_ptable(POLICY.cell_key_counts)
    rows = {i: (list(table.p_int_ub[table.i == i]), list(table.v[table.i == i])) for i in table.classes}
    top = int(table.classes.max())
    released = []
    for n, ks in _peer_cells(path, spec, con, 0).select("n", "ks").iter_rows():
        ck = ks / KEY_SCALE
        ub, v = rows[min(n, top)]
        released.append(n + int(v[next(x for x, bound in enumerate(ub) if ck < bound)]))  # lookup_freq's which.max
    return sorted(released)


def _peer_sums(path: Path, spec: TableSpec, con: duckdb.DuckDBPyConnection) -> list[float]:
    table, params = magnitude_settings(POLICY.cell_key_magnitudes)
    classes = list(table.classes)
    rows = {c: (list(table.p_int_ub[table.i == c]), list(table.v[table.i == c])) for c in classes}

    def lookup(a: float, key: float) -> float:
        a = min(a, classes[-1])
        if a in rows:
            ub, v = rows[a]
            return v[next(x for x, bound in enumerate(ub) if key < bound)]
        a0, a1 = max(c for c in classes if c < a), min(c for c in classes if c > a)
        low, up = lookup(a0, key), lookup(a1, key)
        return low + (a - a0) / (a1 - a0) * (up - low)

    released = []
    for value, top, ks in _peer_cells(path, spec, con, params.top_k).select("s", "top", "ks").iter_rows():
        current = value
        keys = kth_keys(np.array([ks], dtype=np.uint64), params.top_k)[0]
        for j, x in enumerate(top or []):
            if current == 0 or value == 0:
                break
            delta = x * params.p_small if abs(x) < params.fp else x * float(
                flex_share(np.array([abs(x)]), params)[0]) * params.epsilon[j]
            delta = current if abs(current) < abs(delta) else delta
            v = lookup(abs(current / delta), keys[j])
            hat = (1 if current >= 0 else -1) * abs(delta) * (1 if v >= 0 else -1) * abs(v)
            if v < 0:
                hat = min(hat, -current) if current < 0 else max(hat, -current)
            current += hat
        released.append(current)
    return sorted(released)


def _perturbation_case(name: str, ctx: Context, kind: TableKind, rows: tuple[str, ...], columns: tuple[str, ...],
                       peer, **extra) -> Case:
    path = ctx.demo_dataset()
    _ensure_keys(path)
    dataset = path.stem  # the dataset id ingest gave it: its record keys are filed under it
    spec = TableSpec(kind, f"SELECT * FROM {dataset}", rows=rows, columns=columns, name="t", **extra)
    datasets = {dataset: str(path)}
    con = guarded_connection(datasets)
    shadow = compute_shadow(con, spec)
    released = shadow.released_view()
    traced, traced_dataset = traced_query(con, spec.query, datasets)

    def ours() -> pl.DataFrame:  # the records read too: the service reads them once for this and the record state
        records = traced_records(con, spec, traced)
        return perturb_table(con, shadow, released, records, traced_dataset, datasets, POLICY.cell_key_counts,
                             POLICY.cell_key_magnitudes)[0]

    def ours_sorted() -> list[float]:
        return sorted(ours().get_column(released.columns[-1]).fill_null(0).to_list())  # empty cells: 0

    mine = ours_sorted()
    theirs = sorted(peer(path, spec, con) + [0] * (len(mine) - len(peer(path, spec, con))))  # empty cells: 0
    if not np.allclose(mine, theirs, rtol=1e-9, atol=1e-6):
        raise AssertionError(f"{name}: ours and the peer release different values")
    cells = shadow.frame.height
    return Case(name, ours, "SQL + per-cell lookup", lambda: peer(path, spec, con), repeat=3,
                note=f"{cells:,} cells (with margins) from {attached_metadata(con, dataset).rows:,} rows; "
                     f"both release the same values; key sums exact mod 2^32")


def cases(ctx: Context) -> list[Case]:
    counts = _perturbation_case("counts_100k", ctx, TableKind.FREQUENCY, ("municipality",), ("age",), _peer_counts)
    sums = _perturbation_case("sums_10k", ctx, TableKind.MAGNITUDE, ("prefecture", "sex"), ("age",), _peer_sums,
                              value="annual_income", statistic=Statistic.SUM)
    source = ctx.demo_parquet()
    metadata = load_metadata(METADATA_PATH)
    scratch = ctx.tmp_dir / "ingest" / "datasets"
    rows = ctx.rows

    def keys_only() -> None:
        tmp = record_keys.write_keys(scratch, "keys_only", rows, "00" * 32)
        tmp.unlink()

    def whole_ingest() -> None:
        ingest(source, metadata, "ingested", scratch, replace=True, progress=False)

    ingest_case = Case("ingest_keys", keys_only, "the whole ingest (keys included)", whole_ingest, repeat=1,
                       note=f"{rows:,} rows; the ratio is the record keys' share of ingest time (goal < 10 %)")
    return [counts, sums, ingest_case]
