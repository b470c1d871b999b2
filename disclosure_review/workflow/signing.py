"""Signed release packages: the review service's Ed25519 key, the keyring of its public keys, and the offline
check of a package (`onsite release verify`).

The service signs the exact bytes of each package's `manifest.json` (which lists every file with its SHA-256 and
names the key by fingerprint) and writes the signature beside it as `manifest.sig`. Anyone holding the public
keys can then check a package without the database: the signature, every file, no file added or missing, and
the approvals the manifest cites (each approving vote names its event in the ledger).

Keys. The private key is one PEM file (`ReleaseSigning.key_file`), mode 0600, owned by the service's account:
created at first start, refused when another account may read it or change its folder. The keyring (`release-signing-keys.json`
beside it, public) lists every key the service has had with its validity: made at `created_at`, replaced at
`retired_at` (rotation: packages signed before still verify), revoked from `revoked_at` (packages signed from then
on are refused, earlier ones verify with a warning). Each create, rotation and revocation is an event in the ledger
(`RELEASE_KEY_*`) with the key's fingerprint: the SHA-256 of its raw 32-byte public key, in hex.

The time a package was signed is its manifest's `released_at`, which the signature covers. Whoever steals a key
can write any time there, so a stolen key is revoked from the earliest time it may have been taken (`--effective`).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from access_control import audit
from access_control.enums import AuditEventType
from access_control.models import AuditEvent
from disclosure_review.workflow.enums import Decision
from onsite_base.config import Section, SettingInvalid, load_config
from onsite_base.db import make_engine, session_factory, transaction
from onsite_base.errors import UserError
from onsite_base.fileio import write_atomic
from onsite_base.keys import (KeyFileError, KeyFileUnsafe, check_private_key_file, create_key_file, fingerprint,
                              load_private_key, private_pem, raw_public)
from onsite_base.settings import AbsolutePath, Settings

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SIGNATURE_SCHEMA = "onsite.release_signature/v1"
KEYRING_SCHEMA = "onsite.release_keys/v1"
ALGORITHM = "Ed25519"
KEY_FILE_NAME = "release-signing.key"
KEYRING_FILE_NAME = "release-signing-keys.json"
APPROVE = Decision.APPROVE.value
KEY_EVENTS = (AuditEventType.RELEASE_KEY_CREATE, AuditEventType.RELEASE_KEY_ROTATE)
"""The ledger events that introduce a key (its fingerprint in `details["fingerprint"]`)."""


class SigningKeyInvalid(UserError):
    """The signing key cannot be used (readable by others, revoked, retired, unreadable): nothing was signed."""


class ReleaseSigning(Section):
    """Where the review service keeps the private key that signs release packages."""

    invalid = SettingInvalid

    key_file = AbsolutePath(
        None,
        allow_none=True,
        help=f"""The review service's Ed25519 private key (PEM) that signs every release package's manifest.
        Default: $ONSITE_HOME/keys/{KEY_FILE_NAME}. Created at the service's first start (or the first release)
        when absent, mode 0600 in a 0700 directory; the service refuses to start, and nothing is released, while
        another account may read it, may change its directory, or owns either. The public keyring `{KEYRING_FILE_NAME}` (every key the
        service has had, with its validity) is kept beside it; hand that file to whoever verifies packages
        (`onsite release key export`). Rotate with `onsite release key rotate`, revoke with `onsite release key
        revoke`. Security: whoever reads this file can sign packages as the service.""",
    ).tag(config=True)

    @classmethod
    def of(cls, settings: Settings) -> ReleaseSigning:
        """This section as the process that made `settings` reads it (the same config file)."""
        return cls(config=load_config([cls], settings.environ()))

    def key_path(self, home: Path) -> Path:
        return self.key_file or home / "keys" / KEY_FILE_NAME

    def keyring_path(self, home: Path) -> Path:
        return self.key_path(home).parent / KEYRING_FILE_NAME


# ---------------------------------------------------------------- keys and the keyring


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class KeyRecord:
    """One public key and its validity. `created_at` None: a bare public key given by file (validity unknown)."""

    public_key: str
    """Raw 32 bytes, base64."""
    created_at: datetime | None = None
    retired_at: datetime | None = None
    revoked_at: datetime | None = None
    revocation_reason: str = ""

    @property
    def key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.public_key, validate=True))

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)

    def as_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "algorithm": ALGORITHM, "public_key": self.public_key,
                "created_at": _iso(self.created_at), "retired_at": _iso(self.retired_at),
                "revoked_at": _iso(self.revoked_at), "revocation_reason": self.revocation_reason}

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> KeyRecord:
        record = cls(public_key=item["public_key"], created_at=_time(item.get("created_at")),
                     retired_at=_time(item.get("retired_at")), revoked_at=_time(item.get("revoked_at")),
                     revocation_reason=item.get("revocation_reason") or "")
        if item.get("fingerprint") not in (None, record.fingerprint):
            raise ValueError(f"key {item['fingerprint']}: the fingerprint is not that of its public key")
        return record

    @property
    def active(self) -> bool:
        return self.retired_at is None and self.revoked_at is None


def keyring_json(keys: list[KeyRecord]) -> str:
    return json.dumps({"schema": KEYRING_SCHEMA, "keys": [k.as_dict() for k in keys]}, indent=2) + "\n"


def read_keyring(path: Path) -> list[KeyRecord]:
    """The keys in a keyring file ([] when the file does not exist)."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise SigningKeyInvalid(f"the keyring {path} cannot be read: {exc}") from None
    return _keys_of(content, path)


