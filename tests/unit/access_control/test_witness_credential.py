"""A witness's own credential for the log API (`onsite audit witness-add`): it reads heads and proofs and posts
cosignatures in its own name, and opens nothing else — every admin page and form is refused with it — while an
unknown, replaced or withdrawn credential opens nothing at all. Over HTTP against the real admin app, on SQLite
and PostgreSQL (the fixtures of test_log_api)."""
from __future__ import annotations

import json
import re

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from access_control import ledger, policy
from access_control.addresses import AddressPolicy, ClientCheck
from access_control.enums import AuditEventType, Role
from access_control.hub_api import HubClient
from access_control.models import AuditCosignature, AuditEvent
from admin_service.app import make_app
from onsite_base.db import transaction
from onsite_base.settings import Settings
from test_access_cli import onsite  # noqa: F401  (fixture)
from test_ledger import add_events
from test_log_api import PREFIX, cosign, log_key, log_service, witness_args  # noqa: F401  (fixtures)
from threaded_server import serving


def issue(db, name: str = "osaka") -> str:
    with transaction(db) as s:
        return ledger.add_witness(s, name, actor="admin:test")


def as_witness(token: str) -> dict[str, str]:
    return {"Authorization": f"Witness {token}", "Accept-Language": "en"}


def test_a_witness_credential_reads_heads_and_proofs_and_cosigns_in_its_own_name_only(db, log_service, log_key):
    key, _ = log_key
    add_events(db, 20)
    token = issue(db)
    head = ledger.sign_head(db, key)
    w = as_witness(token)
    assert requests.get(log_service + "log/head", headers=w, timeout=10).json() == head.as_dict()
    proof = requests.get(log_service + "log/inclusion", params={"seq": 7}, headers=w, timeout=10).json()
    assert ledger.check_proof(proof, key.public_key()).startswith("event 7 is in the log's head")
    assert requests.get(log_service + "log/consistency", params={"old": 9, "new": head.tree_size}, headers=w,
                        timeout=10).json()["proof"]
    assert requests.get(log_service + "log/keys", headers=w, timeout=10).json() == {"key_transitions": []}
    witness_key = Ed25519PrivateKey.generate()
    other = requests.post(log_service + "log/cosignatures", json=cosign(head, witness_key, "kyoto").as_dict(), headers=w,
                          timeout=10)
    assert other.status_code == 403 and "osaka" in other.json()["error"]
    ja = requests.post(log_service + "log/cosignatures", json=cosign(head, witness_key, "kyoto").as_dict(), timeout=10,
                       headers={**w, "Accept-Language": "ja"})
    assert ja.status_code == 403 and "連署" in ja.json()["error"]
    own = requests.post(log_service + "log/cosignatures", json=cosign(head, witness_key).as_dict(), headers=w, timeout=10)
    assert own.status_code == 201
    with db() as s:
        assert [c.witness for c in s.scalars(select(AuditCosignature))] == ["osaka"]
        issued = s.scalars(select(AuditEvent).where(AuditEvent.action == AuditEventType.LEDGER_WITNESS_ADD)).one()
    assert token not in issued.details and json.loads(issued.details)["token_sha256"] == ledger.token_digest(token)


def concrete(pattern: str) -> str:
    """A path a route's pattern matches: a name, a number, or a group's first alternative for each group."""
    def one(group: re.Match) -> str:
        inner = group.group(1)
        return "1" if inner == r"\d+" else inner.split("|")[0] if "|" in inner else "kato"
    return re.sub(r"\(([^()]*)\)", one, pattern.rstrip("$"))


