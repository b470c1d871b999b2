"""The whole JupyterHub configuration of Onsite, built from `Settings`.

`configure(c, settings)` fills a traitlets `Config` (the `c` of a
`jupyterhub_config.py`): our authenticator and spawner, the hub's own
database, secrets created 0600 in `settings.runtime_dir`, the proxy installed
in the project, the review service as a managed JupyterHub service, and the
roles. `run_hub()` starts JupyterHub in this process with that configuration.
"""
from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from singleuser.kernelspec import write_kernelspec  # noqa: F401 (part of this module's API)
from onsite_base.errors import UserError
from onsite_base.settings import Settings

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROXY_COMMAND = PROJECT_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
REVIEW_SERVICE = "onsite-review"
ADMIN_SERVICE = "onsite-admin"

# Hub roles mirror the policy store's roles and are synced from it at every
# log-in (the authenticator manages them). None holds `self`, which would let a
# person create API tokens and share servers (issue 6 attacks both).
RESEARCHER_ROLE = {
    "name": "onsite-researcher",
    "description": "Onsite researcher: own server, the review service",
    "scopes": [
        "read:users!user",
        "users:activity!user",
        "servers!user",
        "access:servers!user",
        f"access:services!service={REVIEW_SERVICE}",
    ],
}
REVIEWER_ROLE = {
    "name": "onsite-reviewer",
    "description": "Onsite reviewer (output checker): the review service only, no server",
    "scopes": ["read:users!user", f"access:services!service={REVIEW_SERVICE}"],
}
# Administrators manage the hub (see users, stop servers) but cannot open a
# researcher's server: no `access:servers`, no `tokens`.
HUB_MANAGER_ROLE = {
    "name": "onsite-hub-manager",
    "description": "Onsite administrator: hub management without access to researchers' servers",
    "scopes": [
        "admin-ui",
        "list:users",
        "read:users",
        "read:servers",
        "servers",
        "list:services",
        "read:services",
        "read:hub",
        f"access:services!service={REVIEW_SERVICE}",
        f"access:services!service={ADMIN_SERVICE}",  # the admin pages: nobody else holds this scope
    ],
}
# The admin service's own token: see who is in a session and end it (least
# privilege: without read:servers the hub lists nobody's server).
ADMIN_SERVICE_ROLE = {
    "name": "onsite-admin-service",
    "description": "The admin service's own token: see and stop sessions",
    "scopes": ["list:users", "read:servers", "delete:servers"],
    "services": [ADMIN_SERVICE],
}
# `onsite admin sessions` on the hub's machine: a token-only service (no url, no
# command) whose token and the hub API address are files in the runtime directory.
CLI_SERVICE = "onsite-cli"
CLI_TOKEN_FILE = "cli-api-token"
HUB_API_URL_FILE = "hub-api-url"
CLI_SERVICE_ROLE = {
    "name": "onsite-cli-service",
    "description": "`onsite admin sessions`: see and stop sessions",
    "scopes": ["list:users", "read:servers", "delete:servers"],
    "services": [CLI_SERVICE],
}
# JupyterHub's default role of every user: nothing beyond reading oneself, so
# an account the authenticator did not give an Onsite role can do nothing.
USER_SCOPES = ["read:users!user"]
# The single-user server's own token: activity, its own server, and the review
# service (the release outbox forwarder posts with it).
SERVER_TOKEN_SCOPES = [
    "users:activity!user",
    "access:servers!server",
    f"access:services!service={REVIEW_SERVICE}",
]


IDLE_CULLER_SERVICE = "onsite-idle-culler"
DEFAULT_IDLE_TIMEOUT_S = 3600
DEFAULT_MAX_SESSION_S = 10 * 3600  # a facility's opening hours
# The culler stops servers; it reads activity but holds no access to any server.
IDLE_CULLER_ROLE = {
    "name": "onsite-idle-culler",
    "description": "Stops idle servers and servers past the maximum session length",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": [IDLE_CULLER_SERVICE],
}


