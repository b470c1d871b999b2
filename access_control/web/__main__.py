"""Run the admin pages as a JupyterHub managed service: `python -m access_control.web`.

JupyterHub passes JUPYTERHUB_SERVICE_URL (where to listen), JUPYTERHUB_SERVICE_PREFIX
(e.g. /services/onsite-admin/), JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN (the
service's own token: its role needs list:users, read:servers, delete:servers)
and the OAuth variables; the Onsite state comes from ONSITE_HOME / ONSITE_DB_URL
(Settings.from_env). The database must already be migrated (the hub does it).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from urllib.parse import urlparse

from onsite.settings import Settings

log = logging.getLogger("access_control.web")


def listen_address(environ: dict[str, str]) -> tuple[str, int, str]:
    url = environ.get("JUPYTERHUB_SERVICE_URL")
    if not url:
        raise SystemExit(
            "JUPYTERHUB_SERVICE_URL is not set: run the admin pages as a JupyterHub managed service "
            "(registered as `onsite-admin`, see docs/how-to/admin-web.md)"
        )
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 80, environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/"


async def serve(settings: Settings, host: str, port: int, prefix: str) -> None:
    from access_control.web.app import make_app

    app = make_app(settings, prefix=prefix)
    server = app.listen(port, address=host, xheaders=True)
    log.info("admin service listening on http://%s:%d%s (state in %s)", host, port, prefix, settings.home)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # JupyterHub may start us with SIGINT ignored
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    log.info("admin service stopped")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s")
    host, port, prefix = listen_address(dict(os.environ))
    asyncio.run(serve(Settings.from_env(), host, port, prefix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
