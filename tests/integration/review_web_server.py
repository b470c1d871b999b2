"""Start the real reviewer app with the test seam for identity (no Hub): tests only.

    python review_web_server.py PORT PREFIX
    python review_web_server.py --zygote     (forks a server per job: functional/appfork.py)

Pages: the user is a signed cookie set by GET PREFIX/test-login?user=NAME.
API: `Authorization: token test-NAME` identifies NAME. Everything else — the
handlers, XSRF, the workflow service, the database — is the real thing.
"""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tornado import web

from access_control.hub_api import HubClient
from disclosure_review.workflow.policies import ReviewPolicy
from onsite_base.config import load_config
from review_service.app import make_app
from onsite_base.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for functional.appfork
from functional.appfork import serve_from_argv  # noqa: E402

COOKIE = "onsite-test-user"


def page_identity(handler: web.RequestHandler) -> str | None:
    value = handler.get_signed_cookie(COOKIE)
    return value.decode() if value else None


def api_identity(handler: web.RequestHandler) -> str | None:
    header = handler.request.headers.get("Authorization", "")
    return header.removeprefix("token test-") if header.startswith("token test-") else None


class TestLogin(web.RequestHandler):
    def get(self) -> None:
        self.set_signed_cookie(COOKIE, self.get_query_argument("user"), path="/")
        self.finish("ok")


async def main(port: int, prefix: str) -> None:
    # the review rules from the config file, as the service reads them; the Hub at $TEST_HUB_API_URL when a test
    # stands one in (whether a researcher's session runs), else the default (none answers: content withheld)
    hub = HubClient(os.environ["TEST_HUB_API_URL"], "no-token") if os.environ.get("TEST_HUB_API_URL") else None
    app = make_app(Settings.load(), prefix=prefix, test_identity=page_identity, test_api_identity=api_identity,
                   policy=ReviewPolicy(config=load_config([ReviewPolicy])), hub_client=hub)
    app.add_handlers(r".*", [(app.settings["prefix"] + "test-login", TestLogin)])
    app.listen(port, address="127.0.0.1", max_body_size=app.settings["max_body_size"])
    await asyncio.Event().wait()


if __name__ == "__main__":
    serve_from_argv(main)
