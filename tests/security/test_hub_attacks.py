"""Attacks on the hub itself by a logged-in researcher (tanaka), and by an administrator on
researchers' servers, against a real hub running as root: API tokens, sharing, named
servers, other people's servers; and the hub's secrets on disk.
"""
from __future__ import annotations

import socket
import stat
import time

import pytest
import websocket

from functional.hubtools import HubUser
from functional.seeding import SUSPENDED_PASSWORD, SUSPENDED_RESEARCHER, audit_events
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


OTHER_ADDRESS = "127.0.0.2"  # this machine, but not a registered terminal (those are 127.0.0.1 and ::1)
TERMINAL_REFUSAL = "this session can be used only from the terminal it was started at"


def thief_with_cookies_of(hub, victim: HubUser) -> HubUser:
    """Another machine holding every cookie of the victim's browser (hub's, server's, _xsrf)."""
    thief = HubUser(hub.hub, victim.username, source_address=OTHER_ADDRESS)
    thief.http.cookies.update(victim.http.cookies)
    return thief


def kernel_socket(user: HubUser, kernel: str, source: str, extra: tuple[str, ...] = ()) -> websocket.WebSocket:
    """The kernel's channels websocket, opened from `source` with the user's cookies (and `extra` header lines)."""
    sock = socket.create_connection((user.hub.ip, user.hub.port), timeout=30, source_address=(source, 0))
    url = user.server_url.replace("http://", "ws://") + f"/api/kernels/{kernel}/channels"
    cookie = "; ".join(f"{c.name}={c.value}" for c in user.http.cookies)
    return websocket.create_connection(url, header=[f"Cookie: {cookie}", *extra], socket=sock, timeout=30)


def refused_from_other_address(hub, after: int, expected: int) -> list[dict]:
    """The terminal guard's refusals in the ledger after its first `after` activity events
    (the server sends them once a second), once `expected` are there or 15 s passed."""
    deadline = time.monotonic() + 15
    while True:
        found = [e for e in audit_events(hub.settings, "SESSION_ACTIVITY", "tanaka")[after:]
                 if e["details"].get("kind") == "refused" and e["details"].get("client") == OTHER_ADDRESS]
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.parametrize("spoof", [{}, {"X-Forwarded-For": "127.0.0.1"}, {"X-Forwarded-For": "127.0.0.1", "X-Real-Ip": "127.0.0.1"}],
                         ids=["plain", "x-forwarded-for", "x-forwarded-for and x-real-ip"])
def test_stolen_cookies_are_useless_from_another_address(people, spoof):
    hub, tanaka, _, _ = people
    assert tanaka.open_server().status_code == 200
    before = len(audit_events(hub.settings, "SESSION_ACTIVITY", "tanaka"))
    thief = thief_with_cookies_of(hub, tanaka)
    headers = {**spoof, **thief._server_xsrf()}
    claim = f" claiming {', '.join(f'{k}: {v}' for k, v in spoof.items())}" if spoof else ""
    for method, path in (("GET", "api/contents/p-demo"), ("GET", "lab"), ("POST", "api/kernels"), ("GET", "api/status")):
        r = thief.http.request(method, f"{tanaka.server_url}/{path}", headers=headers, allow_redirects=False, timeout=30)
        assert r.status_code == 403 and TERMINAL_REFUSAL in r.json()["message"], (method, path, r.status_code, r.text[:200])
        assert OTHER_ADDRESS in r.json()["message"] and "127.0.0.1" not in r.json()["message"]  # the terminal is not told
        hub.record("session", f"{method} /user/tanaka/{path} with stolen cookies from {OTHER_ADDRESS}{claim}", f"HTTP {r.status_code}")
    refused = refused_from_other_address(hub, before, 4)
    assert [(e["details"]["method"], e["details"]["path"]) for e in refused] == [
        ("GET", "api/contents/p-demo"), ("GET", "lab"), ("POST", "api/kernels"), ("GET", "api/status")]
    assert all(e["outcome"] == "DENIED" and e["details"]["terminal"] == "127.0.0.1" for e in refused)
    # The terminal the session was started from goes on working.
    assert tanaka.http.get(f"{tanaka.server_url}/api/contents/p-demo", timeout=30).status_code == 200


def test_kernel_websocket_is_refused_from_another_address(people):
    hub, tanaka, _, _ = people
    kernel = tanaka.start_kernel()
    before = len(audit_events(hub.settings, "SESSION_ACTIVITY", "tanaka"))
    thief = thief_with_cookies_of(hub, tanaka)
    for spoof in ((), ("X-Forwarded-For: 127.0.0.1",)):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            kernel_socket(thief, kernel, OTHER_ADDRESS, spoof)
        assert refused.value.status_code == 403
        claim = f" claiming {spoof[0]}" if spoof else ""
        hub.record("session", f"kernel websocket (channels) with stolen cookies from {OTHER_ADDRESS}{claim}",
                   f"HTTP {refused.value.status_code}")
    events = refused_from_other_address(hub, before, 2)
    assert [e["details"]["method"] for e in events] == ["WS", "WS"]
    assert all(e["details"]["path"] == f"api/kernels/{kernel}/channels" for e in events)
    # The same cookies from the terminal: the handshake succeeds and code runs.
    kernel_socket(tanaka, kernel, "127.0.0.1").close()
    assert tanaka.execute(kernel, "print(6 * 7)").stdout.strip() == "42"


def test_hub_secrets_are_private_files(people):
    hub, *_ = people
    run = hub.settings.runtime_dir
    for name in ("jupyterhub_cookie_secret", "proxy_auth_token"):
        info = (run / name).stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600), name
        assert len((run / name).read_text().strip()) == 64  # 32 random bytes, hex
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
