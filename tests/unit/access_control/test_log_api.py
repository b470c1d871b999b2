"""`onsite audit witness URL` against the real admin service over HTTP (admin_service.log_api), on SQLite and
PostgreSQL: a witness co-signs the log's growth, then refuses a history rewritten consistently (every hash
recomputed, the tree rebuilt, a head re-signed with the log's own key, the old cosignatures deleted); the API
refuses non-administrators, staff from other addresses, and cosignatures that do not check.

The app is admin_service.app's, served by tornado on a real port in a thread, its client check installed;
identity comes through the test seam (the Authorization header's token names the person, as the Hub would).
"""
from __future__ import annotations

import base64
import json
from dataclasses import asdict, replace

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from access_control import ledger, policy
from access_control.addresses import AddressPolicy, ClientCheck
from access_control.enums import AuditEventType, Outcome, Role
from access_control.hub_api import HubClient
from access_control.models import AuditCosignature, AuditEvent
from admin_service.app import make_app
from onsite_base.db import transaction
from onsite_base.keys import raw_public
from onsite_base.settings import Settings
from test_access_cli import onsite  # noqa: F401  (fixture)
from test_ledger import add_events, rewrite_consistently, sql
from threaded_server import serving

PREFIX = "/services/onsite-admin/"
TOKENS = {"token admin-token": "kato", "token reviewer-token": "sato", "token researcher-token": "alice"}


@pytest.fixture
def log_service(db, db_url, tmp_path):
    """The admin app on a real port over the store; an administrator, a reviewer and a researcher in it."""
    with transaction(db) as s:
        policy.add_person(s, username="kato", display_name="Kato", actor="test", roles=[Role.ADMINISTRATOR])
        policy.add_person(s, username="sato", display_name="Sato", actor="test", roles=[Role.REVIEWER])
        policy.add_person(s, username="alice", display_name="Alice", actor="test", roles=[Role.RESEARCHER])
    app = make_app(Settings(home=tmp_path / "home", db_url=db_url), prefix=PREFIX,
                   hub_client=HubClient("http://127.0.0.1:9/hub/api", "no-token"),
                   test_identity=lambda handler: TOKENS.get(handler.request.headers.get("Authorization", "")))
    app.settings["check_client"] = ClientCheck(AddressPolicy(), "onsite-admin")
    with serving(app) as url:
        yield url + PREFIX
    app.settings["session_factory"].kw["bind"].dispose()


@pytest.fixture
def log_key(onsite, tmp_path):
    """The log's key as the hub's (the `onsite` fixture's ONSITE_LEDGER_KEY_FILE), its public half in a file."""
    public = tmp_path / "log.pub"
    public.write_text(onsite("audit", "public-key")[1])
    return ledger.signing_key(tmp_path / "keys" / "ledger.pem", create=False), public


def witness_args(base: str, tmp_path, public) -> list[str]:
    (tmp_path / "token").write_text("admin-token\n")
    return ["audit", "witness", base, "--token-file", str(tmp_path / "token"), "--log-key", str(public),
            "--key", str(tmp_path / "w" / "key.pem"), "--state", str(tmp_path / "w" / "head.json"), "--name", "osaka"]


def test_a_witness_over_http_cosigns_growth_then_refuses_a_consistent_rewrite(onsite, db, log_service, log_key, tmp_path):
    key, public = log_key
    add_events(db, 20)
    ledger.sign_head(db, key)
    witness = witness_args(log_service, tmp_path, public)
    code, out, _ = onsite(*witness)
    assert code == 0 and out.startswith("co-signed the head of 23 events"), out  # 3 people and 20 events
    add_events(db, 15, start=20)
    ledger.sign_head(db, key)
    code, out, _ = onsite(*witness)
    assert code == 0 and out.startswith("co-signed the head of 38 events"), out
    code, out, _ = onsite("audit", "witnesses", "--json")
    assert [(w["witness"], w["tree_size"]) for w in json.loads(out)] == [("osaka", 38)]  # posted over HTTP, stored
    assert onsite("audit", "verify")[0] == 0

    rewrite_consistently(db, 5, {"i": 3, "name": "rewritten"})  # tree and heads dropped by the attacker
    sql(db, "DELETE FROM audit_cosignature")
    add_events(db, 4, start=100)
    ledger.sign_head(db, key)  # re-signed with the log's own key
    assert onsite("audit", "verify")[0] == 0  # inside the database the rewrite is invisible
    code, out, _ = onsite(*witness)
    assert code == 1 and out.startswith("REFUSED: the head of 42 events does not extend the head of 38 events"), out
    assert "history was rewritten" in out
    assert ledger.read_witness_state(tmp_path / "w" / "head.json").tree_size == 38  # it keeps the head it trusted
    with db() as s:
        assert ledger.last_cosignatures(s) == []  # and co-signed nothing


def test_the_api_serves_heads_and_proofs_anyone_with_the_public_key_checks(db, log_service, log_key):
    key, _ = log_key
    add_events(db, 20)
    head = ledger.sign_head(db, key)
    admin = {"Authorization": "token admin-token", "Accept-Language": "en"}
    assert requests.get(log_service + "log/head", headers=admin, timeout=10).json() == head.as_dict()
    proof = requests.get(log_service + "log/inclusion", params={"seq": 7}, headers=admin, timeout=10).json()
    assert ledger.check_proof(proof, key.public_key()).startswith("event 7 is in the log's head of 23 events")
    path = requests.get(log_service + "log/consistency", params={"old": 9, "new": 23}, headers=admin, timeout=10).json()
    assert path["schema"] == ledger.CONSISTENCY_PATH_SCHEMA and path["proof"]
    with db() as s:
        old_root = ledger.TreeReader(s, 9).root()
    assert ledger.merkle.verify_consistency(9, 23, old_root, bytes.fromhex(head.root_hash),
                                            [bytes.fromhex(h) for h in path["proof"]])
    refused = requests.get(log_service + "log/consistency", params={"old": 9, "new": 24}, headers=admin, timeout=10)
    assert refused.status_code == 404 and "24" in refused.json()["error"]
    assert requests.get(log_service + "log/consistency", params={"old": "x", "new": 23}, headers=admin,
                        timeout=10).status_code == 400


