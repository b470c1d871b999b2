"""The review service releasing tables perturbed by the cell key method (workflow.cellkey via recompute_table), over
a dataset ingested for real, so its record keys are the ones ingest drew."""
from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from workflow_factories import submit, table_output, vote

from dataplane import record_keys
from dataplane.catalogue import DatasetMetadata, guarded_connection, ingest, read_dataset_info
from disclosure_review.sdc.enums import Verdict
from disclosure_review.sdc.spec import TableSpec
from disclosure_review.workflow import messages, service
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from disclosure_review.workflow.policies import ReviewPolicy
from disclosure_review.workflow.recompute import recompute_table
from onsite_base.config import SettingInvalid
from onsite_base.db import transaction
from analysis_kernel.release import _print_verdicts as print_verdicts
from review_service.app import make_jinja, request_summary
from review_service.i18n import translator

META = {"id": "survey", "title": {"ja": "調査", "en": "Survey"}, "variables": [
    {"name": "person", "role": "direct_identifier", "label": {"ja": "番号", "en": "Person"}},
    {"name": "region", "role": "key", "label": {"ja": "地域", "en": "Region"}},
    {"name": "sex", "role": "key", "label": {"ja": "性別", "en": "Sex"}},
    {"name": "income", "role": "sensitive", "label": {"ja": "所得", "en": "Income"}}]}
PERTURBED = ReviewPolicy(cell_key_datasets=["survey"])


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ckm")
    rng = random.Random(5)
    with open(root / "survey.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["person", "region", "sex", "income"])
        for person in range(3000):
            out.writerow([person, rng.choice("ABCDEF"), rng.choice("MF"), rng.randint(100, 20000)])
    ingest(root / "survey.csv", DatasetMetadata.from_dict(META), "survey", root / "datasets", progress=False)
    return root


def datasets(home: Path) -> dict[str, str]:
    return {"survey": str(home / "datasets" / "survey.duckdb")}


def table(query: str = "SELECT * FROM survey", name: str = "t", **extra) -> TableSpec:
    return TableSpec.from_dict({"version": 1, "kind": "frequency", "name": name, "query": query, "rows": ["region"],
                                "columns": ["sex"]} | extra)


def cells(checked) -> dict[tuple, float]:
    return {tuple(row[:-1]): row[-1] for row in checked.recomputed["rows"]}


def test_counts_are_released_perturbed_within_the_table(home) -> None:
    computed = recompute_table(table(), None, datasets(home), "acro-default", ReviewPolicy())
    released = recompute_table(table(), None, datasets(home), "acro-default", PERTURBED)
    assert released.verified and released.verdict is Verdict.PASS
    plain, noisy = cells(computed), cells(released)
    assert plain.keys() == noisy.keys()
    deviations = [noisy[c] - plain[c] for c in plain]
    assert max(map(abs, deviations)) <= 5 and any(deviations)  # D = 5, and some cell moved
    assert all(isinstance(v, int) for v in noisy.values())
    facts = released.report["cell_key"]
    assert facts["information_loss"]["cells"] == len(plain) and facts["margins"] == 6 + 2 + 1
    assert facts["information_loss"]["changed"] == sum(1 for d in deviations if d)
    # margins are cells of their own: the grand total need not be the sum of the released cells
    finest = sum(v for c, v in noisy.items() if "Total" not in c)
    assert facts["grand_total_minus_cells"] == noisy[("Total", "Total")] - finest
    assert released.shadow == computed.shadow  # reviewers still see what was computed


def test_the_same_records_give_the_same_released_value_in_every_output(home) -> None:
    whole = cells(recompute_table(table(), None, datasets(home), "acro-default", PERTURBED))
    # region A alone, through another query shape and another table layout: the same record sets
    region_a = cells(recompute_table(
        table("SELECT sex, region FROM (SELECT * FROM survey WHERE region = 'A') AS a", name="a"),
        None, datasets(home), "acro-default", PERTURBED))
    for sex in ("M", "F"):
        assert region_a[("A", sex)] == whole[("A", sex)]
    assert region_a[("A", "Total")] == whole[("A", "Total")]
    by_sex = cells(recompute_table(
        TableSpec.from_dict({"version": 1, "kind": "frequency", "name": "s", "query": "SELECT * FROM survey",
                             "rows": ["sex"]}), None, datasets(home), "acro-default", PERTURBED))
    assert by_sex[("M",)] == whole[("Total", "M")] and by_sex[("Total",)] == whole[("Total", "Total")]


def test_sums_are_released_perturbed_by_their_largest_contributions(home) -> None:
    spec = table(kind="magnitude", value="income", statistic="sum")
    plain = cells(recompute_table(spec, None, datasets(home), "acro-default", ReviewPolicy()))
    noisy = cells(recompute_table(spec, None, datasets(home), "acro-default", PERTURBED))
    again = cells(recompute_table(spec, None, datasets(home), "acro-default", PERTURBED))
    assert noisy == again
    moved = [cell for cell, value in plain.items() if noisy[cell] != value]
    assert len(moved) > len(plain) / 2  # three contributions each drawing v = 0 is rare
    assert all(abs(noisy[cell] - value) <= 10 * 0.2 * 20000 * 3 for cell, value in plain.items())


@pytest.mark.parametrize("spec, code", [
    (table("SELECT region, sex FROM survey GROUP BY region, sex"), "cell_key_untraced"),
    (table(kind="magnitude", value="income", statistic="mean"), "cell_key_statistic"),
    (table(protection={"version": 1, "method": "round", "base": 5}), "cell_key_rounding"),
])
def test_a_table_that_cannot_be_perturbed_is_not_released(home, spec, code) -> None:
    checked = recompute_table(spec, None, datasets(home), "acro-default", PERTURBED)
    assert checked.verdict is Verdict.FAIL and not checked.verified and checked.recomputed is None
    assert checked.error_message["code"] == code
    assert messages.text(checked.error_message, "ja") != checked.error


def test_missing_or_foreign_record_keys_are_never_used(home, tmp_path) -> None:
    copy = tmp_path / "datasets"
    copy.mkdir()
    shutil.copy(home / "datasets" / "survey.duckdb", copy / "survey.duckdb")
    here = {"survey": str(copy / "survey.duckdb")}
    checked = recompute_table(table(), None, here, "acro-default", PERTURBED)
    assert checked.verdict is Verdict.FAIL and checked.error_message["code"] == "cell_key_keys"
    # keys of another ingest (another source digest) are refused too
    tmp = record_keys.write_keys(copy, "survey", 3000, "00" * 32)
    record_keys.commit_keys(tmp, copy, "survey")
    checked = recompute_table(table(), None, here, "acro-default", PERTURBED)
    assert checked.error_message["code"] == "cell_key_keys" and "another ingest" in checked.error


def test_other_datasets_are_not_perturbed(home) -> None:
    policy = ReviewPolicy(cell_key_datasets=["census"])
    assert cells(recompute_table(table(), None, datasets(home), "acro-default", policy)) == cells(
        recompute_table(table(), None, datasets(home), "acro-default", ReviewPolicy()))


def test_the_record_keys_are_apart_from_the_dataset_file_and_out_of_a_sessions_sql(home) -> None:
    key_file = record_keys.key_file(home / "datasets", "survey")
    assert key_file.parent == home / "run" / "record-keys"
    assert key_file.stat().st_mode & 0o777 == 0o600 and key_file.parent.stat().st_mode & 0o777 == 0o700
    con = duckdb.connect(str(home / "datasets" / "survey.duckdb"), read_only=True)
    try:  # nothing in the file a session's group reads carries a key
        names = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        columns = {row[0] for row in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = "
                                                 "'microdata'").fetchall()}
    finally:
        con.close()
    assert names == {"microdata", "onsite_metadata"} and columns == {"region", "sex", "income"}
    guarded = guarded_connection(datasets(home))
    try:  # the kernel's connection cannot read the key file
        with pytest.raises(duckdb.Error):
            guarded.execute(f"SELECT * FROM read_blob('{key_file}')").fetchall()
    finally:
        guarded.close()


