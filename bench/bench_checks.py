"""Shadow statistics + all checks vs ACRO building and checking the same table.

Ours: `sdc.compute_shadow` (one DuckDB statement over the dataset file, margins
included) + `sdc.check_table` under acro-default. Peer: ACRO 1.0's `crosstab`
(margins=True) on a pandas frame of the same rows, which builds the table and
runs its checks. Loading the rows into pandas is ACRO's set-up and not timed.
Goal (issue 3): ours >= 10x faster.
"""
from __future__ import annotations

import logging

import duckdb

from bench import DEMO_DATASET_ID, Case, Context
from dataplane.catalogue import guarded_connection
from disclosure_review.sdc import Statistic, TableKind, TableSpec, check_table, compute_shadow, load_preset

SOURCE = f"SELECT *, age // 10 AS age_decade FROM {DEMO_DATASET_ID}"
COLUMNS = ["prefecture", "sex", "age", "employment_status", "annual_income"]


def cases(ctx: Context) -> list[Case]:
    import acro as acro_package  # the peer: an optional test dependency

    path = ctx.demo_dataset()
    con = guarded_connection({DEMO_DATASET_ID: path})
    rules = load_preset("acro-default")
    with duckdb.connect(str(path), read_only=True) as raw:
        frame = raw.sql(f"SELECT {', '.join(COLUMNS)}, age // 10 AS age_decade FROM microdata").df()
    checker = acro_package.ACRO(suppress=False)
    logging.disable(logging.INFO)  # ACRO logs every table

    def ours(spec: TableSpec):
        return lambda: check_table(compute_shadow(con, spec), rules)

    two_way_count = TableSpec(TableKind.FREQUENCY, SOURCE, rows=("prefecture",), columns=("sex",), name="c2")
    two_way_sum = TableSpec(TableKind.MAGNITUDE, SOURCE, rows=("prefecture",), columns=("sex",),
                            value="annual_income", statistic=Statistic.SUM, name="s2")
    four_way_sum = TableSpec(TableKind.MAGNITUDE, SOURCE, rows=("prefecture", "sex"),
                             columns=("age_decade", "employment_status"), value="annual_income",
                             statistic=Statistic.SUM, name="s4")

    # Same table from both before timing anything: the grand total of the 2-way sum.
    ours_total = compute_shadow(con, two_way_sum).released_view().row(-1)[-1]
    acro_total = checker.crosstab(frame.prefecture, frame.sex, values=frame.annual_income, aggfunc="sum",
                                  margins=True).loc["All", "All"]
    if abs(ours_total - acro_total) > 1e-6 * abs(acro_total):
        raise AssertionError(f"grand totals differ: ours {ours_total}, ACRO {acro_total}")

    peer = f"acro {acro_package.version.__version__} crosstab"
    note = f"{ctx.rows:,} rows"
    return [
        Case("checks_2way_count", ours(two_way_count), peer,
             lambda: checker.crosstab(frame.prefecture, frame.sex, margins=True), repeat=5, note=note),
        Case("checks_2way_sum", ours(two_way_sum), peer,
             lambda: checker.crosstab(frame.prefecture, frame.sex, values=frame.annual_income, aggfunc="sum",
                                      margins=True), repeat=3, note=note + ", NK + p% + threshold"),
        Case("checks_4way_sum", ours(four_way_sum), peer,
             lambda: checker.crosstab([frame.prefecture, frame.sex], [frame.age_decade, frame.employment_status],
                                      values=frame.annual_income, aggfunc="sum", margins=True),
             repeat=1, note=note + ", 4 variables; one run (ACRO takes minutes)"),
    ]
