"""`onsite audit head|heads|public-key|prove|check-proof|witness|witnesses`, and a ledger made before the tree
(schema ac0002) migrating and still verifying."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from alembic import command
from sqlalchemy import text

from access_control import audit, ledger
from access_control.enums import AuditEventType
from onsite.commands.audit import AUDIT_COMMANDS
from onsite.migrations import alembic_config, migrate
from onsite_base.db import make_engine, session_factory, transaction
from test_access_cli import onsite  # noqa: F401  (fixture)


def shown_head_time(proof: str) -> str:
    """The proof's head's moment as people read times (Settings.timezone's default, Asia/Tokyo)."""
    signed = datetime.fromisoformat(json.loads(proof)["head"]["timestamp"])
    return signed.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M:%S JST")


def add_people(onsite, names) -> None:
    for name in names:
        assert onsite("admin", "person", "add", name, "--name", name, "--no-password")[0] == 0


def test_prove_and_check_with_only_the_public_key(onsite, tmp_path):
    add_people(onsite, [f"p{i}" for i in range(5)])
    code, out, _ = onsite("audit", "prove", "2")
    assert code == 2  # no head yet: refused, naming the command that makes one
    assert onsite("audit", "head")[0] == 0
    add_people(onsite, [f"q{i}" for i in range(20)])
    code, out, _ = onsite("audit", "head", "--json")
    assert code == 0 and json.loads(out)["tree_size"] == 25
    code, pem, _ = onsite("audit", "public-key")
    public = tmp_path / "log.pub"
    public.write_text(pem)
    assert not (tmp_path / "keys" / "ledger.pem").read_text() in pem  # the private key never printed

    code, proof, _ = onsite("audit", "prove", "3")
    assert code == 0 and json.loads(proof)["tree_size"] == 25
    assert onsite("audit", "check-proof", "-", "--public-key", str(public), stdin=proof)[:2] == (
        0, f"ok: event 3 is in the log's head of 25 events signed at {shown_head_time(proof)}\n")
    forged = json.loads(proof)
    forged["event"]["actor"] = "admin:someone-else"
    code, out, _ = onsite("audit", "check-proof", "-", "--public-key", str(public), stdin=json.dumps(forged))
    assert code == 1 and out.startswith("INVALID: event 3 does not match its own hash")

    code, consistency, _ = onsite("audit", "prove", "--consistency", "5", "25")
    assert code == 0
    proof_file = tmp_path / "consistency.json"
    proof_file.write_text(consistency)
    assert onsite("audit", "check-proof", str(proof_file), "--public-key", str(public))[1].endswith("the log only grew\n")
    kept = tmp_path / "kept-head.json"
    kept.write_text(json.dumps(json.loads(proof)["head"]))
    assert onsite("audit", "check-proof", "-", "--public-key", str(public), "--head", str(kept), stdin=proof)[0] == 0
    code, out, _ = onsite("audit", "check-proof", str(proof_file), "--public-key", str(public), "--head", str(proof_file))
    assert code == 1 and "not a signed tree head" in out
    code, out, err = onsite("audit", "prove", "--consistency", "6", "25")
    assert code == 2 and "no signed head of 6 events" in err
    code, out, err = onsite("audit", "prove", "99")
    assert code == 2 and "no audit event 99" in err
    code, out, _ = onsite("audit", "heads", "--json")
    assert [h["tree_size"] for h in json.loads(out)] == [25, 5]


def test_witness_cosigns_then_refuses_a_rewrite(onsite, db_url, tmp_path):
    add_people(onsite, [f"p{i}" for i in range(18)])
    assert onsite("audit", "head")[0] == 0
    public = tmp_path / "log.pub"
    public.write_text(onsite("audit", "public-key")[1])
    witness = ["audit", "witness", db_url, "--log-key", str(public), "--key", str(tmp_path / "w" / "key.pem"),
               "--state", str(tmp_path / "w" / "head.json"), "--name", "osaka"]
    code, out, _ = onsite(*witness)
    assert code == 0 and out.startswith("co-signed the head of 18 events")
    code, out, _ = onsite("audit", "witnesses", "--json")
    assert [(w["witness"], w["tree_size"]) for w in json.loads(out)] == [("osaka", 18)]
    assert onsite("audit", "verify")[0] == 0

    engine = make_engine(db_url)
    try:
        with transaction(session_factory(engine)) as s:  # edit event 2 and re-chain everything after it
            rows = list(audit.chain_rows(s))
            prev, new = audit.GENESIS_HASH, []
            for r in rows:
                details = {**json.loads(r.details), "os_user": "nobody"} if r.seq == 2 else json.loads(r.details)
                h = audit.event_hash(seq=r.seq, created_at=r.created_at, actor=r.actor, action=r.action, object=r.object,
                                     outcome=r.outcome, details=details, prev_hash=prev)
                new.append({"s": r.seq, "d": audit.canonical_json(details), "p": prev, "h": h})
                prev = h
            s.execute(text("UPDATE audit_event SET prev_hash = 'x' || seq, hash = 'y' || seq"))
            for values in new:
                s.execute(text("UPDATE audit_event SET details = :d, prev_hash = :p, hash = :h WHERE seq = :s"), values)
    finally:
        engine.dispose()
    code, out, _ = onsite("audit", "verify")
    assert code == 1 and "stored tree node 4/0 differs from the events it covers" in out

    def attacker_deletes(*tables: str) -> None:
        engine = make_engine(db_url)
        with transaction(session_factory(engine)) as s:
            for table in tables:
                s.execute(text(f"DELETE FROM {table}"))
        engine.dispose()

    attacker_deletes("audit_tree_node")
    code, out, _ = onsite("audit", "verify")
    assert code == 1 and "the head of 18 events signed at" in out and "history was rewritten" in out
    code, out, _ = onsite("audit", "head")
    assert code == 1 and "history was rewritten" in out
    attacker_deletes("audit_tree_head")
    code, out, _ = onsite("audit", "verify")
    assert code == 1 and "witness osaka co-signed another root for the first 18 events" in out
    attacker_deletes("audit_cosignature")  # every trace in the database gone
    assert onsite("audit", "head")[0] == 0
    assert onsite("audit", "verify")[0] == 0  # inside the database the rewrite is now invisible
    code, out, _ = onsite(*witness)
    assert code == 1 and out.startswith("REFUSED: the head of") and "rewritten" in out
    code, _, err = onsite("audit", "witness", "log.example", "--log-key", str(public), "--key", str(tmp_path / "k"),
                          "--state", str(tmp_path / "s"), "--name", "x")
    assert code == 2 and "neither the log's API" in err


def test_a_ledger_from_before_the_tree_migrates_and_verifies(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    command.upgrade(alembic_config(url), "ac0002")
    engine = make_engine(url)
    factory = session_factory(engine)
    try:
        with transaction(factory) as s:
            for i in range(40):
                audit.record(s, AuditEventType.PERSON_ADD, actor="admin:old", object=f"person:{i}", details={"i": i})
        migrate(url)
        key = ledger.signing_key(tmp_path / "key.pem")
        with factory() as s:
            assert ledger.verify(s, key.public_key()).ok
        head = ledger.sign_head(factory, key)
        assert head.tree_size == 40
        with factory() as s:
            result = ledger.verify(s, key.public_key())
            assert result.ok and result.signed_heads == 1
            assert ledger.check_proof(ledger.inclusion_proof(s, 1), key.public_key()).startswith("event 1 is in")
    finally:
        engine.dispose()


def test_the_docs_name_every_audit_command():
    page = (Path(__file__).resolve().parents[3] / "docs" / "explanation" / "ledger.md").read_text(encoding="utf-8")
    assert [c.name for c in AUDIT_COMMANDS if f"onsite {c.name}" not in page] == []


def test_the_key_goes_beside_the_configured_anchor_file(onsite, monkeypatch, tmp_path):
    monkeypatch.delenv("ONSITE_LEDGER_KEY_FILE")
    add_people(onsite, ["p1"])
    assert onsite("audit", "head")[0] == 0
    assert [p.name.startswith("ledger-key-") for p in tmp_path.glob("ledger-key-*.pem")] == [True]
