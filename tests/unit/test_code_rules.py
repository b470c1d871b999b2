"""The code's own rules, checked in every run (`make check` and `make test`): pyflakes through
ruff ([tool.ruff.lint] of pyproject.toml) and the import contracts ([tool.importlinter]: the
layers and trust boundaries of docs/explanation/architecture.md)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(sys.executable).parent  # ruff and lint-imports come with the test extras, beside python


@pytest.mark.parametrize("command", [("ruff", "check", "."), ("lint-imports",)], ids=["ruff", "lint-imports"])
def test_the_code_keeps_its_rules(command: tuple[str, ...]) -> None:
    result = subprocess.run([str(TOOLS / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} found:\n{result.stdout}{result.stderr}"
