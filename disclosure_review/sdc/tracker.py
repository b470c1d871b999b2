"""Tracker queries: a recorded query that addresses individual records rather than groups goes to review.

The facts come from the query's parse (`dataplane.sql.query_constructs`, which
this library does not import: any objects with `kind`, `clause`, `name` and
`other` will do); this module judges them against the identifying columns of
the datasets the query reads (their metadata's `identifiers` and household ids)
and the row ids every table has. Flagged, each with its reason:

- an identifying column used inside an expression (a filter, a CASE branch,
  arithmetic, a cast compared with a literal) rather than passed on as it is,
  matched with a column that is no identifier or with reference data, or a
  computed value given an identifier's name; renamings are followed;
- windows over individual records (row_number, rank, lag, running sums),
  hashes, random numbers, sampling, LIMIT/OFFSET without aggregation (or
  over groups of an identifier),
  DISTINCT ON, positional joins, table functions other than value generators
  (`query('…')` would hide a query in a string);
- aggregates that pick or list individual records' values (first, arg_max,
  list, string_agg, max(x, n), …), values compared with a subquery's min or
  max, and a named min or max (a CTE's `max(income) AS top`) used in an
  expression;
- anything the parser could not read or the reader does not know, and a
  dataset without metadata (its identifying columns are unknown).

Counts, sums and other group figures with filters on other columns pass: the
table checks judge their cells. The verdict is never fail: a person decides.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Protocol

from .checks import CheckReport, CheckResult
from .enums import Verdict
from .messages import msg
from .microdata.extract import ExtractCheck
from .protect import ProtectedTable

RULE = "tracker"
ROW_IDS = frozenset({"rowid", "file_row_number"})
"""Columns that number records in any table: identifying whatever the metadata says."""
HASHES = frozenset({"hash", "md5", "md5_number", "md5_number_lower", "md5_number_upper", "sha1", "sha256"})
RANDOM = frozenset({"random", "setseed", "uuid", "gen_random_uuid", "uuidv4", "uuidv7"})
GENERATORS = frozenset({"range", "generate_series", "unnest"})
"""Table functions that only make values; any other (`query('…')` runs SQL hidden in a string) is a reason."""
PICKS_RECORDS = frozenset({
    "any_value", "arbitrary", "first", "last", "arg_max", "arg_max_null", "arg_max_nulls_last", "arg_min",
    "arg_min_null", "arg_min_nulls_last", "argmax", "argmin", "max_by", "min_by", "list", "array_agg",
    "string_agg", "group_concat", "listagg", "histogram", "histogram_exact", "approx_top_k", "lttb",
    "bitstring_agg", "variant_group_object", "first_value", "last_value", "nth_value",
})
"""Aggregates whose result is one record's value or lists every record's."""
ONE_RECORDS_VALUE = PICKS_RECORDS | {"min", "max"}
"""What a scalar subquery compared with a value may select to single out one record."""
MAX_FINDINGS = 10


class Construct(Protocol):
    kind: str
    clause: str
    name: str
    other: str


def identifying(constructs: Iterable[Construct], identifiers: Iterable[str]) -> frozenset[str]:
    """The identifying column names (lower case): `identifiers`, the row ids and every name they are renamed to."""
    return _renamed(constructs, set(ROW_IDS) | {name.lower() for name in identifiers})


def _renamed(constructs: Iterable[Construct], names: set[str]) -> frozenset[str]:
    """`names` and every name the query passes one of them on under."""
    renamings = [(c.name, c.other) for c in constructs if c.kind == "alias"]
    while True:
        more = {new for old, new in renamings if _mentions(old, names)} - names
        if not more:
            return frozenset(names)
        names |= more


@dataclasses.dataclass(frozen=True)
class _Query:
    """What the judgment of one construct needs to know about the whole query."""

    identifying: frozenset[str]
    extremes: frozenset[str]  # columns holding one record's value: a min, a max, an arg_max … named in the query
    references: str  # reference data it reads, for the message ("" when none)
    per_record: bool  # it groups by an identifier somewhere: its groups are single units


def _is_identifier(column: str, names: set[str] | frozenset[str]) -> bool:
    """`column` ("t.person_id", "person_id", "*": every column) may be one of the identifying `names`."""
    return column == "*" or _mentions(column, names)


def _mentions(column: str, names: set[str] | frozenset[str]) -> bool:
    """`column` ("t.top", "top") names one of `names` in any part of its path."""
    return any(part in names for part in column.split("."))


def _finding(construct: Construct, query: _Query) -> dict[str, Any] | None:
    """The reason `construct` addresses records, or None."""
    kind, clause, name, other = construct.kind, construct.clause, construct.name, construct.other
    names, references, per_record = query.identifying, query.references, query.per_record
    if kind == "column" and name == "*":
        return msg("tracker_star", clause=clause)
    if kind == "column" and _is_identifier(name, names):
        return msg("tracker_identifier", column=name, clause=clause)
    extreme = [c for c in (name, other) if kind in ("column", "column_pair") and _mentions(c, query.extremes)]
    if extreme:  # compared with, or computed on, one record's value
        return msg("tracker_extreme_column", column=extreme[0], clause=clause)
    if kind == "column_pair" and _is_identifier(name, names) != _is_identifier(other, names):
        column, against = (name, other) if _is_identifier(name, names) else (other, name)
        return msg("tracker_identifier_matched", column=column, other=against, clause=clause)
    if kind == "column_pair" and references and _is_identifier(name, names):  # ids listed in reference data?
        return msg("tracker_identifier_reference", column=name, tables=references, clause=clause)
    if kind == "named" and _is_identifier(name, names):
        return msg("tracker_identifier_named", column=name, clause=clause)
    if kind == "function":
        if name in HASHES:
            return msg("tracker_hash", function=name, clause=clause)
        if name in RANDOM:
            return msg("tracker_random", function=name, clause=clause)
        if name in PICKS_RECORDS or (name in ("min", "max") and other not in ("", "0", "1")):
            return msg("tracker_record_function", function=name, clause=clause)
    if kind == "table_function" and name not in GENERATORS:
        return msg("tracker_table_function", function=name, clause=clause)
    if kind == "window" and other != "grouped":
        return msg("tracker_window", function=name, clause=clause)
    if kind == "scalar_compared" and name in ONE_RECORDS_VALUE:
        return msg("tracker_extreme", function=name, clause=clause)
    if kind == "limit" and other == "aggregated" and not per_record:
        return None
    if kind in ("sample", "limit", "distinct_on", "positional_join"):
        return msg(f"tracker_{kind}", clause=clause)
    if kind == "unparsed":
        return msg("tracker_unparsed")
    if kind == "unknown":
        return msg("tracker_unknown", what=name, clause=clause)
    return None


def check_tracker(constructs: Iterable[Construct], identifiers: Iterable[str], *,
                  undescribed: Iterable[str] = (), references: Iterable[str] = ()) -> CheckResult:
    """Review when the query's `constructs` address individual records; `identifiers`: the identifying
    variables of the datasets it reads (metadata `identifiers` and household ids); `undescribed`: datasets it
    reads whose metadata could not be read (their identifying columns are unknown: review); `references`:
    the other tables it reads (reference data, whose columns named like an identifier may hold a list of ids)."""
    constructs = list(constructs)
    names = identifying(constructs, identifiers)
    extremes = {c.name for c in constructs if c.kind == "named" and set(c.other.split(",")) & ONE_RECORDS_VALUE}
    query = _Query(names, _renamed(constructs, extremes), ", ".join(sorted(references)),
                   any(c.kind == "grouped" and _is_identifier(c.name, names) for c in constructs))
    found = [msg("tracker_undescribed", dataset=dataset) for dataset in undescribed]
    found += [f for c in constructs if (f := _finding(c, query)) is not None]
    findings = list(dict.fromkeys(  # each reason once, in the order the query gives them
        (f["code"], tuple(sorted(f["args"].items()))) for f in found
    ))
    parameters = {"identifiers": sorted(names)}
    if not findings:
        return CheckResult(RULE, Verdict.PASS, "tracker_pass", {"identifiers": ", ".join(sorted(names))}, parameters)
    shown = [msg(code, **dict(args)) for code, args in findings[:MAX_FINDINGS]]
    if len(findings) > MAX_FINDINGS:
        shown.append(msg("more", n=len(findings) - MAX_FINDINGS))
    return CheckResult(RULE, Verdict.REVIEW, "tracker_review", {"findings": shown}, parameters)


def with_check(checked: ProtectedTable | ExtractCheck, result: CheckResult) -> ProtectedTable | ExtractCheck:
    """A table's or an extract's checks with `result` added (and its verdict combined in)."""
    if isinstance(checked, ExtractCheck):
        return dataclasses.replace(checked, findings=(*checked.findings, result),
                                   verdict=Verdict.combine([checked.verdict, result.verdict]))
    report = checked.report
    return dataclasses.replace(
        checked, report=CheckReport.from_results(report.output, report.preset, [*report.results, result]))