def _keys_of(content: Any, where: Path) -> list[KeyRecord]:
    if not isinstance(content, dict) or content.get("schema") != KEYRING_SCHEMA:
        raise SigningKeyInvalid(f"{where} is not a release keyring (schema {KEYRING_SCHEMA})")
    try:
        return [KeyRecord.from_dict(item) for item in content["keys"]]
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise SigningKeyInvalid(f"{where}: a key in the keyring is unreadable: {exc}") from None


def write_keyring(path: Path, keys: list[KeyRecord]) -> None:
    write_atomic(path, keyring_json(keys).encode("utf-8"), mode=0o644)


def check_private(path: Path) -> None:
    """Refuse a key file another account may read, a folder another account may change (and so swap the key),
    or either owned by another account (`onsite_base.keys.check_private_key_file`)."""
    try:
        check_private_key_file(path)
    except KeyFileUnsafe as e:
        if e.uid != os.geteuid():
            raise SigningKeyInvalid(f"the release signing key {e.kind} {e.path} is owned by uid {e.uid}, not by "
                                    f"this service's account (uid {os.geteuid()}): chown it") from None
        raise SigningKeyInvalid(
            f"the release signing key {e.kind} {e.path} has mode {e.mode:o}: other accounts may "
            f"{'read' if e.kind == 'file' else 'change'} it. Make it {'0600' if e.kind == 'file' else '0700'} (chmod), "
            "and rotate the key (`onsite release key rotate`) if someone may have read or replaced it") from None


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        return load_private_key(path)
    except KeyFileError as exc:
        raise SigningKeyInvalid(f"the release signing key {path} cannot be read: {exc}") from None


def _record_of(key: Ed25519PrivateKey, created_at: datetime) -> KeyRecord:
    return KeyRecord(public_key=base64.b64encode(raw_public(key.public_key())).decode(), created_at=created_at)


def _introduced(session: Session, fp: str) -> bool:
    """Whether the ledger names key `fp` as created or rotated in."""
    rows = session.scalars(select(AuditEvent.details).where(AuditEvent.action.in_(KEY_EVENTS)))
    return any(json.loads(details).get("fingerprint") == fp for details in rows)


@dataclass(frozen=True)
class Signer:
    """The service's current signing key and its keyring record."""

    private_key: Ed25519PrivateKey = field(repr=False)
    record: KeyRecord

    def signing_key(self) -> dict[str, str]:
        """What the manifest says of the key that signs it."""
        return {"algorithm": ALGORITHM, "fingerprint": self.record.fingerprint, "public_key": self.record.public_key}

    def signature(self, manifest_body: bytes) -> bytes:
        """The `manifest.sig` of a package whose manifest is `manifest_body` (its exact bytes)."""
        signed = base64.b64encode(self.private_key.sign(manifest_body)).decode()
        return (json.dumps({"schema": SIGNATURE_SCHEMA, "algorithm": ALGORITHM, "key": self.record.fingerprint,
                            "signature": signed}, indent=2) + "\n").encode("utf-8")


