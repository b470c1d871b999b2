"""The cell key method applied by the review service when it writes a released table.

For tables over a dataset `ReviewPolicy.cell_key_datasets` names, every released cell — margins
too, each a cell of its own — is the computed value plus the perturbation its cell key picks
(`sdc.ckm`). The record keys are read here and nowhere else: from the dataset's key file
(`dataplane.record_keys`), which sessions cannot read. The cells' records are traced as for
differencing (the file's own row ids, `recompute.traced_query`); a table whose records cannot be
traced is not released unperturbed: it fails, saying why.

Margins are perturbed on their own, so they need not equal the sum of the released cells: the
report's `cell_key` facts say by how much the grand total differs, for reviewers to see.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import duckdb

from dataplane.catalogue import attached_metadata
from dataplane.record_keys import RecordKeysInvalid, read_keys
from disclosure_review.sdc.ckm.cellkey import (MagnitudeParams, cell_keys, information_loss, kth_keys,
                                               perturb_counts, perturb_magnitudes)
from disclosure_review.sdc.ckm.ptable import PTable, PTableParams, create_ptable, read_csv
from disclosure_review.sdc.enums import Statistic, TableKind
from disclosure_review.sdc.records import RECORD_COLUMN
from disclosure_review.sdc.shadow import GROUPING, VALUE, ShadowTable, grouping_sets
from disclosure_review.sdc.spec import TableSpec

ALL_DATASETS = "*"
MAGNITUDE_PTABLE = {"D", "V", "step", "icat", "optim", "mono"}  # the rest are cellKey's (epsilon its flex one)


class CellKeyFailed(Exception):
    """The cell key method applies to a table but could not be applied: the table is not released.
    `code`, `args`: its message (workflow.messages)."""

    def __init__(self, code: str, **args: Any) -> None:
        super().__init__(code)
        self.code, self.arguments = code, args


def applies(datasets_read: set[str], cell_key_datasets: list[str]) -> bool:
    return bool(datasets_read) and (ALL_DATASETS in cell_key_datasets or bool(datasets_read & set(cell_key_datasets)))


@functools.lru_cache(maxsize=8)
def _ptable(params_json: str) -> PTable:
    return create_ptable(PTableParams.from_dict(json.loads(params_json)))


def count_ptable(params: Mapping[str, Any]) -> PTable:
    """From ptable's parameters, or `{"file": path}`: a table made by the R package ptable (`write.csv`)."""
    if "file" in params:
        return read_csv(Path(params["file"]))
    return _ptable(json.dumps(dict(params), sort_keys=True))


def magnitude_settings(params: Mapping[str, Any]) -> tuple[PTable, MagnitudeParams]:
    """The magnitude ptable and the flex parameters from one mapping (ptable's and cellKey's names)."""
    table = {k: v for k, v in params.items() if k in MAGNITUDE_PTABLE} | {"table": "nums"}
    return (_ptable(json.dumps(table, sort_keys=True)),
            MagnitudeParams.from_dict({k: v for k, v in params.items() if k not in MAGNITUDE_PTABLE}))


def _per_cell(records: pl.DataFrame, shadow: ShadowTable, top_k: int) -> pl.DataFrame:
    """Per cell of `shadow` (frame order): records n, key sum ks, and for magnitudes the top contributions."""
    spec = shadow.spec
    k = len(spec.dimensions)
    d = [f"d{i}" for i in range(k)]
    cells = shadow.frame.select(*spec.dimensions, GROUPING).rename(dict(zip(spec.dimensions, d)))
    cells = cells.with_row_index("sdc_cell")
    records = records.with_columns(pl.col(x).cast(cells.schema[x]) for x in d)
    # One pass over the records gives the finest cells; every margin is a sum of finest cells (records and key
    # sums add up; a margin's largest contributions are among its finest cells' largest).
    top = [pl.col("c").drop_nulls().top_k_by(pl.col("c").drop_nulls().abs(), top_k).alias("top")] if top_k else []
    finest = records.group_by(d).agg(pl.len().alias("n"), pl.col("key").sum().alias("ks"), *top)
    if top_k:
        finest = finest.with_columns(pl.col("top").list.eval(pl.element().cast(pl.Float64)))
    held = pl.col("top").list.explode(keep_nulls=False, empty_as_null=False)
    margin_top = [held.top_k_by(held.abs(), top_k).alias("top")] if top_k else []
    located = []
    for positions in grouping_sets(spec):
        bits = sum(1 << (k - 1 - i) for i in range(k) if i not in positions)
        by = [d[i] for i in positions]
        if len(by) == k:
            grouped = finest
        else:
            by = by or [pl.lit(0).alias("sdc_all")]  # the grand total: one group of every cell
            grouped = finest.group_by(by).agg(pl.col("n").sum(), pl.col("ks").sum(), *margin_top)
            grouped = grouped.drop("sdc_all", strict=False)
        grouped = grouped.with_columns(*(pl.lit(None, cells.schema[x]).alias(x) for i, x in enumerate(d)
                                         if i not in positions), pl.lit(bits, cells.schema[GROUPING]).alias(GROUPING))
        located.append(grouped.join(cells, on=[*d, GROUPING], how="inner", nulls_equal=True))
    found = pl.concat([f.select("sdc_cell", "n", "ks", *(["top"] if top_k else [])) for f in located])
    return cells.select("sdc_cell").join(found, on="sdc_cell", how="left").sort("sdc_cell")


