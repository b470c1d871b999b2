"""The Hub-OAuth handler base and the managed-service entry point shared by the Onsite web services.

Under the Hub a page's person is the Hub OAuth user (services and tokens of other
kinds are nobody) and forms carry JupyterHub's XSRF token, tied to the OAuth
session. Tests give `make_app(test_identity=...)` instead: a narrow seam that
names the person (the tests sign it in a cookie) and falls back to tornado's own XSRF.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import jinja2

from jupyterhub.services.auth import HubOAuthenticated
from sqlalchemy.orm import Session, sessionmaker
from tornado import web
from traitlets.config import Config, Configurable

from onsite_base.config import SettingInvalid, load_config
from onsite_base.db import make_engine, session_factory
from onsite_base.settings import Settings
from onsite_base.i18n import LANGUAGES, negotiate

log = logging.getLogger(__name__)

SHARED_TEMPLATES = Path(__file__).resolve().parent / "templates"

Identity = Callable[[web.RequestHandler], "str | None"]
"""Test seam: (handler) -> username or None, used instead of the Hub when given to make_app."""


class HubServiceHandler(HubOAuthenticated, web.RequestHandler):
    """Identity, XSRF, language and database of one page of an Onsite service.

    The application's settings hold `session_factory`, `prefix` and, in tests only, `test_identity`.
    """

    content_security_policy = "default-src 'self'; frame-ancestors 'none'"

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", self.content_security_policy)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("Cache-Control", "no-store")

    @property
    def factory(self) -> sessionmaker[Session]:
        return self.settings["session_factory"]

    @property
    def seam(self) -> Identity | None:
        return self.settings.get("test_identity")

    @property
    def prefix(self) -> str:
        return self.settings["prefix"]

    def get_current_user(self) -> str | None:
        if self.seam is not None:
            return self.seam(self)
        model = HubOAuthenticated.get_current_user(self)
        if not model or model.get("kind", "user") != "user":
            return None
        return model["name"]

    # Under the Hub, JupyterHub's XSRF (tied to the OAuth session); with the test seam, tornado's own.
    @property
    def xsrf_token(self) -> bytes:
        if self.seam is not None:
            return web.RequestHandler.xsrf_token.fget(self)
        return HubOAuthenticated.xsrf_token.fget(self)

    def check_xsrf_cookie(self) -> None:
        if self.seam is not None:
            return web.RequestHandler.check_xsrf_cookie(self)
        return HubOAuthenticated.check_xsrf_cookie(self)

    @property
    def language(self) -> str:
        if not hasattr(self, "_language"):
            query = self.get_query_argument("lang", None)
            self._language = negotiate(query, self.get_cookie("lang"), self.request.headers.get("Accept-Language"))
            if query in LANGUAGES:
                self.set_cookie("lang", query, path=self.prefix, httponly=True, samesite="Lax")
        return self._language

    def lang_url(self, code: str) -> str:
        """This page in another language, its other query arguments kept."""
        args = [(k, v.decode()) for k, values in self.request.query_arguments.items() if k not in ("lang", "done") for v in values]
        return "?" + urlencode([*args, ("lang", code)])


def templates(app_templates: Path, **options: Any) -> jinja2.Environment:
    """The app's templates, then the shared ones (the page frame `frame.html`); autoescaped, strict."""
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(app_templates)), jinja2.FileSystemLoader(str(SHARED_TEMPLATES))]),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        **options,
    )


def application(routes: list, settings: Settings, prefix: str, app_dir: Path, *, jinja: jinja2.Environment,
                cookie_secret: bytes | None, test_identity: Identity | None, **extra: Any) -> web.Application:
    """A service's tornado application: its database, templates, static files, XSRF cookies under `prefix`."""
    return web.Application(
        routes,
        prefix=prefix,
        onsite=settings,
        session_factory=session_factory(make_engine(settings.db_url)),
        jinja=jinja,
        static_path=str(app_dir / "static"),
        static_url_prefix=f"{prefix}static/",
        xsrf_cookies=True,
        xsrf_cookie_kwargs={"path": prefix, "httponly": True, "samesite": "Strict"},
        cookie_secret=cookie_secret or os.urandom(32),
        login_url=f"{prefix}oauth_callback",  # replaced by the Hub's login URL when the Hub is used
        test_identity=test_identity,
        **extra,
    )


def normal_prefix(prefix: str) -> str:
    """"/services/x" → "/services/x/"; empty → "/"."""
    return "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"


def listen_address(environ: dict[str, str], service: str) -> tuple[str, int, str]:
    """(host, port, URL prefix) the hub gave the managed service `service`."""
    url = environ.get("JUPYTERHUB_SERVICE_URL")
    if not url:
        raise SystemExit(
            f"JUPYTERHUB_SERVICE_URL is not set: run this as the JupyterHub managed service `{service}` "
            "(hub_config.config registers it; `onsite up` starts the hub)"
        )
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 80, environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/"


async def serve(app: web.Application, settings: Settings, host: str, port: int, service: str) -> None:
    """Serve `app` until SIGINT/SIGTERM."""
    server = app.listen(port, address=host, xheaders=True, max_body_size=app.settings.get("max_body_size"))
    log.info("%s listening on http://%s:%d%s (state in %s)", service, host, port, app.settings["prefix"], settings.home)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # JupyterHub may start us with SIGINT ignored
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    log.info("%s stopped", service)


def run(make_app: Callable[[Settings, Config, str], web.Application], service: str, environ: dict[str, str],
        sections: tuple[type[Configurable], ...] = ()) -> int:
    """`python -m <app>`: configure logging, read the config file and the hub's environment, serve.

    `make_app(settings, config, prefix)`: `config` also holds the service's own `sections`
    (e.g. the review service's ReviewPolicy). A wrong setting stops the service naming it.
    """
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s")
    host, port, prefix = listen_address(environ, service)
    try:
        config = load_config([Settings, *sections], environ)
        settings = Settings(config=config)
        app = make_app(settings, config, prefix)
    except SettingInvalid as invalid:
        raise SystemExit(f"{service}: error: {invalid}") from None

    async def main() -> None:
        await serve(app, settings, host, port, service)

    asyncio.run(main())
    return 0
