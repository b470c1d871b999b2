"""Run the admin pages as a JupyterHub managed service: `python -m admin_service`.

JupyterHub passes JUPYTERHUB_SERVICE_URL (where to listen), JUPYTERHUB_SERVICE_PREFIX
(e.g. /services/onsite-admin/), JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN (the
service's own token: its role needs list:users, read:servers, delete:servers)
and the OAuth variables; the Onsite state comes from ONSITE_HOME / ONSITE_DB_URL
(Settings.from_env). The database must already be migrated (the hub does it).
"""
from __future__ import annotations

import os
import sys

from onsite_base.web.service import run


def main() -> int:
    from admin_service.app import SERVICE_NAME, make_app

    return run(make_app, SERVICE_NAME, dict(os.environ))


if __name__ == "__main__":
    sys.exit(main())