def perturb_table(con: duckdb.DuckDBPyConnection, shadow: ShadowTable, released: pl.DataFrame, records: pl.DataFrame,
                  dataset: str, datasets: Mapping[str, str], counts: Mapping[str, Any], magnitudes: Mapping[str, Any],
                  sensitive: np.ndarray | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """`released` (the table as it would be released, blank cells kept blank) with each shown cell perturbed, and
    the facts for the report. `records`: the cells' `traced_records` (rows of `dataset`; a deleted cell's records
    already dropped, so the margins' keys are those of the records they release); `sensitive`: cells (frame order)
    a check fails, which get the magnitude parameters' `mu_c` more (cellKey's special protection)."""
    spec = shadow.spec
    magnitude = _kind(spec)
    info = attached_metadata(con, dataset)
    try:
        keys = read_keys(Path(datasets[dataset]).parent, dataset, info.rows, info.source_sha256)
    except RecordKeysInvalid as exc:
        raise CellKeyFailed("cell_key_keys", error=str(exc)) from None
    ids = records.get_column(RECORD_COLUMN).to_numpy()
    records = records.with_columns(pl.Series("key", keys[ids].astype(np.uint64)))
    if magnitude:
        records = records.with_columns((pl.col("v") * pl.col("w").fill_null(1.0) if spec.weight else pl.col("v"))
                                       .alias("c"))
        table, params = magnitude_settings(magnitudes)
        cells = _per_cell(records, shadow, params.top_k)
    else:
        table = count_ptable(counts)
        cells = _per_cell(records, shadow, 0)
    n = cells.get_column("n").fill_null(0).to_numpy()
    sums = cells.get_column("ks").fill_null(0).to_numpy().astype(np.uint64)
    value = shadow.frame.get_column(VALUE).cast(pl.Float64).fill_null(0.0).to_numpy()
    if magnitude:
        top = np.full((len(n), params.top_k), np.nan)
        for row, contributions in enumerate(cells.get_column("top").to_list()):
            if contributions:
                top[row, :len(contributions)] = contributions
        perturbed = value + perturb_magnitudes(value, top, kth_keys(sums, params.top_k), table, params, sensitive)
    else:
        deviation = perturb_counts(n, cell_keys(sums), table)
        # weighted counts: the perturbed count times the cell's mean weight (as cellKey does)
        perturbed = np.where(n > 0, (n + deviation) * np.divide(value, n, out=np.zeros(len(n)), where=n > 0), 0.0)
    column = released.columns[-1]
    shown = released.get_column(column).is_not_null().to_numpy()
    out = released.with_columns(pl.when(pl.col(column).is_not_null()).then(pl.Series(perturbed)).alias(column))
    if not magnitude and spec.weight is None:
        out = out.with_columns(pl.col(column).round(0).cast(pl.Int64))
    return out, _facts(shadow, value, perturbed, shown, n > 0, magnitudes if magnitude else counts)


def _kind(spec: TableSpec) -> bool:
    """True for a magnitude table (sums), False for counts; others cannot be perturbed."""
    if spec.kind is TableKind.FREQUENCY and not spec.is_histogram and spec.statistic is Statistic.COUNT:
        return False
    if spec.kind is TableKind.MAGNITUDE and spec.statistic is Statistic.SUM:
        return True
    raise CellKeyFailed("cell_key_statistic", statistic="histograms" if spec.is_histogram else spec.statistic.value)


def _facts(shadow: ShadowTable, value: np.ndarray, perturbed: np.ndarray, shown: np.ndarray, held: np.ndarray,
           params: Mapping[str, Any]) -> dict[str, Any]:
    """Information loss over the shown cells that hold records (empty cells stay empty: as cellKey's
    `exclude_zeros`), the margins, and how far the grand total is from the sum of the finest cells."""
    grouping = shadow.frame.get_column(GROUPING).to_numpy()
    finest, total = grouping == 0, grouping == grouping.max()
    loss = information_loss(value[shown & held], perturbed[shown & held]).to_dict()
    facts: dict[str, Any] = {"method": "cell_key", "parameters": dict(params), "information_loss": loss,
                             "margins": int(np.count_nonzero(grouping != 0))}
    if grouping.max() > 0 and total.sum() == 1 and shown[finest].all():
        facts["grand_total_minus_cells"] = float(perturbed[total][0] - perturbed[finest].sum())
    return facts
