"""Group-by over the demo dataset: `analysis_kernel.connect()` vs raw DuckDB on the same file.

Both sides run the same 4-key aggregation; ours reads the guarded view
`demo_household` (attached read-only, external access off, configuration
locked), the peer reads table `microdata` of a plain read-only connection.
Target: ours within 5 % of the peer.
"""
from __future__ import annotations

import math
import shutil

import duckdb

from analysis_kernel import connect
from bench import DEMO_DATASET_ID, Case, Context

QUERY = """
SELECT prefecture, sex, age // 10 AS age_decade, employment_status,
       count(*) AS persons, sum(weight) AS weighted, sum(annual_income) AS income
FROM {table}
GROUP BY ALL
ORDER BY ALL
"""


def same_rows(left: list[tuple], right: list[tuple]) -> bool:
    """Equal rows, floats up to rounding (parallel sums add in a different order each run)."""
    return len(left) == len(right) and all(
        len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-9) if isinstance(x, float) else x == y
                                 for x, y in zip(a, b))
        for a, b in zip(left, right)
    )


def cases(ctx: Context) -> list[Case]:
    path = ctx.demo_dataset()
    manifest = ctx.session_manifest({DEMO_DATASET_ID: path})
    ours_query = QUERY.format(table=DEMO_DATASET_ID)
    peer_query = QUERY.format(table="microdata")

    db = connect(manifest=manifest)
    raw = duckdb.connect(str(path), read_only=True)
    if not same_rows(db.sql(ours_query).fetchall(), raw.sql(peer_query).fetchall()):
        raise AssertionError("the guarded view and the raw table gave different group-by results")

    # Opening a connection each run: both sides read a copy no other connection holds, so neither
    # finds the file's blocks already cached in an open DuckDB instance.
    fresh = ctx.tmp_dir / "fresh.duckdb"
    shutil.copyfile(path, fresh)
    fresh_manifest = ctx.session_manifest({DEMO_DATASET_ID: fresh}, project="fresh")

    def connect_and_query() -> object:
        with connect(manifest=fresh_manifest) as db_fresh:
            return db_fresh.sql(ours_query).fetchall()

    def raw_connect_and_query() -> object:
        with duckdb.connect(str(fresh), read_only=True) as raw_fresh:
            return raw_fresh.sql(peer_query).fetchall()

    note = f"{ctx.rows:,} rows, 4 keys"
    return [
        Case("groupby_4keys", lambda: db.sql(ours_query).fetchall(), "duckdb (raw, read-only)",
             lambda: raw.sql(peer_query).fetchall(), repeat=7, note=note),
        Case("connect_groupby_4keys", connect_and_query, "duckdb.connect + query", raw_connect_and_query,
             repeat=5, note=note + ", connection opened each run"),
    ]
