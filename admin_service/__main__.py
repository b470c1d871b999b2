"""Run the admin pages as a JupyterHub managed service: `python -m admin_service`.

JupyterHub passes JUPYTERHUB_SERVICE_URL (where to listen), JUPYTERHUB_SERVICE_PREFIX
(e.g. /services/onsite-admin/), JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN (the
service's own token: its role needs list:users, read:servers, delete:servers)
and the OAuth variables; the hub also passes ONSITE_HOME, ONSITE_DB_URL and
ONSITE_CONFIG, so the service reads the same config file and state (`Settings`) and the
client address rules every request passes (`AddressPolicy`) and the operations view's (`OperationsView`).
The database must already be migrated (the hub does it).
"""
from __future__ import annotations

import os
import sys

from tornado import web
from traitlets.config import Config

from access_control.addresses import AddressPolicy, service_check
from access_control.operations import OperationsView
from admin_service.app import SERVICE_NAME, make_app
from onsite_base.settings import Settings
from onsite_base.web.service import run


def serving_app(settings: Settings, config: Config, prefix: str) -> web.Application:
    """The app, its usage projection folded from the start (admin_service.operations.UsageKeeper)."""
    app = make_app(settings, prefix=prefix)
    app.settings["usage_keeper"].start()
    return app


def main() -> int:
    return run(serving_app, SERVICE_NAME, dict(os.environ), sections=(AddressPolicy, OperationsView), check_client=service_check)


if __name__ == "__main__":
    sys.exit(main())
