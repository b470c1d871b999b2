"""The audit ledger as a transparency log: a Merkle tree over the events, signed tree heads, proofs, witnesses.

The leaves are the ledger's events in seq order, each leaf SHA-256(0x00 || the event's entry), the
entry being the canonical JSON the chain hash is taken over (`audit.event_entry`); the tree is RFC
9162's (access_control.merkle). Appends do not touch the tree: like a Certificate Transparency log,
the tree is extended when a head is signed (`sign_head`: on demand with `onsite audit head`, and by
the hub's anchor service every HubSettings.anchor_interval_s). Only complete subtrees of at least
BLOCK events are stored (`audit_tree_node`), written once; smaller ones are recomputed from the at
most BLOCK events they cover, so a proof in a log of millions of events reads a few dozen rows.

A head says: the first `tree_size` events have this root; it is signed with the log's Ed25519 key
(a private key file like any service's: 0600, refused when other accounts may read it). Anyone with
the public key can check an inclusion proof (this event is in that head) or a consistency proof (the
newer head only appends to the older one) — `check_proof`. A witness (`witness`) keeps the last
head it saw, accepts a new one only with a consistency proof, and co-signs it; a history rewritten
even consistently, every hash recomputed and re-signed with the log key, fails that proof.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import and_, func, insert, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from access_control import audit, merkle
from access_control.enums import AuditEventType
from access_control.errors import InputInvalid, PolicyError
from access_control.models import AuditCosignature, AuditEvent, AuditTreeHead, AuditTreeNode
from onsite_base import keys, times
from onsite_base.db import read_transaction, transaction
from onsite_base.fileio import write_atomic

STORED_LEVEL = 4
BLOCK = 1 << STORED_LEVEL
"""Subtrees of BLOCK events and more are stored; smaller ones are recomputed from the events."""
TREE_LOCK_KEY = 0x4F4E534954455452  # "ONSITETR": PostgreSQL writers of tree nodes take it
HEAD_SCHEMA = "onsite.tree_head/v1"
COSIGNATURE_SCHEMA = "onsite.cosignature/v1"
INCLUSION_SCHEMA = "onsite.inclusion_proof/v1"
CONSISTENCY_SCHEMA = "onsite.consistency_proof/v1"
CONSISTENCY_PATH_SCHEMA = "onsite.consistency_path/v1"
TRANSITION_SCHEMA = "onsite.log_key_transition/v1"
MAX_WITNESS_NAME = AuditCosignature.__table__.c.witness.type.length or 200
MAX_QUERY_KEYS = 500
WITNESS_TOKEN_PREFIX = "onsite-witness."
"""A witness credential's start: the log API reads it as a witness's (`Authorization: Witness …`), not a Hub token."""


# ---------------------------------------------------------------- keys


def default_key_file(db_url: str, environ: Mapping[str, str] | None = None) -> Path:
    """The log key of the store at `db_url` when none is configured: beside its anchors, outside the state directory."""
    return audit.anchor_directory(environ) / f"ledger-key-{audit.store_id(db_url)}.pem"


def signing_key(path: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """The Ed25519 private key in `path` (PEM), made (0600, its directory 0700) when absent and `create`.
    Refused when another account could read it or replace it, or owns it or its folder (`keys.check_private_key_file`)."""
    if create and not path.exists():
        keys.create_key_file(path)
    try:
        keys.check_private_key_file(path)
        return keys.load_private_key(path)
    except keys.KeyFileUnsafe as e:
        raise PolicyError("ledger_key_unsafe", path=str(e.path), mode=f"{e.mode:o}", uid=e.uid) from None
    except (OSError, keys.KeyFileError) as e:
        raise InputInvalid("ledger_key_unreadable", path=str(path), error=str(e)) from None


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def read_public_key(path: Path) -> Ed25519PublicKey:
    """A public key (PEM) as `onsite audit public-key` prints it."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as e:
        raise InputInvalid("ledger_key_unreadable", path=str(path), error=str(e)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputInvalid("ledger_key_unreadable", path=str(path), error="not an Ed25519 public key")
    return key


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """How heads and cosignatures name their signer."""
    return keys.fingerprint(key)


def signature_ok(public: Ed25519PublicKey, signature_b64: str, message: bytes) -> bool:
    try:
        public.verify(base64.b64decode(signature_b64, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------- heads and cosignatures


@dataclass(frozen=True)
class TreeHead:
    """The log's signed statement: its first `tree_size` events have Merkle root `root_hash`."""

    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str = ""

    def message(self) -> bytes:
        return audit.canonical_json({"schema": HEAD_SCHEMA, "tree_size": self.tree_size, "root_hash": self.root_hash,
                                     "timestamp": self.timestamp, "key_id": self.key_id}).encode()

    def signed(self, key: Ed25519PrivateKey) -> TreeHead:
        return TreeHead(self.tree_size, self.root_hash, self.timestamp, self.key_id,
                        base64.b64encode(key.sign(self.message())).decode())

    def signed_by(self, public: Ed25519PublicKey) -> bool:
        return self.key_id == key_id(public) and signature_ok(public, self.signature, self.message())

    def signed_by_one_of(self, trusted: Mapping[str, Ed25519PublicKey]) -> bool:
        """Signed by one of `trusted` (key id → key: a log key and those it handed over to, `trusted_keys`)."""
        public = trusted.get(self.key_id)
        return public is not None and self.signed_by(public)

    def as_dict(self) -> dict[str, Any]:
        return {"schema": HEAD_SCHEMA, **asdict(self)}

    @classmethod
    def from_dict(cls, value: Any) -> TreeHead:
        try:
            return cls(int(value["tree_size"]), str(value["root_hash"]), str(value["timestamp"]), str(value["key_id"]),
                       str(value["signature"]))
        except (TypeError, KeyError, ValueError) as e:
            raise ProofInvalid(f"not a signed tree head: {e}") from None

    @classmethod
    def from_row(cls, row: AuditTreeHead) -> TreeHead:
        return cls(row.tree_size, row.root_hash, row.timestamp, row.key_id, row.signature)


@dataclass(frozen=True)
class Cosignature:
    """A witness's signature over a head it checked (`witness`)."""

    witness: str
    witness_key: str
    """Its raw Ed25519 public key, base64."""
    tree_size: int
    root_hash: str
    head_timestamp: str
    witnessed_at: str
    signature: str = ""

    def message(self) -> bytes:
        return audit.canonical_json({"schema": COSIGNATURE_SCHEMA, "witness": self.witness, "tree_size": self.tree_size,
                                     "root_hash": self.root_hash, "head_timestamp": self.head_timestamp,
                                     "witnessed_at": self.witnessed_at}).encode()

    def public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.witness_key))

    def valid(self) -> bool:
        try:
            public = self.public_key()
        except ValueError:
            return False
        return signature_ok(public, self.signature, self.message())

    def as_dict(self) -> dict[str, Any]:
        return {"schema": COSIGNATURE_SCHEMA, **asdict(self)}

    @classmethod
    def from_row(cls, row: AuditCosignature) -> Cosignature:
        return cls(row.witness, row.witness_key, row.tree_size, row.root_hash, row.head_timestamp, row.witnessed_at,
                   row.signature)


@dataclass(frozen=True)
class KeyTransition:
    """The log key handing over to a new one (`rotate_key`): signed by the key it retires, recorded in the log as
    LEDGER_KEY_ROTATE. Whoever trusts the old key may trust the new one; the old key's last head is named."""

    old_public_key: str
    """Raw Ed25519 public keys, base64."""
    new_public_key: str
    tree_size: int
    root_hash: str
    at: str
    signature: str = ""

    def message(self) -> bytes:
        return audit.canonical_json({"schema": TRANSITION_SCHEMA, "old_public_key": self.old_public_key,
                                     "new_public_key": self.new_public_key, "tree_size": self.tree_size,
                                     "root_hash": self.root_hash, "at": self.at}).encode()

    @property
    def old_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.old_public_key, validate=True))

    @property
    def new_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.new_public_key, validate=True))

    def valid(self) -> bool:
        try:
            return signature_ok(self.old_key, self.signature, self.message()) and bool(self.new_key)
        except ValueError:
            return False

    def as_dict(self) -> dict[str, Any]:
        return {"schema": TRANSITION_SCHEMA, **asdict(self)}

    @classmethod
    def from_dict(cls, value: Any) -> KeyTransition:
        try:
            return cls(str(value["old_public_key"]), str(value["new_public_key"]), int(value["tree_size"]),
                       str(value["root_hash"]), str(value["at"]), str(value["signature"]))
        except (TypeError, KeyError, ValueError) as e:
            raise ProofInvalid(f"not a log key transition: {e}") from None


