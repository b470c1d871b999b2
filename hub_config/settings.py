"""The hub's own settings (`HubSettings`), without JupyterHub: `onsite audit verify` and
`onsite audit anchor` read the anchor file from them and the CLI finds the hub's token and API
address by the file names here, each without loading JupyterHub (1.5 s). hub_config.config
builds the hub from them."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from traitlets import Bool, CaselessStrEnum, Int, TraitError, Unicode, default, validate

from access_control.audit import default_anchor_file
from access_control.ledger import default_key_file
from access_control.ldap import LdapSettings
from onsite_base.config import Section, load_config, setting_name
from onsite_base.settings import AbsolutePath, Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROXY_COMMAND = PROJECT_ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
CLI_TOKEN_FILE = "cli-api-token"
HUB_API_URL_FILE = "hub-api-url"
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

    session_engine = CaselessStrEnum(
        ["local", "slurm"],
        default_value="local",
        help="""Where researchers' sessions run. `local`: on this host, as processes of the hub
        (OnsiteSpawner). `slurm`: as Slurm jobs on a compute cluster (OnsiteSlurmSpawner,
        batchspawner's SlurmSpawner with the same account, groups, locked server and
        re-check); the nodes need the Onsite installation, the shared datasets and
        workspaces paths and the Prolog/Epilog of docs/how-to/operator.md ("Sessions on a
        Slurm cluster"). Set its Slurm options on c.OnsiteSlurmSpawner.""",
    ).tag(config=True, env="ONSITE_SESSION_ENGINE")

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
        1); each also signs a tree head of the ledger's Merkle tree (`onsite audit head`).
        Events written after the last anchor can be deleted unnoticed: this is that window.
        Each anchor re-verifies the whole chain (a read; writers are not held up).""",
    ).tag(config=True, env="ONSITE_ANCHOR_INTERVAL_S")

    ledger_key_file = AbsolutePath(
        None,
        allow_none=True,
        help="""The ledger's Ed25519 signing key (PEM), which signs its tree heads; made when absent
        (0600). Refused when another account may read or change it. Unset: in the folder of
        anchor_file (ledger-key-<store>.pem), outside the state directory. Publish its public
        key (`onsite audit public-key`) to whoever checks proofs or witnesses the log.""",
    ).tag(config=True, env="ONSITE_LEDGER_KEY_FILE")

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



def ledger_key_file(settings: Settings, hub: HubSettings) -> Path:
    """The ledger's signing key: `hub.ledger_key_file`, else beside the anchor file."""
    if hub.ledger_key_file:
        return hub.ledger_key_file
    default = default_key_file(settings.db_url)
    return hub.anchor_file.parent / default.name if hub.anchor_file else default


def ledger_anchor_file(settings: Settings, hub: HubSettings) -> Path:
    """Where the ledger's anchors go: `hub.anchor_file`, else outside the state directory."""
    return hub.anchor_file or default_anchor_file(settings.db_url)


HUB_SETTINGS = (Settings, HubSettings, LdapSettings)
"""The sections the hub reads."""


def load_hub_settings(environ: Mapping[str, str] | None = None) -> tuple[Settings, HubSettings, LdapSettings | None]:
    """The hub's sections from the config file and the environment."""
    config = load_config(HUB_SETTINGS, environ)
    return Settings(config=config), HubSettings(config=config), LdapSettings.configured(config)
