"""ACRO's API on Onsite (analysis_kernel.acro) over a real guarded connection: ACRO's return values, Onsite's
outputs behind them, provenance kept through `.df()` and lost (and said so) through pandas."""
from __future__ import annotations

import base64
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from small_survey import write_small_survey

from analysis_kernel.acro import ACRO, MARGIN, QUERY_ATTR, AcroError, onsite_cells
from analysis_kernel.connection import AnalysisConnection
from analysis_kernel.outputs import FileOutput, ModelOutput, TableOutput
from dataplane.catalogue import guarded_connection
from dataplane.manifest import SessionManifest
from disclosure_review.sdc import Verdict

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


@pytest.fixture
def db(tmp_path: Path):
    path = write_small_survey(tmp_path / "survey.duckdb")  # 40 people; area tiny has 3 in group rare
    manifest = SessionManifest.from_dict({
        "user": "r.tanaka", "outbox": str(tmp_path / "outbox"),
        "projects": {"p1": {"title": "Test", "preset": "acro-default", "datasets": {"survey": str(path)}}},
    })
    connection = AnalysisConnection(guarded_connection(manifest.projects["p1"].datasets), "p1", manifest)
    yield connection
    connection.close()


@pytest.fixture
def acro(db) -> ACRO:
    return ACRO(suppress=False, db=db)


@pytest.fixture
def survey(db) -> pd.DataFrame:
    return db.sql("SELECT * FROM survey").df()


def test_a_frame_made_by_df_carries_its_query(db) -> None:
    assert db.sql("SELECT * FROM survey").df().attrs[QUERY_ATTR] == "SELECT * FROM survey"
    filtered = db.sql("SELECT * FROM survey").filter("area = 'big'").df()
    assert "area = 'big'" in filtered.attrs[QUERY_ATTR]
    assert db.sql("SELECT area FROM survey").to_df().area.attrs[QUERY_ATTR] == "SELECT area FROM survey"


def test_crosstab_returns_pandas_table_and_builds_the_onsite_table(acro, survey) -> None:
    table = acro.crosstab(survey.area, survey.grp)
    pd.testing.assert_frame_equal(table, pd.crosstab(survey.area, survey.grp, dropna=False))
    record = acro.results.get("output_0")
    [onsite] = record.onsite
    assert isinstance(onsite, TableOutput) and record.verified
    assert onsite.spec.query == "SELECT * FROM survey" and onsite.spec.rows == ("area",)
    assert record.status == "fail" == onsite.verdict.value
    # ACRO's outcome table from Onsite's checks: ACRO's names, Onsite's stricter checks with their D-number
    assert record.outcome.loc["tiny", "m"] == "MinimumThresholdCheck; "
    assert record.outcome.loc["big", "f"] == "ok"
    assert record.outcome.loc["big", "rare"] == "PresenceOfZeroCheck; "
    assert record.outcome.loc["tiny", "rare"] == "MinimumThresholdCheck; onsite:class_disclosure (D3, review); "


def test_a_record_shows_its_outcome_table_coloured(acro, survey) -> None:
    acro.crosstab(survey.area, survey.grp)
    page = acro.results.get("output_0")._repr_html_()
    assert "#ffebe9'>MinimumThresholdCheck; </td>" in page  # failing: red
    assert "#ffebe9'>MinimumThresholdCheck; onsite:class_disclosure (D3, review); </td>" in page  # a fail wins
    assert "<td style='background:none'>ok</td>" in page
    frame = pd.DataFrame({"area": ["a"] * 12 + ["b"] * 24, "grp": ["x"] * 24 + ["y"] * 12})
    acro.crosstab(frame.area, frame.grp)  # all of area a is in group x: review only
    assert "#fff8c5'>onsite:class_disclosure (D3, review); </td>" in acro.results.get_index(-1)._repr_html_()


