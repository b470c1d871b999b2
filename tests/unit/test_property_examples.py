"""The share of property-test examples a run tries (tests/property_examples.py): a wrong value is refused naming the
variable, not read as some share."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def share_read(value: str) -> subprocess.CompletedProcess:
    code = "import property_examples as p; print(p.examples(100))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=TESTS, timeout=60,
                          env={**os.environ, "ONSITE_PROPERTY_EXAMPLES": value})


@pytest.mark.parametrize("value,examples", [("1", "100"), ("0.5", "50"), ("0.01", "5")])
def test_a_share_of_the_examples_never_fewer_than_the_least(value, examples):
    result = share_read(value)
    assert result.returncode == 0 and result.stdout.strip() == examples, result.stderr


@pytest.mark.parametrize("value", ["0", "2", "half", ""])
def test_a_wrong_share_is_refused_naming_the_variable(value):
    result = share_read(value)
    assert result.returncode != 0 and "ONSITE_PROPERTY_EXAMPLES must be a number above 0 and at most 1" in result.stderr
