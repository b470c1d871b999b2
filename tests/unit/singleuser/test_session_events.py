"""`SessionEvents`: how long a cell waits for its record and how many failed records stop the server, against a
real (silent) hub sink."""
from __future__ import annotations

import asyncio
import time

import pytest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler
from traitlets import TraitError
from traitlets.config import Config, KVArgParseConfigLoader

from singleuser import events


class SilentSink(RequestHandler):
    """A hub that takes the record and never answers (its store locked)."""

    async def post(self) -> None:
        await asyncio.sleep(30)


async def records_until_stopped(settings: events.SessionEvents) -> tuple[list[events.RecordNotDurable], list[str], float]:
    sock, port = bind_unused_port()
    server = HTTPServer(Application([(events.SINK_PATH, SilentSink)]))
    server.add_sockets([sock])
    given_up: list[str] = []
    forwarder = events.SessionEventForwarder(f"http://127.0.0.1:{port}", "token", on_give_up=given_up.append,
                                             settings=settings)
    failures = []
    started = time.monotonic()
    try:
        for _ in range(settings.max_record_failures):
            with pytest.raises(events.RecordNotDurable) as failed:
                await forwarder.record_durably({"kind": "execute", "code": "x = 1"})
            failures.append(failed.value)
    finally:
        server.stop()
    return failures, given_up, time.monotonic() - started


def server_config(*args: str) -> Config:
    """The config the server gets from the spawner's arguments (`OnsiteSpawner.args`): strings, parsed by the trait."""
    return KVArgParseConfigLoader(list(args)).load_config()


def test_the_configured_timeout_and_failure_count_stop_the_session():
    config = server_config("--SessionEvents.record_timeout_s=0.3", "--SessionEvents.max_record_failures=2")
    failures, given_up, took = asyncio.run(records_until_stopped(events.SessionEvents(config=config)))
    assert [f.stopping for f in failures] == [False, True]
    assert len(given_up) == 1 and "Timeout" in given_up[0]
    assert 0.6 <= took < 5  # each record waited its 0.3 s, not the default 10 s


def test_the_defaults_are_production_values():
    settings = events.SessionEvents()
    assert (settings.record_timeout_s, settings.max_record_failures) == (10.0, 3)


@pytest.mark.parametrize("argument, message", [
    ("--SessionEvents.record_timeout_s=0", "SessionEvents.record_timeout_s must be above 0"),
    ("--SessionEvents.max_record_failures=0", "SessionEvents.max_record_failures must be at least 1"),
    ("--SessionEvents.max_record_failures=three", "max_record_failures"),
])
def test_a_wrong_value_is_refused_naming_the_setting(argument, message):
    with pytest.raises(TraitError, match=message):
        events.SessionEvents(config=server_config(argument))