def test_magnitude_crosstab_with_margins_flags_the_dominant_income(acro, survey) -> None:
    table = acro.crosstab(survey.area, survey.grp, values=survey.income, aggfunc="sum", margins=True)
    assert table.loc["All", "All"] == survey.income.sum()
    record = acro.results.get_index(-1)
    assert record.verified and record.onsite[0].spec.statistic.value == "sum"
    assert "NKCheck" in record.outcome.loc["big", "m"] and "PPercentCheck" in record.outcome.loc["big", "m"]
    assert "NKCheck" in record.outcome.loc["All", "All"]  # margins are checked like cells


def test_values_equal_the_onsite_tables_cell_by_cell(acro, survey) -> None:
    table = acro.pivot_table(survey, index=["area"], columns=["grp"], values=["income"], aggfunc=["mean", "std"])
    record = acro.results.get_index(-1)
    assert [t.spec.statistic.value for t in record.onsite] == ["mean", "std"]
    for statistic, onsite in zip(("mean", "std"), record.onsite):
        cells = onsite_cells(onsite)
        for area in ("big", "tiny"):
            for grp in ("f", "m"):
                assert math.isclose(table.loc[area, (statistic, "income", grp)], cells[(area, grp)], rel_tol=1e-9)
    assert record.outcome.loc["tiny", ("std", "income", "f")] == "MinimumDoFCheck; "


def test_selection_renaming_and_filters_in_sql_keep_provenance(acro, db) -> None:
    frame = db.sql("SELECT area AS region, grp FROM survey").filter("grp <> 'rare'").df()
    acro.crosstab(frame.region, frame.grp)
    record = acro.results.get_index(-1)
    assert record.verified and record.onsite[0].spec.rows == ("region",)


def test_a_pandas_filter_loses_provenance_and_says_how_to_keep_it(acro, survey, capsys) -> None:
    subset = survey[survey.grp != "rare"]  # pandas keeps attrs: the query no longer describes the data
    table = acro.crosstab(subset.area, subset.grp)
    assert list(table.columns) == ["f", "m"]
    record = acro.results.get_index(-1)
    assert not record.verified and record.status == "review"
    [sent] = record.onsite
    assert isinstance(sent, FileOutput) and sent.verdict is Verdict.REVIEW
    assert sent.content.decode() == table.to_csv()
    assert "big/rare" in sent.explanation  # why, for the reviewer
    said = capsys.readouterr().out
    assert "output_0 is unverified" in said and 'db.sql("SELECT ... FROM <dataset>").df()' in said


def test_a_missing_level_is_a_cell_in_both(acro, db) -> None:
    frame = db.sql("SELECT CASE WHEN grp = 'rare' THEN NULL ELSE grp END AS grp, area FROM survey").df()
    table = acro.crosstab(frame.area, frame.grp)  # pandas' NaN column is Onsite's NULL level
    assert table.loc["tiny"].iloc[-1] == 3
    record = acro.results.get_index(-1)
    assert record.verified and "MinimumThresholdCheck" in record.outcome.loc["tiny"].iloc[-1]


def test_a_level_named_total_is_a_level_not_the_margin(acro, db) -> None:
    """Onsite labels its margins "Total" unless a level is so named (then "[Total]"): cells are matched by what
    they are, not by that label, so the table stays verified and each cell keeps its own verdict."""
    frame = db.sql("SELECT CASE WHEN area = 'tiny' THEN 'Total' ELSE area END AS area, grp FROM survey").df()
    table = acro.crosstab(frame.area, frame.grp, margins=True)
    record = acro.results.get_index(-1)
    [onsite] = record.onsite
    assert record.verified and onsite.shadow.margin_label == "[Total]"
    assert table.loc["Total", "m"] == 3 and record.outcome.loc["Total", "m"] == "MinimumThresholdCheck; "
    assert record.outcome.loc["All", "f"] == "ok" and onsite_cells(onsite)[(MARGIN, "f")] == table.loc["All", "f"]
    assert onsite_cells(onsite)[("Total", MARGIN)] == table.loc["Total", "All"]
    acro.enable_suppression()  # the level's cells are deleted as any other, the margins kept
    table = acro.crosstab(frame.area, frame.grp, margins=True)
    assert np.isnan(table.loc["Total", "m"]) and table.loc["All", "All"] == 30
    assert acro.results.get_index(-1).verified


