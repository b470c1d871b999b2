"""The benchmark harness, end to end on a tiny case (the real benchmarks stay out of the test suite)."""
from __future__ import annotations

import time


from bench import Case, Context
from bench.cli import main
from bench.harness import format_table, time_case


def test_groupby_benchmark_runs_end_to_end(tmp_path, capsys):
    assert main(["groupby", "--rows", "2000", "--repeat", "1", "--data-dir", str(tmp_path), "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:6]] == ["benchmark", "peer", "peer median", "ours median", "ratio"]
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.split("|")[1:-1]] for line in lines[2:])}
    assert set(rows) == {"groupby_4keys", "connect_groupby_4keys"}
    assert float(rows["groupby_4keys"][4]) > 0
    # The demo data was generated and ingested once, into the data directory asked for.
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".duckdb", ".parquet"]


def test_medians_and_ratio_are_measured():
    case = Case("sleepy", lambda: time.sleep(0.02), "half as sleepy", lambda: time.sleep(0.01), repeat=3)
    result = time_case(case)
    assert 0.02 <= result.ours_median < 0.05 and 0.01 <= result.peer_median < 0.04
    assert 1.2 < result.ratio < 2.5
    assert "| sleepy " in format_table([result])


def test_unknown_benchmark_is_refused(capsys):
    assert main(["nonexistent", "--rows", "10"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark(s) nonexistent; available: " in err
    assert "groupby" in err.split("available: ")[1]


def test_context_writes_a_manifest_connect_can_use(tmp_path):
    from analysis_kernel import connect

    ctx = Context(rows=500, data_dir=tmp_path, progress=False)
    try:
        manifest = ctx.session_manifest({"demo_household": ctx.demo_dataset()})
        with connect(manifest=manifest) as db:
            assert db.sql("SELECT count(*) FROM demo_household").fetchall() == [(500,)]
    finally:
        ctx.close()
    assert not manifest.exists()
