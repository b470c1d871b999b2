"""What every protection method returns: the protected data and what it changed."""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from ._data import InvalidMicrodataInput, _columns_of


class ProtectionMethod(enum.Enum):
    GLOBAL_RECODE = "global_recode"
    TOP_BOTTOM_CODE = "top_bottom_code"
    LOCAL_SUPPRESSION = "local_suppression"
    PRAM = "pram"
    MICROAGGREGATION = "microaggregation"
    NOISE = "noise"


@dataclass(frozen=True)
class ProtectionResult:
    """Protected data (every input column, same row order) and a summary of the changes."""

    method: ProtectionMethod
    data: pl.DataFrame
    changed: dict[str, int]  # variable → values changed (for suppression: values made missing)
    changed_records: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def changed_values(self) -> int:
        return sum(self.changed.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method.value,
            "changed": dict(self.changed),
            "changed_values": self.changed_values,
            "changed_records": self.changed_records,
            "details": {k: _jsonable(v) for k, v in self.details.items()},
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_polars(data: Any) -> pl.DataFrame:
    """Any supported input as a polars DataFrame."""
    _columns_of(data)  # the clear errors for unsupported inputs and repeated column names
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    if isinstance(data, duckdb.DuckDBPyRelation):
        return pl.from_arrow(data.to_arrow_table())
    if isinstance(data, pa.Table):
        return pl.from_arrow(data)
    if isinstance(data, pd.DataFrame):
        return pl.from_pandas(data)
    raise InvalidMicrodataInput(
        f"cannot read microdata from a {type(data).__name__}: pass a DuckDB relation, "
        "a polars or pandas DataFrame, or a pyarrow Table"
    )


def require_columns(df: pl.DataFrame, columns: Sequence[str], what: str = "variable") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidMicrodataInput(
            f"{what}(s) {', '.join(map(repr, missing))} not in the data; it has: {', '.join(df.columns)}"
        )
    if df.height == 0:
        raise InvalidMicrodataInput("the data has no records")


def count_changes(before: pl.DataFrame, after: pl.DataFrame, columns: Sequence[str]) -> tuple[dict[str, int], int]:
    """Values changed per column (missing vs. a value counts as a change) and records with any change."""
    changed: dict[str, int] = {}
    any_change = np.zeros(before.height, dtype=bool)
    for c in columns:
        if after[c].dtype == before[c].dtype:
            diff = before[c].ne_missing(after[c]).to_numpy()
        else:  # recoded to labels: compare as text
            diff = before[c].cast(pl.String).ne_missing(after[c].cast(pl.String)).to_numpy()
        changed[c] = int(diff.sum())
        any_change |= diff
    return changed, int(any_change.sum())