def test_a_column_made_in_pandas_says_to_derive_it_in_sql(acro, survey) -> None:
    survey["rich"] = survey.income > 1000  # pandas keeps the frame's query, which has no such column
    acro.crosstab(survey.area, survey.rich)
    record = acro.results.get_index(-1)
    assert not record.verified and "rich is not in the result of the data's query" in record.onsite[0].explanation


def test_a_changed_value_loses_provenance(acro, survey) -> None:
    survey.loc[0, "income"] = 1.0  # in place: the frame still claims its query
    acro.crosstab(survey.area, survey.grp, values=survey.income, aggfunc="mean")
    record = acro.results.get_index(-1)
    assert not record.verified and "from the query" in record.onsite[0].explanation


def test_a_frame_without_query_still_works_as_in_acro_but_unverified(acro) -> None:
    frame = pd.DataFrame({"area": ["a"] * 12 + ["b"] * 3, "grp": ["x", "y", "z"] * 5})
    table = acro.crosstab(frame.area, frame.grp)
    pd.testing.assert_frame_equal(table, pd.crosstab(frame.area, frame.grp, dropna=False))
    record = acro.results.get_index(-1)
    assert not record.verified and record.status == "review"
    # Onsite's checks still run on the frame, as feedback shown in ACRO's outcome table
    assert record.outcome.loc["b", "x"] == "MinimumThresholdCheck; "


def test_attack_a_forged_query_on_made_up_data_is_not_verified(acro) -> None:
    forged = pd.DataFrame({"area": ["big"] * 40, "grp": ["f"] * 40})
    forged.attrs[QUERY_ATTR] = "SELECT * FROM survey"
    acro.crosstab(forged.area, forged.grp)
    record = acro.results.get_index(-1)
    assert not record.verified and isinstance(record.onsite[0], FileOutput)


def test_attack_a_query_the_service_cannot_rerun_is_not_verified(acro, db) -> None:
    db.duckdb.execute("CREATE TEMP TABLE mine AS SELECT 'x' AS area, 'y' AS grp FROM range(20)")
    frame = db.sql("SELECT * FROM mine").df()
    acro.crosstab(frame.area, frame.grp)
    record = acro.results.get_index(-1)
    assert not record.verified and "cannot be re-run" in record.onsite[0].explanation


def test_suppression_deletes_records_as_acro_and_the_returned_table_is_what_is_released(db, survey) -> None:
    acro = ACRO(suppress=True, db=db)
    table = acro.crosstab(survey.area, survey.grp, margins=True)
    [onsite] = acro.results.get_index(-1).onsite
    assert onsite.spec.protection is not None and onsite.spec.protection.method.value == "delete_records"
    cells = onsite_cells(onsite)
    for row in table.index:
        for column in table.columns:
            key = tuple(MARGIN if v == "All" else v for v in (row, column))
            released = cells.get(key)  # (big, rare) is gone: rare's only records were deleted
            assert (released is None and np.isnan(table.loc[row, column])) or table.loc[row, column] == released
    assert np.isnan(table.loc["tiny", "m"]) and np.isnan(table.loc["big", "rare"])  # small and empty cells
    assert table.loc["big", "f"] == 15 and table.loc["All", "All"] == 30  # the totals lose the deleted records
    assert acro.results.get_index(-1).status == onsite.verdict.value


