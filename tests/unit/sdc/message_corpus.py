"""Every check of sdc run on small tables, histograms, models, protections and extracts: the results,
so that their messages can be checked in every language (test_sdc_messages.py)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import statsmodels.api as sm
import statsmodels.formula.api as smf

from disclosure_review.sdc import CHECKS, Statistic, TableKind, TableSpec, check_table, compute_shadow, load_preset
from disclosure_review.sdc.differencing import OtherOutput, check_differencing
from disclosure_review.sdc.records import state_of_records, traced_records
from disclosure_review.sdc.microdata import RecordLevelRules, check_extract, check_record_level
from disclosure_review.sdc.models import check_model
from disclosure_review.sdc.protect import evaluate_table, excuse_blank_cells
from disclosure_review.sdc.enums import ProtectionMethod
from disclosure_review.sdc.spec import Protection
from disclosure_review.sdc.tracker import check_tracker
from dataplane.sql import query_constructs
from test_tracker import ORDINARY, TRACKERS, judged  # the shapes are listed once, beside their test

SDCMICRO = Path(__file__).resolve().parents[2] / "data" / "sdcmicro"
# region a: 30 records, b: 25, c: 3; sex alternates; income 10 * i (missing for i = 7 in `reported`, one
# record dominating each region in `dominated`); five firms
PEOPLE = """CREATE TABLE people AS SELECT i, CASE WHEN i < 30 THEN 'a' WHEN i < 55 THEN 'b' ELSE 'c' END AS region,
            CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END AS sex, i >= 55 AS remote, 10.0 * i AS income,
            CASE WHEN i = 7 THEN NULL ELSE 10.0 * i END AS reported, 10.0 * i - 100 AS change, i % 5 AS firm,
            CASE WHEN i IN (29, 54, 57) THEN 1e6 ELSE 10.0 * i END AS dominated
            FROM range(58) t(i)"""
ALL = "SELECT * FROM people"
LARGE = "SELECT * FROM people WHERE region <> 'c'"


def frequency(rows, columns=(), query=ALL, name="t", **options) -> TableSpec:
    return TableSpec(TableKind.FREQUENCY, query, rows=rows, columns=columns, name=name, **options)


def magnitude(value, statistic=Statistic.SUM, query=ALL, **options) -> TableSpec:
    return TableSpec(TableKind.MAGNITUDE, query, rows=("region",), value=value, statistic=statistic, **options)


def table_results(con: duckdb.DuckDBPyConnection) -> list:
    acro, jp, handbook = load_preset("acro-default"), load_preset("jp-onsite"), load_preset("sdc-handbook")
    results = []

    def check(spec: TableSpec, rules=acro) -> None:
        results.extend(check_table(compute_shadow(con, spec, top_n=rules.top_n), rules).results)

    check(frequency(("region",), ("sex",)))  # threshold fails
    check(frequency(("region",), ("remote",)))  # zeros and class disclosure fail
    check(frequency(("region",), ("remote",)), acro.replace(zeros_disclosive=False))
    check(frequency(("region",), query=LARGE))  # passes; no row x column structure
    check(frequency(("region",), ("sex",), query=LARGE))
    check(frequency(("region",)), acro.replace(threshold=None))  # unset
    check(magnitude("dominated"))  # dominance fails
    check(magnitude("income", query=LARGE, unit="firm"))
    check(magnitude("change"))  # negatives
    check(magnitude("reported"))  # missing
    check(magnitude("reported"), acro.replace(check_missing=False))
    for statistic in Statistic:
        if statistic.is_single_unit_value or statistic.is_spread:
            check(magnitude("income", statistic))
    for statistic in (Statistic.MEDIAN, Statistic.STD):
        check(magnitude("income", statistic, query=LARGE))
    check(magnitude("income", Statistic.MEDIAN), acro.replace(threshold=None))
    shallow = compute_shadow(con, magnitude("income"), top_n=2)
    results.append(CHECKS["nk_dominance"](shallow, acro.replace(nk_n=3)))
    # differencing by records: a subgroup, more cells than are listed, untraced outputs, nothing else, no threshold
    def state(spec: TableSpec):
        traced = f"SELECT *, i AS sdc_record FROM ({spec.query}) AS q"
        return state_of_records(compute_shadow(con, spec), traced_records(con, spec, traced), "people", acro.threshold)

    everyone = OtherOutput("#1 by_sex", state(frequency(("sex",), name="by_sex")))
    large = state(frequency(("sex",), query=LARGE, name="by_sex_large"))
    results.append(check_differencing(large, "by_sex_large", [everyone], acro))
    each = state(frequency(("i",), name="each"))
    but_one = state(frequency(("i",), query="SELECT * FROM people WHERE i <> 3", name="but_one"))
    results.append(check_differencing(but_one, "but_one", [OtherOutput("each", each), OtherOutput("old", None)], acro))
    # more than are listed: everyone but one against twelve outputs of everyone, two findings each
    sex_but_one = state(frequency(("sex",), query="SELECT * FROM people WHERE i <> 3", name="sex_but_one"))
    copies = [OtherOutput(f"copy_{n}", everyone.state) for n in range(12)]
    results.append(check_differencing(sex_but_one, "sex_but_one", copies, acro))
    results.append(check_differencing(large, "again", [OtherOutput("by_sex_large", large)], acro))
    results.append(check_differencing(None, "untraced", [everyone], acro))
    # sums: everyone minus regions a and b (its total blank: the sum of its shown cells) leaves region c; under 50
    # minus "under 30" and "30 and over" leaves 8 records that may hide others (undecided)
    region_a = OtherOutput("region_a", state(frequency(("sex",), query="SELECT * FROM people WHERE i < 30")))
    region_b = state(frequency(("sex",), query="SELECT * FROM people WHERE i BETWEEN 30 AND 54"))
    region_b = OtherOutput("region_b", region_b.blanked({("Total",)}))
    results.append(check_differencing(state(frequency(("sex",))), "everyone", [region_a, region_b], acro))
    over_30 = OtherOutput("over_30", state(frequency(("sex",), query="SELECT * FROM people WHERE i >= 30")))
    under_50 = state(frequency(("sex",), query="SELECT * FROM people WHERE i < 50"))
    results.append(check_differencing(under_50, "under_50", [region_a, over_30], acro))
    results.append(check_differencing(large, "first", [], acro))
    results.append(check_differencing(large, "unset", [everyone], acro.replace(threshold=None)))
    # histograms: edges from the data, round edges with an interior gap, no values
    gap = "SELECT * FROM people WHERE i < 10 OR i > 40"
    check(frequency(("income",), query=gap, edges=(0.0, 100.0, 200.0, 300.0, 400.0, 500.0, 570.0)))
    check(frequency(("income",), query=gap, edges=(-500.0, 0.5, 200.0, 400.0, 1000.0, 2000.0)),
          acro.replace(zeros_disclosive=False))
    check(frequency(("income",), query="SELECT * FROM people WHERE false", edges=(0.0, 100.0)))
    # protection: suppression (threshold, p% and explicit levels), rounding, record deletion
    for rules, spec in ((jp, frequency(("region",), ("sex",))), (acro, frequency(("region",), ("sex",))),
                        (handbook.replace(p_ratio=0.1), magnitude("dominated", columns=("sex",))),
                        (jp.replace(threshold=None), frequency(("region",), ("sex",)))):
        spec = TableSpec.from_dict(spec.to_dict() | {"protection": {"version": 1, "method": "suppress"}})
        results.extend(evaluate_table(con, spec, rules).report.results)
    for method in (ProtectionMethod.ROUND, ProtectionMethod.REDACT_ROUND, ProtectionMethod.DELETE_RECORDS):
        spec = frequency(("region",), ("sex",), protection=Protection(method))
        results.extend(evaluate_table(con, spec, acro).report.results)
    report = check_table(compute_shadow(con, frequency(("region",), ("sex",)), top_n=2), acro)
    flagged = report.result("threshold").cells
    for how in ("suppressed", "deleted", "redacted"):
        results.extend(excuse_blank_cells(report, set(flagged[:1]), how).results)
        results.extend(excuse_blank_cells(report, set(flagged), how).results)
    return results + failed_audits(con)


def failed_audits(con: duckdb.DuckDBPyConnection) -> list:
    """Interval audits of suppression patterns that give cells away (the service's own patterns pass)."""
    from disclosure_review.sdc.checks import CheckResult
    from disclosure_review.sdc.messages import msg
    from disclosure_review.sdc.protect import _audit_args, _linked
    from disclosure_review.sdc.protection import ProtectionLevels, audit

    shadow = compute_shadow(con, frequency(("region", "sex")), top_n=2)
    small = {("c", "F"), ("c", "M")}
    linked = _linked(shadow, np.array([label in small for label in shadow.labels()]))
    order = np.argsort(linked.positions)
    results = []
    for suppressed in (small, {("c", "F")}):  # the two small cells' sum is known; one of them alone is recomputed
        pattern = np.array([label in suppressed for label in shadow.labels()])[order]
        report = audit(linked.table, pattern, ProtectionLevels.threshold(linked.table, 10))
        results.append(CheckResult("interval_audit", report.verdict, "interval_audit",
                                   _audit_args(report, msg("levels_threshold", threshold=10))))
    return results


def model_results() -> list:
    acro = load_preset("acro-default")
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": ["rare"] * 3 + list(rng.choice(["a", "b"], n - 3))})
    frame["y"] = 2 * frame.x + rng.normal(size=n)
    frame["event"] = (np.arange(n) < 4).astype(int)
    fits = [smf.ols("y ~ x + C(g)", frame).fit(), smf.ols("y ~ x", frame).fit(), smf.ols("y ~ x", frame.head(8)).fit(),
            smf.logit("event ~ x", frame).fit(disp=0), smf.ols("y ~ x + C(g)", frame[frame.g != "rare"]).fit()]
    frame["event"] = (frame.y > 0).astype(int)
    fits.append(smf.logit("event ~ x", frame).fit(disp=0))
    fits.append(smf.ols("y ~ x + C(g) + event", frame.head(12)).fit())  # 5 parameters > 0.33 x 12
    results = []
    for fit in fits:
        results.extend(check_model(fit, acro).results)
    for rules in (acro.replace(dof_threshold=None, threshold=None, max_parameter_ratio=None),):
        results.extend(check_model(fits[0], rules).results + check_model(fits[3], rules).results)
    results.extend(check_model(sm.nonparametric.KDEUnivariate(frame.x.to_numpy()), acro).results)
    return results


def broken(series: pl.Series) -> pl.Series:
    raise RuntimeError("a computation that fails")


def record_level_results() -> list:
    data = pl.read_csv(SDCMICRO / "testdata.csv", null_values=["", "NA"], infer_schema_length=None)
    keys = ["urbrur", "roof", "walls", "water", "electcon", "relat", "sex"]
    strict = RecordLevelRules(k=3, weighted_k=100.0, max_individual_risk=0.1, max_global_risk=0.01,
                              max_household_risk=0.01, l_diversity=2)
    loose = RecordLevelRules(k=1, weighted_k=1.0, max_individual_risk=1.0, max_global_risk=1.0,
                             max_household_risk=1.0, l_diversity=1)
    checks = [
        check_record_level(data, keys=keys, weight="sampling_weight", household="ori_hid", sensitive=["hhcivil"],
                           rules=strict),
        check_record_level(data, keys=["urbrur", "sex"], weight="sampling_weight", household="ori_hid",
                           sensitive=["hhcivil"], rules=loose),
        check_record_level(data.drop("sampling_weight", "ori_hid", "hhcivil"), keys=[*keys, "gone"],
                           weight="sampling_weight", household="ori_hid", sensitive=["hhcivil"], rules=strict),
        check_record_level(data, keys=keys, rules=RecordLevelRules(*[None] * 6)),
        check_record_level(42, keys=keys),
        check_record_level(data, keys=["nothere"]),
        check_record_level(data.head(0), keys=keys),
        check_record_level(pl.LazyFrame({"sex": [1, 2]}).with_columns(
            pl.col("sex").map_batches(broken, return_dtype=pl.Int64)), keys=["sex"]),
    ]
    results = [f for c in checks for f in c.findings]
    metadata = SimpleNamespace(variables=[SimpleNamespace(name=k, role="KEY") for k in keys])
    extract = check_extract(data.select(*keys, "age").to_arrow(), [metadata], (), RecordLevelRules())
    return results + list(extract.findings)


def all_results() -> list:
    con = duckdb.connect(":memory:")
    con.execute(PEOPLE)
    try:
        return table_results(con) + model_results() + record_level_results() + tracker_results()
    finally:
        con.close()


def tracker_results() -> list:
    """The tracker check on every shape of test_tracker.py, an ordinary query and a dataset without metadata."""
    undescribed = check_tracker(query_constructs(ORDINARY[0]), (), undescribed=["survey"])
    return [judged(sql) for _, sql, _ in TRACKERS] + [judged(ORDINARY[0]), undescribed]
