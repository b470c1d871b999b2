"""Run the reviewer app as a JupyterHub managed service: `python -m review_service`.

JupyterHub passes JUPYTERHUB_SERVICE_URL (where to listen), JUPYTERHUB_SERVICE_PREFIX
(the URL prefix, e.g. /services/onsite-review/) and the OAuth variables; the hub
also passes ONSITE_HOME, ONSITE_DB_URL and ONSITE_CONFIG, so the service reads the
same config file and state (`Settings`), its review rules (`ReviewPolicy`) and the
client address rules every request passes (`AddressPolicy`) from it, and where its
release signing key is (`ReleaseSigning`: made at the first start, refused while others may read it).
The database must already be migrated (`onsite up` and the hub do it).
"""
from __future__ import annotations

import os
import sys

from tornado import web
from traitlets.config import Config

from access_control.addresses import AddressPolicy, service_check
from disclosure_review.workflow import service, signing
from disclosure_review.workflow.policies import ReviewPolicy
from onsite_base.settings import Settings
from onsite_base.web.service import run
from review_service.app import make_app


def build(settings: Settings, config: Config, prefix: str) -> web.Application:
    # The signing key first: made if absent, and no start while another account may read it.
    signing.check_at_start(settings, signing.ReleaseSigning(config=config), service.SERVICE_ACTOR)
    return make_app(settings, prefix=prefix, policy=ReviewPolicy(config=config))


def main() -> int:
    return run(build, "onsite-review", dict(os.environ), sections=(ReviewPolicy, AddressPolicy, signing.ReleaseSigning),
               check_client=service_check)


if __name__ == "__main__":
    sys.exit(main())