@pytest.mark.parametrize("aggfunc", ["mean", "median", "std", "max"])
def test_suppression_of_any_statistic_deletes_the_failing_cells_records_as_acro(db, survey, aggfunc) -> None:
    """ACRO suppresses a mean, median or std table as it does counts: the records of its failing cells deleted, the
    table recomputed (margins without them). Onsite's delete_records does the same, and the service re-applies it."""
    acro = ACRO(suppress=True, db=db)
    table = acro.pivot_table(survey, index="area", columns="grp", values="income", aggfunc=aggfunc, margins=True)
    record = acro.results.get_index(-1)
    [onsite] = record.onsite
    assert record.verified and onsite.spec.protection.method.value == "delete_records"
    assert np.isnan(table.loc["tiny", "rare"])  # 3 records: the threshold (std: its dof) fails
    released = [not np.isnan(table.loc[a, g]) for a, g in zip(survey.area, survey.grp)]
    kept = survey[released]  # the records of the cells still shown
    if aggfunc == "max":  # every cell of a maximum fails (single_unit, D6): nothing is left to release
        assert table.isna().all().all() and record.status == "fail"
        return
    assert table.loc["All", "All"] == pytest.approx(kept.income.agg(aggfunc))  # margins without the deleted records
    assert len(kept) < len(survey)
    assert record.status == onsite.verdict.value == "pass"
    for (row, column), value in onsite_cells(onsite).items():
        shown = table.loc["All" if row is MARGIN else row, "All" if column is MARGIN else column]
        assert (value is None and np.isnan(shown)) or shown == pytest.approx(value)


def test_rounding_a_mean_says_onsite_rounds_counts_and_sums_only(db, survey, capsys) -> None:
    acro = ACRO(mitigation="round", db=db)
    table = acro.pivot_table(survey, index="area", values="income", aggfunc="mean")
    assert table.loc["tiny", "income"] == pytest.approx(134.5)  # sent as computed
    assert acro.results.get_index(-1).onsite[0].spec.protection is None
    assert "Onsite rounds counts and sums only" in capsys.readouterr().out


def test_rounding_uses_onsites_rounding(db, survey) -> None:
    acro = ACRO(mitigation="round", round_base=5, db=db)
    table = acro.crosstab(survey.area, survey.grp)
    assert all(v % 5 == 0 for v in table.to_numpy().ravel())
    assert acro.results.get_index(-1).onsite[0].spec.protection.base == 5


