"""Signed release packages: made by the real workflow, checked offline by `signing.verify` and by the real
`onsite release verify` command, and attacked (changed, added, removed files; a manifest edited and re-hashed;
another key; a revoked or retired key used afterwards)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from traitlets.config import Config

from access_control import audit
from access_control.enums import AuditEventType
from access_control.models import AuditEvent
from disclosure_review.workflow import package, service, signing
from disclosure_review.workflow.enums import Decision, ReleaseStatus
from onsite_base.config import SettingInvalid
from onsite_base.db import transaction

from workflow_factories import status_of, submit, table_output, vote

PASSING = "SELECT * FROM survey WHERE region <> 'C'"
ROOT = Path(__file__).resolve().parents[3]


def released(world) -> Path:
    request_id = submit(world, table_output(query=PASSING))
    vote(world, request_id, "bob", Decision.APPROVE)
    vote(world, request_id, "carol", Decision.APPROVE)
    assert status_of(world, request_id) is ReleaseStatus.RELEASED
    return world.settings.egress_dir / str(request_id)


def section(world) -> signing.ReleaseSigning:
    return signing.ReleaseSigning.of(world.settings)


def keyring(world) -> list[signing.KeyRecord]:
    return signing.read_keyring(section(world).keyring_path(world.settings.home))


def check(root: Path, keys) -> signing.Verification:
    return signing.verify(signing.read_package(root), keys)


def codes(result: signing.Verification) -> set[str]:
    return {f.code for f in result.problems}


def copy(root: Path, tmp_path: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(root, tmp_path / name))


def sign_as(key: Ed25519PrivateKey, root: Path, manifest: dict, name_key: bool = True) -> None:
    """Write `manifest` into the package at `root`, signed by `key` (naming it in the manifest unless told not to)."""
    record = signing.KeyRecord(public_key=signing._record_of(key, signing.now()).public_key)
    signer = signing.Signer(key, record)
    if name_key:
        manifest = {**manifest, "signing_key": signer.signing_key()}
    body = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
    (root / signing.MANIFEST).write_bytes(body)
    (root / signing.SIGNATURE).write_bytes(signer.signature(body))


def stolen_key(world) -> Ed25519PrivateKey:
    return signing._load_private(section(world).key_path(world.settings.home))


def run_verify(package_path: Path, ring: Path, *options: str | Path, language: str = "en") -> subprocess.CompletedProcess:
    env = {**os.environ, "LANG": "ja_JP.UTF-8" if language == "ja" else "C.UTF-8", "LC_ALL": "", "LC_MESSAGES": ""}
    args = ["--public-key", str(ring), *map(str, options)]
    return subprocess.run([sys.executable, "-m", "onsite.cli", "release", "verify", str(package_path), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


def test_a_release_is_signed_and_verifies_offline(world, tmp_path):
    root = released(world)
    manifest = json.loads((root / "manifest.json").read_text())
    key_path = section(world).key_path(world.settings.home)
    assert oct(key_path.stat().st_mode & 0o777) == "0o600" and oct(key_path.parent.stat().st_mode & 0o777) == "0o700"
    [key] = keyring(world)
    assert manifest["version"] == 2 and manifest["signing_key"]["fingerprint"] == key.fingerprint
    result = check(root, [key])
    assert result.ok and not result.warnings, result.problems

    with transaction(world.factory) as s:
        events = {e.seq: e for e in s.scalars(select(AuditEvent))}
        assert audit.verify(s).ok
    created = [e for e in events.values() if e.action is AuditEventType.RELEASE_KEY_CREATE]
    assert [json.loads(e.details)["fingerprint"] for e in created] == [key.fingerprint]  # the fingerprint is in the ledger
    packaged = next(e for e in events.values() if e.action is AuditEventType.RELEASE_PACKAGE)
    assert json.loads(packaged.details)["signing_key"] == key.fingerprint
    for vote_ in manifest["outputs"][0]["votes"]:  # each approval cites its own OUTPUT_DECIDE event
        event = events[vote_["ledger"]["seq"]]
        assert event.hash == vote_["ledger"]["hash"] and event.action is AuditEventType.OUTPUT_DECIDE
        assert json.loads(event.details)["decision"] == "APPROVE"
    assert {events[v["ledger"]["seq"]].actor for v in manifest["outputs"][0]["votes"]} == {"bob", "carol"}

    with transaction(world.factory) as s:  # the zip the researcher collects verifies too
        name, data = service.collect(s, int(root.name), "alice")
    (tmp_path / name).write_bytes(data)
    assert check(tmp_path / name, [key]).ok


def export_ledger(world, path: Path) -> dict[int, dict]:
    with transaction(world.factory) as s, path.open("w", encoding="utf-8") as fh:
        audit.export(s, fh)
    return signing.read_ledger_export(path)


def test_cited_approvals_are_checked_against_the_ledger(world, tmp_path):
    root = released(world)
    keys = keyring(world)
    events = export_ledger(world, tmp_path / "ledger.jsonl")
    result = check(root, keys)
    signing.check_ledger(result, events)
    assert result.ok, result.problems
    first, second = (v["ledger"]["seq"] for v in json.loads((root / "manifest.json").read_text())["outputs"][0]["votes"])

    def with_ledger(edit) -> set[str]:
        changed = {seq: json.loads(json.dumps(event)) for seq, event in events.items()}
        edit(changed)
        result = check(root, keys)
        signing.check_ledger(result, changed)
        return codes(result)

    assert with_ledger(lambda e: e[first]["details"].update(decision="REJECT")) == {"cited_event_differs",
                                                                                 "ledger_too_few_reviewers"}
    assert with_ledger(lambda e: e.pop(second)) == {"cited_event_missing", "ledger_too_few_reviewers"}

    def same_reviewer_rehashed(e):  # a consistent rewrite: carol's approval made bob's, its hash recomputed
        event = e[second]
        event["actor"] = "bob"
        fields = {k: event[k] for k in ("seq", "actor", "action", "object", "outcome", "details", "prev_hash")}
        event["hash"] = audit.event_hash(created_at=datetime.fromisoformat(event["created_at"]), **fields)
    assert with_ledger(same_reviewer_rehashed) == {"cited_event_differs", "ledger_too_few_reviewers"}

    def another_event(e):  # the citation points at an event that is no approval of this output
        e[second] = {**e[1], "seq": second}
    assert "cited_event_differs" in with_ledger(another_event)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_command_verifies_and_refuses_in_the_locale_language(world, tmp_path):
    root = released(world)
    ring = section(world).keyring_path(world.settings.home)
    good = run_verify(root, ring)
    assert good.returncode == 0 and good.stdout.startswith("OK:"), good.stdout + good.stderr
    ledger = tmp_path / "ledger.jsonl"
    export_ledger(world, ledger)
    assert run_verify(root, ring, "--ledger", ledger).returncode == 0
    ledger.write_text(ledger.read_text().replace('"decision":"APPROVE"', '"decision":"REJECT"'))
    against_ledger = run_verify(root, ring, "--ledger", ledger)
    assert against_ledger.returncode == 1 and "differs from the cited hash" in against_ledger.stdout

    changed = copy(root, tmp_path)
    (changed / "by_region.csv").write_text("region,count\nA,30\nB,25\nC,2\n")
    refused = run_verify(changed, ring)
    assert refused.returncode == 1 and "REFUSED" in refused.stdout and "by_region.csv was changed" in refused.stdout
    in_japanese = run_verify(changed, ring, language="ja")
    assert in_japanese.returncode == 1 and "by_region.csv が変更されています" in in_japanese.stdout

    pem = tmp_path / "service.pem"  # a bare PEM public key works as well as the keyring
    pem.write_text(signing.public_pem(keyring(world)[0]))
    assert run_verify(root, pem).returncode == 0
    other = tmp_path / "other.pem"
    other.write_text(signing.public_pem(signing._record_of(Ed25519PrivateKey.generate(), signing.now())))
    wrong_key = run_verify(root, other)
    assert wrong_key.returncode == 1 and "not among the public keys given" in wrong_key.stdout
    no_package = run_verify(tmp_path / "nothing.zip", ring)
    assert no_package.returncode == 2 and "no such file" in no_package.stderr
    not_a_key = run_verify(root, root / "by_region.csv", language="ja")
    assert not_a_key.returncode == 2 and "読み込めません" in not_a_key.stderr and "by_region.csv" in not_a_key.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("attack, expected", [
    ("changed file", {"file_changed"}),
    ("added file", {"file_extra"}),
    ("added folder", {"file_extra"}),
    ("removed file", {"file_missing"}),
    ("manifest edited and re-hashed", {"bad_signature"}),
    ("signature removed", {"no_signature"}),
    ("signed by another key", {"unknown_key"}),
    ("another key's signature, manifest naming the service's key", {"key_mismatch", "unknown_key"}),
])
def test_attacks_on_a_package_are_refused(world, tmp_path, attack, expected):
    root = copy(released(world), tmp_path)
    keys = keyring(world)
    manifest = json.loads((root / "manifest.json").read_text())
    csv = root / "by_region.csv"
    if attack == "changed file":
        csv.write_text(csv.read_text().replace("30", "31"))
    elif attack == "added file":
        (root / "extra.csv").write_text("region,count\nC,2\n")
    elif attack == "added folder":
        (root / "hidden").mkdir()
        (root / "hidden" / "c.csv").write_text("C,2\n")
    elif attack == "removed file":
        csv.unlink()
    elif attack == "manifest edited and re-hashed":
        csv.write_text("region,count\nA,30\nB,25\nC,2\n")
        manifest["files"][0]["sha256"] = package.sha256(csv.read_bytes())
        (root / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    elif attack == "signature removed":
        (root / "manifest.sig").unlink()
    elif attack == "signed by another key":
        sign_as(Ed25519PrivateKey.generate(), root, manifest)
    else:
        sign_as(Ed25519PrivateKey.generate(), root, manifest, name_key=False)
        signature = json.loads((root / "manifest.sig").read_text())
        assert signature["key"] != manifest["signing_key"]["fingerprint"]
    result = check(root, keys)
    assert not result.ok and codes(result) == expected, result.problems


def test_rotation_keeps_old_packages_verifying(world, tmp_path):
    first = released(world)
    old_key = stolen_key(world)  # a copy kept by someone after the rotation
    with transaction(world.factory) as s:
        old, new = signing.rotate(s, section(world), world.settings.home, "cli:test")
    second = released(world)
    keys = keyring(world)
    assert [k.fingerprint for k in keys] == [old.fingerprint, new.fingerprint]
    assert keys[0].retired_at is not None and keys[1].active
    assert json.loads((second / "manifest.json").read_text())["signing_key"]["fingerprint"] == new.fingerprint
    assert check(first, keys).ok and check(second, keys).ok
    assert not check(first, [keys[1]]).ok  # the old package needs the old public key

    late = copy(second, tmp_path)  # the retired key used after its retirement
    sign_as(old_key, late, json.loads((late / "manifest.json").read_text()))
    assert codes(check(late, keys)) == {"signed_after_retirement"}
    with transaction(world.factory) as s:
        actions = [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))]
    assert actions.count(AuditEventType.RELEASE_KEY_ROTATE) == 1


def test_a_revoked_key(world, tmp_path):
    before = released(world)
    stolen = stolen_key(world)
    fingerprint = keyring(world)[0].fingerprint
    with transaction(world.factory) as s:
        revoked, new = signing.revoke(s, section(world), world.settings.home, fingerprint[:12], "key file copied",
                                      "cli:test")
    assert new is not None and new.fingerprint != fingerprint  # the current key revoked: a new one at once
    keys = keyring(world)
    result = check(before, keys)  # signed before the revocation: verifies, with a warning
    assert result.ok and [w.code for w in result.warnings] == ["signed_before_revocation"]
    assert "key file copied" in result.warnings[0].text("en")

    after = copy(before, tmp_path)  # the stolen key signs a package dated after the revocation
    manifest = json.loads((after / "manifest.json").read_text())
    manifest["released_at"] = signing.now().isoformat()
    sign_as(stolen, after, manifest)
    refused = check(after, keys)
    assert codes(refused) == {"signed_after_revocation"}
    assert revoked.revoked_at.isoformat() in refused.problems[0].text("en")  # refused with the revocation's date
    assert check(released(world), keys).ok  # the service goes on signing with its new key

    with transaction(world.factory) as s:  # revoked from the time it may have been taken: older packages refused
        signing.revoke(s, section(world), world.settings.home, new.fingerprint, "backup tape lost", "cli:test",
                       effective=new.created_at - timedelta(seconds=1))
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == AuditEventType.RELEASE_KEY_REVOKE)).all()
    assert [json.loads(e.details)["fingerprint"] for e in events] == [fingerprint, new.fingerprint]
    with pytest.raises(signing.SigningKeyInvalid, match="already revoked"), transaction(world.factory) as s:
        signing.revoke(s, section(world), world.settings.home, fingerprint, "again", "cli:test")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_key_others_may_read_is_refused_and_nothing_is_released(world):
    first = released(world)
    key_path = section(world).key_path(world.settings.home)
    key_path.chmod(0o644)
    from review_service.__main__ import build  # the service's real start

    with pytest.raises(SettingInvalid, match="ReleaseSigning.key_file.*other accounts may read it"):
        build(world.settings, Config(), "/")
    request_id = submit(world, table_output(query=PASSING))
    vote(world, request_id, "bob", Decision.APPROVE)
    vote(world, request_id, "carol", Decision.APPROVE)
    assert status_of(world, request_id) is ReleaseStatus.APPROVED  # decisions stand; not packaged unsigned
    assert not (world.settings.egress_dir / str(request_id)).exists()
    key_path.chmod(0o600)
    key_path.parent.chmod(0o770)  # others could swap the key
    with pytest.raises(SettingInvalid, match="directory .* other accounts may change it"):
        build(world.settings, Config(), "/")
    key_path.parent.chmod(0o711)
    assert build(world.settings, Config(), "/") is not None
    with transaction(world.factory) as s:  # the retry of `onsite review release`
        service.release(s, request_id, settings=world.settings, actor="cli:test")
    assert check(first, keyring(world)).ok and check(world.settings.egress_dir / str(request_id), keyring(world)).ok


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_key_is_made_at_the_first_start_and_recorded_once(world):
    from review_service.__main__ import build

    key_path = section(world).key_path(world.settings.home)
    assert not key_path.exists()
    build(world.settings, Config(), "/")
    build(world.settings, Config(), "/")
    [key] = keyring(world)
    key_path.chmod(0o640)  # exposed: the service will not start, the operator rotates it away
    with transaction(world.factory) as s:
        signing.rotate(s, section(world), world.settings.home, "cli:test")
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    assert build(world.settings, Config(), "/") is not None
    with transaction(world.factory) as s:
        created = s.scalars(select(AuditEvent).where(AuditEvent.action == AuditEventType.RELEASE_KEY_CREATE)).all()
    assert [json.loads(e.details)["fingerprint"] for e in created] == [key.fingerprint]
    config = Config()
    config.ReleaseSigning.key_file = str(world.settings.home / "elsewhere" / "k.pem")  # the setting moves it
    build(world.settings, config, "/")
    assert (world.settings.home / "elsewhere" / "k.pem").exists()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_service_refuses_to_give_out_a_package_whose_signature_was_replaced(world):
    root = released(world)
    (root / "manifest.sig").write_text((root / "manifest.sig").read_text().replace('"signature": "', '"signature": "AA'))
    with transaction(world.factory) as s, pytest.raises(Exception, match="manifest.sig is not the signature"):
        service.collect(s, int(root.name), "alice")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_approvals_inconsistent_with_the_manifest_are_refused(world, tmp_path):
    """What a correct signature cannot vouch for alone: the cited approvals must make the release possible."""
    root = copy(released(world), tmp_path)
    key = stolen_key(world)  # the service's own key, as if it signed a wrong manifest
    keys = [replace(k, created_at=None) for k in keyring(world)]
    manifest = json.loads((root / "manifest.json").read_text())
    votes = manifest["outputs"][0]["votes"]
    cases = {
        "too_few_approvals": lambda m: m["outputs"][0].update(votes=votes[:1]),
        "approval_not_cited": lambda m: m["outputs"][0]["votes"][0].pop("ledger"),
        "approval_cited_twice": lambda m: m["outputs"][0]["votes"][1].update(ledger=votes[0]["ledger"]),
        "rejected_but_released": lambda m: m["outputs"][0]["votes"].append({**votes[0], "reviewer": "reviewer-3",
                                                                            "decision": "REJECT"}),
        "unapproved_file": lambda m: m["outputs"][0].update(decision="REJECT"),
        "approval_after_release": lambda m: m["outputs"][0]["votes"][0].update(at="2999-01-01T00:00:00+00:00"),
    }
    for code, edit in cases.items():
        edited = json.loads(json.dumps(manifest))
        edit(edited)
        sign_as(key, root, edited)
        result = check(root, keys)
        assert code in codes(result) and "bad_signature" not in codes(result), (code, result.problems)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_key_commands(world, tmp_path, monkeypatch, capsys):
    from onsite.cli import main

    monkeypatch.setenv("ONSITE_HOME", str(world.settings.home))
    monkeypatch.setenv("ONSITE_DB_URL", world.settings.db_url)
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert main(["release", "key", "export"]) == 2 and "keyring is empty" in capsys.readouterr().err
    assert main(["release", "key", "ensure", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["created"] and main(["release", "key", "ensure", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {**first, "created": False}
    root = released(world)
    assert main(["release", "key", "rotate"]) == 0
    assert f"{first['fingerprint']} retired" in capsys.readouterr().out
    assert main(["release", "key", "revoke", first["fingerprint"][:10], "--reason", "disk sold",
                 "--effective", "2000-01-01T00:00"]) == 0
    assert "revoked from 2000-01-01 00:00 JST" in capsys.readouterr().out
    assert main(["release", "key", "revoke", "abc", "--reason", "x"]) == 2
    assert "at least 8 hex digits" in capsys.readouterr().err
    assert main(["release", "key", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and "revoked from 2000-01-01 00:00 JST (disk sold)" in listed[0]
    assert listed[1].endswith("current")
    assert main(["release", "key", "export"]) == 0
    ring = tmp_path / "ring.json"
    ring.write_text(capsys.readouterr().out)
    assert [k.fingerprint for k in signing.read_public_keys(ring)] == [k.fingerprint for k in keyring(world)]
    assert main(["release", "verify", str(root), "--public-key", str(ring)]) == 1  # revoked before it was signed
    assert "revoked from 2000-01-01" in capsys.readouterr().out
    assert main(["release", "verify", str(root), "--public-key", str(ring), "--json"]) == 1
    findings = json.loads(capsys.readouterr().out)
    assert not findings["ok"] and len(findings["problems"]) == 1 and "revoked from 2000" in findings["problems"][0]
    ring.write_text(ring.read_text().replace(first["fingerprint"], "0" * 64))  # a keyring edited by hand
    assert main(["release", "verify", str(root), "--public-key", str(ring)]) == 2
    assert "not that of its public key" in capsys.readouterr().err
    assert main(["release", "verify", str(root)]) == 1  # the installation's own keyring by default
    monkeypatch.setenv("ONSITE_HOME", str(tmp_path / "nowhere"))
    assert main(["release", "verify", str(root)]) == 2 and "--public-key" in capsys.readouterr().err


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_files_of_the_package_as_a_whole_and_paths_leaving_it(world, tmp_path):
    """Files no output owns (ACRO's results.json, checksums/…) are checked like any other; a listed path that
    leaves the package is refused."""
    root = copy(released(world), tmp_path)
    key, keys = stolen_key(world), keyring(world)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "checksums").mkdir()
    (root / "checksums" / "by_region.csv.txt").write_text("abc")
    entry = {"name": "checksums/by_region.csv.txt", "output": None, "sha256": package.sha256(b"abc"), "bytes": 3}
    sign_as(key, root, {**manifest, "files": [*manifest["files"], entry]})
    assert check(root, keys).ok
    (root / "checksums" / "by_region.csv.txt").write_text("abd")
    assert codes(check(root, keys)) == {"file_changed"}
    (root / "checksums" / "extra.txt").write_text("x")
    assert codes(check(root, keys)) == {"file_changed", "file_extra"}
    for bad in ("../outside.csv", "/etc/passwd", "a//b", "manifest.json"):
        sign_as(key, root, {**manifest, "files": [*manifest["files"], {**entry, "name": bad}]})
        assert "file_listing" in codes(check(root, keys)), bad
    (root / "link.csv").symlink_to(root / "by_region.csv")
    sign_as(key, root, manifest)
    assert {f.params.get("file") for f in check(root, keys).problems} >= {"link.csv (symbolic link)"}