def raw_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    return base64.b64encode(keys.raw_public(key.public_key() if isinstance(key, Ed25519PrivateKey) else key)).decode()


def key_transitions(session: Session) -> list[KeyTransition]:
    """The log key's handovers recorded in the log, oldest first (unreadable ones left out: they hand over nothing)."""
    found = []
    for details in session.scalars(select(AuditEvent.details).where(AuditEvent.action == AuditEventType.LEDGER_KEY_ROTATE)
                                   .order_by(AuditEvent.seq)):
        try:
            found.append(KeyTransition.from_dict(json.loads(details).get("transition")))
        except (ProofInvalid, ValueError, AttributeError):
            continue
    return found


def trusted_keys(public: Ed25519PublicKey | None, transitions: Iterable[KeyTransition],
                 earlier: bool = False) -> dict[str, Ed25519PublicKey]:
    """`public` and the keys it handed over to, in turn (key id → key): each handover signed by the key it retires.
    With `earlier` (verifying the log itself, whose heads cover the handovers): the whole line of keys `public`
    belongs to, from the first key that handed over, so the newest key also vouches for its predecessors' heads."""
    transitions = [t for t in transitions if t.valid()]

    def line_from(start: Ed25519PublicKey) -> dict[str, Ed25519PublicKey]:
        line = {key_id(start): start}
        for t in transitions:
            if raw_b64(t.old_key) == raw_b64(start):
                start = t.new_key
                line[key_id(start)] = start
        return line

    if public is None:
        return {}
    if earlier and transitions:
        whole = line_from(transitions[0].old_key)
        if key_id(public) in whole:
            return whole
    return line_from(public)