def last_event(db) -> AuditEvent:
    with db() as s:
        return s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()


def test_only_administrators_from_a_staff_address_and_each_refusal_recorded(db, log_service, log_key):
    ledger.sign_head(db, log_key[0])
    assert requests.get(log_service + "log/head", timeout=10).status_code == 403  # no token
    reviewer = requests.get(log_service + "log/head", headers={"Authorization": "token reviewer-token"}, timeout=10)
    assert reviewer.status_code == 403 and reviewer.headers["Content-Type"].startswith("application/json")
    event = last_event(db)
    assert event.action is AuditEventType.ADMIN_ACCESS and event.outcome is Outcome.DENIED and event.actor == "sato"
    researcher = requests.get(log_service + "log/head", headers={"Authorization": "token researcher-token"}, timeout=10)
    assert researcher.status_code == 403  # refused at the address check, before the role's
    event = last_event(db)
    assert event.action is AuditEventType.ENTRY_DECIDE and event.actor == "alice" and event.outcome is Outcome.DENIED
    # The administrator's token from outside the staff networks, through the (trusted, loopback) proxy.
    elsewhere = requests.get(log_service + "log/head", timeout=10,
                             headers={"Authorization": "token admin-token", "X-Forwarded-For": "203.0.113.9"})
    assert elsewhere.status_code == 403
    event = last_event(db)
    assert event.action is AuditEventType.ENTRY_DECIDE and json.loads(event.details)["reasons"] == ["NOT_STAFF_ADDRESS"]
    assert json.loads(event.details)["path"] == PREFIX + "log/head"


def cosign(head: ledger.TreeHead, key: Ed25519PrivateKey, name: str = "osaka") -> ledger.Cosignature:
    unsigned = ledger.Cosignature(name, base64.b64encode(raw_public(key.public_key())).decode(), head.tree_size,
                                  head.root_hash, head.timestamp, ledger.now_text())
    return replace(unsigned, signature=base64.b64encode(key.sign(unsigned.message())).decode())


def test_cosignatures_that_do_not_check_are_refused_and_not_stored(db, log_service, log_key):
    add_events(db, 5)
    head = ledger.sign_head(db, log_key[0])
    admin = {"Authorization": "token admin-token", "Accept-Language": "en"}

    def post(value) -> requests.Response:
        return requests.post(log_service + "log/cosignatures", json=value, headers=admin, timeout=10)

    witness_key = Ed25519PrivateKey.generate()
    good = cosign(head, witness_key)
    forged = {**good.as_dict(), "tree_size": head.tree_size - 1}  # signature no longer covers it
    assert post(forged).status_code == 409 and "does not verify" in post(forged).json()["error"]
    other_root = cosign(replace(head, root_hash="00" * 32), witness_key)
    assert post(other_root.as_dict()).status_code == 409
    assert post({"witness": "osaka"}).status_code == 400
    assert requests.post(log_service + "log/cosignatures", data=b"{", headers=admin, timeout=10).status_code == 400
    assert post(good.as_dict()).status_code == 201
    impostor = cosign(head, Ed25519PrivateKey.generate())  # the same name, another key
    assert post(impostor.as_dict()).status_code == 409
    with db() as s:
        stored = [ledger.Cosignature.from_row(r) for r in s.scalars(select(AuditCosignature))]
    assert [asdict(c) for c in stored] == [asdict(good)]


def test_after_a_key_rotation_the_witness_follows_the_handover_over_http(onsite, db, log_service, log_key, tmp_path):
    key, public = log_key  # the witness keeps the public key it was given before the rotation
    add_events(db, 10)
    ledger.sign_head(db, key)
    witness = witness_args(log_service, tmp_path, public)
    assert onsite(*witness)[0] == 0
    code, out, _ = onsite("audit", "rotate-key")
    assert code == 0 and out.startswith("handed the log key over"), out
    code, out, _ = onsite(*witness)
    assert code == 0 and out.startswith("co-signed the head of 14 events"), out  # 3 people, 10 events, the handover
    code, out, _ = onsite("audit", "verify", "--public-key", str(public))
    assert code == 0 and "3 signed heads" in out, out


def test_a_witness_the_api_refuses_says_so_and_co_signs_nothing(onsite, db, log_service, log_key, tmp_path, monkeypatch):
    add_events(db, 3)
    ledger.sign_head(db, log_key[0])
    witness = witness_args(log_service, tmp_path, log_key[1])
    (tmp_path / "token").write_text("reviewer-token\n")  # a staff member, but not an administrator
    code, _, err = onsite(*witness)
    assert code == 2 and "log/head answered 403" in err and "nothing was co-signed" in err, err
    assert not (tmp_path / "w" / "head.json").exists()
    monkeypatch.setenv("ONSITE_LOG_TOKEN", "admin-token")
    code, _, err = onsite(*[a for a in witness if a not in ("--token-file", str(tmp_path / "token"))])
    assert code == 0, err
