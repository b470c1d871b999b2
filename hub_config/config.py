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
from collections.abc import Callable
from pathlib import Path

from jupyterhub.app import JupyterHub
from tornado.ioloop import IOLoop
from traitlets.config import Config

from access_control.addresses import AddressPolicy
from access_control.ldap import LdapSettings
from hub_config.audit_sink import session_event_handlers
from hub_config.authenticator import OnsiteAuthenticator, default_url
from hub_config.ldap_authenticator import OnsiteLDAPAuthenticator, ldap_traits
from hub_config.netfilter import remove_leftover_session_rules
from hub_config.pages import TEMPLATES_DIR, HubPageLanguage
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
from hub_config.settings import (  # noqa: F401 (HubSettings and the file names: part of this module's API)
    CLI_TOKEN_FILE,
    HUB_API_URL_FILE,
    PROJECT_ROOT,
    HUB_SETTINGS,
    HubSettings,
    ledger_anchor_file,
    load_hub_settings,
)
from hub_config.slurm import OnsiteSlurmSpawner, port_handler
from hub_config.spawner import OnsiteSpawner
from onsite_base.config import CONFIG_FILE_NAME, load_config, setting_name
from onsite_base.errors import UserError
from onsite_base.settings import Settings
from singleuser.kernelspec import write_kernelspec

log = logging.getLogger(__name__)

ANCHOR_SERVICE = "onsite-anchor"


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
    c.JupyterHub.spawner_class = OnsiteSlurmSpawner if hub.session_engine == "slurm" else OnsiteSpawner
    c.JupyterHub.allow_named_servers = False
    c.JupyterHub.concurrent_spawn_limit = hub.concurrent_spawn_limit
    c.JupyterHub.default_url = default_url
    # Servers post what happens in a session to the hub, which writes it to the ledger (hub_config.audit_sink).
    c.JupyterHub.extra_handlers = session_event_handlers() + ([port_handler()] if hub.session_engine == "slurm" else [])
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
