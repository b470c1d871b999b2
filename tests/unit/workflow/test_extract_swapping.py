"""A reviewer's record swapping of an extract: applied to the recomputed records before they are checked and
written, with what it swapped in the reviewers' report only (never in the release package's manifest)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataplane.catalogue import DatasetMetadata, ingest
from disclosure_review.sdc.microdata import InvalidMicrodataInput, SwapOptions
from disclosure_review.sdc.microdata.extract import ExtractSpec
from disclosure_review.workflow.extracts import recompute_extract
from disclosure_review.workflow.package import _check_summary
from disclosure_review.workflow.policies import ReviewPolicy


def variable(name: str, role: str, kind: str = "VARCHAR") -> dict:
    return {"name": name, "label": {"ja": name, "en": name}, "role": role, "type": kind}


METADATA = {
    "id": "census",
    "title": {"ja": "国勢調査", "en": "Census"},
    "variables": [
        variable("hid", "household", "BIGINT"),
        variable("pref", "key"),
        variable("muni", "key"),
        variable("hsize", "key", "BIGINT"),
        variable("age_group", "key", "BIGINT"),
        variable("income", "sensitive", "DOUBLE"),
    ],
}
HOUSEHOLDS = 400


def census_frame(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 5, HOUSEHOLDS)
    pref = rng.integers(1, 4, HOUSEHOLDS)
    muni = [f"{p}-{m}" for p, m in zip(pref, rng.integers(1, 4, HOUSEHOLDS))]
    persons = int(size.sum())
    return pd.DataFrame({
        "hid": np.repeat(np.arange(1, HOUSEHOLDS + 1), size),
        "pref": np.repeat([f"P{p}" for p in pref], size),
        "muni": np.repeat(muni, size),
        "hsize": np.repeat(size, size),
        "age_group": rng.integers(1, 8, persons),
        "income": rng.integers(100, 1000, persons).astype(float),
    })


@pytest.fixture(scope="module")
def census(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("census")
    source = folder / "census.csv"
    census_frame().to_csv(source, index=False)
    info = ingest(source, DatasetMetadata.from_dict(METADATA), "census", folder, progress=False)
    return {"census": str(Path(info.path))}


SPEC = ExtractSpec(query="SELECT hid, pref, muni, hsize, age_group FROM census ORDER BY hid", name="households")
OPTIONS = SwapOptions(hierarchy=("pref", "muni"), seed=11, swap_rate=0.1, similar=(("hsize",),), k_anonymity=2)


def released(content: bytes) -> pd.DataFrame:
    return pd.DataFrame(list(csv.DictReader(io.StringIO(content.decode())))).astype({"hid": int})


def test_swapping_changes_the_released_geography_as_reported(census: dict[str, str]) -> None:
    plain = recompute_extract(SPEC, None, census, "sdc-handbook", ReviewPolicy())
    swapped = recompute_extract(SPEC, None, census, "sdc-handbook", ReviewPolicy(), swapping=OPTIONS)
    assert plain.verified and swapped.verified
    assert "swapping" not in plain.report
    report = swapped.report["swapping"]
    assert report["swapped_households"] >= report["target_swapped_households"] == 40
    before, after = released(plain.content), released(swapped.content)
    assert (before.drop(columns=["pref", "muni"]) == after.drop(columns=["pref", "muni"])).all().all()
    moved = set(after.loc[before["muni"] != after["muni"], "hid"])
    pairs = report["pairs"]
    assert moved == {p["household"] for p in pairs} | {p["partner"] for p in pairs}
    # Households per municipality, and per municipality and size, are what they were.
    by_area = [f.drop_duplicates("hid").groupby(["muni", "hsize"]).size() for f in (before, after)]
    assert by_area[0].equals(by_area[1])
    # The released package's manifest keeps the checks' results only: no pair reaches the requester.
    summary = repr(_check_summary(swapped.report))
    assert "partner" not in summary and "swapping" not in summary


def test_swapping_needs_a_declared_household(census: dict[str, str]) -> None:
    spec = ExtractSpec(query="SELECT pref, muni, age_group FROM census", name="people")
    checked = recompute_extract(spec, None, census, "sdc-handbook", ReviewPolicy(), swapping=OPTIONS)
    assert not checked.verified and "household id" in checked.error


def test_bad_swapping_options_fail_with_the_reason(census: dict[str, str]) -> None:
    options = SwapOptions(hierarchy=("prefecture",), seed=1)
    checked = recompute_extract(SPEC, None, census, "sdc-handbook", ReviewPolicy(), swapping=options)
    assert not checked.verified and "'prefecture' not in the data" in checked.error


def test_options_round_trip_and_refuse_unknown_keys() -> None:
    assert SwapOptions.from_dict(OPTIONS.to_dict()) == OPTIONS
    with pytest.raises(InvalidMicrodataInput, match="unknown record swapping option"):
        SwapOptions.from_dict({**OPTIONS.to_dict(), "rate": 0.1})
    with pytest.raises(InvalidMicrodataInput, match="needs \\['seed'\\]"):
        SwapOptions.from_dict({"hierarchy": ["pref"]})
