from __future__ import annotations

import re

import duckdb
import pytest
from workflow_factories import dataset_metadata, protect, submit, table_output, vote

from dataplane.catalogue import METADATA_TABLE, DatasetMetadata, write_metadata_table

from onsite_base.db import transaction
from disclosure_review.workflow import service
from disclosure_review.workflow.enums import Decision

from onsite.cli import main


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
def test_show_lists_protections_applied_by_reviewers(cli_env, capsys):
    request_id = submit(cli_env, table_output())
    assert main(["review", "show", str(request_id)]) == 0
    assert "protection" not in capsys.readouterr().out
    with transaction(cli_env.factory) as s:
        output_id = service.view(s, request_id, "bob").outputs[0].id
    protect(cli_env, request_id, output_id, "bob", method="suppress", secondary="optimal")
    vote(cli_env, request_id, "carol", Decision.APPROVE, comment="fine now")
    protect(cli_env, request_id, output_id, "carol",
            method="round", base="5", merge_variable="region", merge_levels="B\nC", merge_label="B+C")
    assert main(["review", "show", str(request_id)]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if "protection" in line]
    assert len(lines) == 2
    assert re.fullmatch(r"protection 1 by bob at \d{4}-\d\d-\d\d \d\d:\d\d JST: suppress \(secondary optimal\); "
                        r"verdict pass \(was fail\); approvals withdrawn: none", lines[0]), lines[0]
    assert lines[1].startswith("protection 2 (current) by carol at ")
    assert lines[1].endswith(": round (base 5); merged region: B, C -> 'B+C'; verdict pass (was pass); "
                             "approvals withdrawn: carol"), lines[1]


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


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_ingress_list_and_show(cli_env, capsys):
    import base64

    from disclosure_review.workflow import ingress

    content = b"code,label\n01,Hokkaido\n02,Aomori\n"
    with transaction(cli_env.factory) as s:
        request_id = ingress.submit(s, {"project": "p1", "name": "prefectures", "description": "JIS X 0401",
                                        "filename": "pref.csv", "content_b64": base64.b64encode(content).decode()},
                                    "alice").id
        ingress.vote(s, request_id, "bob", Decision.REJECT, comment="give the source")
    assert main(["review", "ingress", "list", "--status", "rejected", "--project", "p1"]) == 0
    assert re.search(rf"{request_id:>5}  REJECTED\s+p1\s+alice\s+2  reference.prefectures", capsys.readouterr().out)
    assert main(["review", "ingress", "list", "--status", "approved"]) == 0
    assert "reference.prefectures" not in capsys.readouterr().out
    assert main(["review", "ingress", "show", str(request_id)]) == 0
    shown = capsys.readouterr().out
    assert "columns: code VARCHAR, label VARCHAR" in shown and "01 | Hokkaido" in shown
    assert "vote by bob" in shown and "REJECT 'give the source'" in shown
    import hashlib

    assert hashlib.sha256(content).hexdigest() in shown
    assert main(["review", "ingress", "list", "--status", "maybe"]) != 0
    assert "unknown status" in capsys.readouterr().err


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_ingress_list_shows_withdrawn_and_retired(cli_env, capsys):
    import base64

    from disclosure_review.workflow import ingress

    def bring_in(name: str) -> int:
        return ingress.submit(s, {"project": "p1", "name": name, "description": "JIS X 0401", "filename": "pref.csv",
                                  "content_b64": base64.b64encode(b"code\n01\n").decode()}, "alice").id

    with transaction(cli_env.factory) as s:
        withdrawn, retired = bring_in("old_codes"), bring_in("prefectures")
        ingress.withdraw(s, withdrawn, "alice")
        for reviewer in ("bob", "carol"):
            ingress.vote(s, retired, reviewer, Decision.APPROVE)
        ingress.retire(s, retired, "bob", "JIS X 0401 was revised")
    assert main(["review", "ingress", "list", "--status", "withdrawn", "--status", "retired"]) == 0
    listed = capsys.readouterr().out
    assert re.search(rf"{retired:>5}  RETIRED\s+p1\s+alice\s+1  reference.prefectures", listed)
    assert re.search(rf"{withdrawn:>5}  WITHDRAWN\s+p1\s+alice\s+1  reference.old_codes", listed)
    assert main(["review", "ingress", "show", str(retired)]) == 0
    assert re.search(r"retired \d{4}-\d\d-\d\d \d\d:\d\d JST by bob: JIS X 0401 was revised", capsys.readouterr().out)


def label_regions(world) -> None:
    """The survey's metadata gives region a code list (as ingest writes it from a metadata file)."""
    meta = dataset_metadata("survey")
    meta["variables"][1]["codes"] = {"A": {"ja": "北海道", "en": "Hokkaido"}, "B": {"ja": "東北", "en": "Tohoku"},
                                     "C": {"ja": "沖縄", "en": "Okinawa"}}
    with duckdb.connect(str(world.settings.datasets_dir / "survey.duckdb")) as con:
        con.execute(f"DROP TABLE {METADATA_TABLE}")
        write_metadata_table(con, DatasetMetadata.from_dict(meta), rows=57, source_sha256="0" * 64)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("lang", "flagged", "message"), [
    ("C.UTF-8", "cells: C Okinawa", "fewer than 10 contributing"),
    ("ja_JP.UTF-8", "cells: C 沖縄", "寄与する"),
])
def test_show_names_flagged_cells_by_code_and_label_in_the_administrators_language(cli_env, capsys, monkeypatch,
                                                                                  lang, flagged, message):
    label_regions(cli_env)
    request_id = submit(cli_env, table_output())
    monkeypatch.setenv("LANG", lang)
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    assert main(["review", "show", str(request_id)]) == 0
    shown = capsys.readouterr().out
    threshold = next(line for line in shown.splitlines() if line.strip().startswith("threshold (fail)"))
    assert message in threshold, shown
    assert f"        {flagged}\n" in shown, shown  # the one small region, never the bare code
