"""The hub on the production store: policy, workflow and ledger in PostgreSQL."""
from __future__ import annotations

import pytest

from access_control.entry import DenialReason
from functional.hubtools import HubUser, RunningHub, login_error
from functional.seeding import audit_events
from onsite.demo import set_up_demo
from onsite_base.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_entry_decisions_with_postgresql(tmp_path, pg_url):
    settings = Settings(home=tmp_path / "home", db_url=pg_url)
    logins = {l.username: l for l in set_up_demo(settings, rows=300, progress=False)}
    with RunningHub(settings.home, db_url=pg_url) as hub:
        allowed = HubUser(hub, "tanaka").login(logins["tanaka"].password)
        refused = HubUser(hub, "tanaka", source_address="127.0.0.2").login(logins["tanaka"].password)
        reviewer = HubUser(hub, "sato")
        assert reviewer.login(logins["sato"].password).status_code == 302
        queue = reviewer.http.get(f"{hub.url}/services/onsite-review/queue", timeout=30)
    assert allowed.status_code == 302
    assert refused.status_code == 403
    assert DenialReason.TERMINAL_NOT_REGISTERED.message("en") in login_error(refused)
    assert queue.status_code == 200  # the review service shares the PostgreSQL store
    assert [e["outcome"] for e in audit_events(settings, "ENTRY_DECIDE", "tanaka")] == ["OK", "DENIED"]
    assert not (settings.home / "onsite.sqlite").exists()
