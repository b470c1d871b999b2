"""The ledger's Merkle tree, signed heads, proofs and witnesses (access_control.ledger), on SQLite and PostgreSQL.

Attacks go through raw SQL, as an administrator of the database would: edit an event, rewrite the
whole history consistently (every chain hash recomputed, the tree rebuilt, a new head signed with the
log's own key), delete the newest events, change a stored tree node, forge a proof. The roots are
checked against a reference Merkle tree computed from `audit export`'s lines, written from RFC 9162's
text (tests/unit/access_control/test_ledger_merkle.py), not from the code under test.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select, text

from access_control import audit, ledger
from access_control.enums import AuditEventType
from access_control.errors import PolicyError
from access_control.models import AuditTreeHead, AuditTreeNode
from hub_config.audit_sink import record_session_events
from onsite_base.db import transaction
from merkle_reference import ref_mth, ref_path

N = 37  # two complete stored blocks and a partial one


def add_events(db, n: int, start: int = 0) -> None:
    with transaction(db) as s:
        for i in range(start, start + n):
            audit.record(s, AuditEventType.PERSON_ADD, actor="admin:test", object=f"person:p{i}",
                         details={"i": i, "name": "テスト", "x": i / 3})


@pytest.fixture
def key(tmp_path):
    return ledger.signing_key(tmp_path / "keys" / "ledger.pem")


@pytest.fixture
def log(db):
    add_events(db, N)
    return db


def exported_entries(db) -> list[bytes]:
    out = io.StringIO()
    with db() as s:
        audit.export(s, out)
    return [audit.exported_entry(json.loads(line)) for line in out.getvalue().splitlines()]


def full_verify(db, key):
    with db() as s:
        return ledger.verify(s, key.public_key())


def sql(db, statement: str, **params) -> None:
    with transaction(db) as s:
        s.execute(text(statement), params)


def rewrite_consistently(db, seq: int, details: dict) -> None:
    """What an attacker with the database does: change one event, recompute every chain hash after it,
    drop the tree and its heads. (The unique hash columns are rewritten through a temporary value.)"""
    with transaction(db) as s:
        prev = audit.GENESIS_HASH
        new = []
        for r in list(audit.chain_rows(s)):
            d = details if r.seq == seq else json.loads(r.details)
            h = audit.event_hash(seq=r.seq, created_at=r.created_at, actor=r.actor, action=r.action, object=r.object,
                                 outcome=r.outcome, details=d, prev_hash=prev)
            new.append((r.seq, audit.canonical_json(d), prev, h))
            prev = h
        s.execute(text("UPDATE audit_event SET prev_hash = 'x' || seq, hash = 'y' || seq"))
        for seq_, d, p, h in new:
            s.execute(text("UPDATE audit_event SET details = :d, prev_hash = :p, hash = :h WHERE seq = :s"),
                      {"d": d, "p": p, "h": h, "s": seq_})
        s.execute(text("DELETE FROM audit_tree_node"))
        s.execute(text("DELETE FROM audit_tree_head"))


def test_heads_sign_the_rfc_9162_root_of_the_events(log, key):
    head = ledger.sign_head(log, key)
    assert head.tree_size == N
    assert head.root_hash == ref_mth(exported_entries(log)).hex()
    assert head.signed_by(key.public_key())
    with log() as s:
        levels = [r[0] for r in s.execute(text("SELECT level FROM audit_tree_node"))]
    assert sorted(levels) == [4, 4, 5]  # only complete subtrees of 16 and more
    add_events(log, 20, start=N)
    later = ledger.sign_head(log, key)
    assert later.tree_size == N + 20 and later.root_hash == ref_mth(exported_entries(log)).hex()
    result = full_verify(log, key)
    assert result.ok, result.problem
    assert result.signed_heads == 2 and result.root_hash == later.root_hash


def test_a_head_of_the_empty_log_is_checked_and_extended(db, key, tmp_path):
    empty = ledger.sign_head(db, key)
    assert empty.tree_size == 0 and empty.root_hash == hashlib.sha256(b"").hexdigest()
    witness_key, state = ledger.signing_key(tmp_path / "w.pem"), tmp_path / "w.json"
    assert ledger.witness(ledger.StoreLog(db), key.public_key(), witness_key, state, "w").tree_size == 0
    add_events(db, 3)
    ledger.sign_head(db, key)
    assert ledger.witness(ledger.StoreLog(db), key.public_key(), witness_key, state, "w").tree_size == 3
    result = full_verify(db, key)
    assert result.ok and result.signed_heads == 2, result.problem
    sql(db, "UPDATE audit_tree_head SET root_hash = :r WHERE tree_size = 0", r="11" * 32)
    assert "the head of 0 events" in full_verify(db, key).problem


def test_an_existing_ledger_without_a_tree_verifies_and_gains_one(log, key):
    result = full_verify(log, key)
    assert result.ok and result.signed_heads == 0
    ledger.sign_head(log, key)
    assert full_verify(log, key).ok


def test_every_event_has_an_inclusion_proof_a_checker_accepts(log, key):
    ledger.sign_head(log, key)
    entries = exported_entries(log)
    with log() as s:
        for seq in range(1, N + 1):
            proof = ledger.inclusion_proof(s, seq)
            assert [bytes.fromhex(p) for p in proof["audit_path"]] == ref_path(seq - 1, entries)
            assert ledger.check_proof(json.loads(json.dumps(proof)), key.public_key()).startswith(f"event {seq} is in")


def test_forged_inclusion_proofs_are_rejected(log, key):
    ledger.sign_head(log, key)
    with log() as s:
        proof = ledger.inclusion_proof(s, 7)
    other = Ed25519PrivateKey.generate()
    altered_event = json.loads(json.dumps(proof))
    altered_event["event"]["details"]["i"] = 99
    rehashed = json.loads(json.dumps(altered_event))  # the event's own hash recomputed: the tree still says no
    rehashed["event"]["hash"] = hashlib.sha256(audit.exported_entry(rehashed["event"])).hexdigest()
    flipped = json.loads(json.dumps(proof))
    flipped["audit_path"][1] = "00" * 32
    resigned = json.loads(json.dumps(proof))  # a head the attacker signs with a key of their own
    resigned["head"] = ledger.TreeHead(N, "00" * 32, "2026-01-01T00:00:00+00:00", ledger.key_id(other)).signed(other).as_dict()
    moved = json.loads(json.dumps(proof))
    moved["leaf_index"] = 8
    for forged, why in ((altered_event, "does not match its own hash"), (rehashed, "is not in the head"),
                        (flipped, "is not in the head"), (resigned, "not signed by this log key"),
                        (moved, "position or size")):
        with pytest.raises(ledger.ProofInvalid, match=why):
            ledger.check_proof(forged, key.public_key())


def test_consistency_proofs_between_heads(log, key):
    first = ledger.sign_head(log, key)
    for grow in (1, 15, 16, 40):
        add_events(log, grow, start=1000 + grow)
        ledger.sign_head(log, key)
    with log() as s:
        sizes = sorted(s.scalars(select(AuditTreeHead.tree_size)))
        for old in sizes:
            for new in sizes:
                if old <= new:
                    proof = ledger.consistency_proof(s, old, new)
                    assert "only grew" in ledger.check_proof(proof, key.public_key())
        proof = ledger.consistency_proof(s, first.tree_size, sizes[-1])
    proof["proof"][0] = "11" * 32
    with pytest.raises(ledger.ProofInvalid, match="does not extend"):
        ledger.check_proof(proof, key.public_key())
    with log() as s, pytest.raises(PolicyError, match="no signed head of 5 events"):
        ledger.consistency_proof(s, 5, sizes[-1])


def test_a_consistent_rewrite_of_history_contradicts_the_signed_heads(log, key):
    ledger.sign_head(log, key)
    rewrite_consistently(log, 3, {"i": 3, "name": "rewritten"})
    with log() as s:
        assert audit.verify(s).ok  # the hash chain alone cannot tell
    sql(log, "INSERT INTO audit_tree_head (tree_size, root_hash, timestamp, key_id, signature) VALUES (1, :r, 't', 'k', 's')",
        r="00" * 32)
    result = full_verify(log, key)
    assert not result.ok and "another root" in result.problem


def test_the_head_signer_refuses_a_rewritten_history(log, key):
    ledger.sign_head(log, key)
    with log() as s:
        heads = s.execute(text("SELECT tree_size, root_hash, timestamp, key_id, signature FROM audit_tree_head")).all()
    rewrite_consistently(log, 3, {"i": 3, "name": "rewritten"})
    with transaction(log) as s:  # the old head kept: the signer must not sign over it
        for h in heads:
            s.execute(text("INSERT INTO audit_tree_head (tree_size, root_hash, timestamp, key_id, signature) "
                           "VALUES (:a, :b, :c, :d, :e)"), dict(zip("abcde", h)))
    with pytest.raises(ledger.LedgerBroken, match="history was rewritten"):
        ledger.sign_head(log, key)


def test_deleting_the_newest_events_after_a_head_is_caught(log, key):
    ledger.sign_head(log, key)
    sql(log, "DELETE FROM audit_event WHERE seq > 30")
    result = full_verify(log, key)
    assert not result.ok and "events were deleted" in result.problem


def test_a_changed_tree_node_or_signature_is_caught(log, key):
    ledger.sign_head(log, key)
    sql(log, "UPDATE audit_tree_node SET hash = :h WHERE level = 4 AND idx = 1", h=bytes(32))
    result = full_verify(log, key)
    assert not result.ok and "tree node 4/1" in result.problem
    sql(log, "DELETE FROM audit_tree_node")
    assert full_verify(log, key).ok  # the nodes are only a cache of the events
    bad = base64.b64encode(bytes(64)).decode()
    sql(log, "UPDATE audit_tree_head SET signature = :s", s=bad)
    result = full_verify(log, key)
    assert not result.ok and "bad signature" in result.problem


def test_the_key_file_is_private_and_refused_when_others_may_read_it(tmp_path):
    path = tmp_path / "state" / "ledger.pem"
    key = ledger.signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ledger.key_id(ledger.signing_key(path)) == ledger.key_id(key)  # read back, not made anew
    for mode in (0o640, 0o604, 0o620):
        os.chmod(path, mode)
        with pytest.raises(PolicyError, match="can be read or changed by other accounts") as refused:
            ledger.signing_key(path)
        assert "他のアカウント" in refused.value.text("ja")
    os.chmod(path, 0o600)
    path.write_text("not a key")
    with pytest.raises(PolicyError, match="cannot read the key file"):
        ledger.signing_key(path)


def test_a_witness_cosigns_growth_and_refuses_a_rewritten_history(log, key, tmp_path):
    witness_key = ledger.signing_key(tmp_path / "witness" / "key.pem")
    state = tmp_path / "witness" / "last-head.json"
    ledger.sign_head(log, key)
    first = ledger.witness(ledger.StoreLog(log), key.public_key(), witness_key, state, "ops-centre")
    assert first.tree_size == N and first.valid()
    add_events(log, 10, start=N)
    ledger.sign_head(log, key)
    second = ledger.witness(ledger.StoreLog(log), key.public_key(), witness_key, state, "ops-centre")
    assert second.tree_size == N + 10
    with log() as s:
        assert [c.tree_size for c in ledger.last_cosignatures(s)] == [N + 10]
    assert full_verify(log, key).ok

    # The attack: rewrite event 3 consistently, rebuild the tree, sign a new head with the log's own key,
    # and remove the cosignatures that would contradict it. Every check inside the database passes.
    rewrite_consistently(log, 3, {"i": 3, "name": "rewritten"})
    sql(log, "DELETE FROM audit_cosignature")
    add_events(log, 5, start=500)
    ledger.sign_head(log, key)
    assert full_verify(log, key).ok
    with pytest.raises(ledger.WitnessRefused, match="history was rewritten"):
        ledger.witness(ledger.StoreLog(log), key.public_key(), witness_key, state, "ops-centre")
    assert ledger.read_witness_state(state).tree_size == N + 10  # the witness keeps the head it trusted


def test_a_witness_refuses_a_shrunk_log_and_a_head_not_signed_by_the_log(log, key, tmp_path):
    witness_key = ledger.signing_key(tmp_path / "w.pem")
    state = tmp_path / "w.json"
    ledger.sign_head(log, key)
    ledger.witness(ledger.StoreLog(log), key.public_key(), witness_key, state, "w")
    with pytest.raises(ledger.WitnessRefused, match="not signed by the log key"):
        ledger.witness(ledger.StoreLog(log), Ed25519PrivateKey.generate().public_key(), witness_key, state, "w")
    sql(log, "DELETE FROM audit_tree_head")
    sql(log, "DELETE FROM audit_tree_node")
    sql(log, "DELETE FROM audit_event WHERE seq > 20")
    ledger.sign_head(log, key)
    with pytest.raises(ledger.WitnessRefused, match="shrank"):
        ledger.witness(ledger.StoreLog(log), key.public_key(), witness_key, state, "w")


def test_a_signer_goes_on_from_the_blocks_another_stored(db, key):
    """Another signer stored only some blocks (computed by `tree_nodes` as it would): the next head extends them."""
    add_events(db, 40)
    with db() as s:
        first = ledger.tree_nodes(s, 0, 32)
    with transaction(db) as s:  # the other signer got there first, up to 16 events
        s.execute(insert(AuditTreeNode), [n for n in first if n["level"] == 4 and n["idx"] == 0])
    add_events(db, 30, start=40)
    head = ledger.sign_head(db, key)
    assert head.tree_size == 70 and full_verify(db, key).ok


def test_session_events_are_in_the_one_log_and_provable(db, key):
    """What the hub's sink writes for a single-user server (hub_config.audit_sink) is a leaf like any other event."""
    add_events(db, 3)
    last = record_session_events(db, "tanaka", [{"kind": "execute", "code": "df = db.table('x')", "server_at": 1.5},
                                                {"kind": "contents", "action": "save", "path": "a.ipynb"}])
    ledger.sign_head(db, key)
    with db() as s:
        proof = ledger.inclusion_proof(s, last)
    assert proof["event"]["action"] == "SESSION_ACTIVITY" and proof["event"]["details"]["path"] == "a.ipynb"
    assert ledger.check_proof(proof, key.public_key()).startswith(f"event {last} is in")
    sql(db, "UPDATE audit_event SET details = :d WHERE seq = :s", d='{"kind":"contents"}', s=last)
    assert not full_verify(db, key).ok


