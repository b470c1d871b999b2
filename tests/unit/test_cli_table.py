"""The `onsite` command table (onsite/cli.py): every command it lists is built by its module, every admin
group a module defines is listed, and a command imports only what it needs — `onsite --help`,
`onsite admin person list` and `onsite audit verify` never load JupyterHub, the review web app or the disclosure checks (what made
every command take seconds to start)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from onsite import cli
from onsite.commands import admin

HEAVY = ("jupyterhub", "tornado.web", "polars", "pandas", "duckdb", "disclosure_review.sdc", "review_service", "matplotlib")
PATHS = [(c.name,) for c in cli.COMMANDS if not c.group] + [("admin", c.name) for c in cli.ADMIN_COMMANDS]


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_every_command_of_the_table_is_built_by_its_module(path: tuple[str, ...], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser([*path, "--help"]).parse_args([*path, "--help"])
    assert exit_.value.code == 0
    assert f"usage: onsite {' '.join(path)}" in capsys.readouterr().out


def test_every_admin_group_is_in_the_table() -> None:
    listed = {c.name for c in cli.ADMIN_COMMANDS if c.module == "onsite.commands.admin"}
    assert listed == {*admin.GROUPS, "project"} - {"audit"}


def test_an_unknown_command_is_refused_naming_the_choices(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["admin", "persons", "list"])
    assert exit_.value.code == 2
    assert "invalid choice: 'persons'" in capsys.readouterr().err


def loaded_by(argv: list[str], env: dict[str, str]) -> list[str]:
    """The heavy modules `onsite ARGV` imports, run in a fresh interpreter."""
    probe = (f"import json, sys\nfrom onsite.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
             f"print(json.dumps([m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m.startswith({HEAVY!r})]))")
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_help_and_a_listing_load_nothing_heavy(tmp_path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ONSITE_")}
    env["ONSITE_HOME"] = str(tmp_path / "var")  # not there yet: `onsite init` makes it
    assert loaded_by(["--help"], env) == []
    assert loaded_by(["admin", "--help"], env) == []
    subprocess.run([sys.executable, "-m", "onsite.cli", "init"], env=env, check=True, capture_output=True, timeout=120)
    assert loaded_by(["admin", "person", "list"], env) == []
    assert loaded_by(["audit", "verify"], env) == []  # reads the anchor file's setting, HubSettings, without JupyterHub
