from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from dataplane.catalogue import (
    DatasetExists,
    DatasetIdInvalid,
    DatasetMetadata,
    MetadataInvalid,
    SourceInvalid,
    VariableRole,
    ingest,
    list_datasets,
    load_metadata,
    read_dataset_info,
    read_metadata,
)
from onsite.demo_data import METADATA_PATH

DIRECT_IDENTIFIERS = {"name", "phone"}


def raw_metadata() -> dict:
    return yaml.safe_load(METADATA_PATH.read_text(encoding="utf-8"))


def metadata_file(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "meta.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def assert_nothing_left(datasets_dir: Path, keep: set[str] = frozenset()) -> None:
    left = {p.name for p in datasets_dir.iterdir()} if datasets_dir.exists() else set()
    assert left == set(keep)


# ---------------------------------------------------------------- happy path


def test_ingest_drops_direct_identifiers_and_enforces_types(tmp_path, demo_parquet, demo_metadata):
    info = ingest(demo_parquet, demo_metadata, "lfs_demo", tmp_path / "datasets", progress=False)
    source = pl.read_parquet(demo_parquet)

    assert info.path == tmp_path / "datasets" / "lfs_demo.duckdb"
    assert_nothing_left(tmp_path / "datasets", {"lfs_demo.duckdb"})
    assert stat.S_IMODE(os.stat(info.path).st_mode) == 0o640
    assert info.rows == source.height
    assert info.source_sha256 == hashlib.sha256(demo_parquet.read_bytes()).hexdigest()

    with duckdb.connect(str(info.path), read_only=True) as con:
        described = {name: type_ for name, type_, *_ in con.execute("DESCRIBE microdata").fetchall()}
        stored = con.sql("SELECT * FROM microdata ORDER BY person_id").pl()
    expected_columns = [c for c in source.columns if c not in DIRECT_IDENTIFIERS]
    assert list(described) == expected_columns
    declared = {v.name: v.type for v in demo_metadata.variables if v.type}
    assert {name: described[name] for name in declared} == declared
    # The values themselves survive the trip unchanged.
    assert stored.equals(source.select(expected_columns).cast(stored.schema))


def test_metadata_round_trip(tmp_path, demo_parquet, demo_metadata):
    info = ingest(demo_parquet, demo_metadata, "lfs_demo", tmp_path, progress=False)
    stored = read_metadata(info.path)
    kept = [v for v in demo_metadata.variables if v.role is not VariableRole.DIRECT_IDENTIFIER]
    assert stored.id == "lfs_demo"
    assert stored.title == demo_metadata.title and stored.unit == demo_metadata.unit
    assert stored.dropped_identifiers == ("name", "phone")
    assert [dataclasses.replace(v, type=None) for v in stored.variables] == [
        dataclasses.replace(v, type=None) for v in kept
    ]
    assert stored.variable("prefecture").codes["13"].ja == "東京都"
    assert stored.key_variables == [v.name for v in kept if v.role is VariableRole.KEY]
    assert stored.weight == "weight"
    assert DatasetMetadata.from_dict(stored.to_dict()) == stored
    assert read_dataset_info(info.path) == info
    assert [i.id for i in list_datasets(tmp_path)] == ["lfs_demo"]


def test_csv_gives_the_same_dataset_as_parquet(tmp_path, demo_parquet, demo_metadata, demo_dataset):
    # Text codes keep their leading zeros ('01'), empty fields become NULL, numbers their declared types.
    csv = tmp_path / "demo.csv"
    pl.read_parquet(demo_parquet).write_csv(csv)
    info = ingest(csv, demo_metadata, "from_csv", tmp_path / "datasets", progress=False)
    query = "SELECT * FROM microdata ORDER BY person_id"
    with duckdb.connect(str(info.path), read_only=True) as from_csv, \
            duckdb.connect(str(demo_dataset), read_only=True) as from_parquet:
        assert from_csv.sql(query).fetchall() == from_parquet.sql(query).fetchall()
        assert from_csv.sql("DESCRIBE microdata").fetchall() == from_parquet.sql("DESCRIBE microdata").fetchall()
    assert read_metadata(info.path).variable("prefecture").type == "VARCHAR"


def test_replace_overwrites_only_when_asked(tmp_path, demo_parquet, demo_metadata):
    datasets = tmp_path / "datasets"
    first = ingest(demo_parquet, demo_metadata, "lfs_demo", datasets, progress=False)
    with pytest.raises(DatasetExists, match="already exists.*--replace"):
        ingest(demo_parquet, demo_metadata, "lfs_demo", datasets, progress=False)
    smaller = tmp_path / "smaller.parquet"
    pl.read_parquet(demo_parquet).head(100).write_parquet(smaller)
    second = ingest(smaller, demo_metadata, "lfs_demo", datasets, replace=True, progress=False)
    assert (first.rows, second.rows) == (3000, 100)
    assert read_dataset_info(datasets / "lfs_demo.duckdb").rows == 100
    assert_nothing_left(datasets, {"lfs_demo.duckdb"})


def test_failing_before_commit_keeps_nothing_and_leaves_the_old_file(tmp_path, demo_parquet, demo_metadata):
    datasets = tmp_path / "datasets"
    ingest(demo_parquet, demo_metadata, "lfs_demo", datasets, progress=False)
    before = (datasets / "lfs_demo.duckdb").read_bytes()

    def refuse(info):
        raise RuntimeError("registration failed")

    with pytest.raises(RuntimeError):
        ingest(demo_parquet, demo_metadata, "lfs_demo", datasets, replace=True, progress=False, before_commit=refuse)
    with pytest.raises(RuntimeError):
        ingest(demo_parquet, demo_metadata, "other", datasets, progress=False, before_commit=refuse)
    assert_nothing_left(datasets, {"lfs_demo.duckdb"})
    assert (datasets / "lfs_demo.duckdb").read_bytes() == before


# ---------------------------------------------------------------- bad input: refused, nothing left


def test_unreadable_sources_are_refused(tmp_path, demo_metadata):
    datasets = tmp_path / "datasets"
    garbage = tmp_path / "broken.parquet"
    garbage.write_bytes(b"this is not parquet" * 10)
    text = tmp_path / "data.txt"
    text.write_text("a,b\n1,2\n")
    cases = [
        (tmp_path / "missing.parquet", "not found or not readable"),
        (garbage, "cannot read it as parquet"),
        (text, "not a CSV or Parquet file"),
    ]
    for source, message in cases:
        with pytest.raises(SourceInvalid, match=message):
            ingest(source, demo_metadata, "lfs_demo", datasets, progress=False)
    assert_nothing_left(datasets)


def test_unknown_column_in_metadata_is_refused(tmp_path, demo_parquet):
    data = raw_metadata()
    data["variables"].append({"name": "blood_type", "label": {"ja": "血液型", "en": "Blood type"}, "role": "key"})
    with pytest.raises(SourceInvalid, match="describes column\\(s\\) not in the file: blood_type"):
        ingest(demo_parquet, load_metadata(metadata_file(tmp_path, data)), "lfs_demo", tmp_path / "d", progress=False)
    assert_nothing_left(tmp_path / "d")


def test_undescribed_source_column_is_refused(tmp_path, demo_parquet):
    data = raw_metadata()
    data["variables"] = [v for v in data["variables"] if v["name"] != "phone"]
    with pytest.raises(SourceInvalid, match="not described in the metadata: phone"):
        ingest(demo_parquet, load_metadata(metadata_file(tmp_path, data)), "lfs_demo", tmp_path / "d", progress=False)
    assert_nothing_left(tmp_path / "d")


def test_type_mismatch_names_column_type_and_value(tmp_path, demo_parquet, demo_metadata):
    frame = pl.read_parquet(demo_parquet).with_columns(pl.col("age").cast(pl.String))
    frame = frame.with_columns(pl.when(pl.col("person_id") == 1234).then(pl.lit("unknown")).otherwise("age").alias("age"))
    csv = tmp_path / "bad.csv"
    frame.write_csv(csv)
    with pytest.raises(SourceInvalid, match="column age does not match its declared type SMALLINT: for example the value 'unknown'"):
        ingest(csv, demo_metadata, "lfs_demo", tmp_path / "d", progress=False)
    assert_nothing_left(tmp_path / "d")


def test_value_out_of_range_for_declared_type_is_refused(tmp_path, demo_parquet):
    data = raw_metadata()
    next(v for v in data["variables"] if v["name"] == "annual_income")["type"] = "TINYINT"
    with pytest.raises(SourceInvalid, match="column annual_income does not match its declared type TINYINT"):
        ingest(demo_parquet, load_metadata(metadata_file(tmp_path, data)), "lfs_demo", tmp_path / "d", progress=False)
    assert_nothing_left(tmp_path / "d")


@pytest.mark.parametrize("dataset_id", ["Bad", "1lfs", "lfs-2020", "a" * 64, "x; DROP TABLE y", ""])
def test_invalid_dataset_id_is_refused(tmp_path, demo_parquet, demo_metadata, dataset_id):
    with pytest.raises(DatasetIdInvalid, match="is invalid"):
        ingest(demo_parquet, demo_metadata, dataset_id, tmp_path / "d", progress=False)
    assert_nothing_left(tmp_path / "d")


def test_empty_source_is_refused(tmp_path, demo_parquet, demo_metadata):
    empty = tmp_path / "empty.parquet"
    pl.read_parquet(demo_parquet).head(0).write_parquet(empty)
    with pytest.raises(SourceInvalid, match="no rows"):
        ingest(empty, demo_metadata, "lfs_demo", tmp_path / "d", progress=False)
    assert_nothing_left(tmp_path / "d")


# ---------------------------------------------------------------- metadata validation


def with_roles(**roles: str) -> dict:
    data = raw_metadata()
    for variable in data["variables"]:
        if variable["name"] in roles:
            variable["role"] = roles[variable["name"]]
    return data


def edited(change) -> dict:
    data = raw_metadata()
    change(data)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (edited(lambda d: [v.update(role="other") for v in d["variables"] if v["role"] == "key"]), "no key variable declared"),
        (with_roles(hours_worked="weight"), "more than one weight \\(hours_worked, weight\\)"),
        (with_roles(age="quasi"), "role 'quasi' is not one of direct_identifier, key"),
        (edited(lambda d: d["variables"][0].update(type="INTEGER); DROP TABLE x")), "type .* is not supported"),
        (edited(lambda d: d["variables"].append(dict(d["variables"][5], name="Prefecture"))), "declared twice"),
        (edited(lambda d: d["variables"][0].update(label={"ja": "世帯番号"})), "exactly the keys ja and en"),
        (edited(lambda d: d["variables"][0].update(name="household id")), "name 'household id' is invalid"),
        (edited(lambda d: d.pop("title")), "'title' is missing"),
        (edited(lambda d: d.update(id="Bad Id")), "id: dataset id 'Bad Id' is invalid"),
        (edited(lambda d: d.update(variabels=[])), "unknown top-level field"),
        (edited(lambda d: d["variables"][7].update(codes=["1", "2"])), "codes must be a mapping"),
    ],
)
def test_invalid_metadata_is_refused_with_the_field_named(tmp_path, data, message):
    with pytest.raises(MetadataInvalid, match=message):
        load_metadata(metadata_file(tmp_path, data))


def test_unreadable_metadata_file_is_refused(tmp_path):
    with pytest.raises(MetadataInvalid, match="cannot read metadata file"):
        load_metadata(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n")
    with pytest.raises(MetadataInvalid, match="not valid YAML"):
        load_metadata(broken)


def test_ingest_with_progress_bars_gives_the_same_dataset(tmp_path, demo_parquet, demo_metadata, capsys):
    quiet = ingest(demo_parquet, demo_metadata, "quiet", tmp_path / "a", progress=False)
    shown = ingest(demo_parquet, demo_metadata, "shown", tmp_path / "b", progress=True)
    assert "copying" in capsys.readouterr().err
    with duckdb.connect(str(quiet.path), read_only=True) as a, duckdb.connect(str(shown.path), read_only=True) as b:
        query = "SELECT * FROM microdata ORDER BY person_id"
        assert a.sql(query).fetchall() == b.sql(query).fetchall()