class ProofInvalid(Exception):
    """A proof, head or cosignature that does not check: the message says which part."""


class TreeIncomplete(Exception):
    """The stored tree does not reach as far as asked (no head was signed over those events yet)."""


# ---------------------------------------------------------------- the stored tree


def lock_tree(session: Session) -> None:
    """Serialize writers of tree nodes (SQLite: the transaction's write lock does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": TREE_LOCK_KEY})


def ledger_size(session: Session) -> int:
    return session.scalar(select(func.max(AuditEvent.seq))) or 0


def stored_leaves(session: Session) -> int:
    """How many events the stored blocks cover (a multiple of BLOCK)."""
    last = session.scalar(select(func.max(AuditTreeNode.idx)).where(AuditTreeNode.level == STORED_LEVEL))
    return 0 if last is None else (last + 1) * BLOCK


def frontier_at(session: Session, leaves: int) -> merkle.Frontier:
    """The tree's frontier after `leaves` events (a multiple of BLOCK), from the stored nodes."""
    frontier = merkle.Frontier()
    keys = [(level, (leaves >> level) - 1) for level in range(leaves.bit_length() - 1, STORED_LEVEL - 1, -1)
            if leaves >> level & 1]
    found = stored_nodes(session, keys)
    missing = [key for key in keys if key not in found]
    if missing:
        raise TreeIncomplete(f"stored tree nodes missing: {missing[:5]}")
    frontier.stack = [(level, found[(level, index)]) for level, index in keys]
    frontier.size = leaves
    return frontier


