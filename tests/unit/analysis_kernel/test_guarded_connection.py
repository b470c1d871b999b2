"""Attacks on the guarded connection: each is tried and must fail, while the views keep working."""
from __future__ import annotations

import duckdb
import pandas as pd
import polars as pl
import pytest

from dataplane.catalogue import DatasetNotFound, guarded_connection


@pytest.fixture
def con(demo_dataset):
    con = guarded_connection({"demo_household": demo_dataset}, memory_limit="1GB", threads=1)
    yield con
    con.close()


def test_views_answer_like_the_source(con, demo_parquet):
    source = pl.read_parquet(demo_parquet)
    counted = dict(con.execute("SELECT sex, count(*) FROM demo_household GROUP BY sex").fetchall())
    assert counted == dict(source.group_by("sex").len().iter_rows())
    assert con.execute("SELECT current_setting('enable_external_access'), current_setting('lock_configuration')").fetchone() == (False, True)


def test_copy_to_a_file_is_refused_and_writes_nothing(con, tmp_path):
    target = tmp_path / "leak.csv"
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"COPY (SELECT * FROM demo_household) TO '{target}' (HEADER)")
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"EXPORT DATABASE '{tmp_path / 'export'}'")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
    ],
)
def test_reading_other_files_is_refused(con, query):
    with pytest.raises(duckdb.PermissionException):
        con.execute(query)


def test_attaching_another_file_is_refused(con, tmp_path):
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as writer:
        writer.execute("CREATE TABLE secret AS SELECT 42 AS answer")
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"ATTACH '{other}' AS other (READ_ONLY)")
    attached = {row[0] for row in con.execute("SELECT database_name FROM duckdb_databases() WHERE NOT internal").fetchall()}
    assert attached == {"memory", "onsite_demo_household"}


@pytest.mark.parametrize("statement", ["INSTALL httpfs", "LOAD httpfs", "FORCE INSTALL httpfs"])
def test_extensions_cannot_be_installed_or_loaded(con, statement):
    with pytest.raises(duckdb.Error):
        con.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET lock_configuration",
        "SET memory_limit = '100GB'",
        "SET allowed_directories = ['/']",
        "SET profiling_output = '/tmp/onsite-leak.json'",
        "PRAGMA enable_profiling = 'json'",
        "SET temp_directory = '/tmp'",
    ],
)
def test_configuration_cannot_be_changed(con, statement):
    with pytest.raises(duckdb.InvalidInputException, match="configuration has been locked"):
        con.execute(statement)


def test_dataset_file_cannot_be_written(con):
    with pytest.raises(duckdb.Error, match="read-only"):
        con.execute("DELETE FROM onsite_demo_household.microdata")
    assert con.execute("SELECT count(*) FROM demo_household").fetchone()[0] == 3000


def test_python_objects_cannot_be_scanned(con):
    secrets = pd.DataFrame({"x": [1, 2, 3]})  # noqa: F841 (found by DuckDB's replacement scan otherwise)
    with pytest.raises(duckdb.Error):
        con.execute("SELECT * FROM secrets")


def test_missing_dataset_file_is_named(tmp_path):
    with pytest.raises(DatasetNotFound, match="dataset 'gone': no file at"):
        guarded_connection({"gone": tmp_path / "gone.duckdb"})


def test_non_dataset_file_is_refused(tmp_path):
    text = tmp_path / "not_a_db.duckdb"
    text.write_text("hello")
    with pytest.raises(DatasetNotFound, match="cannot open"):
        guarded_connection({"bad": text})