def signature_valid(body: bytes, signature_file: bytes, signing_key: dict[str, Any]) -> bool:
    """Whether `signature_file` (manifest.sig) is a signature of `body` by the key `signing_key` (as a manifest
    names it). Trusts that key: for a manifest vouched for otherwise (the release record's SHA-256)."""
    try:
        signature = json.loads(signature_file)
        key = KeyRecord(public_key=signing_key["public_key"])
        if signature["key"] != key.fingerprint:
            return False
        key.key.verify(base64.b64decode(signature["signature"], validate=True), body)
    except (ValueError, KeyError, TypeError, binascii.Error, InvalidSignature):
        return False
    return True


def open_signer(session: Session, section: ReleaseSigning, home: Path, actor: str) -> Signer:
    """The service's signing key, created (and recorded in the ledger, in the caller's transaction) when absent.

    Refuses (`SigningKeyInvalid`) a key another account may read, or one the keyring lists as retired or revoked.
    A key not yet in the keyring or the ledger (made by a run whose transaction did not commit, or put in place by
    an operator) is added to both.
    """
    path, ring_path = section.key_path(home), section.keyring_path(home)
    key = create_key_file(path) if not path.exists() else None
    check_private(path)
    key = key or _load_private(path)
    keys = read_keyring(ring_path)
    fp = fingerprint(key.public_key())
    record = next((k for k in keys if k.fingerprint == fp), None)
    if record is None:
        record = _record_of(key, now())
        write_keyring(ring_path, [*keys, record])
    if record.revoked_at is not None:
        raise SigningKeyInvalid(f"the release signing key {fp} was revoked at {record.revoked_at.isoformat()}: "
                                "make a new one with `onsite release key rotate`")
    if record.retired_at is not None:
        raise SigningKeyInvalid(f"the release signing key {fp} was retired at {record.retired_at.isoformat()} but is "
                                f"still in {path}: rotate again (`onsite release key rotate`)")
    audit.lock_ledger(session)  # two processes starting at once record the key once
    if not _introduced(session, fp):
        audit.record(session, AuditEventType.RELEASE_KEY_CREATE, actor=actor, object=f"release_key/{fp[:16]}",
                     details={"fingerprint": fp, "algorithm": ALGORITHM, "public_key": record.public_key,
                              "created_at": _iso(record.created_at)})
    return Signer(key, record)


