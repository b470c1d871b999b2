"""Run the reviewer app as a JupyterHub managed service: `python -m disclosure_review.web`.

JupyterHub passes JUPYTERHUB_SERVICE_URL (where to listen), JUPYTERHUB_SERVICE_PREFIX
(the URL prefix, e.g. /services/onsite-review/) and the OAuth variables; the
Onsite state comes from ONSITE_HOME / ONSITE_DB_URL (Settings.from_env). The
database must already be migrated (`onsite up` and the hub do it).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from urllib.parse import urlparse

from onsite.settings import Settings

log = logging.getLogger("disclosure_review.web")


def listen_address(environ: dict[str, str]) -> tuple[str, int, str]:
    url = environ.get("JUPYTERHUB_SERVICE_URL")
    if not url:
        raise SystemExit(
            "JUPYTERHUB_SERVICE_URL is not set: run the review service as a JupyterHub managed service "
            "(hub_config registers it as `onsite-review`)"
        )
    parsed = urlparse(url)
    prefix = environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
    return parsed.hostname or "127.0.0.1", parsed.port or 80, prefix


async def serve(settings: Settings, host: str, port: int, prefix: str) -> None:
    from disclosure_review.web.app import make_app

    app = make_app(settings, prefix=prefix)
    server = app.listen(port, address=host, xheaders=True, max_body_size=app.settings.get("max_body_size"))
    log.info("review service listening on http://%s:%d%s (state in %s)", host, port, prefix, settings.home)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # JupyterHub may start us with SIGINT ignored
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    log.info("review service stopped")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s")
    host, port, prefix = listen_address(dict(os.environ))
    asyncio.run(serve(Settings.from_env(), host, port, prefix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
