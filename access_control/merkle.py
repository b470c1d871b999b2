"""RFC 9162 Merkle tree hashing, inclusion and consistency proofs (Certificate Transparency v2, section 2.1).

leaf = SHA-256(0x00 || entry), node = SHA-256(0x01 || left || right); a tree of n leaves splits at
the largest power of two below n. Nothing here knows where the hashes are kept: the proof builders
take `node(level, index)`, the hash of the complete subtree of 2**level leaves starting at leaf
index << level, so a store can keep only some of them (access_control.ledger). The verifiers are the
RFC's algorithms (2.1.3.2, 2.1.4.2) and need only hashes.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

Node = Callable[[int, int], bytes]
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(node: Node, start: int, end: int) -> bytes:
    """MTH(D[start:end]) from the stored complete subtrees."""
    n = end - start
    if n & (n - 1) == 0 and start % n == 0:
        level = n.bit_length() - 1
        return node(level, start >> level)
    k = split(n)
    return node_hash(subtree_root(node, start, start + k), subtree_root(node, start + k, end))


def root(node: Node, size: int) -> bytes:
    return EMPTY_ROOT if size == 0 else subtree_root(node, 0, size)


def inclusion_path(node: Node, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]), leaf first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")

    def path(m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = split(n)
        if m - start < k:
            return path(m, start, start + k) + [subtree_root(node, start + k, end)]
        return path(m, start + k, end) + [subtree_root(node, start, start + k)]

    return path(index, 0, size)


def consistency_proof(node: Node, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]); empty when the sizes are equal."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size} leaves")

    def subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [subtree_root(node, start, end)]
        k = split(n)
        if m <= k:
            return subproof(m, start, start + k, complete) + [subtree_root(node, start + k, end)]
        return subproof(m - k, start + k, end, False) + [subtree_root(node, start, start + k)]

    return subproof(old_size, 0, new_size, True)


def needed_nodes(build: Callable[[Node], object]) -> set[tuple[int, int]]:
    """The (level, index) pairs `build(node)` asks for: a dry run, so a store can fetch them in one query."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return bytes(32)

    build(record)
    return wanted


def verify_inclusion(leaf: bytes, index: int, size: int, path: Iterable[bytes], root_hash: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 2.1.4.2 (equal sizes: an empty proof and equal roots)."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class Frontier:
    """The complete subtrees of a growing tree, biggest first: the root of every prefix while leaves
    stream past (verifying a whole log), and each complete subtree as it is finished."""

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[tuple[int, bytes]] = []  # (level, hash)

    def push(self, leaf: bytes, finished: Callable[[int, int, bytes], object] | None = None, min_level: int = 0) -> None:
        """Add a leaf; `finished(level, index, hash)` hears of every complete subtree of at least `min_level` it
        closes (level 0: the leaf itself)."""
        level, h = 0, leaf
        if finished is not None and min_level == 0:
            finished(0, self.size, h)
        self.size += 1
        stack = self.stack
        while stack and stack[-1][0] == level:
            h = node_hash(stack.pop()[1], h)
            level += 1
            if finished is not None and level >= min_level:
                finished(level, (self.size >> level) - 1, h)
        stack.append((level, h))

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        h = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            h = node_hash(left, h)
        return h