def check_at_start(settings: Settings, section: ReleaseSigning, actor: str) -> Signer:
    """The review service's start: its signing key made if absent and recorded, or the start refused
    (`SettingInvalid`, naming the setting) when the key cannot be used."""
    engine = make_engine(settings.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            return open_signer(session, section, settings.home, actor)
    except SigningKeyInvalid as exc:
        raise SettingInvalid(f"ReleaseSigning.key_file: {exc}") from None
    finally:
        engine.dispose()


def rotate(session: Session, section: ReleaseSigning, home: Path, actor: str) -> tuple[KeyRecord | None, KeyRecord]:
    """Replace the signing key: the old one retired now (its private key deleted; its packages still verify),
    a new one made and recorded. Returns (old, new)."""
    path, ring_path = section.key_path(home), section.keyring_path(home)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    at = now()
    keys = read_keyring(ring_path)
    old = None
    if path.exists():  # however exposed: replacing it is the remedy
        old_fp = fingerprint(_load_private(path).public_key())
        old = next((k for k in keys if k.fingerprint == old_fp), None)
        keys = [replace(k, retired_at=at) if k.fingerprint == old_fp and k.retired_at is None else k for k in keys]
    key = Ed25519PrivateKey.generate()
    new = _record_of(key, at)
    write_keyring(ring_path, [*keys, new])  # first: a crash now leaves a retired key in place, refused, not a lost key
    write_atomic(path, private_pem(key), mode=0o600)
    audit.record(session, AuditEventType.RELEASE_KEY_ROTATE, actor=actor, object=f"release_key/{new.fingerprint[:16]}",
                 details={"fingerprint": new.fingerprint, "algorithm": ALGORITHM, "public_key": new.public_key,
                          "retired": old.fingerprint if old else None, "created_at": _iso(at)})
    return old, new


def find_key(keys: list[KeyRecord], prefix: str) -> KeyRecord:
    """The one key whose fingerprint starts with `prefix` (at least 8 hex digits)."""
    prefix = prefix.lower()
    matches = [k for k in keys if k.fingerprint.startswith(prefix)] if len(prefix) >= 8 else []
    if len(matches) != 1:
        raise SigningKeyInvalid(f"no single key in the keyring has a fingerprint starting {prefix!r} (give at least "
                                "8 hex digits; `onsite release key list`)")
    return matches[0]


def revoke(session: Session, section: ReleaseSigning, home: Path, prefix: str, reason: str, actor: str,
           effective: datetime | None = None) -> tuple[KeyRecord, KeyRecord | None]:
    """Revoke a key from `effective` (default now; never later): packages it signed from then on are refused.
    Revoking the current key makes a new one at once. Returns (revoked, new key or None)."""
    reason = reason.strip()
    if not reason:
        raise SigningKeyInvalid("say why the key is revoked (--reason)")
    at = now()
    effective = effective or at
    if effective.tzinfo is None or effective > at:
        raise SigningKeyInvalid("the revocation time must carry its offset and not be in the future")
    ring_path, path = section.keyring_path(home), section.key_path(home)
    keys = read_keyring(ring_path)
    target = find_key(keys, prefix)
    if target.revoked_at is not None:
        raise SigningKeyInvalid(f"key {target.fingerprint} was already revoked at {target.revoked_at.isoformat()}")
    revoked = replace(target, revoked_at=effective, revocation_reason=reason)
    write_keyring(ring_path, [revoked if k is target else k for k in keys])
    audit.record(session, AuditEventType.RELEASE_KEY_REVOKE, actor=actor,
                 object=f"release_key/{target.fingerprint[:16]}",
                 details={"fingerprint": target.fingerprint, "revoked_at": _iso(effective), "reason": reason})
    current = path.exists() and fingerprint(_load_private(path).public_key()) == target.fingerprint
    return revoked, rotate(session, section, home, actor)[1] if current else None


# ---------------------------------------------------------------- checking a package offline


MESSAGES: dict[str, dict[str, str]] = {
    "no_manifest": {"en": "manifest.json is missing or not JSON", "ja": "manifest.json がないか、JSON として読めません"},
    "unsigned": {"en": "the package is not signed (manifest version {version}: written before packages were signed)",
                 "ja": "パッケージに署名がありません(manifest の版 {version}: 署名の導入前に作られたもの)"},
    "no_signature": {"en": "manifest.sig is missing or unreadable", "ja": "manifest.sig がないか、読めません"},
    "unknown_key": {"en": "signed by key {key}, which is not among the public keys given",
                    "ja": "署名した鍵 {key} は、指定された公開鍵のいずれでもありません"},
    "key_mismatch": {"en": "manifest.json names signing key {named}, manifest.sig key {signed}",
                     "ja": "manifest.json の署名鍵 {named} と manifest.sig の鍵 {signed} が一致しません"},
    "bad_signature": {"en": "the signature of manifest.json does not verify with key {key}: the manifest was changed "
                            "or signed by another key",
                      "ja": "manifest.json の署名が鍵 {key} で検証できません。manifest が変更されたか、別の鍵で署名されています"},
    "no_signed_time": {"en": "manifest.json has no readable released_at", "ja": "manifest.json の released_at が読めません"},
    "signed_after_revocation": {
        "en": "signed at {signed} by key {key}, revoked from {revoked} ({reason}): refused",
        "ja": "鍵 {key} による署名({signed})は、その鍵の失効({revoked}、理由: {reason})より後のため受け付けません"},
    "signed_before_revocation": {
        "en": "key {key} was revoked from {revoked} ({reason}); this package was signed before, at {signed}",
        "ja": "鍵 {key} は {revoked} から失効しています(理由: {reason})。このパッケージはそれより前の {signed} に署名されています"},
    "signed_after_retirement": {
        "en": "signed at {signed} by key {key}, replaced at {retired}: refused",
        "ja": "鍵 {key} による署名({signed})は、その鍵の交換({retired})より後のため受け付けません"},
    "signed_before_creation": {
        "en": "signed at {signed} by key {key}, made only at {created}: refused",
        "ja": "鍵 {key} による署名({signed})は、その鍵の作成({created})より前の日時のため受け付けません"},
    "file_missing": {"en": "{file} is listed in the manifest but missing", "ja": "{file} は manifest にありますが、見つかりません"},
    "file_changed": {"en": "{file} was changed: SHA-256 {found}, the manifest lists {expected}",
                     "ja": "{file} が変更されています。SHA-256 が {found} で、manifest の {expected} と異なります"},
    "file_extra": {"en": "{file} is in the package but not in the manifest",
                   "ja": "{file} はパッケージにありますが、manifest にありません"},
    "file_listing": {"en": "the manifest's file list is malformed: {problem}",
                     "ja": "manifest のファイル一覧が不正です: {problem}"},
    "unapproved_file": {"en": "{file} belongs to output {output}, which the manifest does not show approved",
                        "ja": "{file} は出力 {output} のファイルですが、manifest ではその出力が承認されていません"},
    "approved_without_file": {"en": "output {output} is approved but has no file in the package",
                              "ja": "出力 {output} は承認されていますが、パッケージにファイルがありません"},
    "too_few_approvals": {
        "en": "output {output} has {count} approval(s) by distinct reviewers; the request required {required}",
        "ja": "出力 {output} の承認は別々の審査者による {count} 件で、必要な {required} 件に足りません"},
    "rejected_but_released": {"en": "output {output} was rejected by {reviewer} yet is released",
                              "ja": "出力 {output} は {reviewer} が却下したのに公表されています"},
    "approval_not_cited": {"en": "the approval of output {output} by {reviewer} cites no ledger event",
                           "ja": "出力 {output} の {reviewer} による承認に、監査ログのイベントが示されていません"},
    "approval_cited_twice": {"en": "ledger event {seq} is cited by more than one approval",
                             "ja": "監査ログのイベント {seq} が複数の承認に示されています"},
    "approval_after_release": {"en": "the approval of output {output} by {reviewer} is dated after the release",
                               "ja": "出力 {output} の {reviewer} による承認が公表より後の日時です"},
    "ledger_unreadable": {"en": "the ledger export cannot be read: {problem}",
                          "ja": "監査ログのエクスポートを読めません: {problem}"},
    "cited_event_missing": {"en": "ledger event {seq}, cited by the approval of output {output}, is not in the ledger",
                            "ja": "出力 {output} の承認が示す監査ログのイベント {seq} が、監査ログにありません"},
    "cited_event_differs": {"en": "ledger event {seq}, cited by the approval of output {output}, differs from the "
                                  "cited hash or from its own contents",
                            "ja": "出力 {output} の承認が示す監査ログのイベント {seq} が、示されたハッシュまたは自身の内容と一致しません"},
    "cited_event_not_approval": {"en": "ledger event {seq} is not an approval of output {output} of request {request}",
                                 "ja": "監査ログのイベント {seq} は、申請 {request} の出力 {output} の承認ではありません"},
    "ledger_too_few_reviewers": {
        "en": "the ledger events cited for output {output} name {count} distinct reviewer(s) other than the "
              "requester; the request required {required}",
        "ja": "出力 {output} について示された監査ログのイベントでは、申請者以外の別々の審査者が {count} 人で、必要な {required} 人に足りません"},
    "manifest_malformed": {"en": "manifest.json is malformed: {problem}", "ja": "manifest.json が不正です: {problem}"},
}


@dataclass(frozen=True)
class Finding:
    """One problem (the package is refused) or warning, as a message key and its parameters."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def text(self, language: str = "en") -> str:
        return MESSAGES[self.code][language].format(**self.params)


@dataclass
class Verification:
    problems: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    key: KeyRecord | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def refuse(self, code: str, **params: Any) -> None:
        self.problems.append(Finding(code, params))


class PackageUnreadable(UserError):
    """The path is neither a package folder nor a zip of one."""


def read_package(path: Path) -> dict[str, bytes]:
    """{file path in the package (POSIX, relative): bytes} of a package folder or of its zip (`zip_package`: every
    entry under one top folder). What is not a plain file — a link, an empty folder, an entry outside the zip's top
    folder — is kept under a name of its own, so that the check reports it as an extra file."""
    if path.is_dir():
        found: dict[str, bytes] = {}
        for entry in sorted(path.rglob("*")):
            name = entry.relative_to(path).as_posix()
            if entry.is_symlink():
                found[f"{name} (symbolic link)"] = b""
            elif entry.is_file():
                found[name] = entry.read_bytes()
            elif entry.is_dir() and not any(entry.iterdir()):
                found[f"{name}/"] = b""
        return found
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except FileNotFoundError:
        raise PackageUnreadable(f"{path}: no such file or folder") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise PackageUnreadable(f"{path} is neither a release package folder nor a zip of one: {exc}") from None
    tops = Counter(PurePosixPath(name).parts[0] for name in entries)
    top = tops.most_common(1)[0][0] if tops else ""
    prefix = f"{top}/"
    return {name[len(prefix):] if name.startswith(prefix) else name: data for name, data in entries.items()}


def _safe_name(name: Any) -> bool:
    """A relative path inside the package: no absolute path, no `..`, no empty part, not the manifest itself."""
    parts = PurePosixPath(name).parts if isinstance(name, str) and name and "\\" not in name else ()
    return bool(parts) and parts[0] != "/" and ".." not in parts and "/".join(parts) == name and \
        name not in (MANIFEST, SIGNATURE)


def read_public_keys(path: Path) -> list[KeyRecord]:
    """The keys in a keyring file (`onsite release key export`), or one bare PEM public key (validity unknown)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyInvalid(f"the public key file {path} cannot be read: {exc}") from None
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise SigningKeyInvalid(f"{path} is not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyInvalid(f"{path} is not an Ed25519 public key")
        return [KeyRecord(public_key=base64.b64encode(raw_public(key)).decode())]
    try:
        content = json.loads(data)
    except ValueError:
        raise SigningKeyInvalid(f"{path} is neither a release keyring nor a PEM public key") from None
    return _keys_of(content, path)


def public_pem(record: KeyRecord) -> str:
    return record.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def verify(files: dict[str, bytes], keys: list[KeyRecord]) -> Verification:
    """Check a package (`read_package`) with only trusted public `keys`: the signature of manifest.json by one of
    them, within its validity; every listed file's SHA-256; no file added or missing; the approvals it cites."""
    result = Verification()
    try:
        body = files[MANIFEST]
        manifest = json.loads(body)
        assert isinstance(manifest, dict)
    except (KeyError, ValueError, AssertionError):
        result.refuse("no_manifest")
        return result
    result.manifest = manifest
    if not isinstance(manifest.get("signing_key"), dict):
        result.refuse("unsigned", version=manifest.get("version"))
    else:
        _check_signature(result, body, manifest, files.get(SIGNATURE), keys)
    try:
        _check_files(result, manifest, files)
        _check_approvals(result, manifest)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        result.refuse("manifest_malformed", problem=f"{type(exc).__name__}: {exc}")
    return result


def _check_signature(result: Verification, body: bytes, manifest: dict[str, Any], sig_file: bytes | None,
                     keys: list[KeyRecord]) -> None:
    try:
        signature = json.loads(sig_file or b"")
        signed_by, raw = str(signature["key"]), base64.b64decode(signature["signature"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        result.refuse("no_signature")
        return
    named = str(manifest["signing_key"].get("fingerprint"))
    if named != signed_by:
        result.refuse("key_mismatch", named=named, signed=signed_by)
    key = next((k for k in keys if k.fingerprint == signed_by), None)
    if key is None:
        result.refuse("unknown_key", key=signed_by)
        return
    try:
        key.key.verify(raw, body)
    except InvalidSignature:
        result.refuse("bad_signature", key=signed_by)
        return
    result.key = key
    try:
        signed_at = datetime.fromisoformat(manifest["released_at"])
        assert signed_at.tzinfo is not None
    except (KeyError, TypeError, ValueError, AssertionError):
        result.refuse("no_signed_time")
        return
    when = {"key": signed_by, "signed": signed_at.isoformat()}
    if key.created_at is not None and signed_at < key.created_at:
        result.refuse("signed_before_creation", created=key.created_at.isoformat(), **when)
    if key.revoked_at is not None:
        revoked = {"revoked": key.revoked_at.isoformat(), "reason": key.revocation_reason, **when}
        if signed_at >= key.revoked_at:
            result.refuse("signed_after_revocation", **revoked)
            return
        result.warnings.append(Finding("signed_before_revocation", revoked))
    if key.retired_at is not None and signed_at > key.retired_at:
        result.refuse("signed_after_retirement", retired=key.retired_at.isoformat(), **when)


def _check_files(result: Verification, manifest: dict[str, Any], files: dict[str, bytes]) -> None:
    listed = {entry["name"]: entry["sha256"] for entry in manifest["files"]}
    if len(listed) != len(manifest["files"]) or not all(_safe_name(n) for n in listed):
        result.refuse("file_listing", problem="a name twice, a path leaving the package, or the manifest itself")
    for name, expected in listed.items():
        if name not in files:
            result.refuse("file_missing", file=name)
        elif (found := hashlib.sha256(files[name]).hexdigest()) != expected:
            result.refuse("file_changed", file=name, found=found, expected=expected)
    for name in sorted(set(files) - set(listed) - {MANIFEST, SIGNATURE}):
        result.refuse("file_extra", file=name)


def _check_approvals(result: Verification, manifest: dict[str, Any]) -> None:
    """Every file is an approved output's; every approved output has its file, enough approvals by distinct
    reviewers before the release, no rejection, and each approval cites its own ledger event."""
    released_at = datetime.fromisoformat(manifest["released_at"])
    required = int(manifest["request"]["required_approvals"])
    outputs = {o["name"]: o for o in manifest["outputs"]}
    cited: Counter[int] = Counter()
    for entry in manifest["files"]:
        if entry["output"] is None:  # a file of the package as a whole (ACRO's results.json and checksums)
            continue
        output = outputs.get(entry["output"])
        if output is None or output["decision"] != APPROVE:
            result.refuse("unapproved_file", file=entry["name"], output=entry["output"])
    for name, output in outputs.items():
        if output["decision"] != APPROVE:
            continue
        if not output.get("file"):
            result.refuse("approved_without_file", output=name)
        approvers = set()
        for vote in output["votes"]:
            if vote["decision"] == Decision.REJECT.value:
                result.refuse("rejected_but_released", output=name, reviewer=vote["reviewer"])
            if vote["decision"] != APPROVE:
                continue
            approvers.add(vote["reviewer"])
            event = vote.get("ledger") or {}
            if not isinstance(event.get("seq"), int) or len(str(event.get("hash", ""))) != 64:
                result.refuse("approval_not_cited", output=name, reviewer=vote["reviewer"])
            else:
                cited[event["seq"]] += 1
            if vote.get("at") and datetime.fromisoformat(vote["at"]) > released_at:
                result.refuse("approval_after_release", output=name, reviewer=vote["reviewer"])
        if len(approvers) < required:
            result.refuse("too_few_approvals", output=name, count=len(approvers), required=required)
    for seq, times in sorted(cited.items()):
        if times > 1:
            result.refuse("approval_cited_twice", seq=seq)



def read_ledger_export(path: Path) -> dict[int, dict[str, Any]]:
    """{seq: event} of an `onsite audit export` file (one JSON object per line)."""
    try:
        events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return {int(event["seq"]): event for event in events}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SigningKeyInvalid(MESSAGES["ledger_unreadable"]["en"].format(problem=exc)) from None


def check_ledger(result: Verification, events: dict[int, dict[str, Any]]) -> None:
    """Each approval the manifest cites against the ledger itself (an export): the event is there with the cited
    hash, its hash matches its contents, it is an approval of that output, and the cited approvals of an output
    come from enough distinct reviewers, none of them the requester (names the manifest does not give)."""
    manifest = result.manifest or {}
    try:
        request, required = manifest["request"], int(manifest["request"]["required_approvals"])
        for output in manifest["outputs"]:
            if output["decision"] != APPROVE:
                continue
            name, reviewers = output["name"], set()
            for vote in output["votes"]:
                cited = vote.get("ledger") if vote["decision"] == APPROVE else None
                if not cited:
                    continue
                where = {"seq": cited["seq"], "output": name}
                event = events.get(cited["seq"])
                if event is None:
                    result.refuse("cited_event_missing", **where)
                    continue
                fields = {k: event[k] for k in ("seq", "actor", "action", "object", "outcome", "details", "prev_hash")}
                recomputed = audit.event_hash(created_at=datetime.fromisoformat(event["created_at"]), **fields)
                if event["hash"] != cited["hash"] or recomputed != event["hash"]:
                    result.refuse("cited_event_differs", **where)
                elif (event["action"], event["object"], event["outcome"], event["details"].get("decision")) != (
                        AuditEventType.OUTPUT_DECIDE.value, f"release_request/{request['id']}/{name}", "OK", APPROVE):
                    result.refuse("cited_event_not_approval", request=request["id"], **where)
                elif event["actor"] != request["requester"]:
                    reviewers.add(event["actor"])
            if len(reviewers) < required:
                result.refuse("ledger_too_few_reviewers", output=name, count=len(reviewers), required=required)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        result.refuse("manifest_malformed", problem=f"{type(exc).__name__}: {exc}")
