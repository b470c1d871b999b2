"""Client addresses as every Onsite process reads them: the hub, the single-user
server's terminal guard and the web services must agree on who is asking."""
from __future__ import annotations

import ipaddress
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_client_address(raw: str) -> IPAddress | None:
    """An IP address from what the proxy reports ('::ffff:10.0.0.1', '[::1]', 'fe80::1%eth0')."""
    text = raw.strip().strip("[]").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def normalise(raw: str) -> str:
    """`raw` in canonical form when it is an address, else as it is."""
    parsed = parse_client_address(raw)
    return str(parsed) if parsed is not None else raw


def peer_address(request: Any) -> str:
    """The address of the TCP peer of the tornado `request` (the proxy, for a request that came through it)."""
    address = getattr(request.connection.context, "address", None)
    return normalise(address[0]) if isinstance(address, tuple) and address else ""


def is_direct(request: Any) -> bool:
    """Whether `request` reached us from a process on this host without passing through the
    proxy: a loopback peer and no `X-Forwarded-For` (configurable-http-proxy always adds one).
    Only local processes can send such a request (a session's server, a service, the hub)."""
    peer = parse_client_address(peer_address(request))
    return peer is not None and peer.is_loopback and not request.headers.get("X-Forwarded-For")


def client_address(request: Any, trusted_proxies: set[str]) -> str:
    """The address of the terminal that sent the tornado `request`.

    Walks `X-Forwarded-For` from the right (each hop appends the peer it saw)
    while the hop that wrote the entry is trusted; the first address written
    by a trusted hop but not itself a trusted proxy is the client. Never a
    header the browser wrote on its own.
    """
    peer = peer_address(request)
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    candidate = peer
    while normalise(candidate) in trusted_proxies and hops:
        candidate = hops.pop()
    return normalise(candidate)
