"""What a query reads and how it addresses records: the one reader, for the kernel and the review service alike.

The kernel refuses a query that reads anything but granted datasets and
attached reference data; the review service takes from the same answer which
grants a release request needs, which reference data to attach and whether a
query reads retired reference data. The query is only parsed (DuckDB's own
parser, `json_serialize_sql`), never bound: it names tables that do not exist
here, and `JOIN … USING (column)` needs no columns to be known.

`query_constructs` lists, from the same parse, what the tracker check
(`disclosure_review.sdc.tracker`) judges: columns used inside expressions
rather than passed on as they are, columns compared with columns, renamings,
functions and windows called, sampling, LIMIT/OFFSET without aggregation,
DISTINCT ON, positional joins, values compared with a scalar subquery, and
anything this reader does not know (which the check never passes).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
from typing import Any

import duckdb

# -- kinds of construct (Construct.kind) -------------------------------------------------
COLUMN = "column"
"""A column used inside an expression (compared, computed on, a CASE branch), not passed on as it is."""
COLUMN_PAIR = "column_pair"
"""Two columns compared for equality (a join key, USING; NATURAL JOIN as "*" = "*"), `name` = `other`."""
ALIAS = "alias"
"""A column passed on under another name: `name` becomes `other`."""
NAMED = "named"
"""A computed value (a constant, an expression) given the column name `name`; `other` the functions it calls."""
FUNCTION = "function"
"""A function called, `other` its number of arguments."""
WINDOW = "window"
"""A window function; `other` "grouped" for an aggregate over unordered partitions, else "per record"."""
TABLE_FUNCTION = "table_function"
"""A table function in FROM (`range`, `unnest`, `query('…')`), `name` its name."""
SAMPLE = "sample"
LIMIT = "limit"
"""LIMIT or OFFSET; `other` "aggregated" on a query part that groups (then per group, see GROUPED)."""
GROUPED = "grouped"
"""A column a query part groups by (a group per value: per record when it is an identifier)."""
DISTINCT_ON = "distinct_on"
POSITIONAL_JOIN = "positional_join"
SCALAR_COMPARED = "scalar_compared"
"""A value compared with a scalar subquery; `name` a function its select list calls (one construct each)."""
UNPARSED = "unparsed"
"""Not one SELECT statement DuckDB can parse; `name` says why."""
UNKNOWN = "unknown"
"""A part of the parse this reader does not know; `name` its type."""

BARE_THROUGH = {"CAST", "COLLATE"}  # a column cast or collated is still passed on as it is
COUNTS = {"count", "approx_count_distinct"}  # aggregates that only count their argument's values
NULL_TESTS = {"OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL"}  # whether a value is missing singles out nobody
LEAVES = {"CONSTANT", "PARAMETER", "TYPE"}
DEFAULT_FRAME = ("UNBOUNDED_PRECEDING", "CURRENT_ROW_RANGE")


@dataclasses.dataclass(frozen=True)
class Construct:
    """One thing a query does that the tracker check judges: `kind` (above), in `clause`, on `name` (and `other`)."""

    kind: str
    clause: str
    name: str = ""
    other: str = ""


_parser = threading.local()


def _parser_connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection for parsing, opened once: opening a database costs ~17 CPU-ms, a parse well
    under 1 (the checks parse each query several times). It only ever runs `json_serialize_sql`, never the text it
    parses, so no query leaves anything in it. One thread of DuckDB's (`threads`), and a process forked from this
    one opens its own."""
    pid, con = getattr(_parser, "opened", (None, None))
    if pid != os.getpid():
        con = duckdb.connect(":memory:", config={"threads": 1, "enable_external_access": False})
        _parser.opened = (os.getpid(), con)
    return con


def parse_tree(sql: str) -> dict[str, Any]:
    """DuckDB's parse tree of `sql` as JSON; {"error": True, "error_message": …} when it has none."""
    try:
        (text,) = _parser_connection().execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    except duckdb.Error as exc:
        _parser.__dict__.pop("opened", None)  # the next parse opens a fresh connection
        return {"error": True, "error_message": str(exc)}
    return json.loads(text)


def tables_read(sql: str) -> set[str]:
    """Names of the tables and views `sql` reads (`reference.codes` as `codes`; CTEs are no tables).

    Empty when DuckDB cannot parse it as one or more SELECT statements: running the query then fails, saying why.
    """
    tree = parse_tree(sql)
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


