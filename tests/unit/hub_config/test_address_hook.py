"""The hub's request hook cannot be configured away: JupyterHub calls refresh_user on every request."""
from __future__ import annotations

from traitlets.config import Config

from hub_config.authenticator import OnsiteAuthenticator


def test_a_site_cannot_widen_the_refresh_age():
    config = Config()
    config.Authenticator.auth_refresh_age = 300
    config.OnsiteAuthenticator.auth_refresh_age = 300
    authenticator = OnsiteAuthenticator(config=config)
    # JupyterHub skips refresh_user while the last refresh is younger than this: never, in practice.
    assert 0 < authenticator.auth_refresh_age < 1e-300
    assert authenticator.trusted_proxy_ips == list(authenticator.address_policy.trusted_proxies)
