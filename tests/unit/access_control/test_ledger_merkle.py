"""RFC 9162 hashing and proofs (access_control.merkle) against a reference written from the RFC's text.

The reference (merkle_reference.py, beside this file) is the RFC's recursive definitions (2.1.1 MTH,
2.1.3.1 PATH, 2.1.4.1 PROOF / SUBPROOF) over a list in memory, nothing shared with the code under test. Its roots are checked
first against the published Certificate Transparency test vectors (the eight-leaf tree of RFC 6962's
reference implementations), so the reference itself cannot silently be wrong.
"""
from __future__ import annotations

import random

import pytest

from access_control import merkle
from merkle_reference import ref_mth, ref_path, ref_subproof


CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def nodes_of(entries: list[bytes]) -> merkle.Node:
    """The complete subtrees of `entries`, as a store would give them."""
    return lambda level, index: ref_mth(entries[index << level:(index + 1) << level])


def test_the_reference_gives_the_published_ct_roots():
    assert [ref_mth(CT_LEAVES[:n]).hex() for n in range(1, 9)] == CT_ROOTS
    assert ref_mth([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", range(1, 40))
def test_roots_paths_and_consistency_proofs_match_the_reference(size):
    entries = [f"event {i}".encode() for i in range(size)]
    node = nodes_of(entries)
    root = ref_mth(entries)
    assert merkle.root(node, size) == root
    frontier = merkle.Frontier()
    for e in entries:
        frontier.push(merkle.leaf_hash(e))
    assert frontier.root() == root
    for m in range(size):
        path = merkle.inclusion_path(node, m, size)
        assert path == ref_path(m, entries)
        assert merkle.verify_inclusion(merkle.leaf_hash(entries[m]), m, size, path, root)
    for old in range(1, size + 1):
        proof = merkle.consistency_proof(node, old, size)
        assert proof == ref_subproof(old, entries, True)
        assert merkle.verify_consistency(old, size, ref_mth(entries[:old]), root, proof)


def test_ct_vectors_prove_and_verify():
    node = nodes_of(CT_LEAVES)
    root = bytes.fromhex(CT_ROOTS[7])
    for m in range(8):
        assert merkle.verify_inclusion(merkle.leaf_hash(CT_LEAVES[m]), m, 8, merkle.inclusion_path(node, m, 8), root)
    for old in range(1, 8):
        assert merkle.verify_consistency(old, 8, bytes.fromhex(CT_ROOTS[old - 1]), root,
                                         merkle.consistency_proof(node, old, 8))


def flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


def test_forged_inclusion_proofs_fail():
    rng = random.Random(9162)
    for _ in range(300):
        size = rng.randint(2, 70)
        entries = [rng.randbytes(rng.randint(0, 20)) for _ in range(size)]
        root, m = ref_mth(entries), rng.randrange(size)
        path = ref_path(m, entries)
        leaf = merkle.leaf_hash(entries[m])
        assert merkle.verify_inclusion(leaf, m, size, path, root)
        i = rng.randrange(len(path))
        assert not merkle.verify_inclusion(leaf, m, size, path[:i] + [flip(path[i])] + path[i + 1:], root)
        assert not merkle.verify_inclusion(flip(leaf), m, size, path, root)
        assert not merkle.verify_inclusion(leaf, m, size, path[:-1], root)
        assert not merkle.verify_inclusion(leaf, m, size, path + [root], root)
        assert not merkle.verify_inclusion(leaf, size, size, path, root)


def test_a_rewritten_history_fails_consistency():
    rng = random.Random(6962)
    for _ in range(300):
        new = rng.randint(2, 70)
        old = rng.randint(1, new - 1)
        entries = [rng.randbytes(8) for _ in range(new)]
        old_root, new_root = ref_mth(entries[:old]), ref_mth(entries)
        proof = ref_subproof(old, entries, True)
        assert merkle.verify_consistency(old, new, old_root, new_root, proof)
        rewritten = list(entries)
        rewritten[rng.randrange(old)] = b"rewritten"
        forged = merkle.consistency_proof(nodes_of(rewritten), old, new)
        assert not merkle.verify_consistency(old, new, old_root, ref_mth(rewritten), forged)
        i = rng.randrange(len(proof))
        assert not merkle.verify_consistency(old, new, old_root, new_root, proof[:i] + [flip(proof[i])] + proof[i + 1:])
        assert not merkle.verify_consistency(old, new, old_root, new_root, [])
        assert not merkle.verify_consistency(new, old, new_root, old_root, proof)
