"""ACRO's own example notebook (AI-SDC/ACRO notebooks/acro_demo_2026.ipynb, on the UCI nursery data) run whole,
cell by cell, in a live kernel of a researcher's server behind the real Hub, with two changes: the import line, and
the data read through `db` from the granted dataset `nursery` instead of from ../data/nursery.arff (the notebook's
manipulation of the data — "class" renamed "recommendation", children "more" drawn from 4-9 — done once at ingest,
with a fixed seed). ACRO itself (PyPI acro 1.0.2) runs the same calls on the same data in the test process.

Compared: each output's verdict, ACRO's against Onsite's (in the notebook, and the review service's after
`finalise`), equal except where docs/acro-differences.md and docs/how-to/acro.md say (a suppressed table: ACRO
`review`, Onsite the verdict of the table after the deletion); the values the service would release (its own
recomputation) equal to the tables ACRO returned; nothing written by `finalise`.
"""
from __future__ import annotations

import gzip
import io
import json
import logging
import math
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from access_control import policy
from access_control.models import Project
from dataplane import catalogue
from disclosure_review.workflow.store import ReleaseOutput
from functional.hubtools import ROOT, HubUser, RunningHub
from functional.seeding import seed_demo
from onsite.demo import DEMO_PROJECT
from onsite_base.db import make_engine, session_factory, transaction

acro_module = pytest.importorskip("acro")
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

NURSERY = ROOT / "tests" / "data" / "nursery" / "nursery.csv.gz"
SEED = 2026
CHILDREN_CAP = "more"

# The notebook's code cells, in order; the two changed lines are marked. Text cells are left out.
CELLS = [
    "import os\n\nimport numpy as np\nimport pandas as pd\n\n"
    "from analysis_kernel.acro import ACRO  # changed: was `from acro import ACRO`",
    'acro = ACRO(config="default", suppress=False)',
    'df = acro.db.sql("SELECT * FROM nursery").df()  # changed: was loadarff("../data/nursery.arff") and pandas',
    "df.head()",
    "acro.crosstab(index=df.recommendation, columns=df.parents)",
    "acro.enable_suppression()\nacro.crosstab(index=df.recommendation, columns=df.parents)",
    "acro.suppress = True\nacro.crosstab(\n    index=[df.parents, df.finance],\n    columns=df.recommendation,\n"
    '    values=df.children,\n    aggfunc="mean",\n    margins=True,\n)',
    "help(acro.logit)",
    "_ = acro.print_outputs()",
    'acro.remove_output("output_0")',
    'acro.rename_output("output_1", " crosstab_recommendation_vs_parents")\n'
    'acro.rename_output("output_2", "mean_children_by_parents_finance_recommendation")',
    'acro.add_comments(\n    "mean_children_by_parents_finance_recommendation",\n'
    '    "too few cases of recommend to report",\n)',
    'acro.custom_output("acro_demo_2026.py", "This is the code that produced this session")',
    'output = acro.finalise("my_acro_outputs_v1")',
]
PROBE_AFTER = 7  # before remove_output: every record, as ACRO's would be
PROBE = ('import json\nprint("RECORDS " + json.dumps({k: {"status": r.status, "verified": r.verified, '
         '"table": shown(r.output[0])} for k, r in acro.results.results.items()}))')
SHOWN = ("def shown(table):\n"
         "    table = table.dropna(axis=1, how='all')  # pandas drops a column whose cells are all suppressed\n"
         "    return {'index': [str(i) for i in table.index], 'columns': [str(c) for c in table.columns],\n"
         "            'values': table.to_numpy(dtype=float).tolist()}")
ANSWER = ('print("ANSWER " + json.dumps({"answer": output.answer, "custom": acro.results.get_keys(), '
          '"written": os.path.exists("my_acro_outputs_v1")}))')


def nursery_frame() -> pd.DataFrame:
    """The notebook's data after its manipulation cells, the random children drawn with a fixed seed."""
    df = pd.read_csv(io.BytesIO(gzip.decompress(NURSERY.read_bytes())), dtype=str)
    df = df.rename(columns={"class": "recommendation"})
    rng = np.random.default_rng(SEED)
    more = df.children == CHILDREN_CAP
    children = pd.to_numeric(df.children.where(~more, "4"))
    df["children"] = np.where(more, rng.integers(4, 10, len(df)), children).astype("int64")
    return df


def ingest_nursery(settings, tmp_path) -> None:
    source = tmp_path / "nursery.csv"
    nursery_frame().to_csv(source, index=False)
    metadata = catalogue.DatasetMetadata.from_dict({
        "id": "nursery", "title": {"ja": "保育所入所申込（UCI nursery）", "en": "Nursery applications (UCI)"},
        "variables": [{"name": n, "label": {"ja": n, "en": n},
                       "role": "sensitive" if n == "children" else "key",
                       "type": "BIGINT" if n == "children" else "VARCHAR"}
                      for n in ("parents", "has_nurs", "form", "children", "housing", "finance", "social", "health",
                                "recommendation")]})
    engine = make_engine(settings.db_url)
    factory = session_factory(engine)
    target = settings.datasets_dir / "nursery.duckdb"

    def register(info) -> None:
        with transaction(factory) as session:
            policy.register_dataset(session, dataset_id="nursery", title_ja=info.metadata.title.ja,
                                    title_en=info.metadata.title.en, path=str(target), rows=info.rows,
                                    source_sha256=info.source_sha256, actor="test")

    try:
        catalogue.ingest(source, metadata, "nursery", settings.datasets_dir, progress=False, before_commit=register)
        with transaction(factory) as session:
            policy.add_grant(session, project_id=DEMO_PROJECT, dataset_id="nursery", valid_from=date.today(),
                             valid_until=session.get(Project, DEMO_PROJECT).end_date, actor="test",
                             today=date.today())
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    home = tmp_path_factory.mktemp("onsite-acro-notebook")
    settings, logins = seed_demo(home, rows=500)
    ingest_nursery(settings, tmp_path_factory.mktemp("nursery-source"))
    with RunningHub(home) as hub:
        yield hub, settings, logins


