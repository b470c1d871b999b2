"""Ed25519 key files of the services (the ledger's log key, the release signing key): made once
and never over an existing file, read back, named by fingerprint, and one rule for who may hold them
(`check_private_key_file`)."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class KeyFileError(Exception):
    """A key file that cannot be read as an Ed25519 private key; the message says why."""


class KeyFileUnsafe(Exception):
    """A private key another account could read, replace or owns: `path` is the key file or its folder."""

    def __init__(self, path: Path, kind: str, uid: int, mode: int) -> None:
        self.path, self.kind, self.uid, self.mode = path, kind, uid, mode
        super().__init__(f"the key {kind} {path} (owner uid {uid}, mode {mode:o}) is not private to uid {os.geteuid()}")


def check_private_key_file(path: Path) -> None:
    """The one rule for a service's private key file: the file and its folder owned by this account; no other
    account may read or write the file (no bit of 0o077: 0600), nor write the folder (no bit of 0o022), where it
    could swap the key for one of its own. Raises KeyFileUnsafe naming the first part that breaks the rule
    (the folder first), OSError when either cannot be examined."""
    for target, kind, others in ((path.parent, "directory", 0o022), (path, "file", 0o077)):
        info = target.stat()
        mode = stat.S_IMODE(info.st_mode)
        if info.st_uid != os.geteuid() or mode & others:
            raise KeyFileUnsafe(target, kind, info.st_uid, mode)


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def create_key_file(path: Path) -> Ed25519PrivateKey | None:
    """A new key written to `path` (0600, its folder made 0700), never over an existing file:
    None when `path` exists (another process may have made it a moment ago: read theirs)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem(key))
        handle.flush()
        os.fsync(handle.fileno())
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise KeyFileError(str(e)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError("not an Ed25519 key")
    return key


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex: how manifests, heads and cosignatures name their signer."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return hashlib.sha256(raw_public(public)).hexdigest()