def idle_culler_service(idle_timeout_s: int, max_session_s: int) -> dict:
    """jupyterhub-idle-culler as a hub-managed service: a server idle for `idle_timeout_s`
    or running for `max_session_s` (0: no maximum) is stopped, checked every minute or
    more often for short limits."""
    if idle_timeout_s < 1 or max_session_s < 0:
        raise UserError("the idle timeout must be at least 1 s and the maximum session length 0 (none) or more")
    every = max(1, min(60, idle_timeout_s // 2, max_session_s // 2 or 60))
    return {
        "name": IDLE_CULLER_SERVICE,
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={idle_timeout_s}",
                    f"--max-age={max_session_s}", f"--cull-every={every}", "--remove-named-servers=false"],
    }


def check_production(db_url: str, ssl_cert: str | None, ssl_key: str | None) -> None:
    """The production profile needs PostgreSQL for the hub's database and HTTPS."""
    problems = []
    if not db_url.startswith(("postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://")):
        problems.append("set ONSITE_HUB_DB_URL to a PostgreSQL URL (postgresql://...) for the hub's database")
    if not (ssl_cert and ssl_key):
        problems.append("give the HTTPS certificate and key (ONSITE_SSL_CERT and ONSITE_SSL_KEY)")
    for path in (ssl_cert, ssl_key):
        if path and not Path(path).is_file():
            problems.append(f"{path} does not exist")
    if problems:
        raise UserError("the production profile is not satisfied: " + "; ".join(problems))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (there is a small race; fine for local use)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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


def configure(
    c,
    settings: Settings,
    *,
    ip: str = "127.0.0.1",
    port: int = 8000,
    hub_port: int | None = None,
    proxy_api_port: int | None = None,
    review_port: int | None = None,
    admin_port: int | None = None,
    concurrent_spawn_limit: int = 20,
    trusted_proxy_ips: list[str] | None = None,
    idle_timeout_s: int | None = None,
    max_session_s: int | None = None,
    production: bool | None = None,
    ssl_cert: str | None = None,
    ssl_key: str | None = None,
) -> None:
    """Fill the traitlets config `c` for a hub serving `settings`.

    `ip`/`port` is the public address (the proxy). The hub API, the proxy's
    REST API, the review service and the admin service listen on loopback ports, free ones unless
    given. Sessions idle for `idle_timeout_s` or older than `max_session_s`
    are stopped (defaults: $ONSITE_IDLE_TIMEOUT_S or 3600, $ONSITE_MAX_SESSION_S
    or 36000). `ssl_cert`/`ssl_key` ($ONSITE_SSL_CERT/$ONSITE_SSL_KEY) make
    the public address HTTPS. `production` ($ONSITE_PRODUCTION=1) refuses to
    start without PostgreSQL as the hub's database and without HTTPS.
    """
    env = os.environ
    idle_timeout_s = idle_timeout_s if idle_timeout_s is not None else int(env.get("ONSITE_IDLE_TIMEOUT_S", DEFAULT_IDLE_TIMEOUT_S))
    max_session_s = max_session_s if max_session_s is not None else int(env.get("ONSITE_MAX_SESSION_S", DEFAULT_MAX_SESSION_S))
    production = production if production is not None else env.get("ONSITE_PRODUCTION", "") == "1"
    ssl_cert = ssl_cert or env.get("ONSITE_SSL_CERT") or None
    ssl_key = ssl_key or env.get("ONSITE_SSL_KEY") or None
    hub_db_url = env.get("ONSITE_HUB_DB_URL") or f"sqlite:///{settings.runtime_dir / 'jupyterhub.sqlite'}"
    if hub_db_url.startswith("postgresql://"):  # SQLAlchemy would pick psycopg2; Onsite ships psycopg 3
        hub_db_url = "postgresql+psycopg://" + hub_db_url.removeprefix("postgresql://")
    if production:
        check_production(hub_db_url, ssl_cert, ssl_key)
    # A deployment installed from a wheel uses Debian's proxy (ansible/); a checkout its own node_modules.
    proxy_command = Path(env.get("ONSITE_PROXY_COMMAND") or PROXY_COMMAND)
    if not proxy_command.exists():
        raise UserError(f"the proxy is not installed at {proxy_command}: run `make up` (or `npm ci`) in {PROJECT_ROOT}, "
                        "or set ONSITE_PROXY_COMMAND to an installed configurable-http-proxy")
    run = settings.runtime_dir
    run.mkdir(parents=True, exist_ok=True)
    os.chmod(run, 0o700)
    settings.workspaces_dir.mkdir(parents=True, exist_ok=True)

    from hub_config.authenticator import OnsiteAuthenticator, default_url
    from hub_config.pages import HubPageLanguage
    from hub_config.spawner import OnsiteSpawner

    c.JupyterHub.ip = ip
    c.JupyterHub.port = port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = hub_port or free_port()
    c.JupyterHub.db_url = hub_db_url
    if ssl_cert and ssl_key:
        c.JupyterHub.ssl_cert = ssl_cert
        c.JupyterHub.ssl_key = ssl_key
    c.JupyterHub.cookie_secret_file = str(secret_file(run / "jupyterhub_cookie_secret"))
    c.JupyterHub.pid_file = str(run / "jupyterhub.pid")
    c.JupyterHub.template_paths = [str(TEMPLATES_DIR)]
    # JupyterHub's pages in the browser's language, Japanese first (hub_config/pages.py).
    c.JupyterHub.jinja_environment_options = {"extensions": [HubPageLanguage]}
    c.JupyterHub.authenticator_class = OnsiteAuthenticator
    configure_ldap(c)
    c.JupyterHub.spawner_class = OnsiteSpawner
    c.JupyterHub.allow_named_servers = False
    c.JupyterHub.concurrent_spawn_limit = concurrent_spawn_limit
    c.JupyterHub.default_url = default_url

    c.ConfigurableHTTPProxy.command = [str(proxy_command)]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{proxy_api_port or free_port()}"
    c.ConfigurableHTTPProxy.auth_token = secret_file(run / "proxy_auth_token").read_text().strip()
    c.ConfigurableHTTPProxy.pid_file = str(run / "jupyterhub-proxy.pid")

    review_url = f"http://127.0.0.1:{review_port or free_port()}"
    c.JupyterHub.services = [
        {
            "name": REVIEW_SERVICE,
            "display": True,
            "info": {"description": "Disclosure review of release requests"},
            "url": review_url,
            "command": [sys.executable, "-m", "review_service"],
            "environment": settings.environ(),
            "oauth_no_confirm": True,
        },
        {
            "name": ADMIN_SERVICE,
            "display": True,
            "info": {"description": "Onsite administration"},
            "url": f"http://127.0.0.1:{admin_port or free_port()}",
            "command": [sys.executable, "-m", "admin_service"],
            "environment": settings.environ(),
            "oauth_no_confirm": True,
        },
        idle_culler_service(idle_timeout_s, max_session_s),
        {"name": CLI_SERVICE, "api_token": secret_file(run / CLI_TOKEN_FILE).read_text().strip()},
    ]
    # The hub API address for `onsite admin sessions` is written by the running hub
    # (`hub_app_class`), after the site's overrides of hub_port / hub_bind_url.
    # Servers post what happens in a session to the hub, which writes it to the ledger (hub_config.audit_sink).
    from hub_config.audit_sink import session_event_handlers

    c.JupyterHub.extra_handlers = session_event_handlers()

    c.Authenticator.manage_roles = True
    c.Authenticator.reset_managed_roles_on_startup = True
    c.Authenticator.enable_auth_state = False
    c.OnsiteAuthenticator.settings = settings
    if trusted_proxy_ips is not None:
        c.OnsiteAuthenticator.trusted_proxy_ips = trusted_proxy_ips
    c.JupyterHub.load_roles = [
        {"name": "user", "description": "Onsite researchers and reviewers", "scopes": USER_SCOPES},
        IDLE_CULLER_ROLE,
        ADMIN_SERVICE_ROLE,
        CLI_SERVICE_ROLE,
    ]

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


def configure_ldap(c) -> None:
    """With ONSITE_LDAP_URI set, log people in against the LDAP directory (same
    ONSITE_LDAP_* settings as the admin commands; see docs/how-to/ldap.md)."""
    from access_control.ldap import LdapSettings, LdapSettingsInvalid

    try:
        ldap_settings = LdapSettings.from_env()
    except LdapSettingsInvalid as e:
        raise UserError(f"the LDAP settings are invalid: {e}") from None
    if ldap_settings is None:
        return
    from hub_config.ldap_authenticator import OnsiteLDAPAuthenticator, ldap_traits

    c.JupyterHub.authenticator_class = OnsiteLDAPAuthenticator
    for name, value in ldap_traits(ldap_settings).items():
        setattr(c.OnsiteLDAPAuthenticator, name, value)


def site_config_file(settings: Settings) -> Path:
    """Optional site overrides, loaded after `configure()` (absent by default)."""
    return settings.home / "jupyterhub_config.py"


def reset_sigint() -> None:
    """Make SIGINT stop this process and every child it starts.

    A process started as a background job of a non-interactive shell inherits
    SIGINT *ignored*, and an ignored signal stays ignored across exec: the proxy,
    the review service and the servers would then ignore the hub's SIGINT on
    shutdown and each be waited for until its timeout (about a minute in all).
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)


def hub_app_class(settings: Settings) -> type:
    """JupyterHub reading only the site's overrides and publishing its effective API address."""
    from jupyterhub.app import JupyterHub

    class OnsiteHub(JupyterHub):
        def load_config_file(self, filename, path=None):
            # Never a jupyterhub_config.py lying in the cwd; only the site's own
            # overrides in $ONSITE_HOME (e.g. LDAP settings), applied over ours.
            site_file = site_config_file(settings)
            if site_file.is_file():
                super().load_config_file(str(site_file))

        def init_hub(self):
            super().init_hub()
            # The address JupyterHub gives servers and services, whatever hub_port,
            # hub_bind_url or hub_connect_url the site set: `onsite admin sessions` uses it.
            (settings.runtime_dir / HUB_API_URL_FILE).write_text(self.hub.api_url.rstrip("/") + "\n")

    return OnsiteHub


def run_hub(settings: Settings, *, ip: str = "127.0.0.1", port: int = 8000, log_level: str = "INFO",
            on_ready: Callable[[], None] | None = None) -> int:
    """Run JupyterHub in this process until Ctrl-C (or SIGTERM); `on_ready` runs once it answers."""
    from tornado.ioloop import IOLoop
    from traitlets.config import Config

    reset_sigint()
    c = Config()
    configure(c, settings, ip=ip, port=port)
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
            from hub_config.netfilter import remove_all_session_rules

            remove_all_session_rules()  # what a server that did not stop cleanly left behind
    return 0