def acros_run(settings) -> tuple[dict[str, str], dict[str, pd.DataFrame]]:
    """ACRO 1.0.2 on the same data and calls: each output's status and returned table."""
    con = duckdb.connect(str(settings.datasets_dir / "nursery.duckdb"), read_only=True)
    try:
        df = con.sql(f"SELECT * FROM {catalogue.MICRODATA_TABLE}").df()
    finally:
        con.close()
    logging.disable(logging.INFO)
    try:
        acro = acro_module.ACRO(config="default", suppress=False)
        tables = {"output_0": acro.crosstab(index=df.recommendation, columns=df.parents)}
        acro.enable_suppression()
        tables["output_1"] = acro.crosstab(index=df.recommendation, columns=df.parents)
        acro.suppress = True
        tables["output_2"] = acro.crosstab(index=[df.parents, df.finance], columns=df.recommendation,
                                           values=df.children, aggfunc="mean", margins=True)
    finally:
        logging.disable(logging.NOTSET)
    return {k: r.status for k, r in acro.results.results.items()}, tables


def stored(settings, request_id: int) -> dict[str, tuple[str, bool, dict]]:
    engine = make_engine(settings.db_url)
    try:
        with session_factory(engine)() as s:
            rows = s.execute(select(ReleaseOutput.name, ReleaseOutput.verdict, ReleaseOutput.verified,
                                    ReleaseOutput.recomputed).where(ReleaseOutput.request_id == request_id)).all()
    finally:
        engine.dispose()
    return {name: (verdict.value, verified, recomputed) for name, verdict, verified, recomputed in rows}


def shown(table: pd.DataFrame) -> dict:
    table = table.dropna(axis=1, how="all")
    return {"index": [str(i) for i in table.index], "columns": [str(c) for c in table.columns],
            "values": table.to_numpy(dtype=float)}


def _labels(label) -> tuple[str, ...]:
    """A pandas label as the service's: a margin ("All", and the blanks pandas gives a margin of several variables)
    is "Total"."""
    labels = tuple(str(v) for v in (label if isinstance(label, tuple) else (label,)))
    return tuple("Total" for _ in labels) if "All" in labels else labels


def released_equal(acros: pd.DataFrame, recomputed: dict) -> None:
    """Every value of ACRO's returned table is the service's cell of the same labels (a blank one: not released);
    of the cells ACRO's table lacks, only margins are released (an Onsite table always has them)."""
    cells = {tuple(str(v) for v in row[:-1]): row[-1] for row in recomputed["rows"]}
    seen = set()
    for row in acros.index:
        for column in acros.columns:
            key = _labels(row) + _labels(column)
            seen.add(key)
            theirs, ours = acros.loc[row, column], cells.get(key)
            assert (ours is None and math.isnan(theirs)) or math.isclose(theirs, ours, rel_tol=1e-9), (key, theirs, ours)
    assert all(value is None or "Total" in key for key, value in cells.items() if key not in seen)


def test_acros_example_notebook_runs_whole_on_a_real_hub(running) -> None:
    hub, settings, logins = running
    researcher = HubUser(hub, "tanaka")
    assert researcher.login(logins["tanaka"].password).status_code == 302
    assert researcher.start_server().status_code in (201, 202)
    assert researcher.open_server().status_code == 200
    kernel = researcher.start_kernel()
    printed = {}
    for i, cell in enumerate(CELLS):
        result = researcher.execute(kernel, cell, timeout=300)
        assert result.error is None, f"cell {i + 1}:\n{cell}\n{result.error}"
        printed[i] = result.stdout
        if i == PROBE_AFTER - 1:
            probe = researcher.execute(kernel, f"{SHOWN}\n{PROBE}", timeout=60)
            assert probe.error is None, probe.error
            records = json.loads(probe.stdout.split("RECORDS ", 1)[1])
    result = researcher.execute(kernel, ANSWER, timeout=60)
    assert result.error is None, result.error
    answer = json.loads(result.stdout.split("ANSWER ", 1)[1])
    assert not answer["written"] and answer["answer"]["status"] == "SUBMITTED"  # a release request, no folder
    assert "Onsite releases files of these types only" in printed[12]  # custom_output of a .py: False, said so

    their_status, their_tables = acros_run(settings)
    # In the notebook: every table verified; ACRO's verdicts, but a suppressed table is judged after the deletion
    assert all(r["verified"] for r in records.values())
    assert (their_status["output_0"], records["output_0"]["status"]) == ("fail", "fail")
    for uid in ("output_1", "output_2"):
        assert their_status[uid] == "review" and records[uid]["status"] == "pass", uid
        ours, theirs = records[uid]["table"], shown(their_tables[uid])
        assert (ours["index"], ours["columns"]) == (theirs["index"], theirs["columns"]), uid
        assert np.allclose(np.array(ours["values"], dtype=float), theirs["values"], equal_nan=True), uid

    # The review service's own recomputation: the same verdicts, and the values it would release are ACRO's
    service = stored(settings, answer["answer"]["id"])
    names = {"output_1": "crosstab_recommendation_vs_parents",
             "output_2": "mean_children_by_parents_finance_recommendation"}
    assert set(service) == set(names.values())
    for uid, name in names.items():
        verdict, verified, recomputed = service[name]
        assert verified and verdict == records[uid]["status"], (name, verdict)
        released_equal(their_tables[uid], recomputed)
