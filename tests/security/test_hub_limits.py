"""The hub's own settings: HTTPS with a certificate, sessions stopped at the maximum
length by the idle culler, and the production profile that refuses SQLite and plain HTTP.

The hub here serves HTTPS with a self-signed certificate made for the test, and its
sessions are not OS-isolated (`OnsiteSpawner.isolate = False`): these tests are about
the hub, and the isolated hub of the other modules is left alone.
"""
from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from traitlets.config import Config

from functional.hubtools import HubUser, RunningHub
from functional.seeding import seed_demo
from hub_config.config import IDLE_CULLER_SERVICE, HubSettings, configure
from onsite_base.config import load_config
from onsite_base.errors import UserError
from onsite_base.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

MAX_SESSION_S = 20


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "hub.crt", directory / "hub.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    key.chmod(0o600)
    return cert, key


class HttpsHub(RunningHub):
    @property
    def url(self) -> str:
        return f"https://{self.ip}:{self.port}"


@pytest.fixture(scope="module")
def https_hub(monkeypatch_module):
    base = Path(tempfile.mkdtemp(prefix="onsite-https-"))
    cert, key = self_signed_certificate(base)
    settings, logins = seed_demo(base / "home", rows=300)
    (settings.home / "onsite_config.py").write_text("c.OnsiteSpawner.isolate = False\n")
    monkeypatch_module.setenv("REQUESTS_CA_BUNDLE", str(cert))  # the test's client trusts exactly this certificate
    hub = HttpsHub(settings.home)
    hub.env.update({"ONSITE_SSL_CERT": str(cert), "ONSITE_SSL_KEY": str(key), "ONSITE_MAX_SESSION_S": str(MAX_SESSION_S),
                    "ONSITE_IDLE_TIMEOUT_S": "600"})
    try:
        hub.start()
        yield hub, settings, logins, cert
    finally:
        hub.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_hub_serves_https_with_the_given_certificate(https_hub, record_attempt):
    hub, _, _, cert = https_hub
    assert requests.get(f"{hub.url}/hub/api/", timeout=10).status_code == 200
    served = ssl.get_server_certificate(("127.0.0.1", hub.port))
    assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(cert.read_text())
    with pytest.raises(requests.ConnectionError):  # no plain HTTP on the public port
        requests.get(f"http://127.0.0.1:{hub.port}/hub/api/", timeout=10)
    record_attempt("hub", "plain HTTP to the public port of an HTTPS hub", "connection closed")


def test_session_is_stopped_at_the_maximum_length(https_hub, record_attempt):
    hub, settings, logins, _ = https_hub
    user = HubUser(hub, "tanaka")
    assert user.login(logins["tanaka"].password).status_code == 302
    user.start_server()
    started = time.monotonic()
    api = f"{hub.url}/hub/api/users/tanaka"
    servers = {"": {}}
    while time.monotonic() - started < MAX_SESSION_S + 60 and servers:
        servers = user.http.get(api, headers=user._hub_xsrf(), timeout=10).json()["servers"]
        time.sleep(1)
    assert servers == {}, "the session outlived the maximum session length"
    assert time.monotonic() - started >= MAX_SESSION_S - 10  # not stopped for some other reason right away
    assert f"{IDLE_CULLER_SERVICE}" in hub.log_path.read_text(errors="replace")
    record_attempt("hub", f"keep a session past the maximum length ({MAX_SESSION_S} s in the test)", "server stopped by the culler")


def test_production_profile_requires_postgresql_and_https(tmp_path, monkeypatch):
    monkeypatch.delenv("ONSITE_HUB_DB_URL", raising=False)
    settings = Settings(home=tmp_path / "home", db_url=f"sqlite:///{tmp_path / 'p.sqlite'}")
    monkeypatch.setenv("ONSITE_PRODUCTION", "1")
    with pytest.raises(UserError) as refused:
        configure(Config(), settings, HubSettings.load())
    assert "PostgreSQL" in str(refused.value) and "ONSITE_SSL_CERT" in str(refused.value)
    cert, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("ONSITE_HUB_DB_URL", "postgresql://postgres@127.0.0.1:5432/jupyterhub")
    with pytest.raises(UserError, match="ONSITE_SSL_CERT"):
        configure(Config(), settings, HubSettings.load())
    c = Config()
    configure(c, settings, HubSettings(config=load_config([HubSettings]), ssl_cert=str(cert), ssl_key=str(key)))
    # a bare postgresql:// URL is taken to mean psycopg 3, the driver Onsite installs
    assert (c.JupyterHub.db_url, c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key) == (
        "postgresql+psycopg://postgres@127.0.0.1:5432/jupyterhub", str(cert), str(key))
    culler = next(s for s in c.JupyterHub.services if s["name"] == IDLE_CULLER_SERVICE)
    assert "--timeout=3600" in culler["command"] and "--max-age=36000" in culler["command"]
