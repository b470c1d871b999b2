"""Outputs and release summaries speak the session's language (the manifest's `language`, set by the spawner)."""
from __future__ import annotations

import html
import json
import threading
from pathlib import Path

import pytest

from dataplane.catalogue import guarded_connection
from small_survey import write_small_survey
from analysis_kernel.connection import AnalysisConnection
from analysis_kernel.outputs import file_output, frequency_table, magnitude_table, model_output
from analysis_kernel.release import request_release
from dataplane.manifest import SessionManifest, session_language
from disclosure_review.sdc import Verdict

JAPANESE_VERDICTS = {Verdict.PASS: "合格", Verdict.REVIEW: "要審査", Verdict.FAIL: "不合格"}


def write_manifest(tmp_path: Path, language: str | None) -> Path:
    path = tmp_path / "survey.duckdb"
    if not path.exists():
        write_small_survey(path)
    data = {"user": "r.tanaka", "outbox": str(tmp_path / "outbox"),
            "projects": {"p1": {"title": "Test", "preset": "acro-default", "datasets": {"survey": str(path)}}}}
    if language is not None:
        data["language"] = language
    (tmp_path / "outbox").mkdir(exist_ok=True)
    return SessionManifest.from_dict(data).write(tmp_path / f"session-{language}.json")


@pytest.fixture(params=["ja", "en"])
def session(request, tmp_path, monkeypatch):
    path = write_manifest(tmp_path, request.param)
    monkeypatch.setenv("ONSITE_SESSION", str(path))
    manifest = SessionManifest.load(path)
    db = AnalysisConnection(guarded_connection(manifest.projects["p1"].datasets), "p1", manifest)
    yield request.param, db
    db.close()


def test_table_verdict_and_check_messages_in_the_session_language(session) -> None:
    lang, db = session
    out = frequency_table(db, "SELECT * FROM survey", rows="area", columns="grp")
    threshold = out.report.result("threshold")
    assert out.verdict is Verdict.FAIL and threshold.text("ja") != threshold.message
    page, text = out._repr_html_(), repr(out)
    if lang == "ja":
        assert "不合格" in page and html.escape(threshold.text("ja")) in page and "ルールプリセット" in page
        assert f"threshold (不合格): {threshold.text('ja')}" in text
        assert html.escape(threshold.message) not in page and "under preset" not in page
    else:
        assert ">fail<" in page and html.escape(threshold.message) in page and "under preset" in page
        assert f"threshold (fail): {threshold.message}" in text
        assert html.escape(threshold.text("ja")) not in page and "不合格" not in page
    # a protected table keeps the language
    safe = magnitude_table(db, "SELECT * FROM survey", rows="area", columns="grp", value="income",
                           unit="household_id").protect("suppress")
    assert ("保護: suppress" in safe._repr_html_()) == (lang == "ja")


def test_model_and_file_outputs_in_the_session_language(session, tmp_path) -> None:
    import statsmodels.formula.api as smf

    lang, db = session
    frame = db.sql("SELECT * FROM survey WHERE income < 1000").df()
    model = model_output(db, smf.ols("income ~ C(grp)", frame).fit(), explanation="x", code="y")
    levels = model.report.result("categorical_levels")
    assert model.verdict is Verdict.FAIL
    expected = levels.text(lang) if lang == "ja" else levels.message
    assert html.escape(expected) in model._repr_html_() and expected in repr(model)
    assert ("未検証" in model._repr_html_()) == (lang == "ja")
    figure = tmp_path / "fig.png"
    figure.write_bytes(b"\x89PNG...")
    shown = file_output(figure, explanation="bars", code="plt.bar(...)")._repr_html_()
    assert (JAPANESE_VERDICTS[Verdict.REVIEW] in shown) == (lang == "ja")
    assert (">review<" in shown) == (lang == "en")


def test_release_summary_in_the_session_language(session, capsys) -> None:
    lang, db = session
    table = frequency_table(db, "SELECT * FROM survey", rows="area", name="by_area")
    outbox = db.manifest.outbox
    answer = {"id": 7, "status": "SUBMITTED", "outputs": [{"name": "by_area", "verdict": "pass"}]}

    def forwarder() -> None:  # plays singleuser.serverext: answers the request dropped in the outbox
        for _ in range(200):
            requests = list(outbox.glob("*.request.json"))
            if requests:
                rid = requests[0].name.split(".")[0]
                (outbox / f"{rid}.response.json").write_text(json.dumps(answer))
                return
            threading.Event().wait(0.05)

    thread = threading.Thread(target=forwarder)
    thread.start()
    assert request_release([table], title="t", purpose="p", timeout=15) == answer
    thread.join()
    printed = capsys.readouterr().out
    if lang == "ja":
        assert "公表申請 7: SUBMITTED" in printed and "by_area: 合格" in printed
    else:
        assert "release request 7: SUBMITTED" in printed and "by_area: pass" in printed


def test_language_outside_a_session_and_in_old_manifests_is_english(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ONSITE_SESSION", str(tmp_path / "missing.json"))
    assert session_language() == "en"
    monkeypatch.setenv("ONSITE_SESSION", str(write_manifest(tmp_path, None)))  # written before the field existed
    assert session_language() == "en"
    monkeypatch.setenv("ONSITE_SESSION", str(write_manifest(tmp_path, "ja")))
    assert session_language() == "ja"


def test_a_manifest_with_an_unknown_language_is_refused(tmp_path) -> None:
    from dataplane.manifest import SessionManifestInvalid

    with pytest.raises(SessionManifestInvalid, match="language must be one of ja, en, not 'fr'"):
        SessionManifest.from_dict({"user": "u", "outbox": "/o", "projects": {}, "language": "fr"})


def test_a_passing_table_says_which_checks_only_the_service_runs(session) -> None:
    # The session cannot read the project's released tables, so its pass does not include differencing.
    lang, db = session
    out = frequency_table(db, "SELECT * FROM survey WHERE area = 'big'", rows="area", name="big_area")
    assert out.verdict is Verdict.PASS
    page, text = out._repr_html_(), repr(out)
    said = {"ja": "審査サービスだけが行うチェック: differencing", "en": "Checked only by the review service: differencing"}
    assert said[lang] in page and said[lang] in text
    assert said["en" if lang == "ja" else "ja"] not in page

