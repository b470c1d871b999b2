"""Hub wiring that needs no running hub: client addresses, secrets, the kernelspec, the config."""
from __future__ import annotations

import json
import os
import stat
from types import SimpleNamespace

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from traitlets.config import Config

from hub_config.authenticator import EntryDenied, client_address, entry_message
from hub_config.roles import HUB_MANAGER_ROLE, REVIEW_SERVICE
from hub_config.settings import HubSettings
from access_control.entry import DenialReason
from onsite_base.errors import UserError
from onsite_base.settings import Settings
from singleuser.kernelspec import write_kernelspec

TRUSTED = {"127.0.0.1", "::1"}


def request_from(peer: str, **headers: str) -> HTTPServerRequest:
    """A real tornado request as the hub's HTTP server builds it for a TCP peer."""
    connection = SimpleNamespace(context=SimpleNamespace(address=(peer, 50000), remote_ip=peer), set_close_callback=lambda cb: None)
    start = RequestStartLine("POST", "/hub/login", "HTTP/1.1")
    return HTTPServerRequest(start_line=start, headers=HTTPHeaders({"Host": "127.0.0.1:8000", **headers}), connection=connection)


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # the proxy (loopback) appended the browser's address: believed
        ("127.0.0.1", {"X-Forwarded-For": "10.1.2.3"}, "10.1.2.3"),
        # a browser's own claim comes first; the proxy's entry is last and wins
        ("127.0.0.1", {"X-Forwarded-For": "10.0.0.9, 10.1.2.3"}, "10.1.2.3"),
        # X-Real-Ip is passed through untouched by the proxy: never believed
        ("127.0.0.1", {"X-Forwarded-For": "10.1.2.3", "X-Real-Ip": "10.0.0.9"}, "10.1.2.3"),
        # a peer that is not a trusted proxy: its headers are ignored
        ("10.1.2.3", {"X-Forwarded-For": "10.0.0.9", "X-Real-Ip": "10.0.0.9"}, "10.1.2.3"),
        # IPv4-mapped IPv6 from a dual-stack proxy socket
        ("127.0.0.1", {"X-Forwarded-For": "::ffff:10.1.2.3"}, "10.1.2.3"),
        # a direct local connection without headers is itself
        ("127.0.0.1", {}, "127.0.0.1"),
        ("::1", {"X-Forwarded-For": "2001:db8::7"}, "2001:db8::7"),
    ],
)
def test_client_address_trusts_only_the_proxys_entry(peer, headers, expected):
    assert client_address(request_from(peer, **headers), TRUSTED) == expected


def test_client_address_walks_a_chain_of_trusted_proxies():
    # browser -> TLS front end 192.0.2.10 -> configurable-http-proxy (loopback) -> hub
    request = request_from("127.0.0.1", **{"X-Forwarded-For": "10.0.0.9, 10.1.2.3, 192.0.2.10"})
    assert client_address(request, TRUSTED) == "192.0.2.10"
    assert client_address(request, TRUSTED | {"192.0.2.10"}) == "10.1.2.3"


def test_entry_refusal_shows_every_reason_in_both_languages():
    reasons = (DenialReason.NO_ACTIVE_PROJECT, DenialReason.TERMINAL_NOT_REGISTERED)
    error = EntryDenied(reasons)
    assert error.status_code == 403
    for reason in reasons:
        assert reason.message("ja") in error.jupyterhub_message
        assert reason.message("en") in error.jupyterhub_message
    assert entry_message(reasons) == error.jupyterhub_message


@pytest.fixture(scope="module")
def hub_configuration():
    """hub_config.config, for the tests that use it."""
    # heavy: it loads jupyterhub.app and with it jsonschema (2-3 CPU-s): imported on the worker that runs these
    # tests (this file is an xdist group), not by every process that collects this file
    from hub_config import config

    return config


def test_secret_file_is_created_private_and_kept(tmp_path, hub_configuration):
    secret_file = hub_configuration.secret_file
    path = secret_file(tmp_path / "run" / "cookie")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    assert len(bytes.fromhex(first)) == 32
    assert secret_file(path).read_text() == first  # reused, not regenerated


def test_secret_file_readable_by_others_is_refused(tmp_path, hub_configuration):
    path = tmp_path / "token"
    path.write_text("abc")
    os.chmod(path, 0o644)
    with pytest.raises(UserError, match="chmod 600"):
        hub_configuration.secret_file(path)
    assert path.read_text() == "abc"


def test_kernelspec_strips_hub_secrets(tmp_path):
    settings = Settings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'x.sqlite'}")
    data_dir = write_kernelspec(settings)
    spec = json.loads((data_dir / "kernels" / "onsite" / "kernel.json").read_text())
    argv = spec["argv"]
    assert argv[0] == "/usr/bin/env"
    stripped = {argv[i + 1] for i, a in enumerate(argv) if a == "-u"}
    assert {"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "ONSITE_REVIEW_URL"} <= stripped
    assert os.access(argv[argv.index("-m") - 1], os.X_OK)


def test_configure_wires_the_parts(tmp_path, hub_configuration):
    settings = Settings(home=tmp_path / "home", db_url=f"sqlite:///{tmp_path / 'onsite.sqlite'}")
    c = Config()
    hub_configuration.configure(c, settings, HubSettings(port=8123))
    assert c.JupyterHub.port == 8123
    assert c.JupyterHub.allow_named_servers is False
    service = c.JupyterHub.services[0]
    assert service["name"] == REVIEW_SERVICE
    assert service["environment"] == settings.environ()  # same store and state as the hub
    assert f"access:services!service={REVIEW_SERVICE}" in c.Spawner.server_token_scopes
    assert os.access(c.ConfigurableHTTPProxy.command[0], os.X_OK)
    assert os.access(c.Spawner.cmd[0], os.X_OK)
    for secret in (c.JupyterHub.cookie_secret_file, settings.runtime_dir / "proxy_auth_token"):
        assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert stat.S_IMODE(settings.runtime_dir.stat().st_mode) == 0o700
    # administrators manage the hub but cannot reach researchers' servers or mint tokens
    assert not {"access:servers", "tokens", "admin:users"} & set(HUB_MANAGER_ROLE["scopes"])


def test_configure_uses_the_proxy_named_by_onsite_proxy_command(tmp_path, monkeypatch, hub_configuration):
    """A deployment from a wheel (ansible/) has no node_modules: it names Debian's proxy (the variable, or the file)."""
    settings = Settings(home=tmp_path / "home", db_url=f"sqlite:///{tmp_path / 'onsite.sqlite'}")
    installed = tmp_path / "configurable-http-proxy"
    installed.write_text("#!/bin/sh\n")
    monkeypatch.setenv("ONSITE_PROXY_COMMAND", str(installed))
    configure = hub_configuration.configure
    c = Config()
    configure(c, settings, HubSettings.load())
    assert c.ConfigurableHTTPProxy.command == [str(installed)]
    monkeypatch.setenv("ONSITE_PROXY_COMMAND", str(tmp_path / "missing"))
    with pytest.raises(UserError, match=f"not installed at {tmp_path / 'missing'}.*ONSITE_PROXY_COMMAND"):
        configure(Config(), settings, HubSettings.load())
