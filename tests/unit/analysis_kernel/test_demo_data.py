from __future__ import annotations

import hashlib

import duckdb
import polars as pl
import pytest

from onsite.demo_data import JAPAN_POPULATION, generate
from onsite_base.errors import UserError


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    a = generate(2500, 11, tmp_path / "a.parquet", chunk_rows=1000, progress=False)
    b = generate(2500, 11, tmp_path / "b.parquet", chunk_rows=1000, progress=False)
    c = generate(2500, 12, tmp_path / "c.parquet", chunk_rows=1000, progress=False)
    assert sha256(a) == sha256(b)
    frame_a, frame_c = pl.read_parquet(a), pl.read_parquet(c)
    assert frame_a.equals(pl.read_parquet(b))
    assert frame_a.height == frame_c.height == 2500
    assert not frame_a.equals(frame_c)


def test_csv_holds_the_same_rows_as_parquet(tmp_path):
    parquet = pl.read_parquet(generate(1500, 3, tmp_path / "d.parquet", chunk_rows=700, progress=False))
    csv = pl.read_csv(generate(1500, 3, tmp_path / "d.csv", chunk_rows=700, progress=False),
                      schema_overrides={"prefecture": pl.String, "municipality": pl.String})
    assert csv.columns == parquet.columns
    assert csv.select(pl.exclude("weight")).equals(parquet.select(pl.exclude("weight")).cast(csv.select(pl.exclude("weight")).schema))
    assert csv["weight"].round(3).equals(parquet["weight"])


def test_households_are_whole_and_sizes_consistent(demo_parquet):
    frame = pl.read_parquet(demo_parquet)
    households = frame.group_by("household_id").agg(
        members=pl.len(), size=pl.col("household_size").unique(), numbers=pl.col("person_no").sort(),
        prefectures=pl.col("prefecture").n_unique(), municipalities=pl.col("municipality").n_unique(),
    )
    assert (households["members"] == households["size"].list.first()).all()
    assert (households["size"].list.len() == 1).all()
    assert all(numbers.to_list() == list(range(1, len(numbers) + 1)) for numbers in households["numbers"])
    assert (households["prefectures"] == 1).all() and (households["municipalities"] == 1).all()
    # Household ids run 1..H without gaps across chunk boundaries; person ids are the row numbers.
    assert sorted(households["household_id"].to_list()) == list(range(1, households.height + 1))
    assert frame["person_id"].to_list() == list(range(1, frame.height + 1))


def test_values_stay_in_their_code_lists(demo_parquet, demo_metadata):
    frame = pl.read_parquet(demo_parquet)
    for variable in demo_metadata.variables:
        if variable.codes:
            values = {str(v) for v in frame[variable.name].drop_nulls().unique()}
            assert values <= set(variable.codes), variable.name
    assert frame["municipality"].str.slice(0, 2).equals(frame["prefecture"])
    # Not employed persons have no occupation or industry and work no hours.
    not_employed = frame.filter(pl.col("employment_status") >= 8)
    assert not_employed["occupation"].null_count() == not_employed.height
    assert (not_employed["hours_worked"] == 0).all()


@pytest.fixture(scope="module")
def survey_50k(tmp_path_factory):
    return generate(50_000, 2026, tmp_path_factory.mktemp("rare") / "s.parquet", progress=False)


def test_rare_combinations_exist(survey_50k):
    con = duckdb.connect()
    scan = f"read_parquet('{survey_50k}')"
    centenarians = con.execute(f"SELECT count(*) FROM {scan} WHERE age >= 100").fetchone()[0]
    tiny_municipalities = con.execute(
        f"SELECT count(*) FROM (SELECT municipality FROM {scan} GROUP BY 1 HAVING count(*) <= 2)").fetchone()[0]
    rare_nationalities = con.execute(
        f"SELECT count(*) FROM (SELECT nationality FROM {scan} GROUP BY 1 HAVING count(*) < 30)").fetchone()[0]
    sample_uniques = con.execute(
        f"SELECT count(*) FROM (SELECT prefecture, sex, age, nationality FROM {scan} GROUP BY ALL HAVING count(*) = 1)"
    ).fetchone()[0]
    assert centenarians >= 5
    assert tiny_municipalities >= 3
    assert rare_nationalities >= 1
    assert sample_uniques >= 100


def test_income_is_skewed_with_dominant_values(survey_50k):
    income = pl.read_parquet(survey_50k).filter(pl.col("employment_status") <= 7)["annual_income"]
    assert income.mean() > income.median()
    # A few incomes are far above the 99th percentile: one person dominates the cell they fall in.
    assert income.max() > 10 * income.quantile(0.99)


def test_weights_represent_the_population(survey_50k):
    total = pl.read_parquet(survey_50k)["weight"].sum()
    assert abs(total - JAPAN_POPULATION) / JAPAN_POPULATION < 0.1


@pytest.mark.parametrize(("rows", "name", "message"), [(0, "x.parquet", "--rows"), (10, "x.txt", ".parquet or .csv")])
def test_bad_arguments_are_refused_and_write_nothing(tmp_path, rows, name, message):
    with pytest.raises(UserError, match=message):
        generate(rows, 1, tmp_path / name, progress=False)
    assert list(tmp_path.iterdir()) == []
