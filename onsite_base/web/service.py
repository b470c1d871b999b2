"""The Hub-OAuth handler base and the managed-service entry point shared by the Onsite web services.

Under the Hub a page's person is the Hub OAuth user (services and tokens of other
kinds are nobody) and forms carry JupyterHub's XSRF token, tied to the OAuth
session. Tests give `make_app(test_identity=...)` instead: a narrow seam that
names the person (the tests sign it in a cookie) and falls back to tornado's own XSRF
(the review service's API has its own seam, `test_api_identity`).

Every request of a signed-in person is judged by its client address before any
handler runs: `run` puts the service's `ClientCheck` (access_control.addresses,
which this layer may not import) in the application's settings as `check_client`,
and `HubServiceHandler.prepare` refuses with 403 what it refuses. Under the Hub
without a check, every signed-in request is refused (fail closed).
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode, urlparse

import jinja2

from jupyterhub.services.auth import HubOAuthenticated
from sqlalchemy.orm import Session, sessionmaker
from tornado import web
from traitlets.config import Config, Configurable

from onsite_base import times
from onsite_base.config import SettingInvalid, load_config
from onsite_base.db import make_engine, session_factory
from onsite_base.i18n import LANGUAGES, negotiate
from onsite_base.netaddr import client_address
from onsite_base.settings import Settings

log = logging.getLogger(__name__)

SHARED_TEMPLATES = Path(__file__).resolve().parent / "templates"

Identity = Callable[[web.RequestHandler], "str | None"]
"""Test seam: (handler) -> username or None, used instead of the Hub when given to make_app."""

LOOPBACK_PROXIES = {"127.0.0.1", "::1"}
"""Who reports the client address when no check is configured (tests): configurable-http-proxy on loopback."""


class ClientCheck(Protocol):
    """The address policy of a service (access_control.addresses.ClientCheck)."""

    trusted_proxies: set[str]

    def __call__(self, handler: web.RequestHandler, username: str) -> str | None:
        """Name the request's client for the ledger and judge it: None if allowed, else the refusal (ja/en)."""


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

    @property
    def client_address(self) -> str:
        """The client address as the hub reads it (the last X-Forwarded-For entry of a trusted proxy)."""
        check = self.settings.get("check_client")
        return client_address(self.request, check.trusted_proxies if check is not None else LOOPBACK_PROXIES)

    def prepare(self) -> None:
        """A signed-in person's request is judged by its client address (see the module doc)."""
        user = self.current_user
        if user is None:
            return
        check: ClientCheck | None = self.settings.get("check_client")
        if check is None:
            if self.seam is not None or self.settings.get("test_api_identity") is not None:
                return  # a test of the pages or the API without the Hub
            log.error("%s refused: no client address check is configured (run the service with `run`)", self.request.path)
            raise web.HTTPError(403, "no client address check is configured")
        refusal = check(self, user)
        if refusal is not None:
            raise web.HTTPError(403, refusal.replace("%", "%%"))

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
    """The app's templates, then the shared ones (the page frame `frame.html`); autoescaped, strict.
    Filter `when`: a time in the facility's zone with the zone shown (`application` sets the configured zone)."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(app_templates)), jinja2.FileSystemLoader(str(SHARED_TEMPLATES))]),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        **options,
    )
    env.filters["when"] = times.shown
    return env


def application(routes: list, settings: Settings, prefix: str, app_dir: Path, *, jinja: jinja2.Environment,
                cookie_secret: bytes | None, test_identity: Identity | None, **extra: Any) -> web.Application:
    """A service's tornado application: its database, templates, static files, XSRF cookies under `prefix`;
    times on its pages in `settings.timezone`."""
    jinja.filters["when"] = lambda value, zone=settings.timezone, seconds=False: times.shown(value, zone, seconds=seconds)
    jinja.globals["timezone"] = settings.timezone
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


class ContextCopyingExecutor(ThreadPoolExecutor):
    """A thread pool that runs each job in a copy of the submitter's context, as `asyncio.to_thread`
    does: a handler's work in `IOLoop.run_in_executor` records its audit events with the client
    the handler named (access_control.audit.set_client)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


async def serve(app: web.Application, settings: Settings, host: str, port: int, service: str) -> None:
    """Serve `app` until SIGINT/SIGTERM."""
    asyncio.get_running_loop().set_default_executor(ContextCopyingExecutor(thread_name_prefix=service))
    # No xheaders: tornado would believe X-Real-Ip from anyone; the client address is read by
    # `client_address` from the trusted proxies' X-Forwarded-For only.
    server = app.listen(port, address=host, max_body_size=app.settings.get("max_body_size"))
    log.info("%s listening on http://%s:%d%s (state in %s)", service, host, port, app.settings["prefix"], settings.home)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # JupyterHub may start us with SIGINT ignored
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    log.info("%s stopped", service)


def run(make_app: Callable[[Settings, Config, str], web.Application], service: str, environ: dict[str, str],
        sections: tuple[type[Configurable], ...] = (), *, check_client: Callable[[Config, str], ClientCheck]) -> int:
    """`python -m <app>`: configure logging, read the config file and the hub's environment, serve.

    `make_app(settings, config, prefix)`: `config` also holds the service's own `sections`
    (e.g. the review service's ReviewPolicy, the AddressPolicy). `check_client(config, service)`
    builds the address check every signed-in request passes. A wrong setting stops the service naming it.
    """
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s")
    host, port, prefix = listen_address(environ, service)
    try:
        config = load_config([Settings, *sections], environ)
        settings = Settings(config=config)
        app = make_app(settings, config, prefix)
        app.settings["check_client"] = check_client(config, service)
    except SettingInvalid as invalid:
        raise SystemExit(f"{service}: error: {invalid}") from None

    async def main() -> None:
        await serve(app, settings, host, port, service)

    asyncio.run(main())
    return 0
