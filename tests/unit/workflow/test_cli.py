from __future__ import annotations

import pytest
from workflow_factories import submit, table_output

import onsite.cli
from onsite.cli import main


@pytest.fixture(autouse=True)
def only_review_commands(monkeypatch):
    # Only this area's commands: the others are built by other people at the same time.
    monkeypatch.setattr(onsite.cli, "COMMAND_MODULES", [("disclosure_review.cli", None)])


@pytest.fixture
def cli_env(world, monkeypatch):
    monkeypatch.setenv("ONSITE_HOME", str(world.settings.home))
    monkeypatch.setenv("ONSITE_DB_URL", world.settings.db_url)
    return world


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_list_and_show(cli_env, capsys):
    request_id = submit(cli_env, table_output())
    assert main(["review", "list", "--status", "submitted"]) == 0
    listing = capsys.readouterr().out
    assert f"{request_id:>5}  SUBMITTED" in listing and "F " in listing
    assert main(["review", "show", str(request_id)]) == 0
    shown = capsys.readouterr().out
    assert "verdict fail, verified, undecided" in shown and "(fail)" in shown


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_bad_input_exits_2_and_says_why(cli_env, capsys):
    request_id = submit(cli_env, table_output())
    assert main(["review", "list", "--status", "DONE"]) == 2
    assert "unknown status" in capsys.readouterr().err
    assert main(["review", "release", str(request_id)]) == 2  # not approved: nothing to package
    assert "cannot go from SUBMITTED to RELEASED" in capsys.readouterr().err
    assert main(["review", "show", "999"]) == 2
    assert "no release request 999" in capsys.readouterr().err


def test_states_check(capsys):
    assert main(["review", "states", "--check"]) == 0
    assert "is current" in capsys.readouterr().out
