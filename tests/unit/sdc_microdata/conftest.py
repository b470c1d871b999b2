from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

HERE = Path(__file__).parent
DATA = HERE.parents[1] / "data" / "sdcmicro"
sys.path.insert(0, str(HERE))  # r_rng, reference helpers


def read_sdcmicro(name: str) -> pl.DataFrame:
    """A CSV of tests/data/sdcmicro (empty field = NA)."""
    return pl.read_csv(DATA / f"{name}.csv", null_values=["", "NA"], infer_schema_length=None)


@pytest.fixture(scope="session")
def testdata2() -> pl.DataFrame:
    return read_sdcmicro("testdata2")


@pytest.fixture(scope="session")
def testdata() -> pl.DataFrame:
    return read_sdcmicro("testdata")


@pytest.fixture(scope="session")
def free1() -> pl.DataFrame:
    return read_sdcmicro("free1")


@pytest.fixture(scope="session")
def francdat() -> pl.DataFrame:
    return read_sdcmicro("francdat")