def test_hist_saves_the_figure_and_sends_the_bin_table(acro, survey, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = acro.hist(survey, "income", bins=5)
    second = acro.hist(survey, "income", bins=5)
    assert (first, second) == ("histogram.png", "histogram_1.png")
    assert Path(first).read_bytes().startswith(b"\x89PNG")
    record = acro.results.get("output_0")
    [onsite] = record.onsite
    assert isinstance(onsite, TableOutput) and onsite.spec.edges is not None and record.verified
    assert list(record.outcome["count"]) == ["ok"] + ["onsite:empty_bins (D11); "] * 3 + ["MinimumThresholdCheck; "]


def test_pie_saves_the_chart_and_sends_the_frequency_table(acro, survey, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert acro.pie(survey, "grp") == "pie.png" and Path("pie.png").read_bytes().startswith(b"\x89PNG")
    record = acro.results.get("output_0")
    [onsite] = record.onsite
    assert isinstance(onsite, TableOutput) and record.verified and onsite.spec.rows == ("grp",)
    assert record.status == "fail" and record.outcome.loc["rare", "count"] == "MinimumThresholdCheck; "
    subset = survey[survey.area == "big"]  # filtered in pandas: the chart is sent as a file, for a reviewer
    acro.pie(subset, "grp")
    assert isinstance(acro.results.get("output_1").onsite[0], FileOutput)


@pytest.mark.parametrize("method", ["ols", "logit", "probit"])
def test_regressions_return_statsmodels_results_and_a_model_output(acro, survey, method) -> None:
    exog = sm.add_constant(survey[["income"]])
    endog = survey.income if method == "ols" else (survey.grp == "f").astype(int)
    fitted = getattr(acro, method)(endog, exog)
    direct = {"ols": sm.OLS, "logit": sm.Logit, "probit": sm.Probit}[method](endog, exog).fit(disp=0)
    assert np.allclose(fitted.params, direct.params)
    record = acro.results.get_index(-1)
    [onsite] = record.onsite
    assert isinstance(onsite, ModelOutput) and record.status in ("review", "fail") and not record.verified
    assert record.output_type == "regression" and isinstance(record.output[0], pd.DataFrame)


@pytest.mark.parametrize("method,fit", [("olsr", smf.ols), ("logitr", smf.logit), ("probitr", smf.probit)])
def test_formula_regressions(acro, survey, method, fit) -> None:
    survey["female"] = (survey.grp == "f").astype(int)
    formula = "income ~ female" if method == "olsr" else "female ~ income"
    fitted = getattr(acro, method)(formula, data=survey)
    assert np.allclose(fitted.params, fit(formula, data=survey).fit(disp=0).params)
    assert acro.results.get_index(-1).properties["method"] == method


SURVIVAL = """SELECT (a.income + 2 * b.income)::BIGINT % 397 + 1 AS futime,
                      ((a.income + b.income)::BIGINT % 3 = 0)::INTEGER AS death
               FROM survey a, survey b"""  # 1,600 follow-up times and deaths, made from the granted data in SQL


def _kaplan_meier(cells: dict) -> tuple[list[float], list[float]]:
    """Survival and numbers at risk at each event time, from released (time, status) counts."""
    times = sorted({float(t) for t, s in cells if t is not MARGIN})
    at_risk, survival, shown_risk, shown_survival = cells[(MARGIN, MARGIN)], 1.0, [], []
    for t in times:
        label = next(k for k in cells if k[0] is not MARGIN and float(k[0]) == t)[0]
        events, leaving = cells.get((label, "1")) or 0, cells[(label, MARGIN)]
        if events:
            survival *= 1 - events / at_risk
            shown_risk.append(at_risk)
            shown_survival.append(survival)
        at_risk -= leaving
    return shown_survival, shown_risk


def test_surv_func_returns_acros_table_and_sends_the_counts_behind_it(acro, db) -> None:
    df = db.sql(SURVIVAL).df()
    table = acro.surv_func(df.futime, df.death, output="table")
    pd.testing.assert_frame_equal(table, sm.SurvfuncRight(df.futime, df.death).summary())
    record = acro.results.get_index(-1)
    [onsite] = record.onsite
    assert record.verified and (record.output_type, record.properties["method"]) == ("table", "surv func")
    assert (onsite.spec.rows, onsite.spec.columns) == (("futime",), ("death",))
    # the released counts give back the returned survival table
    survival, at_risk = _kaplan_meier(onsite_cells(onsite))
    assert np.allclose(survival, table["Surv prob"]) and at_risk == list(table["num at risk"])
    assert record.status == onsite.verdict.value == "fail"  # single events at a time face the threshold (D15)
    assert "MinimumThresholdCheck" in record.outcome.to_string()
    assert record.fair["dependent"] == "death" and record.fair["independent"] == ["futime"]


def test_surv_func_under_suppression_releases_bands_that_pass(db) -> None:
    acro = ACRO(suppress=True, db=db)
    df = db.sql(SURVIVAL).df()
    table = acro.surv_func(df.futime, df.death, output="table")
    record = acro.results.get_index(-1)
    [onsite] = record.onsite
    assert record.verified and "CASE WHEN" in onsite.spec.query and record.status == "pass"
    cells = {k: v for k, v in onsite_cells(onsite).items() if MARGIN not in k}
    bands = sorted({float(t) for t, _ in cells})
    assert 1 < len(bands) < df.futime.nunique() and all(v >= 10 for v in cells.values())
    # rounded_survival_fun: the survival over the released bands, a step at each band's end
    survival, _ = _kaplan_meier(onsite_cells(onsite))
    steps = dict(zip(bands, survival))
    for t, value in table["rounded_survival_fun"].items():
        ended = [b for b in bands if b <= t]
        assert value == pytest.approx(steps[ended[-1]] if ended else 1.0)
    assert list(table.columns[:4]) == ["Surv prob", "Surv prob SE", "num at risk", "num events"]


def test_surv_func_plot_and_what_acro_ignores(acro, db, survey, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    df = db.sql(SURVIVAL).df()
    axes, name = acro.surv_func(df.futime, df.death, output="plot")
    assert name == "kaplan-meier.png" and Path(name).read_bytes().startswith(b"\x89PNG") and axes.lines
    assert acro.results.get_index(-1).output_type == "survival plot"
    assert acro.surv_func(df.futime, df.death, output="curve") is None and len(acro.results.get_keys()) == 1
    acro.surv_func(df.futime, df.death, output="table", entry=df.futime * 0)  # left truncation: beyond the counts
    assert not acro.results.get_index(-1).verified
    late = df[df.futime > 3]  # filtered in pandas: the survival table is sent as a file for a reviewer
    acro.surv_func(late.futime, late.death, output="table")
    record = acro.results.get_index(-1)
    assert not record.verified and isinstance(record.onsite[0], FileOutput) and record.status == "review"


def test_session_management_as_in_acro(acro, survey, tmp_path) -> None:
    figure = tmp_path / "figure.png"
    figure.write_bytes(PNG)
    acro.crosstab(survey.area, survey.grp)
    acro.crosstab(survey.grp, survey.area)
    assert acro.custom_output(str(figure), "a figure made elsewhere") is True
    assert acro.custom_output(str(tmp_path / "paper.docx")) is False  # a type Onsite cannot release
    acro.remove_output("output_0")
    acro.rename_output("output_1", "groups_by_area")
    acro.add_comments("groups_by_area", "Table 2")
    acro.add_exception("groups_by_area", "the small cells are published elsewhere")
    assert acro.results.get_keys() == ["groups_by_area", "output_2"]
    record = acro.results.get("groups_by_area")
    assert record.comments == ["Table 2"] and record.exception.startswith("the small cells")
    text = acro.print_outputs()
    assert "uid: groups_by_area" in text and "uid: output_0" not in text
    with pytest.raises(AcroError, match="no output 'output_9'"):
        acro.add_comments("output_9", "x")
    with pytest.raises(AcroError, match="cannot name an output"):
        acro.rename_output("output_2", "groups_by_area")
    acro.rename_output("output_2", " ../figure one")  # as ACRO's demo: spaces; sent under a file name
    assert acro.results.get(" ../figure one").name == "figure_one"
    acro.rename_output(" ../figure one", "図１")
    assert acro.results.get("図１").name == "figure_one"


def test_what_onsite_does_not_take_is_refused_with_what_to_do(db, survey) -> None:
    with pytest.raises(AcroError, match="project's rule preset"):
        ACRO(config="custom", db=db)
    with pytest.raises(AcroError, match="federated"):
        ACRO(federated=True, db=db)
    acro = ACRO(db=db)
    with pytest.raises(AcroError, match="normalize"):
        acro.crosstab(survey.area, survey.grp, normalize="index")
    with pytest.raises(AcroError, match="single values column"):
        acro.crosstab(survey.area, survey.grp, aggfunc="mean")
    with pytest.raises(AcroError, match="aggfunc"):
        acro.crosstab(survey.area, survey.grp, values=survey.income, aggfunc=np.mean)
    with pytest.raises(AcroError, match="Onsite cannot check this table: .*used twice"):
        acro.crosstab(survey.area, survey.area)
    assert acro.results.get_keys() == []


def test_notices_follow_the_sessions_language(tmp_path, capsys) -> None:
    path = write_small_survey(tmp_path / "survey.duckdb")
    manifest = SessionManifest.from_dict({
        "user": "r.tanaka", "outbox": str(tmp_path / "outbox"), "language": "ja",
        "projects": {"p1": {"title": "Test", "preset": "acro-default", "datasets": {"survey": str(path)}}},
    })
    db = AnalysisConnection(guarded_connection(manifest.projects["p1"].datasets), "p1", manifest)
    try:
        frame = pd.DataFrame({"area": ["a"] * 12, "grp": ["x"] * 12})
        ACRO(db=db).crosstab(frame.area, frame.grp)
    finally:
        db.close()
    assert "output_0 は未検証です" in capsys.readouterr().out