def query_constructs(sql: str) -> tuple[Construct, ...]:
    """What `sql` does to records, in the order found (each once), for the tracker check to judge.

    A text that is not exactly one SELECT statement gives one UNPARSED construct.
    """
    tree = parse_tree(sql)
    if tree.get("error"):
        return (Construct(UNPARSED, "", str(tree.get("error_message", "unparsable"))),)
    if len(tree["statements"]) != 1:
        return (Construct(UNPARSED, "", f"{len(tree['statements'])} statements, not one"),)
    walker = _Walker()
    walker.statement(tree["statements"][0])
    return tuple(dict.fromkeys(walker.found))


@functools.cache
def aggregate_functions() -> frozenset[str]:
    """Names of DuckDB's aggregate functions (`count_star` is how the parser names count(*))."""
    con = duckdb.connect(":memory:")
    try:
        rows = con.execute("SELECT DISTINCT function_name FROM duckdb_functions() "
                           "WHERE function_type = 'aggregate'").fetchall()
    finally:
        con.close()
    return frozenset(name for (name,) in rows)


def _column_name(expr: dict[str, Any]) -> str:
    return ".".join(expr["column_names"]).lower()


def _bare_column(expr: dict[str, Any]) -> dict[str, Any] | None:
    """The column `expr` passes on as it is (through casts and collations), else None."""
    while expr.get("class") in BARE_THROUGH:
        expr = expr["child"]
    return expr if expr.get("class") == "COLUMN_REF" else None


