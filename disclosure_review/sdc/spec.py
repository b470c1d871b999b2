"""Declarative table specifications: what a table is, so that anyone can recompute it.

A `TableSpec` is researcher input: the review service re-runs its query on the
source data, so `from_dict` validates strictly and refuses anything it does not
know, with a message that says what to fix.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from .enums import ProtectionMethod, SecondaryMethod, Statistic, TableKind

SPEC_VERSION = 1
MAX_QUERY_CHARS = 100_000
# Unicode word characters, so Japanese variable names are allowed; always quoted in SQL.
IDENTIFIER_RE = re.compile(r"^[^\W\d]\w{0,127}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")  # becomes a file name in the release package
# Shadow statistics columns use this prefix; variables may not.
RESERVED_PREFIX = "sdc_"
MAX_BINS = 1000
PROTECTION_VERSION = 1
MAX_ROUND_BASE = 1_000_000


class InvalidSpec(ValueError):
    """A table specification that cannot be used; the message says what to fix."""


def check_identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or not IDENTIFIER_RE.match(value):
        raise InvalidSpec(
            f"{what} {value!r} is not a variable name: use letters, digits and _ "
            "(starting with a letter or _), at most 128 characters"
        )
    if value.lower().startswith(RESERVED_PREFIX):
        raise InvalidSpec(f"{what} {value!r}: names starting with {RESERVED_PREFIX!r} are reserved")
    return value


def check_edges(edges: Any) -> tuple[float, ...]:
    """Histogram bin edges: 2 to MAX_BINS + 1 finite, strictly increasing numbers."""
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Sequence):
        raise InvalidSpec("edges must be a list of numbers")
    if not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in edges):
        raise InvalidSpec("edges must be numbers")
    values = tuple(float(e) for e in edges)
    if len(values) < 2 or len(values) > MAX_BINS + 1:
        raise InvalidSpec(f"give 2 to {MAX_BINS + 1} bin edges")
    if not all(math.isfinite(e) for e in values) or any(b <= a for a, b in zip(values, values[1:])):
        raise InvalidSpec("bin edges must be finite and strictly increasing")
    return values


def check_query(query: Any) -> str:
    """One SELECT statement (no trailing `;`); anything else is refused."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidSpec("query must be non-empty SQL text (a SELECT over dataset views)")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidSpec(f"query is {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise InvalidSpec(f"query is not valid SQL: {exc}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise InvalidSpec("query must be exactly one SELECT statement")
    return query.strip().rstrip(";").strip()


@dataclasses.dataclass(frozen=True)
class Protection:
    """How a table is protected; the review service re-applies it itself (see sdc.protect).

    `base`: rounding base (round and redact_round; None = the preset's round_base).
    `secondary`: secondary suppression algorithm (suppress only).
    """

    method: ProtectionMethod
    base: int | None = None
    secondary: SecondaryMethod = SecondaryMethod.HYPERCUBE

    def __post_init__(self) -> None:
        if not isinstance(self.method, ProtectionMethod):
            raise InvalidSpec(f"protection method must be one of {[m.value for m in ProtectionMethod]}")
        if not isinstance(self.secondary, SecondaryMethod):
            raise InvalidSpec(f"secondary must be one of {[m.value for m in SecondaryMethod]}")
        if self.base is not None:
            if not self.method.rounds:
                raise InvalidSpec("base is a rounding parameter: give it only with method 'round' or 'redact_round'")
            if isinstance(self.base, bool) or not isinstance(self.base, int) or not 1 <= self.base <= MAX_ROUND_BASE:
                raise InvalidSpec(f"rounding base must be a whole number from 1 to {MAX_ROUND_BASE} (got {self.base!r})")
        if self.secondary is not SecondaryMethod.HYPERCUBE and self.method is not ProtectionMethod.SUPPRESS:
            raise InvalidSpec("secondary is a suppression parameter: give it only with method 'suppress'")

    def to_dict(self) -> dict[str, Any]:
        return {"version": PROTECTION_VERSION, "method": self.method.value, "base": self.base,
                "secondary": self.secondary.value}

    @classmethod
    def from_dict(cls, data: Any) -> Protection:
        if not isinstance(data, Mapping):
            raise InvalidSpec("protection must be a JSON object with version and method")
        known = {"version", "method", "base", "secondary"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidSpec(f"unknown key(s) {unknown} in protection; known keys are {sorted(known)}")
        if data.get("version") != PROTECTION_VERSION:
            raise InvalidSpec(f"protection version {data.get('version')!r} is not supported (expected {PROTECTION_VERSION})")
        try:
            method = ProtectionMethod(data.get("method"))
            secondary = SecondaryMethod(data.get("secondary", SecondaryMethod.HYPERCUBE.value))
        except ValueError:
            raise InvalidSpec(
                f"protection method must be one of {[m.value for m in ProtectionMethod]} and secondary one of "
                f"{[m.value for m in SecondaryMethod]} (got {data.get('method')!r}, {data.get('secondary')!r})"
            ) from None
        return cls(method=method, base=data.get("base"), secondary=secondary)


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """A table over the result of `query`: cells by `rows` x `columns`, with margins.

    `value` is the magnitude variable (magnitude tables only), `weight` a sampling
    weight, `unit` a household/enterprise id: contributions are summed per unit
    before dominance is judged, and thresholds count units.
    """

    kind: TableKind
    query: str
    rows: tuple[str, ...]
    columns: tuple[str, ...] = ()
    value: str | None = None
    statistic: Statistic = Statistic.COUNT
    weight: str | None = None
    unit: str | None = None
    name: str = "table"
    # Histogram: the one row variable is binned into [e_i, e_i+1) (the last bin closed).
    edges: tuple[float, ...] | None = None
    # Protection the review service re-applies to its own recomputation (None: released as computed).
    protection: Protection | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, TableKind):
            raise InvalidSpec(f"kind must be one of {[k.value for k in TableKind]}")
        if not isinstance(self.statistic, Statistic):
            raise InvalidSpec(f"statistic must be one of {[s.value for s in Statistic]}")
        object.__setattr__(self, "query", check_query(self.query))
        for field in ("rows", "columns"):
            values = getattr(self, field)
            if isinstance(values, str) or not isinstance(values, Sequence):
                raise InvalidSpec(f"{field} must be a list of variable names")
            object.__setattr__(self, field, tuple(check_identifier(v, f"{field} variable") for v in values))
        if not self.rows and not self.columns:
            raise InvalidSpec("a table needs at least one row or column variable")
        for field in ("value", "weight", "unit"):
            if getattr(self, field) is not None:
                check_identifier(getattr(self, field), field)
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise InvalidSpec(
                f"name {self.name!r}: use 1-100 letters, digits, _ . - (starting with a letter or digit); it becomes a file name"
            )
        used = [*self.rows, *self.columns, *(v for v in (self.value, self.weight, self.unit) if v)]
        duplicates = sorted({v for v in used if used.count(v) > 1})
        if duplicates:
            raise InvalidSpec(f"variable(s) {duplicates} used twice; each may have one role in a table")
        if self.kind is TableKind.FREQUENCY:
            if self.value is not None or self.statistic is not Statistic.COUNT:
                raise InvalidSpec("a frequency table counts records: give no value and statistic 'count'")
        else:
            if self.value is None:
                raise InvalidSpec("a magnitude table needs a value variable")
            if self.statistic is Statistic.COUNT:
                raise InvalidSpec("a magnitude table needs a statistic other than 'count' (use a frequency table)")
        if self.edges is not None:
            object.__setattr__(self, "edges", check_edges(self.edges))
            if self.kind is not TableKind.FREQUENCY or len(self.rows) != 1 or self.columns:
                raise InvalidSpec("a histogram (edges) is a frequency table over one row variable, the binned one")
        if self.protection is not None:
            if not isinstance(self.protection, Protection):
                raise InvalidSpec("protection must be a Protection")
            # record deletion recomputes the whole table, so it fits every statistic; the others need margins
            # that are sums of cells
            if (self.statistic not in (Statistic.COUNT, Statistic.SUM)
                    and self.protection.method is not ProtectionMethod.DELETE_RECORDS):
                raise InvalidSpec(
                    f"only counts and sums can be protected (their margins are sums of cells); protect the count "
                    f"or sum table instead of the {self.statistic.value}, or delete the records of its failing cells "
                    f"(delete_records)"
                )
        if self.weight is not None and not self.statistic.weightable:
            raise InvalidSpec(
                f"statistic {self.statistic.value!r} cannot be weighted; weights work with count, sum and mean"
            )

    @property
    def is_histogram(self) -> bool:
        return self.edges is not None

    @property
    def dimensions(self) -> tuple[str, ...]:
        return (*self.rows, *self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SPEC_VERSION,
            "name": self.name,
            "kind": self.kind.value,
            "query": self.query,
            "rows": list(self.rows),
            "columns": list(self.columns),
            "value": self.value,
            "statistic": self.statistic.value,
            "weight": self.weight,
            "unit": self.unit,
            "edges": None if self.edges is None else list(self.edges),
            "protection": None if self.protection is None else self.protection.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableSpec:
        if not isinstance(data, Mapping):
            raise InvalidSpec("a table spec must be a JSON object")
        known = {"version", "name", "kind", "query", "rows", "columns", "value", "statistic", "weight", "unit", "edges",
                 "protection"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidSpec(f"unknown key(s) {unknown} in table spec; known keys are {sorted(known)}")
        missing = sorted({"version", "name", "kind", "query", "rows"} - set(data))
        if missing:
            raise InvalidSpec(f"table spec lacks {missing}")
        if data["version"] != SPEC_VERSION:
            raise InvalidSpec(f"table spec version {data['version']!r} is not supported (expected {SPEC_VERSION})")
        try:
            kind = TableKind(data["kind"])
        except ValueError:
            raise InvalidSpec(f"kind {data['kind']!r} is not one of {[k.value for k in TableKind]}") from None
        default_statistic = Statistic.COUNT.value if kind is TableKind.FREQUENCY else None
        statistic_value = data.get("statistic", default_statistic)
        try:
            statistic = Statistic(statistic_value)
        except ValueError:
            raise InvalidSpec(
                f"statistic {statistic_value!r} is not one of {[s.value for s in Statistic]}"
            ) from None
        for field in ("rows", "columns"):
            if field in data and not isinstance(data[field], list):
                raise InvalidSpec(f"{field} must be a list of variable names")
        return cls(
            kind=kind,
            query=data["query"],
            rows=tuple(data["rows"]),
            columns=tuple(data.get("columns", [])),
            value=data.get("value"),
            statistic=statistic,
            weight=data.get("weight"),
            unit=data.get("unit"),
            name=data["name"],
            edges=data.get("edges"),
            protection=None if data.get("protection") is None else Protection.from_dict(data["protection"]),
        )


def quote_identifier(name: str) -> str:
    """Double-quote an SQL identifier (embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'
