"""One rule for the services' private keys (onsite_base.keys.check_private_key_file), as the ledger's log key and
the review service's release signing key apply it, tried with a second, real OS account: made here with useradd
(the tests run as root) and removed afterwards. The attack: that account, allowed to write the key's folder,
puts its own key in place of the service's; and plainer slips (a file or folder it owns, modes too open)."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from access_control import ledger
from access_control.errors import PolicyError
from disclosure_review.workflow import signing
from onsite_base import keys

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="making a second OS account needs root")


@pytest.fixture
def other_account() -> Iterator[pwd.struct_passwd]:
    """A throwaway OS account (no home, no shell), removed after the test."""
    name = f"onsitekey{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=True)


def ledger_key(path: Path) -> None:
    ledger.signing_key(path, create=False)


def release_key(path: Path) -> None:
    signing.check_private(path)
    signing._load_private(path)


USES = {"ledger": (ledger_key, PolicyError), "release": (release_key, signing.SigningKeyInvalid)}


@pytest.fixture(params=sorted(USES))
def use(request) -> Iterator[tuple[Path, Callable[[Path], None], type[Exception]]]:
    """A key made as each service makes it (0600 in a 0700 folder), and how that service opens it. Under a
    folder of /tmp the other account may pass through, as under /var/lib (pytest's tmp_path is root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="onsite-key-files-"))
    os.chmod(base, 0o755)
    path = base / "keys" / "service.pem"
    keys.create_key_file(path)
    opener, refusal = USES[request.param]
    opener(path)  # private to this account: used
    yield path, opener, refusal
    shutil.rmtree(base)


def as_account(account: pwd.struct_passwd, code: str) -> None:
    """Run `code` in Python as `account` (the child drops to its uid, gid and no other group before exec: in C,
    not a `preexec_fn`, which is not safe in this process's threads)."""
    subprocess.run([os.path.realpath("/proc/self/exe"), "-c", code], check=True, cwd="/",
                   user=account.pw_uid, group=account.pw_gid, extra_groups=[])


def test_a_key_swapped_by_another_account_through_a_folder_it_may_write_is_refused(use, other_account):
    path, opener, refusal = use
    os.chmod(path.parent, 0o777)
    with pytest.raises(refusal, match=str(path.parent)):  # refused before anyone swaps anything
        opener(path)
    theirs = Ed25519PrivateKey.generate()
    as_account(other_account, f"import os; open({str(path) + '.x'!r}, 'wb').write({keys.private_pem(theirs)!r}); "
                              f"os.chmod({str(path) + '.x'!r}, 0o600); os.replace({str(path) + '.x'!r}, {str(path)!r})")
    assert path.stat().st_uid == other_account.pw_uid and keys.load_private_key(path).public_key() != theirs  # swapped
    os.chmod(path.parent, 0o700)  # even with the folder closed again, their file is refused
    with pytest.raises(refusal, match=rf"{path}.*uid {other_account.pw_uid}|uid {other_account.pw_uid}.*{path}"):
        opener(path)


def test_a_file_or_folder_owned_by_another_account_is_refused(use, other_account):
    path, opener, refusal = use
    os.chown(path, other_account.pw_uid, -1)
    with pytest.raises(refusal, match=str(other_account.pw_uid)):
        opener(path)
    os.chown(path, 0, -1)
    os.chown(path.parent, other_account.pw_uid, -1)  # its owner could replace the key
    with pytest.raises(refusal, match=str(path.parent)):
        opener(path)
    os.chown(path.parent, 0, -1)
    opener(path)


@pytest.mark.parametrize(("part", "mode"), [("file", 0o640), ("file", 0o604), ("file", 0o660), ("folder", 0o770),
                                            ("folder", 0o730), ("folder", 0o703)])
def test_modes_that_let_others_read_the_key_or_change_its_folder_are_refused(use, part, mode):
    path, opener, refusal = use
    target = path if part == "file" else path.parent
    os.chmod(target, mode)
    with pytest.raises(refusal, match=str(target)):
        opener(path)
    os.chmod(target, 0o600 if part == "file" else 0o700)
    opener(path)


def test_a_folder_others_may_enter_but_not_change_is_allowed(use):
    path, opener, _ = use
    os.chmod(path.parent, 0o755)  # e.g. /var/lib/onsite: reading the folder does not let anyone swap the key
    opener(path)