class _Walker:
    """Walks one parsed statement, appending to `found`."""

    def __init__(self) -> None:
        self.found: list[Construct] = []
        self.aggregates = aggregate_functions()

    def add(self, kind: str, clause: str, name: str = "", other: str = "") -> None:
        self.found.append(Construct(kind, clause, name, other))

    # -- query nodes -------------------------------------------------------------------

    def statement(self, statement: dict[str, Any]) -> None:
        self.query(statement["node"])

    def query(self, node: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Walk a query node; its select list (empty when not one SELECT) for renamings by position."""
        if node is None:
            return []
        for entry in node.get("cte_map", {}).get("map", []):
            cte = entry["value"]
            self.renamed(self.query(cte.get("query_node") or cte.get("query", {}).get("node")), cte.get("aliases", []))
        kind = node.get("type")
        if kind == "SELECT_NODE":
            select_list = self.select(node)
        elif kind in ("SET_OPERATION_NODE", "RECURSIVE_CTE_NODE"):
            select_list = self.set_operation([*node.get("children", []), node.get("left"), node.get("right")])
        else:
            self.add(UNKNOWN, "query", str(kind))
            return []
        self.modifiers(node, aggregated=kind == "SELECT_NODE" and self.aggregates_in(node))
        return select_list

    def select(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        select_list = node.get("select_list", [])
        for expr in select_list:
            self.expr(expr, "SELECT", bare=True)
            self.output_name(expr, (expr.get("alias") or "").lower(), "SELECT")
        self.table(node.get("from_table"))
        self.expr(node.get("where_clause"), "WHERE")
        for expr in node.get("group_expressions", []):
            self.expr(expr, "GROUP BY", bare=True)
            if column := _bare_column(expr):
                self.add(GROUPED, "GROUP BY", _column_name(column))
        self.expr(node.get("having"), "HAVING")
        self.expr(node.get("qualify"), "QUALIFY")
        if node.get("sample"):
            self.add(SAMPLE, "USING SAMPLE")
        return select_list

    def output_name(self, expr: dict[str, Any], name: str, clause: str) -> None:
        """`expr` comes out as column `name` ("" when it keeps its own): a renaming, or a value named so."""
        column = _bare_column(expr)
        if expr.get("class") == "POSITIONAL_REFERENCE":  # #1 is whichever column comes first
            self.add(UNKNOWN, clause, "POSITIONAL_REFERENCE")
        elif column and name and name != column["column_names"][-1].lower():
            self.add(ALIAS, clause, _column_name(column), name)
        elif not column and name:
            self.add(NAMED, clause, name, ",".join(dict.fromkeys(_functions([expr]))))

    def set_operation(self, children: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
        """UNION and the like match columns by position and name them after the first part's."""
        lists = [self.query(child) for child in children if child is not None]
        if any(expr.get("class") == "STAR" for items in lists for expr in items):
            self.add(UNKNOWN, "UNION", "SET_OPERATION_COLUMNS")  # which column lands where is not known here
            return []
        first = lists[0] if lists else []
        names = [(expr.get("alias") or _column_name(_bare_column(expr) or {"column_names": [""]})).split(".")[-1]
                 for expr in first]
        for items in lists[1:]:
            for expr, name in zip(items, names):
                self.output_name(expr, name.lower(), "UNION")
        return first

    def aggregates_in(self, node: dict[str, Any]) -> bool:
        """Whether a SELECT groups: GROUP BY (ALL) or an aggregate outside windows and subqueries."""
        if node.get("group_expressions") or node.get("aggregate_handling") == "FORCE_AGGREGATES":
            return True
        stack: list[Any] = [*node.get("select_list", []), node.get("having")]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict) and item.get("class") not in ("WINDOW", "SUBQUERY"):
                if item.get("class") == "FUNCTION" and item["function_name"].lower() in self.aggregates:
                    return True
                stack.extend(item.values())
        return False

    def modifiers(self, node: dict[str, Any], *, aggregated: bool) -> None:
        for modifier in node.get("modifiers", []):
            kind = modifier.get("type")
            if kind == "ORDER_MODIFIER":
                self.orders(modifier, "ORDER BY")
            elif kind in ("LIMIT_MODIFIER", "LIMIT_PERCENT_MODIFIER"):
                self.expr(modifier.get("limit"), "LIMIT")
                self.expr(modifier.get("offset"), "OFFSET")
                self.add(LIMIT, "LIMIT" if modifier.get("limit") else "OFFSET", other="aggregated" if aggregated else "")
            elif kind == "DISTINCT_MODIFIER":
                for expr in modifier.get("distinct_on_targets", []):
                    self.expr(expr, "DISTINCT ON", bare=True)
                if modifier.get("distinct_on_targets"):
                    self.add(DISTINCT_ON, "DISTINCT ON")
            else:
                self.add(UNKNOWN, "query", str(kind))

    def orders(self, modifier: dict[str, Any] | None, clause: str) -> None:
        for order in (modifier or {}).get("orders", []):
            self.expr(order.get("expression"), clause, bare=True)

    def renamed(self, select_list: list[dict[str, Any]], aliases: list[str]) -> None:
        """Columns renamed by position (`t(a, b)`): each bare column of the select list becomes its alias."""
        if not aliases:
            return
        if not select_list or any(expr.get("class") == "STAR" for expr in select_list):
            self.add(UNKNOWN, "FROM", "COLUMN_ALIASES")
            return
        for expr, alias in zip(select_list, aliases):
            column = _bare_column(expr)
            if column:
                self.add(ALIAS, "FROM", (expr.get("alias") or _column_name(column)).lower(), alias.lower())

    # -- table references --------------------------------------------------------------

    def table(self, ref: dict[str, Any] | None) -> None:
        if ref is None:
            return
        kind = ref.get("type")
        if ref.get("sample"):
            self.add(SAMPLE, "TABLESAMPLE")
        if kind == "BASE_TABLE":
            if ref.get("column_name_alias"):
                self.add(UNKNOWN, "FROM", "COLUMN_ALIASES")
        elif kind == "SUBQUERY":
            self.renamed(self.query(ref["subquery"]["node"]), ref.get("column_name_alias", []))
        elif kind == "JOIN":
            self.table(ref.get("left"))
            self.table(ref.get("right"))
            self.expr(ref.get("condition"), "JOIN ON")
            for column in ref.get("using_columns", []):
                self.add(COLUMN_PAIR, "USING", column.lower(), column.lower())
            if ref.get("ref_type") == "NATURAL":
                self.add(COLUMN_PAIR, "NATURAL JOIN", "*", "*")  # on every column the two sides share
            if ref.get("ref_type") == "POSITIONAL":
                self.add(POSITIONAL_JOIN, "FROM")
        elif kind == "TABLE_FUNCTION":
            self.add(TABLE_FUNCTION, "FROM", str(ref["function"].get("function_name", "")).lower())
            self.expr(ref.get("function"), "FROM")
        elif kind == "EXPRESSION_LIST":
            for row in ref.get("values", []):
                for expr in row:
                    self.expr(expr, "VALUES")
        elif kind != "EMPTY":
            self.add(UNKNOWN, "FROM", str(kind))

    # -- expressions -------------------------------------------------------------------

    def expr(self, expr: dict[str, Any] | None, clause: str, *, bare: bool = False) -> None:
        """Walk `expr` in `clause`; `bare`: a column here is passed on as it is (a select item, a group)."""
        if expr is None:
            return
        kind = expr.get("class")
        if kind in LEAVES:
            return
        if kind == "COLUMN_REF":
            if not bare:
                self.add(COLUMN, clause, _column_name(expr))
        elif kind in BARE_THROUGH:
            self.expr(expr["child"], clause, bare=bare)
        elif kind == "POSITIONAL_REFERENCE":
            if not bare:
                self.add(UNKNOWN, clause, "POSITIONAL_REFERENCE")
        elif kind == "COMPARISON":
            self.comparison(expr, clause)
        elif kind in ("CONJUNCTION", "OPERATOR"):
            for child in expr.get("children", []):
                self.expr(child, clause, bare=expr["type"] in NULL_TESTS)
        elif kind == "BETWEEN":
            for part in ("input", "lower", "upper"):
                self.expr(expr[part], clause)
        elif kind == "CASE":
            for check in expr.get("case_checks", []):
                self.expr(check["when_expr"], clause)
                self.expr(check["then_expr"], clause)
            self.expr(expr.get("else_expr"), clause)
        elif kind == "FUNCTION":
            self.function(expr, clause)
        elif kind == "WINDOW":
            self.window(expr, clause)
        elif kind == "SUBQUERY":
            self.subquery(expr, clause)
        elif kind == "STAR":
            self.star(expr, clause, bare=bare)
        elif kind == "LAMBDA":
            self.expr(expr.get("expr"), clause)
        else:
            self.add(UNKNOWN, clause, str(kind))

    def comparison(self, expr: dict[str, Any], clause: str) -> None:
        left, right = expr["left"], expr["right"]
        pair = _bare_column(left), _bare_column(right)
        if expr["type"] in ("COMPARE_EQUAL", "COMPARE_NOT_DISTINCT_FROM") and all(pair):
            self.add(COLUMN_PAIR, clause, _column_name(pair[0]), _column_name(pair[1]))
            return
        for side in (left, right):
            if side.get("class") == "SUBQUERY" and side.get("subquery_type") == "SCALAR":
                for name in _functions(side["subquery"]["node"].get("select_list", [])):
                    self.add(SCALAR_COMPARED, clause, name)
            self.expr(side, clause)

    def function(self, expr: dict[str, Any], clause: str) -> None:
        name = expr["function_name"].lower()
        arguments = [argument["expression"] for argument in expr.get("arguments", [])]
        self.add(FUNCTION, clause, name, str(len(arguments)))
        for argument in arguments:
            self.expr(argument, clause, bare=name in COUNTS)  # count(DISTINCT household_id) counts households
        self.expr(expr.get("filter"), "FILTER")
        self.orders(expr.get("order_bys"), clause)

    def window(self, expr: dict[str, Any], clause: str) -> None:
        name = expr["function_name"].lower()
        framed = (expr.get("start"), expr.get("end")) != DEFAULT_FRAME or expr.get("start_expr") or expr.get("end_expr")
        grouped = expr["type"] == "WINDOW_AGGREGATE" and not expr.get("orders") and not framed
        self.add(WINDOW, clause, name, "grouped" if grouped else "per record")
        arguments = [argument["expression"] for argument in expr.get("arguments", [])]
        self.add(FUNCTION, clause, name, str(len(arguments)))
        for argument in arguments:
            self.expr(argument, clause, bare=grouped and name in COUNTS)
        for partition in expr.get("partitions", []):
            self.expr(partition, clause, bare=True)
        self.orders(expr, clause)
        for part in ("filter_expr", "offset_expr", "default_expr", "start_expr", "end_expr"):
            self.expr(expr.get(part), clause)

    def subquery(self, expr: dict[str, Any], clause: str) -> None:
        select_list = self.query(expr["subquery"]["node"])
        child = expr.get("child")
        inner = [_bare_column(e) for e in select_list]
        outer = _bare_column(child) if child else None
        if outer and len(inner) == 1 and inner[0] and expr.get("comparison_type") == "COMPARE_EQUAL":
            self.add(COLUMN_PAIR, clause, _column_name(outer), _column_name(inner[0]))  # x IN (SELECT y …): a join
        else:
            self.expr(child, clause)

    def star(self, expr: dict[str, Any], clause: str, *, bare: bool) -> None:
        if not bare or expr.get("columns") or expr.get("expr"):
            self.add(COLUMN, clause, "*")  # COLUMNS(…) or * inside an expression: every column, identifiers too
        self.expr(expr.get("expr"), clause)
        for entry in expr.get("replace_list", []):
            self.expr(entry.get("value"), clause)
        for entry in expr.get("rename_list", []):
            self.add(ALIAS, clause, str(entry["key"]["column"]).lower(), str(entry["value"]).lower())


def _functions(exprs: list[dict[str, Any]]) -> list[str]:
    """Names of the functions `exprs` call (`max(income) - 0` calls max), not looking into subqueries."""
    names, stack = [], list(exprs)
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict) and item.get("class") != "SUBQUERY":
            if item.get("class") in ("FUNCTION", "WINDOW"):
                names.append(item["function_name"].lower())
            stack.extend(item.values())
    return names
