"""The whole JupyterHub configuration of Onsite, built from the configuration tree.

`HubSettings` holds the hub's own settings (public address, session limits,
production profile, the hub's database, the proxy). `configure(c, settings,
hub, ldap)` fills a traitlets `Config` (the `c` of a `jupyterhub_config.py`)
in parts: the runtime directory and its secrets, the JupyterHub application,
the proxy, the managed services, log-in (local store or LDAP) and the
spawner. The site's config file (onsite_base/config.py) is applied over it by
the hub, so anything JupyterHub offers can still be set there. `run_hub()`
starts JupyterHub in this process.
"""
from __future__ import annotations

import logging
import os
import secrets
import signal
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jupyterhub.app import JupyterHub
from tornado.ioloop import IOLoop
from traitlets import Bool, Int, TraitError, Unicode, default, validate
from traitlets.config import Config

from access_control.audit import default_anchor_file
from access_control.addresses import AddressPolicy
from access_control.ldap import LdapSettings
from hub_config.audit_sink import session_event_handlers
from hub_config.authenticator import OnsiteAuthenticator, default_url
from hub_config.ldap_authenticator import OnsiteLDAPAuthenticator, ldap_traits
from hub_config.netfilter import remove_leftover_session_rules
from hub_config.pages import HubPageLanguage
from hub_config.ports import free_port
from hub_config.roles import (
    ADMIN_SERVICE,
    ADMIN_SERVICE_ROLE,
    CLI_SERVICE,
    CLI_SERVICE_ROLE,
    HUB_MANAGER_ROLE,  # noqa: F401 (part of this module's API)
    IDLE_CULLER_ROLE,
    IDLE_CULLER_SERVICE,
    REVIEW_SERVICE,
    REVIEW_SERVICE_ROLE,
    SERVER_TOKEN_SCOPES,
    USER_SCOPES,
)
from hub_config.spawner import OnsiteSpawner
from onsite_base.config import CONFIG_FILE_NAME, Section, load_config, setting_name
from onsite_base.errors import UserError
from onsite_base.settings import AbsolutePath, Settings
from singleuser.kernelspec import write_kernelspec

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROXY_COMMAND = PROJECT_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
CLI_TOKEN_FILE = "cli-api-token"
HUB_API_URL_FILE = "hub-api-url"
ANCHOR_SERVICE = "onsite-anchor"
POSTGRESQL_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://")


