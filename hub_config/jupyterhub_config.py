"""JupyterHub configuration file for running Onsite with the `jupyterhub` command.

    jupyterhub -f hub_config/jupyterhub_config.py

Normally `onsite hub` (or `onsite up`) runs the hub with the same configuration;
this file is for operators who start JupyterHub themselves (systemd units,
containers). Like `onsite hub` it reads the config file ($ONSITE_CONFIG, else
$ONSITE_HOME/onsite_config.py) and then the environment (docs/reference/settings.md),
and applies the site's config file over Onsite's configuration.
"""
from hub_config.config import configure, load_hub_settings, site_config_file

c = get_config()  # noqa: F821 (defined by the traitlets config loader)
settings, hub, ldap = load_hub_settings()
configure(c, settings, hub, ldap)
if site_config_file(settings).is_file():
    load_subconfig(str(site_config_file(settings)))  # noqa: F821 (defined by the traitlets config loader)
