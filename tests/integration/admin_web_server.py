"""Start the real admin app with the test seam for identity: tests only.

    python admin_web_server.py PORT PREFIX
    python admin_web_server.py --zygote     (forks a server per job: functional/appfork.py)

The user is a signed cookie set by GET PREFIX/test-login?user=NAME. No hub: the Hub API
address is $TEST_HUB_API_URL, by default one nobody listens on (the sessions page says so).
Everything else — handlers, XSRF, policy functions, the ledger, the database — is the real thing.
"""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tornado import web

from access_control.hub_api import HubClient
from admin_service.app import make_app
from onsite_base.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for functional.appfork
from functional.appfork import serve_from_argv  # noqa: E402

COOKIE = "onsite-test-user"


def page_identity(handler: web.RequestHandler) -> str | None:
    value = handler.get_signed_cookie(COOKIE)
    return value.decode() if value else None


class TestLogin(web.RequestHandler):
    def get(self) -> None:
        self.set_signed_cookie(COOKIE, self.get_query_argument("user"), path="/")
        self.finish("ok")


async def main(port: int, prefix: str) -> None:
    hub = HubClient(os.environ.get("TEST_HUB_API_URL", "http://127.0.0.1:9/hub/api"), "no-token")
    app = make_app(Settings.load(), prefix=prefix, hub_client=hub, test_identity=page_identity)
    app.add_handlers(r".*", [(app.settings["prefix"] + "test-login", TestLogin)])
    app.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    serve_from_argv(main)
