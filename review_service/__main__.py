"""Run the reviewer app as a JupyterHub managed service: `python -m review_service`.

JupyterHub passes JUPYTERHUB_SERVICE_URL (where to listen), JUPYTERHUB_SERVICE_PREFIX
(the URL prefix, e.g. /services/onsite-review/) and the OAuth variables; the
Onsite state comes from ONSITE_HOME / ONSITE_DB_URL (Settings.from_env). The
database must already be migrated (`onsite up` and the hub do it).
"""
from __future__ import annotations

import os
import sys

from onsite_base.web.service import run


def main() -> int:
    from review_service.app import make_app

    return run(make_app, "onsite-review", dict(os.environ))


if __name__ == "__main__":
    sys.exit(main())