class HubSettings(Section):
    """The hub process: its public address, how long sessions may last, the production
    profile, its own database and the proxy it starts."""

    ip = Unicode(
        "127.0.0.1",
        help="""Address the hub's public proxy listens on. Default 127.0.0.1: only this machine;
        the terminals of the facilities must be able to reach it (e.g. 0.0.0.0). `onsite hub
        --ip` overrides it.""",
    ).tag(config=True, env="ONSITE_HUB_IP")

    port = Int(
        8000,
        help="Port of the public address (1-65535). `onsite hub --port` overrides it.",
    ).tag(config=True, env="ONSITE_HUB_PORT")

    idle_timeout_s = Int(
        3600,
        help="""Seconds without activity after which a researcher's server is stopped by the idle
        culler (unsaved kernel state is lost; files stay). At least 1.""",
    ).tag(config=True, env="ONSITE_IDLE_TIMEOUT_S")

    max_session_s = Int(
        10 * 3600,
        help="""Seconds a server may run at most, active or not (default 10 h, a facility's opening
        hours); 0: no maximum.""",
    ).tag(config=True, env="ONSITE_MAX_SESSION_S")

    production = Bool(
        False,
        help="""The production profile: refuse to start unless the hub's database is PostgreSQL
        (hub_db_url) and the public address is HTTPS (ssl_cert, ssl_key). In the environment:
        1 or 0.""",
    ).tag(config=True, env="ONSITE_PRODUCTION")

    ssl_cert = AbsolutePath(
        None,
        allow_none=True,
        help="""PEM certificate (chain) of the public address; with ssl_key the proxy serves HTTPS.
        Unset: plain HTTP, acceptable only on a closed facility network or behind a TLS front end.""",
    ).tag(config=True, env="ONSITE_SSL_CERT")

    ssl_key = AbsolutePath(
        None,
        allow_none=True,
        help="PEM private key of ssl_cert. Keep it readable by the proxy's account only.",
    ).tag(config=True, env="ONSITE_SSL_KEY")

    hub_db_url = Unicode(
        None,
        allow_none=True,
        help="""SQLAlchemy URL of JupyterHub's own database (users, servers, tokens). Unset: SQLite
        in $ONSITE_HOME/run/jupyterhub.sqlite. A bare postgresql:// URL means psycopg 3, the
        driver Onsite installs. Production: PostgreSQL.""",
    ).tag(config=True, env="ONSITE_HUB_DB_URL")

    proxy_command = AbsolutePath(
        help="""The configurable-http-proxy the hub starts. Default: the checkout's
        node_modules (`make up`, `npm ci`); a deployment from a wheel names Debian's proxy.
        Must exist when the hub starts.""",
    ).tag(config=True, env="ONSITE_PROXY_COMMAND")

    concurrent_spawn_limit = Int(
        20,
        help="""Servers that may be starting at the same time; more start requests are refused
        until one finishes (each start creates an OS account, sets groups and firewall rules).
        At least 1.""",
    ).tag(config=True)

    anchor_file = AbsolutePath(
        None,
        allow_none=True,
        help="""File the hub's anchor service (`onsite audit anchor --every`) appends the ledger's
        head to: at hub start, then every anchor_interval_s. `onsite audit verify` checks the
        ledger against its last line, which catches deleted newest events and a rewritten
        table. Unset: outside the state directory, /var/lib/onsite-anchors/ for a hub running
        as root, else $XDG_STATE_HOME/onsite-anchors/ (~/.local/state/onsite-anchors/), one
        file per store. Security: whoever can rewrite the store must not be able to rewrite
        this file: put it on other storage (another disk, a host mounted append-only).""",
    ).tag(config=True, env="ONSITE_ANCHOR_FILE")

    anchor_interval_s = Int(
        600,
        help="""Seconds between two ledger anchors written by the hub's anchor service (at least
        1). Events written after the last anchor can be deleted unnoticed: this is that window.
        Each anchor re-verifies the whole chain (a read; writers are not held up).""",
    ).tag(config=True, env="ONSITE_ANCHOR_INTERVAL_S")

    @default("proxy_command")
    def _checkout_proxy(self) -> Path:
        return PROXY_COMMAND

    @validate("port")
    def _valid_port(self, proposal: Any) -> int:
        if not 1 <= proposal.value <= 65535:
            raise TraitError(f"{proposal.value} is not a TCP port: use 1-65535")
        return proposal.value

    @validate("idle_timeout_s", "concurrent_spawn_limit", "anchor_interval_s")
    def _at_least_one(self, proposal: Any) -> int:
        if proposal.value < 1:
            raise TraitError(f"{proposal.trait.name} must be at least 1")
        return proposal.value

    @validate("max_session_s")
    def _not_negative(self, proposal: Any) -> int:
        if proposal.value < 0:
            raise TraitError("max_session_s must be 0 (no maximum) or more seconds")
        return proposal.value

    @validate("hub_db_url")
    def _psycopg(self, proposal: Any) -> str | None:
        url = proposal.value or None
        if url is not None and url.startswith("postgresql://"):  # SQLAlchemy would pick psycopg2
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url

    def check(self) -> None:
        def name(trait: str) -> str:
            return setting_name(HubSettings, trait)

        if (self.ssl_cert is None) != (self.ssl_key is None):
            raise self.invalid(f"{name('ssl_cert')} and {name('ssl_key')} go together: set both or neither")
        if not self.production:
            return
        problems = []
        if not (self.hub_db_url or "").startswith(POSTGRESQL_SCHEMES):
            problems.append(f"set {name('hub_db_url')} to a PostgreSQL URL (postgresql://...) for the hub's database")
        if self.ssl_cert is None:
            problems.append(f"give the HTTPS certificate and key ({name('ssl_cert')} and {name('ssl_key')})")
        problems += [f"{path} does not exist" for path in (self.ssl_cert, self.ssl_key) if path and not path.is_file()]
        if problems:
            raise self.invalid(f"the production profile ({name('production')}) is not satisfied: " + "; ".join(problems))


