"""A reference Merkle tree written from RFC 9162's text (2.1.1 MTH, 2.1.3.1 PATH, 2.1.4.1 SUBPROOF), over
a list of entries in memory: slow and obvious, sharing nothing with access_control.merkle."""
from __future__ import annotations

import hashlib


def ref_mth(entries: list[bytes]) -> bytes:
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:])).digest()


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, entries[:k]) + [ref_mth(entries[k:])]
    return ref_path(m - k, entries[k:]) + [ref_mth(entries[:k])]


def ref_subproof(m: int, entries: list[bytes], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [ref_mth(entries)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, entries[:k], b) + [ref_mth(entries[k:])]
    return ref_subproof(m - k, entries[k:], False) + [ref_mth(entries[:k])]
