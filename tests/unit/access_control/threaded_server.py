"""A tornado application served on a real port from a thread, for tests that drive a service over HTTP
in-process (its default executor copies the request's context, as the services' `run` sets it up)."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from onsite_base.web.service import ContextCopyingExecutor


@contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """`app` listening on 127.0.0.1 until the block ends; yields its base URL (http://127.0.0.1:PORT)."""
    sock, port = bind_unused_port()
    ready, stop = threading.Event(), {}

    def serve() -> None:
        async def main() -> None:
            asyncio.get_running_loop().set_default_executor(ContextCopyingExecutor())
            server = HTTPServer(app)
            server.add_sockets([sock])
            stop["loop"], stop["event"] = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            await stop["event"].wait()
            server.stop()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "the test server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop["loop"].call_soon_threadsafe(stop["event"].set)
        thread.join(10)