def test_the_log_key_hands_over_and_the_old_public_key_still_checks(log, key, tmp_path):
    path = tmp_path / "keys" / "ledger.pem"  # the `key` fixture's file
    state = tmp_path / "witness.json"
    witness_key = ledger.signing_key(tmp_path / "w" / "key.pem")
    ledger.sign_head(log, key)
    ledger.witness(ledger.StoreLog(log), key.public_key(), witness_key, state, "osaka")
    last, handover, first = ledger.rotate_key(log, path, "admin:test")
    new = ledger.signing_key(path, create=False)
    assert ledger.key_id(new) != ledger.key_id(key) and not path.with_name("ledger.pem.next").exists()
    assert (last.key_id, first.key_id) == (ledger.key_id(key), ledger.key_id(new))
    assert first.tree_size == last.tree_size + 1  # the handover is an event of the log it hands over
    assert handover.valid() and handover.tree_size == last.tree_size and handover.root_hash == last.root_hash
    add_events(log, 5, start=N)
    ledger.sign_head(log, new)
    for public in (key.public_key(), new.public_key()):  # either key checks every head: the old one forward, the new back
        with log() as s:
            result = ledger.verify(s, public)
        assert result.ok and result.signed_heads == 4 and not result.other_keys, result
    with log() as s:
        proof = ledger.inclusion_proof(s, 3)  # in the newest head, signed by the new key
    assert ledger.check_proof(proof, key.public_key()).startswith("event 3 is in")
    assert ledger.witness(ledger.StoreLog(log), key.public_key(), witness_key, state, "osaka").tree_size == N + 6

    # An attacker with the database hands the key over to their own: the handover is not signed by the log key.
    theirs = Ed25519PrivateKey.generate()
    forged = ledger.KeyTransition(ledger.raw_b64(new), ledger.raw_b64(theirs), N + 6, "00" * 32, ledger.now_text())
    forged = ledger.KeyTransition(**{**forged.__dict__, "signature": base64.b64encode(theirs.sign(forged.message())).decode()})
    with transaction(log) as s:
        audit.record(s, AuditEventType.LEDGER_KEY_ROTATE, actor="admin:attacker", details={"transition": forged.as_dict()})
    head = ledger.sign_head(log, theirs)
    assert ledger.key_id(theirs) in full_verify(log, key).other_keys  # a key nobody handed over to: not trusted
    with log() as s:
        proof = ledger.inclusion_proof(s, 3, head)
    with pytest.raises(ledger.ProofInvalid, match="not signed by this log key"):
        ledger.check_proof(proof, key.public_key())
    with pytest.raises(ledger.WitnessRefused, match="not signed by the log key"):
        ledger.witness(ledger.StoreLog(log), key.public_key(), witness_key, state, "osaka")


def test_a_rotation_cut_short_after_the_handover_goes_on_with_the_same_new_key(log, key, tmp_path, monkeypatch):
    path = tmp_path / "keys" / "ledger.pem"
    real_replace = os.replace

    def crash(src, dst):
        raise OSError("killed before the new key was put in place")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        ledger.rotate_key(log, path, "admin:test")
    monkeypatch.setattr(os, "replace", real_replace)
    assert ledger.key_id(ledger.signing_key(path, create=False)) == ledger.key_id(key)  # the old key still in place
    _, handover, first = ledger.rotate_key(log, path, "admin:test")
    with log() as s:
        assert ledger.key_transitions(s) == [handover]  # one handover, to the key made the first time
    assert first.key_id == ledger.key_id(ledger.signing_key(path, create=False)) == ledger.key_id(handover.new_key)
    assert full_verify(log, key).ok and not full_verify(log, key).other_keys
