"""Which tables a query reads: the one reader, for the kernel and the review service alike.

The kernel refuses a query that reads anything but granted datasets and
attached reference data; the review service takes from the same answer which
grants a release request needs, which reference data to attach and whether a
query reads retired reference data. The query is only parsed (DuckDB's own
parser, `json_serialize_sql`), never bound: it names tables that do not exist
here, and `JOIN … USING (column)` needs no columns to be known.
"""
from __future__ import annotations

import json
from typing import Any

import duckdb


def tables_read(sql: str) -> set[str]:
    """Names of the tables and views `sql` reads (`reference.codes` as `codes`; CTEs are no tables).

    Empty when DuckDB cannot parse it as one or more SELECT statements: running the query then fails, saying why.
    """
    con = duckdb.connect(":memory:")
    try:
        (text,) = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    except duckdb.Error:
        return set()
    finally:
        con.close()
    tree = json.loads(text)
    found: set[str] = set()
    if not tree.get("error"):
        _collect(tree["statements"], frozenset(), found)
    return found


def _collect(node: Any, ctes: frozenset[str], found: set[str]) -> None:
    """Add the base tables under `node` to `found`; `ctes`: the CTE names in scope there, which an unqualified
    name refers to instead of a table."""
    if isinstance(node, list):
        for item in node:
            _collect(item, ctes, found)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "BASE_TABLE":
        if node.get("schema_name") or node.get("catalog_name") or node["table_name"] not in ctes:
            found.add(node["table_name"])
        return
    if node.get("type") == "RECURSIVE_CTE_NODE":  # reads itself
        ctes = ctes | {node["cte_name"]}
    for entry in node.get("cte_map", {}).get("map", []):
        _collect(entry["value"], ctes, found)  # a CTE sees those defined before it
        ctes = ctes | {entry["key"]}
    for key, value in node.items():
        if key != "cte_map":
            _collect(value, ctes, found)