def test_the_settings_refuse_a_perturbation_table_without_a_solution() -> None:
    with pytest.raises(SettingInvalid, match="cell_key_counts: V = 3 is too small"):
        ReviewPolicy(cell_key_counts={"D": 5, "V": 3, "js": 3})
    with pytest.raises(SettingInvalid, match="p_large"):
        ReviewPolicy(cell_key_magnitudes={"D": 10, "V": 3, "step": 2, "icat": [1, 10], "p_small": 0.01,
                                          "p_large": 0.2, "epsilon": [1.0, 0.5, 0.3]})


@pytest.mark.parametrize("lang, heading, loss", [("en", "Perturbed by the cell key method", "Mean absolute deviation"),
                                                 ("ja", "セルキー法による攪乱", "平均絶対偏差")])
def test_the_request_page_shows_the_noise_and_non_additivity(home, lang, heading, loss) -> None:
    released = recompute_table(table(), None, datasets(home), "acro-default", PERTURBED)
    facts = released.report["cell_key"]
    html = make_jinja().get_template("_cellkey.html").render(
        t=translator(lang), o=SimpleNamespace(id=7, report=released.report))
    assert heading in html and loss in html and 'id="cell-key-7"' in html
    assert f"{facts['information_loss']['changed']} / {facts['information_loss']['cells']}" in html
    assert f"{facts['grand_total_minus_cells']:g}" in html
    plain = recompute_table(table(), None, datasets(home), "acro-default", ReviewPolicy())
    assert "cell-key" not in make_jinja().get_template("_cellkey.html").render(
        t=translator(lang), o=SimpleNamespace(id=7, report=plain.report))