def test_the_witness_credential_opens_no_admin_page_nor_form(db, db_url, tmp_path, log_key):
    """The attack: a witness (or whoever stole its credential) tries every page and form of the admin service, both
    as a witness credential and passed off as a Hub token. Only the log API answers."""
    with transaction(db) as s:
        policy.add_person(s, username="kato", display_name="Kato", actor="test", roles=[Role.ADMINISTRATOR])
    token = issue(db)
    ledger.sign_head(db, log_key[0])
    app = make_app(Settings(home=tmp_path / "home", db_url=db_url), prefix=PREFIX,
                   hub_client=HubClient("http://127.0.0.1:9/hub/api", "no-token"),
                   test_identity=lambda handler: {"token admin-token": "kato"}.get(
                       handler.request.headers.get("Authorization", "")))
    app.settings["check_client"] = ClientCheck(AddressPolicy(), "onsite-admin")
    paths = sorted({concrete(rule.matcher.regex.pattern) for rule in app.wildcard_router.rules})
    admin_paths = [p for p in paths if not p.startswith(PREFIX + "log/")]
    assert PREFIX + "people" in admin_paths and PREFIX + "people/kato/roles" in admin_paths and len(admin_paths) > 20
    try:
        with serving(app) as url:
            kato = requests.get(url + PREFIX + "people", headers={"Authorization": "token admin-token"}, timeout=10)
            assert kato.status_code == 200 and "kato" in kato.text  # the page is there for an administrator
            for header in (f"Witness {token}", f"token {token}", f"Bearer {token}"):
                for path in admin_paths:
                    for method in ("GET", "POST"):
                        answer = requests.request(method, url + path, headers={"Authorization": header}, timeout=10,
                                                  allow_redirects=False, data={"role": "ADMINISTRATOR"})
                        assert answer.status_code in (302, 400, 403, 404, 405), (method, path, header, answer.status_code)
                        assert "kato" not in answer.text, (method, path, header)
                head = requests.get(url + PREFIX + "log/head", headers={"Authorization": header}, timeout=10)
                assert (head.status_code == 200) == header.startswith("Witness"), header
    finally:
        app.settings["usage_keeper"].stop()
        app.settings["session_factory"].kw["bind"].dispose()
    with db() as s:  # nothing changed: no role granted, no person touched
        actions = {a for a in s.scalars(select(AuditEvent.action))}
    assert AuditEventType.ROLE_GRANT not in actions and AuditEventType.PERSON_CHANGE not in actions


def test_an_unknown_replaced_or_withdrawn_credential_opens_nothing(db, log_service, log_key):
    ledger.sign_head(db, log_key[0])

    def status(token: str) -> int:
        return requests.get(log_service + "log/head", headers=as_witness(token), timeout=10).status_code

    first = issue(db)
    assert status(first) == 200
    refused = requests.get(log_service + "log/head", headers=as_witness(ledger.WITNESS_TOKEN_PREFIX + "guess"), timeout=10)
    assert refused.status_code == 403 and "not valid" in refused.json()["error"]
    second = issue(db)  # re-issued: the first stops working
    assert (status(first), status(second)) == (403, 200)
    with transaction(db) as s:
        ledger.remove_witness(s, "osaka", actor="admin:test")
    assert status(second) == 403
    with transaction(db) as s, pytest.raises(ledger.PolicyError) as refusal:
        ledger.remove_witness(s, "osaka", actor="admin:test")
    assert refusal.value.key == "ledger_witness_unknown"


def test_the_cli_issues_a_credential_the_witness_command_uses_and_withdraws_it(onsite, db, log_service, log_key, tmp_path):
    key, public = log_key
    add_events(db, 5)
    ledger.sign_head(db, key)
    code, out, err = onsite("audit", "witness-add", "osaka")
    assert code == 0 and out.startswith(ledger.WITNESS_TOKEN_PREFIX) and "shown once" in err, (out, err)
    witness = witness_args(log_service, tmp_path, public)
    (tmp_path / "token").write_text(out)  # the witness's own credential, not an administrator's Hub token
    code, out, err = onsite(*witness)
    assert code == 0 and out.startswith("co-signed the head of"), (out, err)
    code, out, _ = onsite("audit", "witness-list", "--json")
    assert [w["witness"] for w in json.loads(out)] == ["osaka"]
    assert onsite("audit", "witness-remove", "osaka")[0] == 0
    code, _, err = onsite(*witness)
    assert code == 2 and "403" in err and "nothing was co-signed" in err, err
    code, _, err = onsite("audit", "witness-remove", "osaka")
    assert code == 2 and "osaka" in err and "witness-list" in err, err
    code, _, err = onsite("audit", "witness-add", "bad\nname")
    assert code == 2 and "witness name" in err, err