def stored_nodes(session: Session, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored hashes of `keys`, by primary key: one `level = L AND idx IN (…)` per level, which SQLite
    looks up in the index (a row-value IN list made it scan the whole table: 129 ms a proof at 10M events)."""
    keys = sorted(keys)
    found: dict[tuple[int, int], bytes] = {}
    for start in range(0, len(keys), MAX_QUERY_KEYS):
        by_level: dict[int, list[int]] = {}
        for level, index in keys[start:start + MAX_QUERY_KEYS]:
            by_level.setdefault(level, []).append(index)
        rows = session.execute(select(AuditTreeNode.level, AuditTreeNode.idx, AuditTreeNode.hash).where(
            or_(*(and_(AuditTreeNode.level == level, AuditTreeNode.idx.in_(indexes)) for level, indexes in by_level.items()))))
        found.update({(level, index): bytes(h) for level, index, h in rows})
    return found


def extend_tree(factory: sessionmaker[Session]) -> int:
    """Store the complete blocks of events not yet in the tree; returns the ledger's size when it began.

    The new events are read (and their chain checked) in a read that holds no writer up; the nodes
    are then written in a short transaction. Refuses (LedgerBroken) events that do not chain."""
    size: int | None = None
    while True:
        with read_transaction(factory) as session:
            size = ledger_size(session) if size is None else size
            done = stored_leaves(session)
            target = size // BLOCK * BLOCK
            if target <= done:
                return size
            new = tree_nodes(session, done, target)
        with transaction(factory) as session:
            lock_tree(session)
            if stored_leaves(session) == done:
                session.execute(insert(AuditTreeNode), new)
                return size
        # Another signer stored blocks meanwhile: go on from where it stopped.


def tree_nodes(session: Session, done: int, target: int) -> list[dict[str, Any]]:
    """The stored nodes that events done+1..target complete, their chain checked on the way."""
    frontier = frontier_at(session, done)
    prev = session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == done)) if done else audit.GENESIS_HASH
    new: list[dict[str, Any]] = []

    def finished(level: int, index: int, h: bytes) -> None:
        new.append({"level": level, "idx": index, "hash": h})

    for row in audit.chain_rows(session, after=done, upto=target):
        entry = audit.stored_entry(row)
        if row.seq != frontier.size + 1 or row.prev_hash != prev or hashlib.sha256(entry).hexdigest() != row.hash:
            raise LedgerBroken(f"event {row.seq} does not chain: run `onsite audit verify`")
        prev = row.hash
        frontier.push(merkle.leaf_hash(entry), finished, STORED_LEVEL)
    if frontier.size != target:
        raise LedgerBroken(f"event {frontier.size + 1} is missing: run `onsite audit verify`")
    return new


class LedgerBroken(Exception):
    """The stored events do not chain: no tree is built over them and no head signed."""


class TreeReader:
    """The hashes of the tree of the ledger's first `size` events, from the stored nodes and, below BLOCK, the events."""

    def __init__(self, session: Session, size: int) -> None:
        self.session = session
        self.size = size

    def run(self, build: Callable[[merkle.Node], Any]) -> Any:
        """`build(node)` with every node it asks for fetched first, in two queries."""
        wanted = merkle.needed_nodes(build)
        nodes = stored_nodes(self.session, [key for key in wanted if key[0] >= STORED_LEVEL])
        if len(nodes) < sum(1 for key in wanted if key[0] >= STORED_LEVEL):
            raise TreeIncomplete(f"the stored tree does not cover {self.size} events: sign a head first")
        blocks = sorted({(index << level) >> STORED_LEVEL for level, index in wanted if level < STORED_LEVEL})
        nodes.update(self.small_nodes(blocks))
        return build(lambda level, index: nodes[(level, index)])

    def small_nodes(self, blocks: list[int]) -> dict[tuple[int, int], bytes]:
        if not blocks:
            return {}
        ranges = [AuditEvent.seq.between(b * BLOCK + 1, min(self.size, (b + 1) * BLOCK)) for b in blocks]
        nodes: dict[tuple[int, int], bytes] = {}
        frontiers: dict[int, merkle.Frontier] = {}
        for row in audit.chain_rows(self.session, where=or_(*ranges)):
            block = (row.seq - 1) // BLOCK
            frontier = frontiers.setdefault(block, merkle.Frontier())
            base = block * BLOCK

            def finished(level: int, index: int, h: bytes, base: int = base) -> None:
                if level < STORED_LEVEL:
                    nodes[(level, (base >> level) + index)] = h

            frontier.push(merkle.leaf_hash(audit.stored_entry(row)), finished)
        return nodes

    def root(self) -> bytes:
        return self.run(lambda node: merkle.root(node, self.size))

    def inclusion_path(self, index: int) -> list[bytes]:
        return self.run(lambda node: merkle.inclusion_path(node, index, self.size))

    def consistency_proof(self, old_size: int) -> list[bytes]:
        return self.run(lambda node: merkle.consistency_proof(node, old_size, self.size))


def newest_head(session: Session) -> TreeHead | None:
    row = session.scalars(select(AuditTreeHead).order_by(AuditTreeHead.tree_size.desc(), AuditTreeHead.id.desc())
                          .limit(1)).first()
    return None if row is None else TreeHead.from_row(row)


def head_of_size(session: Session, size: int) -> TreeHead | None:
    row = session.scalars(select(AuditTreeHead).where(AuditTreeHead.tree_size == size)
                          .order_by(AuditTreeHead.id.desc()).limit(1)).first()
    return None if row is None else TreeHead.from_row(row)


def sign_head(factory: sessionmaker[Session], key: Ed25519PrivateKey) -> TreeHead:
    """Extend the tree to the ledger's events, check it only grew since the newest head, sign and store its head.
    Refuses (LedgerBroken) a tree that is not an extension of the newest signed head."""
    size = extend_tree(factory)
    with read_transaction(factory) as session:
        reader = TreeReader(session, size)
        root = reader.root()
        last = newest_head(session)
        if last is not None and last.tree_size > 0:
            if last.tree_size > size:
                raise LedgerBroken(f"the newest signed head has {last.tree_size} events, the ledger {size}: events were deleted")
            proof = reader.consistency_proof(last.tree_size)
            if not merkle.verify_consistency(last.tree_size, size, bytes.fromhex(last.root_hash), root, proof):
                raise LedgerBroken(f"the ledger is no longer an extension of the head of {last.tree_size} events "
                                   f"signed at {last.timestamp}: history was rewritten")
    head = TreeHead(size, root.hex(), now_text(), key_id(key)).signed(key)
    with transaction(factory) as session:
        session.add(AuditTreeHead(tree_size=head.tree_size, root_hash=head.root_hash, timestamp=head.timestamp,
                                  key_id=head.key_id, signature=head.signature))
    return head


def rotate_key(factory: sessionmaker[Session], path: Path, actor: str) -> tuple[TreeHead, KeyTransition, TreeHead]:
    """Hand the log key in `path` over to a new one: a last head signed with the old key, the handover (signed by
    the old key) recorded in the log, the new key in `path`, a first head signed with it. Returns the two heads
    and the handover. The new key waits beside the old (`.next`) until the handover is recorded: a crash leaves
    the old key in place, and the next rotation goes on with the same new key if its handover was recorded."""
    old = signing_key(path, create=False)
    pending = path.with_name(path.name + ".next")
    last = sign_head(factory, old)
    with read_transaction(factory) as session:
        recorded = {t.new_public_key for t in key_transitions(session) if raw_b64(t.old_key) == raw_b64(old)}
    new = signing_key(pending, create=False) if pending.exists() else None
    if new is None or raw_b64(new) not in recorded:
        pending.unlink(missing_ok=True)
        new = signing_key(pending)
        transition = KeyTransition(raw_b64(old), raw_b64(new), last.tree_size, last.root_hash, now_text())
        transition = replace(transition, signature=base64.b64encode(old.sign(transition.message())).decode())
        with transaction(factory) as session:
            audit.record(session, AuditEventType.LEDGER_KEY_ROTATE, actor=actor, object=f"ledger_key/{key_id(new)[:16]}",
                         details={"transition": transition.as_dict(), "old_key_id": key_id(old), "new_key_id": key_id(new)})
    else:
        with read_transaction(factory) as session:
            transition = next(t for t in key_transitions(session) if t.new_public_key == raw_b64(new))
    os.replace(pending, path)
    return last, transition, sign_head(factory, new)


# ---------------------------------------------------------------- proofs


def inclusion_proof(session: Session, seq: int, head: TreeHead | None = None) -> dict[str, Any]:
    """Event `seq` and its audit path to `head` (default: the newest signed head)."""
    head = head or newest_head(session)
    if head is None:
        raise PolicyError("ledger_no_head")
    event = session.scalars(select(AuditEvent).where(AuditEvent.seq == seq)).first()
    if event is None:
        raise PolicyError("ledger_no_event", seq=seq)
    if seq > head.tree_size:
        raise PolicyError("ledger_event_after_head", seq=seq, size=head.tree_size)
    path = TreeReader(session, head.tree_size).inclusion_path(seq - 1)
    return {"schema": INCLUSION_SCHEMA, "event": audit.event_as_dict(event), "leaf_index": seq - 1,
            "tree_size": head.tree_size, "audit_path": [p.hex() for p in path], "head": head.as_dict(),
            "key_transitions": [t.as_dict() for t in key_transitions(session)]}


def consistency_proof(session: Session, old_size: int, new_size: int) -> dict[str, Any]:
    """The proof that the signed head of `new_size` events extends the signed head of `old_size` events."""
    old, new = head_of_size(session, old_size), head_of_size(session, new_size)
    if old is None or new is None:
        raise PolicyError("ledger_no_head_of_size", size=old_size if old is None else new_size)
    if not 0 < old_size <= new_size:
        raise PolicyError("ledger_sizes_backwards", old=old_size, new=new_size)
    proof = TreeReader(session, new_size).consistency_proof(old_size)
    return {"schema": CONSISTENCY_SCHEMA, "old": old.as_dict(), "new": new.as_dict(), "proof": [p.hex() for p in proof],
            "key_transitions": [t.as_dict() for t in key_transitions(session)]}


def hexes(values: Any) -> list[bytes]:
    if not isinstance(values, list):
        raise ProofInvalid("the proof's hashes must be a list")
    try:
        return [bytes.fromhex(v) for v in values]
    except (TypeError, ValueError):
        raise ProofInvalid("the proof's hashes must be hexadecimal") from None


def check_proof(proof: Any, public: Ed25519PublicKey, zone: str = times.DEFAULT_TIMEZONE) -> str:
    """Check an inclusion or consistency proof with only the log's public key; says what it proves (a head's
    moment shown in `zone`).
    A head signed by a later log key checks when the proof carries the handovers from `public` to it.
    Raises ProofInvalid naming what does not check."""
    if not isinstance(proof, dict):
        raise ProofInvalid("a proof is a JSON object")
    handovers = proof.get("key_transitions") or []
    trusted = trusted_keys(public, [KeyTransition.from_dict(t) for t in handovers] if isinstance(handovers, list) else [])
    if proof.get("schema") == INCLUSION_SCHEMA:
        head = TreeHead.from_dict(proof.get("head"))
        if not head.signed_by_one_of(trusted):
            raise ProofInvalid("the head is not signed by this log key (nor by a key it handed over to)")
        event = proof.get("event")
        try:
            entry = audit.exported_entry(event)
            index = int(proof["leaf_index"])
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise ProofInvalid(f"the event cannot be read: {e}") from None
        if hashlib.sha256(entry).hexdigest() != event.get("hash"):
            raise ProofInvalid(f"event {event.get('seq')} does not match its own hash")
        if index != event["seq"] - 1 or proof.get("tree_size") != head.tree_size:
            raise ProofInvalid("the proof's position or size differs from its event's and head's")
        if not merkle.verify_inclusion(merkle.leaf_hash(entry), index, head.tree_size, hexes(proof.get("audit_path")),
                                       bytes.fromhex(head.root_hash)):
            raise ProofInvalid(f"event {event['seq']} is not in the head of {head.tree_size} events")
        return (f"event {event['seq']} is in the log's head of {head.tree_size} events signed at "
                f"{times.shown(datetime.fromisoformat(head.timestamp), zone, seconds=True)}")
    if proof.get("schema") == CONSISTENCY_SCHEMA:
        old, new = TreeHead.from_dict(proof.get("old")), TreeHead.from_dict(proof.get("new"))
        if not (old.signed_by_one_of(trusted) and new.signed_by_one_of(trusted)):
            raise ProofInvalid("a head is not signed by this log key (nor by a key it handed over to)")
        if not merkle.verify_consistency(old.tree_size, new.tree_size, bytes.fromhex(old.root_hash),
                                         bytes.fromhex(new.root_hash), hexes(proof.get("proof"))):
            raise ProofInvalid(f"the head of {new.tree_size} events does not extend the head of {old.tree_size}")
        return f"the head of {new.tree_size} events extends the head of {old.tree_size} events: the log only grew"
    raise ProofInvalid(f"unknown proof schema {proof.get('schema')!r}")


# ---------------------------------------------------------------- verifying all of it


class TreeCheck:
    """Checks, as `audit.verify` streams the chained events, the stored tree nodes, every signed head
    (its root at its size, its signature when the log key is known) and every cosignature."""

    def __init__(self, session: Session, public: Ed25519PublicKey | None) -> None:
        self.trusted = trusted_keys(public, key_transitions(session), earlier=True)
        self.nodes = {(level, index): bytes(h) for level, index, h in
                      session.execute(select(AuditTreeNode.level, AuditTreeNode.idx, AuditTreeNode.hash))}
        self.heads = sorted((TreeHead.from_row(r) for r in session.scalars(select(AuditTreeHead))), key=lambda h: h.tree_size)
        self.cosignatures = sorted((Cosignature.from_row(r) for r in session.scalars(select(AuditCosignature))),
                                   key=lambda c: c.tree_size)
        self.frontier = merkle.Frontier()
        self.signed_heads = 0
        self.other_keys: set[str] = set()
        self.problem: str | None = self.at_size()  # heads of the empty log (signed before the first event)
        self.check_at = self.next_size()

    def finished(self, level: int, index: int, h: bytes) -> None:
        if self.nodes.pop((level, index), h) != h and self.problem is None:
            self.problem = f"stored tree node {level}/{index} differs from the events it covers"

    def next_size(self) -> int:
        """The next tree size a head or cosignature names (-1: none left)."""
        sizes = [items[0].tree_size for items in (self.heads, self.cosignatures) if items]
        return min(sizes) if sizes else -1

    def at_size(self) -> str | None:
        size = self.frontier.size
        root = self.frontier.root().hex() if (self.heads and self.heads[0].tree_size == size) or (
            self.cosignatures and self.cosignatures[0].tree_size == size) else ""
        while self.heads and self.heads[0].tree_size == size:
            head = self.heads.pop(0)
            if head.root_hash != root:
                return f"the head of {size} events signed at {head.timestamp} has another root: history was rewritten"
            if head.key_id not in self.trusted:
                self.other_keys.add(head.key_id)
            elif not head.signed_by_one_of(self.trusted):
                return f"the head of {size} events signed at {head.timestamp} has a bad signature"
            else:
                self.signed_heads += 1
        while self.cosignatures and self.cosignatures[0].tree_size == size:
            cosignature = self.cosignatures.pop(0)
            if cosignature.root_hash != root:
                return (f"witness {cosignature.witness} co-signed another root for the first {size} events: "
                        "history was rewritten")
            if not cosignature.valid():
                return f"the cosignature of witness {cosignature.witness} at {size} events has a bad signature"
        return None

    def __call__(self, seq: int, entry: bytes) -> str | None:
        self.frontier.push(merkle.leaf_hash(entry), self.finished, STORED_LEVEL)
        if self.problem is None and self.frontier.size == self.check_at:
            self.problem = self.at_size()
            self.check_at = self.next_size()
        return self.problem

    def finish(self) -> str | None:
        """What is left after the last event: heads or cosignatures beyond it, nodes over no event."""
        beyond = [h.tree_size for h in self.heads] + [c.tree_size for c in self.cosignatures]
        if beyond:
            return (f"a signed head or cosignature covers {max(beyond)} events but the ledger has {self.frontier.size}: "
                    "events were deleted")
        if self.nodes:
            return f"{len(self.nodes)} stored tree nodes cover events that do not exist"
        return None


@dataclass(frozen=True)
class Verification:
    chain: audit.LedgerVerification
    ok: bool
    problem: str
    signed_heads: int
    """Heads whose signature was checked with the log key."""
    other_keys: frozenset[str]
    """Key ids of heads not signed by the given key (a rotated key, or no key given): roots checked, signatures not."""
    root_hash: str


def verify(session: Session, public: Ed25519PublicKey | None, anchor: audit.LedgerAnchor | None = None,
           progress: Callable[[int], object] | None = None) -> Verification:
    """The whole ledger: its hash chain (and anchor), then the Merkle tree, the signed heads and the cosignatures."""
    check = TreeCheck(session, public)
    chain = audit.verify(session, anchor, progress, entries=check)
    problem = chain.problem if not chain.ok else check.finish() or ""
    return Verification(chain, not problem, problem, check.signed_heads, frozenset(check.other_keys),
                        check.frontier.root().hex())


# ---------------------------------------------------------------- witnesses


class WitnessRefused(Exception):
    """The witness did not co-sign: the message says why (the log's head does not extend the last it saw)."""


class LogUnreachable(Exception):
    """The log's API did not answer, or answered something that is not the log's: the message says what."""


class LogSource(Protocol):
    """The log as a witness sees it: its newest signed head, consistency proofs, a place for cosignatures.
    None of it is trusted: the witness checks the head's signature and every proof itself."""

    def newest_head(self) -> TreeHead | None: ...

    def consistency(self, old_size: int, new_size: int) -> list[bytes]: ...

    def add_cosignature(self, cosignature: Cosignature) -> None: ...

    def key_transitions(self) -> list[KeyTransition]: ...


class StoreLog:
    """The log read from its store (a database URL the witness may read and write cosignatures to)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def newest_head(self) -> TreeHead | None:
        with read_transaction(self.factory) as session:
            return newest_head(session)

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        with read_transaction(self.factory) as session:
            return [bytes.fromhex(h) for h in consistency_path(session, old_size, new_size)["proof"]]

    def add_cosignature(self, cosignature: Cosignature) -> None:
        with transaction(self.factory) as session:
            accept_cosignature(session, cosignature)

    def key_transitions(self) -> list[KeyTransition]:
        with read_transaction(self.factory) as session:
            return key_transitions(session)


class HttpLog:
    """The log over HTTP: the admin service's read-only log API (admin_service.app, `log/…`), with a Hub API token."""

    def __init__(self, base_url: str, token: str = "", timeout: float = 30.0, language: str = "en") -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.token = token
        self.timeout = timeout
        self.language = language
        """The language of the API's refusals (ja or en: the witness's own)."""

    def call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(self.base_url + path, method="GET" if body is None else "POST",
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("Accept", "application/json")
        request.add_header("Accept-Language", self.language)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:  # a witness's own credential (`add_witness`), or a Hub API token of an administrator
            scheme = "Witness" if self.token.startswith(WITNESS_TOKEN_PREFIX) else "token"
            request.add_header("Authorization", f"{scheme} {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code == 404 and path == "log/head":
                return None
            try:
                said = json.loads(e.read()).get("error", "")
            except (ValueError, AttributeError):
                said = ""
            raise LogUnreachable(f"{self.base_url}{path} answered {e.code} {e.reason}" + (f": {said}" if said else "")) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise LogUnreachable(f"{self.base_url}{path}: {e}") from None

    def newest_head(self) -> TreeHead | None:
        value = self.call("log/head")
        try:
            return None if value is None else TreeHead.from_dict(value)
        except ProofInvalid as e:
            raise LogUnreachable(f"{self.base_url}log/head: {e}") from None

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        value = self.call(f"log/consistency?{urllib.parse.urlencode({'old': old_size, 'new': new_size})}")
        try:
            return hexes(value.get("proof") if isinstance(value, dict) else None)
        except ProofInvalid as e:
            raise LogUnreachable(f"{self.base_url}log/consistency: {e}") from None

    def add_cosignature(self, cosignature: Cosignature) -> None:
        self.call("log/cosignatures", cosignature.as_dict())

    def key_transitions(self) -> list[KeyTransition]:
        value = self.call("log/keys")
        try:
            return [KeyTransition.from_dict(t) for t in value["key_transitions"]]
        except (TypeError, KeyError, ProofInvalid) as e:
            raise LogUnreachable(f"{self.base_url}log/keys: {e}") from None


def consistency_path(session: Session, old_size: int, new_size: int) -> dict[str, Any]:
    """The hashes that prove the tree of `new_size` events (a signed head's) extends the tree of its first
    `old_size`: what a witness asks for, naming the head it saw last (which a rewritten log may no longer have)."""
    if head_of_size(session, new_size) is None:
        raise PolicyError("ledger_no_head_of_size", size=new_size)
    if not 0 < old_size <= new_size:
        raise PolicyError("ledger_sizes_backwards", old=old_size, new=new_size)
    proof = TreeReader(session, new_size).consistency_proof(old_size)
    return {"schema": CONSISTENCY_PATH_SCHEMA, "old_size": old_size, "new_size": new_size, "proof": [p.hex() for p in proof]}


def accept_cosignature(session: Session, cosignature: Cosignature) -> None:
    """Store a witness's cosignature: refused (PolicyError) unless its signature checks, it names a head this log
    signed (same size and root), and the witness's name goes with the key it first co-signed with."""
    if not cosignature.valid():
        raise PolicyError("ledger_cosignature_invalid", witness=cosignature.witness)
    head = head_of_size(session, cosignature.tree_size)
    if head is None or head.root_hash != cosignature.root_hash:
        raise PolicyError("ledger_cosignature_unknown_head", witness=cosignature.witness, size=cosignature.tree_size)
    known = session.scalars(select(AuditCosignature.witness_key).where(AuditCosignature.witness == cosignature.witness)
                            .order_by(AuditCosignature.id).limit(1)).first()
    if known is not None and known != cosignature.witness_key:
        raise PolicyError("ledger_cosignature_other_key", witness=cosignature.witness)
    session.add(AuditCosignature(**asdict(cosignature)))


def cosignature_from_dict(value: Any) -> Cosignature:
    """A cosignature as `Cosignature.as_dict` writes it (the log API's POST body)."""
    try:
        fields = {name: value[name] for name in ("witness", "witness_key", "root_hash", "head_timestamp", "witnessed_at",
                                                 "signature")}
        if not all(isinstance(v, str) for v in fields.values()) or not isinstance(value["tree_size"], int):
            raise TypeError("text fields and an integer tree_size")
        if not 0 < len(fields["witness"]) <= MAX_WITNESS_NAME:
            raise ValueError(f"a witness name of 1 to {MAX_WITNESS_NAME} characters")
        return Cosignature(tree_size=value["tree_size"], **fields)
    except (TypeError, KeyError, ValueError) as e:
        raise PolicyError("ledger_cosignature_unreadable", error=str(e)) from None


def witness(log: LogSource, log_key: Ed25519PublicKey, key: Ed25519PrivateKey, state: Path, name: str) -> Cosignature:
    """Check the log's newest head against the last head this witness co-signed (kept in `state`),
    then co-sign it and hand the cosignature to the log. The first head is taken on trust.
    Whatever the log sends is checked here: the head's signature with `log_key`, the proof with the kept root."""
    head = log.newest_head()
    if head is None:
        raise WitnessRefused("the log has no signed head yet")
    if not head.signed_by(log_key) and not head.signed_by_one_of(trusted_keys(log_key, log.key_transitions())):
        raise WitnessRefused(f"the newest head ({head.tree_size} events) is not signed by the log key, nor by a key it "
                             "handed over to")
    last = read_witness_state(state)
    if last is not None and last.tree_size > 0:  # every log extends the empty one
        if head.tree_size < last.tree_size:
            raise WitnessRefused(f"the log shrank: {head.tree_size} events, {last.tree_size} when last seen at {last.timestamp}")
        try:
            proof = log.consistency(last.tree_size, head.tree_size) if head.tree_size > last.tree_size else []
        except (TreeIncomplete, PolicyError, LogUnreachable) as e:
            raise WitnessRefused(f"the log cannot prove its head of {head.tree_size} events extends the head of "
                                 f"{last.tree_size} seen at {last.timestamp}: {e}") from None
        if not merkle.verify_consistency(last.tree_size, head.tree_size, bytes.fromhex(last.root_hash),
                                         bytes.fromhex(head.root_hash), proof):
            raise WitnessRefused(f"the head of {head.tree_size} events does not extend the head of {last.tree_size} "
                                 f"events seen at {last.timestamp}: the log's history was rewritten")
    public = key.public_key()
    cosignature = Cosignature(name, base64.b64encode(keys.raw_public(public)).decode(), head.tree_size, head.root_hash,
                              head.timestamp, now_text())
    cosignature = Cosignature(**{**asdict(cosignature), "signature": base64.b64encode(key.sign(cosignature.message())).decode()})
    log.add_cosignature(cosignature)
    write_witness_state(state, head)
    return cosignature


def read_witness_state(path: Path) -> TreeHead | None:
    if not path.exists():
        return None
    try:
        return TreeHead.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ProofInvalid) as e:
        raise InputInvalid("ledger_witness_state_unreadable", path=str(path), error=str(e)) from None


def write_witness_state(path: Path, head: TreeHead) -> None:
    """Replace the witness's last head at once (a crash leaves the old one or the new one)."""
    path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    write_atomic(path, (audit.canonical_json(head.as_dict()) + "\n").encode(), mode=0o600)


def last_cosignatures(session: Session) -> list[Cosignature]:
    """Each witness's newest cosignature, by witness name."""
    newest = (select(AuditCosignature.witness, func.max(AuditCosignature.id).label("id"))
              .group_by(AuditCosignature.witness).subquery())
    rows = session.scalars(select(AuditCosignature).join(newest, AuditCosignature.id == newest.c.id)
                           .order_by(AuditCosignature.witness))
    return [Cosignature.from_row(r) for r in rows]


# ---------------------------------------------------------------- witness credentials


def add_witness(session: Session, name: str, *, actor: str) -> str:
    """Issue witness `name` its credential for the log API: a random token, returned once; the ledger keeps only its
    SHA-256 (LEDGER_WITNESS_ADD). Issuing again replaces the name's credential: the older token stops working."""
    name = name.strip()
    if not 0 < len(name) <= MAX_WITNESS_NAME or not name.isprintable():
        raise InputInvalid("ledger_witness_name", name=name[:MAX_WITNESS_NAME], limit=MAX_WITNESS_NAME)
    token = WITNESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
    audit.record(session, AuditEventType.LEDGER_WITNESS_ADD, actor=actor, object=f"witness:{name}"[:audit.MAX_OBJECT],
                 details={"witness": name, "token_sha256": token_digest(token)})
    return token


def remove_witness(session: Session, name: str, *, actor: str) -> None:
    """Withdraw witness `name`'s credential (LEDGER_WITNESS_REMOVE): the log API refuses it from now on."""
    audit.lock_ledger(session)  # the check and the record in one turn: two removals cannot both pass it
    if name not in witness_credentials(session):
        raise PolicyError("ledger_witness_unknown", name=name)
    audit.record(session, AuditEventType.LEDGER_WITNESS_REMOVE, actor=actor, object=f"witness:{name}"[:audit.MAX_OBJECT],
                 details={"witness": name})


def witness_credentials(session: Session) -> dict[str, str]:
    """Each witness with a credential now: name → its token's SHA-256, from the ledger's LEDGER_WITNESS_ADD and
    _REMOVE events in order."""
    current: dict[str, str] = {}
    rows = session.execute(select(AuditEvent.action, AuditEvent.details).where(AuditEvent.action.in_(
        (AuditEventType.LEDGER_WITNESS_ADD, AuditEventType.LEDGER_WITNESS_REMOVE))).order_by(AuditEvent.seq))
    for action, details in rows:
        try:
            fields = json.loads(details)
            name = fields["witness"]
            if action is AuditEventType.LEDGER_WITNESS_ADD:
                current[name] = str(fields["token_sha256"])
            else:
                current.pop(name, None)
        except (ValueError, TypeError, KeyError):
            continue  # unreadable: issues nothing (verify names the altered event)
    return current


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def witness_of(session: Session, token: str) -> str | None:
    """The witness whose credential `token` is, or None (unknown, replaced or withdrawn)."""
    digest = token_digest(token)
    found = [name for name, known in witness_credentials(session).items() if hmac.compare_digest(known, digest)]
    return found[0] if found else None