HUB_SETTINGS = (Settings, HubSettings, LdapSettings)
"""The sections the hub reads."""


def load_hub_settings(environ: Mapping[str, str] | None = None) -> tuple[Settings, HubSettings, LdapSettings | None]:
    """The hub's sections from the config file and the environment."""
    config = load_config(HUB_SETTINGS, environ)
    return Settings(config=config), HubSettings(config=config), LdapSettings.configured(config)


def idle_culler_service(idle_timeout_s: int, max_session_s: int) -> dict:
    """jupyterhub-idle-culler as a hub-managed service: a server idle for `idle_timeout_s`
    or running for `max_session_s` (0: no maximum) is stopped, checked every minute or
    more often for short limits."""
    every = max(1, min(60, idle_timeout_s // 2, max_session_s // 2 or 60))
    return {
        "name": IDLE_CULLER_SERVICE,
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={idle_timeout_s}",
                    f"--max-age={max_session_s}", f"--cull-every={every}", "--remove-named-servers=false"],
    }


def ledger_anchor_file(settings: Settings, hub: HubSettings) -> Path:
    """Where the ledger's anchors go: `hub.anchor_file`, else outside the state directory."""
    return hub.anchor_file or default_anchor_file(settings.db_url)


def anchor_service(settings: Settings, hub: HubSettings) -> dict:
    """`onsite audit anchor --every` as a hub-managed service: an anchor at hub start, then at
    every interval (the hub restarts the service if it exits)."""
    return {
        "name": ANCHOR_SERVICE,
        "command": [sys.executable, "-m", "onsite.cli", "audit", "anchor", "--file", str(ledger_anchor_file(settings, hub)),
                    "--every", str(hub.anchor_interval_s)],
        "environment": settings.environ(),
    }


def secret_file(path: Path, nbytes: int = 32) -> Path:
    """Create `path` with a fresh random hex secret, mode 0600, unless it exists.

    An existing file that others can read is refused: JupyterHub would refuse
    it too, later and less clearly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise UserError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}") from None
        return path
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(nbytes))
    return path


def singleuser_command() -> list[str]:
    """The venv's jupyterhub-singleuser, so servers run with the hub's packages."""
    return [str(Path(sys.executable).parent / "jupyterhub-singleuser")]


def configure(c: Config, settings: Settings, hub: HubSettings, ldap: LdapSettings | None = None) -> None:
    """Fill the traitlets config `c` for a hub serving `settings` as `hub` says.

    The public address is `hub.ip`:`hub.port` (the proxy). The hub API, the
    proxy's REST API, the review service and the admin service listen on free
    loopback ports (the site's config file may fix them, e.g. c.JupyterHub.hub_port).
    With `ldap`, people log in against that directory; else against the local store.
    """
    if not hub.proxy_command.exists():
        raise UserError(f"the proxy is not installed at {hub.proxy_command}: run `make up` (or `npm ci`) in "
                        f"{PROJECT_ROOT}, or set {setting_name(HubSettings, 'proxy_command')} to an installed "
                        "configurable-http-proxy")
    prepare_runtime_dir(settings)
    configure_hub_app(c, settings, hub)
    configure_proxy(c, settings, hub)
    review_url = f"http://127.0.0.1:{free_port()}"
    configure_services(c, settings, hub, review_url)
    configure_login(c, settings, ldap)
    configure_spawner(c, settings, review_url)


def prepare_runtime_dir(settings: Settings) -> None:
    """run/ holds the hub's secrets: private to the hub's account. workspaces/ is traversed, never listed."""
    settings.runtime_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.runtime_dir, 0o700)
    settings.workspaces_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.workspaces_dir, stat.S_IMODE(settings.workspaces_dir.stat().st_mode) & 0o711)


def configure_hub_app(c: Config, settings: Settings, hub: HubSettings) -> None:
    """JupyterHub itself: address, database, secrets, pages, our authenticator and spawner."""
    run = settings.runtime_dir
    c.JupyterHub.ip = hub.ip
    c.JupyterHub.port = hub.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = free_port()
    c.JupyterHub.db_url = hub.hub_db_url or f"sqlite:///{run / 'jupyterhub.sqlite'}"
    if hub.ssl_cert is not None and hub.ssl_key is not None:
        c.JupyterHub.ssl_cert = str(hub.ssl_cert)
        c.JupyterHub.ssl_key = str(hub.ssl_key)
    c.JupyterHub.cookie_secret_file = str(secret_file(run / "jupyterhub_cookie_secret"))
    c.JupyterHub.pid_file = str(run / "jupyterhub.pid")
    c.JupyterHub.template_paths = [str(TEMPLATES_DIR)]
    # JupyterHub's pages in the browser's language, Japanese first (hub_config/pages.py).
    c.JupyterHub.jinja_environment_options = {"extensions": [HubPageLanguage]}
    c.JupyterHub.spawner_class = OnsiteSpawner
    c.JupyterHub.allow_named_servers = False
    c.JupyterHub.concurrent_spawn_limit = hub.concurrent_spawn_limit
    c.JupyterHub.default_url = default_url
    # Servers post what happens in a session to the hub, which writes it to the ledger (hub_config.audit_sink).
    c.JupyterHub.extra_handlers = session_event_handlers()
    c.JupyterHub.load_roles = [
        {"name": "user", "description": "Onsite researchers and reviewers", "scopes": USER_SCOPES},
        IDLE_CULLER_ROLE,
        ADMIN_SERVICE_ROLE,
        REVIEW_SERVICE_ROLE,
        CLI_SERVICE_ROLE,
    ]


def configure_proxy(c: Config, settings: Settings, hub: HubSettings) -> None:
    """The proxy the hub starts (a site with its own proxy unit sets should_start = False)."""
    run = settings.runtime_dir
    c.ConfigurableHTTPProxy.command = [str(hub.proxy_command)]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{free_port()}"
    c.ConfigurableHTTPProxy.auth_token = secret_file(run / "proxy_auth_token").read_text().strip()
    c.ConfigurableHTTPProxy.pid_file = str(run / "jupyterhub-proxy.pid")


def configure_services(c: Config, settings: Settings, hub: HubSettings, review_url: str) -> None:
    """The review and admin services (same state and config file as the hub), the idle culler, the ledger's
    anchor service, the CLI's token.

    The hub API address for `onsite admin sessions` is written by the running hub
    (`hub_app_class`), after the site's overrides of hub_port / hub_bind_url.
    """
    def web_service(name: str, module: str, url: str, description: str) -> dict:
        return {"name": name, "display": True, "info": {"description": description}, "url": url,
                "command": [sys.executable, "-m", module], "environment": settings.environ(), "oauth_no_confirm": True}

    c.JupyterHub.services = [
        web_service(REVIEW_SERVICE, "review_service", review_url, "Disclosure review of release requests"),
        web_service(ADMIN_SERVICE, "admin_service", f"http://127.0.0.1:{free_port()}", "Onsite administration"),
        idle_culler_service(hub.idle_timeout_s, hub.max_session_s),
        anchor_service(settings, hub),
        {"name": CLI_SERVICE, "api_token": secret_file(settings.runtime_dir / CLI_TOKEN_FILE).read_text().strip()},
    ]


def configure_login(c: Config, settings: Settings, ldap: LdapSettings | None) -> None:
    """Client address, password, then the access decision, and every later request judged by its
    address (access_control.addresses): against the local store, or the LDAP directory `ldap`
    (the same settings as the admin commands; see docs/how-to/ldap.md)."""
    c.JupyterHub.authenticator_class = OnsiteAuthenticator if ldap is None else OnsiteLDAPAuthenticator
    c.Authenticator.manage_roles = True
    c.Authenticator.reset_managed_roles_on_startup = True
    c.Authenticator.enable_auth_state = False
    c.OnsiteAuthenticator.settings = settings
    # Read as the services read it (the same config file and environment), refused here if wrong.
    c.OnsiteAuthenticator.address_policy = AddressPolicy(config=load_config([AddressPolicy], {**os.environ, **settings.environ()}))
    if ldap is not None:
        for name, value in ldap_traits(ldap).items():
            setattr(c.OnsiteLDAPAuthenticator, name, value)


def configure_spawner(c: Config, settings: Settings, review_url: str) -> None:
    """Researchers' servers: the venv's single-user server with the Onsite kernelspec."""
    c.Spawner.cmd = singleuser_command()
    c.Spawner.default_url = "/lab"
    c.Spawner.disable_user_config = True
    c.Spawner.server_token_scopes = SERVER_TOKEN_SCOPES
    c.Spawner.http_timeout = 60
    c.Spawner.start_timeout = 90
    c.OnsiteSpawner.settings = settings
    c.OnsiteSpawner.review_url = f"{review_url}/services/{REVIEW_SERVICE}/"
    c.OnsiteSpawner.kernel_data_dir = str(write_kernelspec(settings))
    c.OnsiteSpawner.interrupt_timeout = 5
    c.OnsiteSpawner.term_timeout = 5


def site_config_file(settings: Settings) -> Path:
    """The config file whose JupyterHub settings the hub applies over Onsite's (absent by default)."""
    return settings.config_file or settings.home / CONFIG_FILE_NAME


def reset_sigint() -> None:
    """Make SIGINT stop this process and every child it starts.

    A process started as a background job of a non-interactive shell inherits
    SIGINT *ignored*, and an ignored signal stays ignored across exec: the proxy,
    the review service and the servers would then ignore the hub's SIGINT on
    shutdown and each be waited for until its timeout (about a minute in all).
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)


def hub_app_class(settings: Settings) -> type:
    """JupyterHub reading only the site's config file and publishing its effective API address."""

    class OnsiteHub(JupyterHub):
        def load_config_file(self, filename, path=None):
            # Never a jupyterhub_config.py lying in the cwd; only the site's config file
            # (e.g. c.JupyterHub.hub_port, c.OnsiteSpawner.isolate), applied over ours.
            site_file = site_config_file(settings)
            if site_file.is_file():
                super().load_config_file(str(site_file))

        def init_hub(self):
            super().init_hub()
            # The address JupyterHub gives servers and services, whatever hub_port,
            # hub_bind_url or hub_connect_url the site set: `onsite admin sessions` uses it.
            (settings.runtime_dir / HUB_API_URL_FILE).write_text(self.hub.api_url.rstrip("/") + "\n")

    return OnsiteHub


def run_hub(settings: Settings, hub: HubSettings, ldap: LdapSettings | None, *, log_level: str = "INFO",
            on_ready: Callable[[], None] | None = None) -> int:
    """Run JupyterHub in this process until Ctrl-C (or SIGTERM); `on_ready` runs once it answers."""
    reset_sigint()
    c = Config()
    configure(c, settings, hub, ldap)
    c.JupyterHub.log_level = log_level
    app = hub_app_class(settings).instance(config=c)
    app._init_asyncio_patch()
    loop = IOLoop(make_current=False)
    try:
        loop.run_sync(lambda: app.launch_instance_async([]))
        if on_ready is not None:
            on_ready()
        loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        loop.stop()
        loop.close()
        if os.geteuid() == 0 and app.cleanup_servers:
            # What a server that did not stop cleanly left behind; another hub's sessions keep theirs.
            remove_leftover_session_rules(app.config.OnsiteSpawner.get(
                "account_prefix", OnsiteSpawner.account_prefix.default_value))
    return 0
