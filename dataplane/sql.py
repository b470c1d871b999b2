"""Which tables a query reads: the one reader, for the kernel and the review service alike.

The kernel refuses a query that reads anything but granted datasets and
attached reference data; the review service takes from the same answer which
grants a release request needs, which reference data to attach and whether a
query reads retired reference data.
"""
from __future__ import annotations

import duckdb


def tables_read(sql: str) -> set[str]:
    """Names of the tables and views `sql` reads, as DuckDB's own parser finds them (CTE names excluded;
    `reference.codes` as `codes`). Empty when DuckDB cannot parse it: running the query then fails, saying why.
    """
    con = duckdb.connect(":memory:")
    try:
        return set(con.get_table_names(sql))
    except duckdb.Error:
        return set()
    finally:
        con.close()
