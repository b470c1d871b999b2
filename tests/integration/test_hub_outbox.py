"""The release outbox: `request_release` in the kernel, the forwarder in the server,
the real review service's API behind it (its API identity seam stands in for the
Hub token, which the end-to-end test covers)."""
from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
import requests

import analysis_kernel
from analysis_kernel import outputs
from analysis_kernel.release import ReleaseError, request_release
from dataplane.manifest import SessionManifest
from review_service.app import make_app
from functional.hubtools import free_port
from functional.seeding import seed_demo
from singleuser.serverext import OutboxForwarder
from onsite.demo import DEMO_DATASET, DEMO_PROJECT

pytestmark = pytest.mark.integration
PREFIX = "/services/onsite-review/"


class ReviewServiceAndForwarder:
    """The review app and one session's forwarder on an event loop in a thread (as in the hub)."""

    def __init__(self, settings, outbox: Path, *, user: str, review_url: str | None = None) -> None:
        self.user = user
        self.port = free_port()
        self.app = make_app(settings, prefix=PREFIX, test_api_identity=lambda handler: self.user)
        self.review_url = review_url or f"http://127.0.0.1:{self.port}{PREFIX}"
        self.outbox = outbox
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self.stopped = asyncio.Event()
        server = self.app.listen(self.port, address="127.0.0.1")
        forwarder = OutboxForwarder(self.outbox, self.review_url, token="not-checked-by-the-seam")
        forwarder.start()
        self.ready.set()
        await self.stopped.wait()
        forwarder.stop()
        server.stop()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(10)


@pytest.fixture
def session(tmp_path, monkeypatch):
    settings, _ = seed_demo(tmp_path / "home", rows=500)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    manifest = SessionManifest.from_dict({
        "user": "tanaka",
        "projects": {DEMO_PROJECT: {"title": "demo", "preset": "acro-default",
                                    "datasets": {DEMO_DATASET: str(settings.datasets_dir / f"{DEMO_DATASET}.duckdb")}}},
        "outbox": str(outbox),
    })
    path = manifest.write(tmp_path / "session.json")
    monkeypatch.setenv("ONSITE_SESSION", str(path))
    return settings, outbox


def by_sex():
    return outputs.frequency_table(analysis_kernel.connect(), f"SELECT * FROM {DEMO_DATASET}", rows="sex", name="by_sex")


def test_request_goes_through_and_returns_the_services_verdicts(session, capsys):
    settings, outbox = session
    with ReviewServiceAndForwarder(settings, outbox, user="tanaka"):
        answer = request_release([by_sex()], title="By sex", purpose="paper", timeout=30)
    assert answer["status"] == "SUBMITTED"
    assert [(o["name"], o["verdict"].lower()) for o in answer["outputs"]] == [("by_sex", "pass")]
    assert f"release request {answer['id']}" in capsys.readouterr().out
    rid = next(outbox.glob("*.request.json")).name.split(".")[0]
    assert json.loads((outbox / f"{rid}.response.json").read_text()) == answer


def test_refusal_shows_the_services_own_message(session):
    settings, outbox = session
    table = by_sex()
    # "sato" is no member of the project: what does the service itself say to that?
    with ReviewServiceAndForwarder(settings, outbox, user="sato") as running:
        payload = {"project": DEMO_PROJECT, "title": "t", "purpose": "p", "outputs": [table.to_request().to_json()]}
        direct = requests.post(running.review_url + "api/requests", json=payload, timeout=30)
        with pytest.raises(ReleaseError) as refused:
            request_release([table], title="t", purpose="p", timeout=30)
    assert direct.status_code in (400, 403)
    assert direct.json()["message"] in str(refused.value)
    assert f"HTTP {direct.status_code}" in str(refused.value)


def test_unreachable_service_is_reported(session):
    settings, outbox = session
    closed = f"http://127.0.0.1:{free_port()}{PREFIX}"
    with ReviewServiceAndForwarder(settings, outbox, user="tanaka", review_url=closed):
        with pytest.raises(ReleaseError, match="unreachable"):
            request_release([by_sex()], title="t", purpose="p", timeout=30)


def test_no_answer_within_the_timeout(session):
    _, outbox = session  # no forwarder running
    with pytest.raises(ReleaseError, match="is not lost"):
        request_release([by_sex()], title="t", purpose="p", timeout=0.5)
    assert len(list(outbox.glob("*.request.json"))) == 1


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ([], {"title": "t", "purpose": "p"}, "non-empty list"),
        (["not an output"], {"title": "t", "purpose": "p"}, "not an output"),
        (None, {"title": " ", "purpose": "p"}, "title"),
        (None, {"title": "t", "purpose": ""}, "purpose"),
        (None, {"title": "t", "purpose": "p", "project": "p-other"}, "not active in this session"),
    ],
)
def test_bad_requests_are_refused_and_nothing_is_sent(session, args, kwargs, message):
    _, outbox = session
    with pytest.raises(ReleaseError, match=message):
        request_release([by_sex()] if args is None else args, **kwargs)
    assert list(outbox.iterdir()) == []


def test_outside_a_session(monkeypatch, tmp_path):
    monkeypatch.setenv("ONSITE_SESSION", str(tmp_path / "missing.json"))
    with pytest.raises(ReleaseError, match="inside an Onsite session"):
        request_release([object()], title="t", purpose="p")
