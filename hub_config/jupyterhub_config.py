"""JupyterHub configuration file for running Onsite with the `jupyterhub` command.

    jupyterhub -f hub_config/jupyterhub_config.py

Normally `onsite hub` (or `onsite up`) runs the hub with the same configuration;
this file is for operators who start JupyterHub themselves (systemd units,
containers). Settings come from $ONSITE_HOME / $ONSITE_DB_URL; the public
address from $ONSITE_HUB_IP / $ONSITE_HUB_PORT (default 127.0.0.1:8000).
"""
import os

from hub_config.config import configure
from onsite_base.settings import Settings

c = get_config()  # noqa: F821 (defined by the traitlets config loader)
configure(
    c,
    Settings.from_env(),
    ip=os.environ.get("ONSITE_HUB_IP", "127.0.0.1"),
    port=int(os.environ.get("ONSITE_HUB_PORT", "8000")),
)
