"""Reference data from the kernel to the review service and back: `request_ingress` in the kernel, the
outbox forwarder in the server, the real review service (its API identity seam stands in for the Hub
token), reviewers' votes through the workflow service, then `db.reference` and a recomputed join."""
from __future__ import annotations

import pytest
from integration.test_hub_outbox import ReviewServiceAndForwarder, session  # noqa: F401  (session is a fixture)

import analysis_kernel
from onsite_base.db import make_engine, session_factory, transaction
from analysis_kernel import outputs
from analysis_kernel.ingress import IngressError
from analysis_kernel.release import request_release
from disclosure_review.workflow import ingress
from disclosure_review.workflow.enums import Decision
from onsite.demo import DEMO_DATASET

# prefecture code -> macro-region: Hokkaido and Tohoku ("01"-"07") north, everything else rest
REGIONS = ("code,region\n" + "".join(f"{i:02d},{'north' if i <= 7 else 'rest'}\n" for i in range(1, 48))).encode()
FORGED = REGIONS.replace(b"rest", b"north")
JOIN = (f"SELECT r.region FROM {DEMO_DATASET} d "
        "JOIN reference.pref_regions r ON d.prefecture = r.code")


@pytest.fixture
def intake(tmp_path, monkeypatch):
    home = tmp_path / "researcher-home"
    (home / "intake").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    (home / "intake" / "regions.csv").write_bytes(REGIONS)
    return home / "intake"


def approve(settings, request_id: int) -> None:
    engine = make_engine(settings.db_url)
    try:
        for reviewer in ("sato", "suzuki"):
            with transaction(session_factory(engine)) as s:
                ingress.vote(s, request_id, reviewer, Decision.APPROVE)
    finally:
        engine.dispose()


def test_bring_in_approve_read_and_recompute_a_join(session, intake, capsys):  # noqa: F811
    settings, outbox = session
    with ReviewServiceAndForwarder(settings, outbox, user="tanaka"):
        answer = analysis_kernel.request_ingress("regions.csv", name="pref_regions",
                                                 description="Macro-regions of the prefectures", timeout=30)
        assert answer["status"] == "SUBMITTED" and answer["rows"] == 47
        assert "ingress request" in capsys.readouterr().out
        # attack: the file in intake is swapped after the request; the service keeps what it received
        (intake / "regions.csv").write_bytes(FORGED)
        db = analysis_kernel.connect()
        with pytest.raises(IngressError, match="no approved reference data named 'pref_regions'"):
            db.reference("pref_regions")  # not approved yet
        approve(settings, answer["id"])
        assert db.references()["name"].to_list() == ["pref_regions"]
        regions = dict(db.reference("pref_regions").fetchall())
        assert regions["08"] == "rest"  # the approved copy, not the swapped file
        assert db.sql("SELECT count(*) FROM reference.pref_regions").fetchall() == [(47,)]
        with pytest.raises(Exception, match="base table"):
            db.sql("DELETE FROM reference.pref_regions")

        table = outputs.frequency_table(db, JOIN, rows="region", name="by_region")
        submitted = request_release([table], title="By macro-region", purpose="paper", timeout=60)
    [output] = submitted["outputs"]
    assert output["verified"] and output["error"] is None and output["verdict"].lower() == "pass"
    assert list(outbox.glob("*.reference.*")) == []  # reads leave nothing behind


def test_a_refused_file_says_why_and_paths_outside_intake_are_refused(session, intake, tmp_path):  # noqa: F811
    settings, outbox = session
    (intake / "codes.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / "elsewhere.csv").write_bytes(REGIONS)
    with pytest.raises(IngressError, match="intake folder"):
        analysis_kernel.request_ingress(tmp_path / "elsewhere.csv", name="x", description="d")
    with pytest.raises(IngressError, match="intake folder"):
        analysis_kernel.request_ingress("../../elsewhere.csv", name="x", description="d")
    with pytest.raises(IngressError, match="only tables as CSV"):
        analysis_kernel.request_ingress("codes.xlsx", name="x", description="d")
    (intake / "bad.csv").write_bytes("code\n東京\n".encode("shift_jis"))
    with ReviewServiceAndForwarder(settings, outbox, user="tanaka"):
        with pytest.raises(IngressError, match=r"HTTP 400.*not UTF-8"):
            analysis_kernel.request_ingress("bad.csv", name="bad", description="d", timeout=30)
    with ReviewServiceAndForwarder(settings, outbox, user="sato"):  # a reviewer, no member of the project
        with pytest.raises(IngressError, match="HTTP 403"):
            analysis_kernel.request_ingress("regions.csv", name="pref_regions", description="d", timeout=30)


def test_retired_reference_data_is_detached_in_the_kernel_and_refused_by_the_service(session, intake):  # noqa: F811
    from analysis_kernel.release import ReleaseError

    settings, outbox = session
    with ReviewServiceAndForwarder(settings, outbox, user="tanaka"):
        answer = analysis_kernel.request_ingress("regions.csv", name="pref_regions", description="Macro-regions",
                                                 timeout=30)
        approve(settings, answer["id"])
        db = analysis_kernel.connect()
        assert db.reference("pref_regions").count("*").fetchall() == [(47,)]
        table = outputs.frequency_table(db, JOIN, rows="region", name="by_region")  # built while it was usable
        engine = make_engine(settings.db_url)
        try:
            with transaction(session_factory(engine)) as s:
                ingress.retire(s, answer["id"], "sato", "superseded by the revised regions")
        finally:
            engine.dispose()
        with pytest.raises(IngressError, match=r"retired on .* \(superseded by the revised regions\)"):
            db.reference("pref_regions")
        with pytest.raises(Exception, match="pref_regions"):
            db.sql("SELECT count(*) FROM reference.pref_regions").fetchall()  # detached from this connection
        assert db.references()["name"].to_list() == []
        with pytest.raises(ReleaseError, match=r"HTTP 400.*pref_regions.*retired"):
            request_release([table], title="By macro-region", purpose="paper", timeout=60)
