"""Network attacks from a real kernel and from the session's account, against a real
hub running as root: every connection attempt must fail locally.

The kernel lives in a network namespace without routes (only a downed
loopback), so a connect to 10.0.0.1 or a public address fails with
ENETUNREACH before any packet leaves the machine. The single-user server's
own account is held by nftables rules to the hub API and the review service.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from security._isolation_fixtures import isolated_hub, researcher_session  # noqa: F401 (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def listening_loopback_ports() -> set[int]:
    """TCP ports listening on 127.0.0.1 (or every address) right now, from /proc/net/tcp (state 0A)."""
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, port = local.split(":")
        if state == "0A" and address in ("0100007F", "00000000"):
            ports.add(int(port, 16))
    return ports


@pytest.fixture(scope="module")
def kernel_session(isolated_hub):
    user, kernel = researcher_session(isolated_hub, "tanaka")
    return isolated_hub, user, kernel


def services(hub) -> dict[str, int]:
    """Every local service an attacker would go for, by name (ports from the hub's log), and
    every other port listening on loopback (slapd, other engineers' hubs, ...)."""
    log = (hub.settings.home / "hub.log").read_text(errors="replace")
    found = {"PostgreSQL": 5432, "proxy (public)": hub.hub.port}
    for name, pattern in (("hub API", r"Hub API listening on http://127\.0\.0\.1:(\d+)"),
                          ("proxy API", r"Proxy API at http://(?:127\.0\.0\.1:(\d+)|(\d+):127\.0\.0\.1)"),
                          ("review service", r"onsite-review.*?http://127\.0\.0\.1:(\d+)")):
        match = re.search(pattern, log)
        if match:
            found[name] = int(next(g for g in match.groups() if g))
    for port in listening_loopback_ports():
        found.setdefault(f"port {port}", port)
    return found


def kernel_connect(user, kernel, targets: list[tuple[str, int]]) -> list[str]:
    code = (
        "import socket, errno\nout = []\n"
        f"for host, port in {targets!r}:\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n    s.settimeout(3)\n"
        "    try:\n        s.connect((host, port))\n        out.append('connected')\n"
        "    except OSError as e:\n        out.append(errno.errorcode.get(e.errno, str(e)))\n"
        "    finally:\n        s.close()\n"
        "import json\nprint('RESULT ' + json.dumps(out))"
    )
    result = user.execute(kernel, code)
    assert result.error is None, result.error
    return json.loads(next(l for l in result.stdout.splitlines() if l.startswith("RESULT "))[7:])


def test_kernel_reaches_no_local_service(kernel_session):
    hub, user, kernel = kernel_session
    found = services(hub)
    assert {"PostgreSQL", "hub API", "proxy API", "review service"} <= set(found), found
    names = sorted(found)
    results = kernel_connect(user, kernel, [("127.0.0.1", found[n]) for n in names])
    for name, result in zip(names, results):
        hub.record("network (kernel)", f"connect 127.0.0.1:{found[name]} ({name})", result)
    assert all(r == "ENETUNREACH" for r in results), dict(zip(names, results))


@pytest.mark.parametrize("host, what", [("127.0.0.2", "another loopback address"), ("10.0.0.1", "a private address"),
                                        ("192.0.2.1", "a public address (TEST-NET-1)"), ("1.1.1.1", "a public resolver")])
def test_kernel_reaches_no_other_address(kernel_session, host, what):
    hub, user, kernel = kernel_session
    [result] = kernel_connect(user, kernel, [(host, 80)])
    assert result == "ENETUNREACH"  # refused locally: no route, nothing was sent
    hub.record("network (kernel)", f"connect {host}:80 ({what})", result)


def test_kernel_cannot_resolve_names(kernel_session):
    hub, user, kernel = kernel_session
    result = user.execute(kernel, "import socket\ntry:\n    socket.getaddrinfo('pypi.org', 443)\n    print('RESULT resolved')\n"
                                  "except OSError as e:\n    print('RESULT ' + type(e).__name__)")
    assert result.error is None and "RESULT gaierror" in result.stdout
    hub.record("network (kernel)", "DNS lookup of pypi.org", "gaierror")


def test_kernel_cannot_reach_postgresql_through_its_unix_socket(kernel_session):
    hub, user, kernel = kernel_session
    socket_path = "/var/run/postgresql/.s.PGSQL.5432"
    if not Path(socket_path).exists():
        pytest.skip("no PostgreSQL unix socket on this machine")
    result = user.execute(kernel, f"import socket\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect({socket_path!r})\n"
                                  "    print('RESULT connected')\nexcept OSError as e:\n    print('RESULT ' + type(e).__name__)")
    assert result.error is None and "RESULT FileNotFoundError" in result.stdout
    hub.record("network (kernel)", "PostgreSQL unix socket", "FileNotFoundError (/run hidden)")


def test_duckdb_cannot_install_an_extension(kernel_session):
    hub, user, kernel = kernel_session
    result = user.execute(kernel, "import duckdb\ntry:\n    duckdb.connect().execute('INSTALL httpfs')\n    print('RESULT installed')\n"
                                  "except Exception as e:\n    print('RESULT ' + type(e).__name__)")
    assert result.error is None and "RESULT installed" not in result.stdout
    hub.record("network (kernel)", "DuckDB INSTALL httpfs", result.stdout.strip().removeprefix("RESULT "))


def as_session_account(uid: int, host: str, port: int) -> str:
    """Connect from a process of the session's account in the host's network (as the
    single-user server is): the nftables rules are what stands in the way."""
    code = ("import socket, errno, sys\ns = socket.socket()\ns.settimeout(3)\ntry:\n    s.connect((sys.argv[1], int(sys.argv[2])))\n"
            "    print('connected')\nexcept OSError as e:\n    print(errno.errorcode.get(e.errno, str(e)))")
    result = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable, "-I", "-c", code,
                             host, str(port)], capture_output=True, text=True, timeout=30, cwd="/")
    return result.stdout.strip() or result.stderr.strip()


def test_server_account_reaches_the_hub_and_nothing_else(kernel_session):
    hub, user, kernel = kernel_session
    uid = hub.account("tanaka").pw_uid
    found = services(hub)
    assert as_session_account(uid, "127.0.0.1", found["hub API"]) == "connected"  # what the server needs
    for name in ("PostgreSQL", "proxy (public)", "proxy API"):
        if name in found:
            result = as_session_account(uid, "127.0.0.1", found[name])
            hub.record("network (server account)", f"connect 127.0.0.1:{found[name]} ({name})", result)
            assert result in ("ECONNREFUSED", "EACCES", "EPERM", "EHOSTUNREACH"), (name, result)
    # Try an outside address only while the session's nftables table is in place, so the
    # attempt is rejected on this machine and no packet leaves it.
    from hub_config.netfilter import session_tables, table_name

    assert table_name(uid) in session_tables(), "the session's nftables rules are missing"
    result = as_session_account(uid, "10.0.0.1", 80)
    assert result in ("ECONNREFUSED", "EACCES", "EPERM", "EHOSTUNREACH"), result
    hub.record("network (server account)", "connect 10.0.0.1:80", result)
