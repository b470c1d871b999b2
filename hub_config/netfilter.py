"""nftables rules that confine a session account's network to the hub.

The single-user server needs two connections of its own: the hub API and the
review service (the release outbox forwarder). Each session gets its own
table `inet onsite_session_<uid>` whose output chain, for sockets owned by the
session's uid, lets replies on connections others opened (the proxy and the
hub talking to the server) through, accepts new TCP connections to the listed
loopback ports, and rejects everything else: other loopback ports
(PostgreSQL, slapd, the proxy's API), other hosts, DNS. Kernels are cut off
further, in a network namespace of their own (`singleuser.kernel_sandbox`).

One table per session makes adding and removing atomic and keeps sessions
from touching each other's rules; `remove_leftover_session_rules` clears, at hub
exit, the leftovers of the hub's own accounts (by their name prefix), never the
rules of another hub's sessions on the same machine.
"""
from __future__ import annotations

import logging
import pwd
import shutil
import subprocess
from dataclasses import dataclass

log = logging.getLogger(__name__)

TABLE_PREFIX = "onsite_session_"


class FirewallError(RuntimeError):
    """nft is missing or refused the rules; the message says what to install or check."""


@dataclass(frozen=True)
class Endpoint:
    """A loopback TCP port the server may connect to."""

    host: str
    port: int


def table_name(uid: int) -> str:
    return f"{TABLE_PREFIX}{uid}"


def session_ruleset(uid: int, allowed: list[Endpoint]) -> str:
    """The nft script for one session (replaces the session's table if it exists)."""
    table = table_name(uid)
    lines = [
        f"table inet {table}",
        f"delete table inet {table}",
        f"table inet {table} {{",
        "  chain output {",
        "    type filter hook output priority 0; policy accept;",
        f"    meta skuid {uid} ct state established,related accept",
    ]
    for endpoint in allowed:
        family = "ip6" if ":" in endpoint.host else "ip"
        lines.append(f"    meta skuid {uid} {family} daddr {endpoint.host} tcp dport {endpoint.port} accept")
    lines += [
        f"    meta skuid {uid} meta l4proto tcp reject with tcp reset",
        f"    meta skuid {uid} reject with icmpx admin-prohibited",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def nft_path() -> str:
    path = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    if path is None:
        raise FirewallError(
            "nft not found: install nftables (apt-get install nftables), or set "
            "OnsiteSpawner.server_firewall = False to run servers without network rules (not isolated)"
        )
    return path


def _nft(args: list[str], script: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([nft_path(), *args], input=script, capture_output=True, text=True)


def apply_session_rules(uid: int, allowed: list[Endpoint]) -> None:
    result = _nft(["-f", "-"], session_ruleset(uid, allowed))
    if result.returncode != 0:
        raise FirewallError(f"nft refused the rules of session uid {uid}: {result.stderr.strip()}")
    log.info("network of uid %d limited to %s", uid, ", ".join(f"{e.host}:{e.port}" for e in allowed))


def remove_session_rules(uid: int) -> None:
    """Drop the session's table; absent is fine, any other refusal raises FirewallError."""
    result = _nft(["delete", "table", "inet", table_name(uid)])
    if result.returncode != 0 and "No such file" not in result.stderr:
        raise FirewallError(f"nft could not remove the network rules of uid {uid}: {result.stderr.strip()}")


def session_tables() -> list[str]:
    result = _nft(["list", "tables", "inet"])
    if result.returncode != 0:
        return []
    names = [line.split()[-1] for line in result.stdout.splitlines() if line.startswith("table inet ")]
    return [n for n in names if n.startswith(TABLE_PREFIX)]


def remove_leftover_session_rules(account_prefix: str) -> None:
    """Drop the tables of uids whose account name starts with `account_prefix` (the hub's
    `OnsiteSpawner.account_prefix`): what its servers that did not stop cleanly left behind.
    A uid with no account any more is not known to be this hub's: its table stays."""
    for table in session_tables():
        try:
            name = pwd.getpwuid(int(table.removeprefix(TABLE_PREFIX))).pw_name
        except (KeyError, ValueError):
            continue
        if name.startswith(account_prefix):
            _nft(["delete", "table", "inet", table])