def test_the_notebook_is_told_the_information_loss_never_a_cell(home, capsys) -> None:
    released = recompute_table(table(), None, datasets(home), "acro-default", PERTURBED)
    output = SimpleNamespace(name="t", verdict=released.verdict, verified=True, error=None, error_message=None,
                             decision=None, report=released.report)
    summary = request_summary(SimpleNamespace(id=3, status=SimpleNamespace(value="submitted"), outputs=[output]))
    [item] = summary["outputs"]
    assert item["cell_key"] == released.report["cell_key"]["information_loss"]
    assert "rows" not in json.dumps(summary)  # figures over the cells only
    print_verdicts(summary, "ja")
    shown = capsys.readouterr().out
    loss = item["cell_key"]
    assert f"{loss['cells']} セル中 {loss['changed']} セルが変更" in shown and "平均絶対偏差" in shown


def test_the_release_package_holds_the_perturbed_table(world) -> None:
    survey = world.settings.datasets_dir / "survey.duckdb"
    info = read_dataset_info(survey)
    record_keys.commit_keys(record_keys.write_keys(world.settings.datasets_dir, "survey", info.rows,
                                                   info.source_sha256), world.settings.datasets_dir, "survey")
    policy = ReviewPolicy(cell_key_datasets=["survey"], required_approvals=1)
    output = table_output(query="SELECT * FROM survey WHERE region <> 'C'")  # regions A (30) and B (25): passes
    request_id = submit(world, output, policy_=policy)
    with transaction(world.factory) as s:
        [stored_output] = service.view(s, request_id, "bob").outputs
        stored, report = stored_output.recomputed, stored_output.report
    assert report["cell_key"]["information_loss"]["cells"] == len(stored["rows"])
    assert vote(world, request_id, "bob", Decision.APPROVE) is ReleaseStatus.RELEASED
    released = list(csv.reader((world.settings.egress_dir / str(request_id) / "by_region.csv").open()))
    assert released[1:] == [[str(v) for v in row] for row in stored["rows"]]
    plain = recompute_table(TableSpec.from_dict(output["spec"]), None, {"survey": str(survey)},
                            "acro-default", ReviewPolicy())
    changed = sum(a != b for a, b in zip(stored["rows"], plain.recomputed["rows"]))  # what left is the perturbed
    assert changed == report["cell_key"]["information_loss"]["changed"]


def test_empty_cells_stay_empty_and_do_not_dilute_the_information_loss(home) -> None:
    spec = table("SELECT * FROM survey WHERE region <> 'A' OR sex = 'M'", name="holes")
    released = recompute_table(spec, None, datasets(home), "acro-default", PERTURBED)
    noisy = cells(released)
    assert noisy[("A", "F")] == 0  # no records: nothing to perturb
    assert released.report["cell_key"]["information_loss"]["cells"] == len(noisy) - 1


def test_ingesting_the_same_source_again_keeps_the_keys_and_the_released_values(home, tmp_path) -> None:
    here = tmp_path / "datasets"
    metadata = DatasetMetadata.from_dict(META)
    ingest(home / "survey.csv", metadata, "survey", here, progress=False)
    first = record_keys.key_file(here, "survey").read_bytes()
    released = cells(recompute_table(table(), None, {"survey": str(here / "survey.duckdb")}, "acro-default",
                                     PERTURBED))
    ingest(home / "survey.csv", metadata, "survey", here, replace=True, progress=False)
    assert record_keys.key_file(here, "survey").read_bytes() == first
    assert cells(recompute_table(table(), None, {"survey": str(here / "survey.duckdb")}, "acro-default",
                                 PERTURBED)) == released
    changed = tmp_path / "changed.csv"
    changed.write_text((home / "survey.csv").read_text() + "3000,A,M,500\n")
    ingest(changed, metadata, "survey", here, replace=True, progress=False)
    assert record_keys.key_file(here, "survey").read_bytes()[64:68 + 64] != first[64:68 + 64]  # another source


def test_deleted_records_are_in_no_released_margin(home) -> None:
    # region F keeps only its few low incomes: its cells fail the threshold and their records are deleted
    query = "SELECT * FROM survey WHERE region <> 'F' OR income < 300"
    deleted = recompute_table(table(query, protection={"version": 1, "method": "delete_records"}), None,
                              datasets(home), "acro-default", PERTURBED)
    assert deleted.verified and deleted.report["protection"]["deleted_cells"]
    without_f = cells(recompute_table(table("SELECT * FROM survey WHERE region <> 'F'", name="nof"), None,
                                      datasets(home), "acro-default", PERTURBED))
    released = cells(deleted)
    # the same records, the same released values: the totals carry no key of a deleted record
    assert released[("Total", "Total")] == without_f[("Total", "Total")]
    assert released[("Total", "M")] == without_f[("Total", "M")]
    assert released.get(("F", "M")) is None and released[("A", "M")] == without_f[("A", "M")]
