"""Attacks on the hub itself by a logged-in researcher (tanaka), and by an administrator on
researchers' servers, against a real hub running as root: API tokens, sharing, named
servers, other people's servers; and the hub's secrets on disk.
"""
from __future__ import annotations

import stat

import pytest

from functional.hubtools import HubUser
from functional.seeding import SUSPENDED_PASSWORD, SUSPENDED_RESEARCHER
from security._isolation_fixtures import isolated_hub, researcher_session  # noqa: F401 (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def people(isolated_hub):
    """tanaka with a running server; kimura (another project) with one; the administrator logged in."""
    tanaka, _ = researcher_session(isolated_hub, "tanaka")
    kimura = HubUser(isolated_hub.hub, SUSPENDED_RESEARCHER)
    assert kimura.login(SUSPENDED_PASSWORD).status_code == 302
    kimura.start_server()
    admin = HubUser(isolated_hub.hub, "takahashi")
    assert admin.login(isolated_hub.logins["takahashi"].password).status_code == 302
    return isolated_hub, tanaka, kimura, admin


def hub_api(user: HubUser, method: str, path: str, **kwargs):
    return user.http.request(method, f"{user.hub.url}/hub/api/{path}", headers=user._hub_xsrf(), timeout=30, **kwargs)


def test_researcher_cannot_create_an_api_token(people):
    hub, tanaka, _, _ = people
    r = hub_api(tanaka, "POST", "users/tanaka/tokens", json={"note": "take-away", "expires_in": 3600})
    assert r.status_code == 403 and "token" not in r.json()
    hub.record("hub", "create an API token (POST /hub/api/users/tanaka/tokens)", f"HTTP {r.status_code}")
    listing = hub_api(tanaka, "GET", "users/tanaka/tokens")
    assert listing.status_code == 403
    page = tanaka.http.get(f"{hub.hub.url}/hub/token", timeout=30)
    assert "Request new API token" not in page.text and "API tokens cannot be created in Onsite" in page.text
    hub.record("hub", "request a token on the token page /hub/token", f"no token form (HTTP {page.status_code})")


def test_researcher_cannot_share_the_server(people):
    hub, tanaka, kimura, _ = people
    share = hub_api(tanaka, "POST", "shares/tanaka/", json={"user": kimura.username})
    assert share.status_code in (403, 404), share.text[:200]
    hub.record("hub", "share the server with another researcher (POST /hub/api/shares)", f"HTTP {share.status_code}")
    code = hub_api(tanaka, "POST", "share-codes/tanaka/")
    assert code.status_code in (403, 404) and "code" not in code.text.lower().replace("status", "")
    hub.record("hub", "create a share code (POST /hub/api/share-codes)", f"HTTP {code.status_code}")
    assert kimura.http.get(f"{tanaka.server_url}/api/status", timeout=30, allow_redirects=True).status_code != 200


def test_researcher_cannot_start_a_named_server(people):
    hub, tanaka, _, _ = people
    r = hub_api(tanaka, "POST", "users/tanaka/servers/second")
    assert r.status_code in (400, 403, 404), r.text[:200]
    servers = hub_api(tanaka, "GET", "users/tanaka").json()["servers"]
    assert list(servers) == [""]
    hub.record("hub", "start a named server (POST /hub/api/users/tanaka/servers/second)", f"HTTP {r.status_code}")


def test_researcher_cannot_open_another_researchers_server(people):
    hub, tanaka, kimura, _ = people
    r = tanaka.http.get(f"{kimura.server_url}/api/contents", timeout=60)
    assert r.status_code == 403 or not r.url.startswith(kimura.server_url + "/api/contents")
    assert "content" not in r.text[:2000] or r.status_code != 200
    hub.record("hub", "open another researcher's server (/user/kimura/api/contents)", f"HTTP {r.status_code}")
    stop = hub_api(tanaka, "DELETE", f"users/{kimura.username}/server")
    assert stop.status_code in (403, 404)
    hub.record("hub", "stop another researcher's server", f"HTTP {stop.status_code}")


def test_administrator_cannot_open_a_researchers_server(people):
    hub, tanaka, _, admin = people
    assert tanaka.open_server().status_code == 200
    r = admin.http.get(f"{tanaka.server_url}/api/contents", timeout=60)
    assert r.status_code == 403, (r.status_code, r.url)
    hub.record("hub", "administrator opens a researcher's server", f"HTTP {r.status_code}")
    token = hub_api(admin, "POST", "users/tanaka/tokens", json={"note": "impersonate"})
    assert token.status_code == 403
    hub.record("hub", "administrator creates a token for a researcher", f"HTTP {token.status_code}")


def test_hub_secrets_are_private_files(people):
    hub, *_ = people
    run = hub.settings.runtime_dir
    for name in ("jupyterhub_cookie_secret", "proxy_auth_token"):
        info = (run / name).stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600), name
        assert len((run / name).read_text().strip()) == 64  # 32 random bytes, hex
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
