"""`onsite admin dataset risk ID` through the real CLI on an ingested demo dataset, against pandas."""
from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

from onsite.demo_data import METADATA_PATH
from onsite.cli import main

KEYS = ["prefecture", "sex", "age", "marital_status"]


@pytest.fixture
def demo(settings, monkeypatch, capsys):
    monkeypatch.setenv("ONSITE_HOME", str(settings.home))
    monkeypatch.setenv("ONSITE_DB_URL", settings.db_url)
    out = settings.home / "demo" / "demo.parquet"
    assert main(["demo-data", "--rows", "3000", "--seed", "11", "--out", str(out), "--quiet"]) == 0
    assert main(["admin", "dataset", "ingest", str(out), "--metadata", str(METADATA_PATH), "--id", "demo",
                 "--quiet"]) == 0
    capsys.readouterr()
    con = duckdb.connect(str(settings.datasets_dir / "demo.duckdb"), read_only=True)
    frame = con.sql("SELECT * FROM microdata").df()
    con.close()
    return frame


def pandas_figures(frame, keys: list[str], k: int) -> dict[str, float]:
    """f_k, sample uniques and 1/f_k-free weighted risk by groupby (no key value is missing in the demo)."""
    assert not frame[keys].isna().any().any()
    grouped = frame.groupby(keys, observed=True)
    fk = grouped["weight"].transform("size").to_numpy(float)
    Fk = grouped["weight"].transform("sum").to_numpy()
    pk = fk / Fk
    ratio = pk / (1 - pk)
    risk = np.where(fk == 1, ratio * np.log(1 / pk), np.where(fk == 2, ratio - ratio**2 * np.log(1 / pk),
                                                              pk / (fk - (1 - pk))))
    sizes = grouped.size()
    return {"uniques": int((fk == 1).sum()), "below_k": int((fk < k).sum()), "combinations_below_k": int((sizes < k).sum()),
            "er": float(risk.sum()), "max_risk": float(risk.max())}


def test_risk_json_matches_pandas(demo, capsys, tmp_path):
    plot = tmp_path / "risk.png"
    assert main(["admin", "dataset", "risk", "demo", "--keys", ",".join(KEYS), "--k", "5", "--json", "--quiet",
                 "--plot", str(plot), "--lang", "ja"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = pandas_figures(demo, KEYS, 5)
    assert report["keys"] == KEYS and report["records"] == len(demo) and report["weight"] == "weight"
    assert report["k_anonymity"]["2"] == expected["uniques"]
    assert report["k_anonymity"]["5"] == expected["below_k"]
    assert report["combinations_below_k"] == expected["combinations_below_k"]
    assert report["expected_reidentifications"] == pytest.approx(expected["er"], rel=1e-9)
    assert report["max_individual_risk"] == pytest.approx(expected["max_risk"], rel=1e-9)
    assert report["household"] == "household_id" and report["l_diversity"]["annual_income"]["min_distinct"] >= 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def brute_force_fk(frame, keys: list[str]) -> np.ndarray:
    """f_k by definition: records agreeing on every key where both have a value (a missing value matches any)."""
    codes = np.column_stack([pd.factorize(frame[k], use_na_sentinel=True)[0] for k in keys])
    assert (codes >= 0).any(axis=1).all()  # no record with every key missing (sdcMicro's special case)
    return np.array([((codes == row) | (codes < 0) | (row < 0)).all(axis=1).sum() for row in codes])


def test_risk_text_uses_the_declared_key_variables_with_missing_values(demo, capsys):
    assert main(["admin", "dataset", "risk", "demo", "--quiet"]) == 0
    text = capsys.readouterr().out
    declared = ["prefecture", "municipality", "urban_rural", "sex", "age", "marital_status", "nationality",
                "household_size", "occupation", "industry", "employment_status"]
    assert demo[declared].isna().any().any()  # occupation and industry have missing values
    fk = brute_force_fk(demo, declared)
    assert f"key variables {', '.join(declared)}, weight weight, household household_id" in text
    assert f"records in combinations of fewer than 2: {int((fk < 2).sum()):,} " in text
    assert f"records in combinations of fewer than 3: {int((fk < 3).sum()):,} " in text


def test_bad_input_is_a_clear_error(demo, capsys):
    assert main(["admin", "dataset", "risk", "demo", "--keys", "prefecture,shoe_size", "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "shoe_size" in err and "not in the data" in err
    assert main(["admin", "dataset", "risk", "nosuch", "--quiet"]) != 0
    assert "no dataset 'nosuch'" in capsys.readouterr().err
    assert main(["admin", "dataset", "risk", "demo", "--k", "0", "--quiet"]) != 0
    assert "--k must be at least 1" in capsys.readouterr().err
