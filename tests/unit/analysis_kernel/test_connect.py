from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

import analysis_kernel
from analysis_kernel.connection import DatasetNotGranted, ProjectNotChosen, connect
from dataplane.manifest import SessionManifestInvalid


@pytest.fixture
def two_datasets(demo_dataset, tmp_path):
    """The demo dataset under two ids (two files), as two projects would have them."""
    other = tmp_path / "other_survey.duckdb"
    shutil.copy(demo_dataset, other)
    return {"demo_household": demo_dataset, "other_survey": other}


def test_connect_through_the_package_reads_the_session_manifest(monkeypatch, write_manifest, demo_dataset, demo_parquet):
    monkeypatch.setenv("ONSITE_SESSION", str(write_manifest({"p1": {"demo_household": demo_dataset}})))
    with analysis_kernel.connect() as db:
        assert db.project == "p1" and db.manifest.user == "r.tanaka"
        by_sql = db.sql("SELECT prefecture, count(*) AS n FROM demo_household GROUP BY 1 ORDER BY 1").pl()
        by_table = db.table("demo_household").aggregate("prefecture, count(*) AS n").order("prefecture").pl()
    expected = pl.read_parquet(demo_parquet).group_by("prefecture").agg(n=pl.len()).sort("prefecture")
    assert by_sql.equals(expected.cast(by_sql.schema))
    assert by_table.equals(by_sql)


def test_only_the_chosen_projects_datasets_are_attached(write_manifest, two_datasets):
    manifest = write_manifest({"p1": {"demo_household": two_datasets["demo_household"]},
                               "p2": {"other_survey": two_datasets["other_survey"]}})
    with connect("p1", manifest=manifest) as db:
        assert db.dataset_ids == ["demo_household"]
        with pytest.raises(duckdb.CatalogException):
            db.sql("SELECT count(*) FROM other_survey").fetchall()
        with pytest.raises(DatasetNotGranted, match="'other_survey' is not granted to project 'p1' \\(granted: demo_household\\)"):
            db.table("other_survey")
        with pytest.raises(DatasetNotGranted):
            db.variables("other_survey")
        paths = {row[0] for row in db.duckdb.execute("SELECT path FROM duckdb_databases() WHERE path IS NOT NULL").fetchall()}
        assert str(two_datasets["other_survey"]) not in paths
        assert str(two_datasets["demo_household"]) in paths
        # The project's own files cannot be reached around the grant either.
        with pytest.raises(duckdb.PermissionException):
            db.sql(f"ATTACH '{two_datasets['other_survey']}' AS sneak (READ_ONLY)")


def test_several_projects_need_a_choice(write_manifest, two_datasets):
    manifest = write_manifest({"p1": {"demo_household": two_datasets["demo_household"]},
                               "p2": {"other_survey": two_datasets["other_survey"]}})
    with pytest.raises(ProjectNotChosen, match="several projects.*'p1' \\(Project p1\\), 'p2' \\(Project p2\\)"):
        connect(manifest=manifest)
    with pytest.raises(ProjectNotChosen, match="'p3' is not active in this session"):
        connect("p3", manifest=manifest)
    with connect("p2", manifest=manifest) as db:
        assert db.dataset_ids == ["other_survey"]


def test_no_manifest_says_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv("ONSITE_SESSION", str(tmp_path / "nope.json"))
    with pytest.raises(SessionManifestInvalid, match=f"no session manifest at {tmp_path / 'nope.json'}"):
        analysis_kernel.connect()


def test_datasets_and_variables_describe_the_granted_data(write_manifest, demo_dataset, demo_metadata):
    with connect(manifest=write_manifest({"p1": {"demo_household": demo_dataset}})) as db:
        datasets = db.datasets()
        variables = db.variables("demo_household")
        html = db._repr_html_()
    assert datasets.to_dicts() == [{
        "dataset": "demo_household", "title_ja": demo_metadata.title.ja, "title_en": demo_metadata.title.en,
        "rows": 3000, "variables": len(demo_metadata.variables) - 2,
    }]
    assert "name" not in variables["name"].to_list() and "phone" not in variables["name"].to_list()
    age = variables.filter(pl.col("name") == "age").row(0, named=True)
    assert (age["label_ja"], age["role"], age["type"]) == ("年齢", "key", "SMALLINT")
    sex_codes = variables.filter(pl.col("name") == "sex")["codes"][0].to_list()
    assert sex_codes == [{"code": "1", "ja": "男", "en": "Male"}, {"code": "2", "ja": "女", "en": "Female"}]
    assert variables.filter(pl.col("role") == "weight")["name"].to_list() == ["weight"]
    assert "demo_household" in html and "3,000" in html and demo_metadata.title.ja in html


def test_queries_still_run_after_reading_metadata(write_manifest, demo_dataset):
    # The metadata is read through the same connection; it must leave no half-read result behind.
    with connect(manifest=write_manifest({"p1": {"renamed": demo_dataset}})) as db:
        assert db.datasets()["dataset"].to_list() == ["renamed"]
        db.variables("renamed")
        assert db.sql("SELECT count(*) AS n FROM renamed").pl()["n"].to_list() == [3000]


def test_html_escapes_titles(tmp_path, write_manifest, demo_dataset):
    from dataplane.manifest import ProjectGrant, SessionManifest

    manifest = SessionManifest(user="<b>x</b>", outbox=tmp_path,
                               projects={"p1": ProjectGrant(title="<script>alert(1)</script>", preset="default",
                                                            datasets={"demo_household": demo_dataset})})
    with connect(manifest=manifest) as db:
        html = db._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_importing_the_package_opens_nothing(tmp_path):
    # Names load on first use: a bare import pulls in no engine and writes nothing.
    code = ("import sys, analysis_kernel; "
            "print(sorted(m for m in ('duckdb', 'polars', 'analysis_kernel.connection') if m in sys.modules))")
    repo = Path(analysis_kernel.__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo)})
    assert out.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_summary_speaks_the_session_language(tmp_path, demo_dataset, language):
    from dataplane.manifest import ProjectGrant, SessionManifest

    manifest = SessionManifest(user="r.tanaka", outbox=tmp_path, language=language,
                               projects={"p1": ProjectGrant(title="Survey", preset="acro-default",
                                                            datasets={"demo_household": demo_dataset})})
    with connect(manifest=manifest) as db:
        page = db._repr_html_()
    heads = {"ja": ["プロジェクト <code>p1</code>", "利用者 <code>r.tanaka</code>", "ルールプリセット",
                    "<th>データセット</th>", "<th>行数</th>", "<th>変数の数</th>", "で集計します"],
             "en": ["project <code>p1</code>", "user <code>r.tanaka</code>", "rule preset", "<th>dataset</th>",
                    "<th>rows</th>", "<th>variables</th>", "lists labels, roles and codes"]}
    for shown in heads[language]:
        assert shown in page
    for hidden in heads["en" if language == "ja" else "ja"]:
        assert hidden not in page
