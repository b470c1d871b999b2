"""The few JupyterHub REST API calls the admin pages and the review service need, with the service's own token.

Scopes the admin service's role must hold, and no more: `list:users` (who is there),
`read:servers` (their servers: since when, ready, last activity) and
`delete:servers` (stop one). Without `read:servers` nobody appears to have a server.
The review service holds `read:servers` only: `server` tells it whether a person's
session is running (hub_config/roles.py).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

log = logging.getLogger(__name__)

PAGE_SIZE = 200
TIMEOUT_SECONDS = 10.0


class HubApiUnavailable(Exception):
    """The Hub API did not answer, refused the token, or answered something unexpected."""


@dataclass(frozen=True)
class LiveServer:
    """A person's running (or starting / stopping) default server, as the Hub reports it."""

    user: str
    started: datetime | None
    last_activity: datetime | None
    ready: bool
    pending: str | None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _live_server(user: dict, server: dict) -> LiveServer:
    return LiveServer(
        user=user["name"],
        started=_time(server.get("started")),
        last_activity=_time(server.get("last_activity") or user.get("last_activity")),
        ready=bool(server.get("ready")),
        pending=server.get("pending"),
    )


class HubClient:
    def __init__(self, api_url: str, token: str) -> None:
        self.api_url = api_url.rstrip("/") + "/"
        self.token = token

    async def _call(self, method: str, path: str, query: dict[str, str | int] | None = None) -> tuple[int, object]:
        url = self.api_url + path + ("?" + urlencode(query) if query else "")
        request = HTTPRequest(
            url,
            method=method,
            headers={"Authorization": f"token {self.token}", "Accept": "application/jupyterhub-pagination+json"},
            request_timeout=TIMEOUT_SECONDS,
            connect_timeout=TIMEOUT_SECONDS,
            allow_nonstandard_methods=True,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            body = e.response.body.decode(errors="replace")[:300] if e.response is not None and e.response.body else ""
            log.warning("hub API %s %s answered %s %s", method, path, e.code, body)
            raise HubApiUnavailable(f"{method} {path}: HTTP {e.code} {body}".strip()) from None
        except OSError as e:
            log.warning("hub API %s unreachable: %s", self.api_url, e)
            raise HubApiUnavailable(f"{self.api_url}: {e}") from None
        return response.code, json.loads(response.body) if response.body else None

    async def live_servers(self) -> list[LiveServer]:
        """Everyone whose default server is running or pending, by user name."""
        servers: list[LiveServer] = []
        offset = 0
        while True:
            _, body = await self._call("GET", "users", {"state": "active", "offset": offset, "limit": PAGE_SIZE})
            if not isinstance(body, dict) or "items" not in body:
                raise HubApiUnavailable("GET users: unexpected answer (not a paginated user list)")
            for user in body["items"]:
                server = (user.get("servers") or {}).get("")
                if server:
                    servers.append(_live_server(user, server))
            following = (body.get("_pagination") or {}).get("next")
            if not following:
                return sorted(servers, key=lambda s: s.user)
            offset = int(following["offset"])

    async def server(self, username: str) -> LiveServer | None:
        """The person's default server as the Hub reports it now, None when they have none."""
        _, body = await self._call("GET", f"users/{quote(username, safe='')}")
        if not isinstance(body, dict) or not isinstance(body.get("servers"), dict):
            raise HubApiUnavailable(f"GET users/{username}: unexpected answer (no servers: is read:servers granted?)")
        server = body["servers"].get("")
        return _live_server(body, server) if server else None

    async def stop_server(self, username: str) -> None:
        """Ask the Hub to stop the person's default server (202: stopping, 204: stopped)."""
        await self._call("DELETE", f"users/{quote(username, safe='')}/server")
