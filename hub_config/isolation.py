"""OS boundaries of a session: accounts, dataset groups, file modes, resource limits.

Everything here needs root and is called by the hub (never by a session):

- each researcher gets an OS account `<prefix><username>` with a stable uid
  (`uid_base + person id` in the policy store) and a private group of the same
  id, no password, no login shell;
- each dataset gets a group `onsite-ds-<dataset id>`; its file is
  `root:<group>` 0640, so only a process holding that group reads it. Accounts
  are never made members in /etc/group: the spawner hands a session exactly the
  groups of the datasets its active grants allow, with `setgroups()` at start;
- the state directory is laid out so that researcher accounts can traverse
  to their home and to dataset files but read nothing else (policy store,
  hub database, secrets, egress store);
- `SessionLimits` are the rlimits and the niceness a session starts with.
"""
from __future__ import annotations

import grp
import hashlib
import logging
import os
import pwd
import resource
import signal
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from onsite_base.settings import Settings

log = logging.getLogger(__name__)

MAX_NAME = 32
"""Longest user or group name useradd/groupadd accept on Debian."""
MIN_ACCOUNT_UID = 1000
"""An existing account below this uid is a system account and is never used for a session."""
NOLOGIN_SHELL = "/usr/sbin/nologin"
DATASET_FILE_MODE = 0o640
TRAVERSE_ONLY = 0o711
PRIVATE_DIR = 0o700

_account_lock = threading.Lock()  # useradd/groupadd from concurrent spawns


class IsolationError(RuntimeError):
    """An OS account, group or permission could not be set up; the message says what to fix."""


@dataclass(frozen=True)
class SessionAccount:
    """The OS account a researcher's server and kernels run as."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class SessionLimits:
    """Resource limits of one session (every process of the server and its kernels).

    `memory_mb` is RLIMIT_AS per process (address space, so set it above what
    DuckDB and polars map), `processes` RLIMIT_NPROC for the account,
    `file_size_mb` RLIMIT_FSIZE (largest file a session can write; the
    filesystem here has no quotas), `cpu_seconds` RLIMIT_CPU per process (0: none),
    `nice` the scheduling priority (higher yields to the hub). `cpus` is the CPUs a
    Slurm session asks for (`sbatch --cpus-per-task`, `hub_config.slurm`; 0: the
    cluster's default); a session on the hub host shares its CPUs, with `nice`.
    """

    memory_mb: int = 8192
    processes: int = 256
    file_size_mb: int = 4096
    cpu_seconds: int = 0
    nice: int = 5
    cpus: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> SessionLimits:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown session limit(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        limits = cls(**{k: int(v) for k, v in data.items()})
        if min(limits.memory_mb, limits.processes, limits.file_size_mb) <= 0 or min(limits.cpu_seconds, limits.cpus) < 0:
            raise ValueError(f"session limits must be positive (cpu_seconds and cpus may be 0 for none): {limits}")
        if not 0 <= limits.nice <= 19:
            raise ValueError(f"nice must be between 0 and 19, not {limits.nice}")
        return limits

    def most_generous(self, other: SessionLimits) -> SessionLimits:
        """A session working on several projects gets the larger of each limit."""
        cpu = 0 if 0 in (self.cpu_seconds, other.cpu_seconds) else max(self.cpu_seconds, other.cpu_seconds)
        return SessionLimits(
            memory_mb=max(self.memory_mb, other.memory_mb),
            processes=max(self.processes, other.processes),
            file_size_mb=max(self.file_size_mb, other.file_size_mb),
            cpu_seconds=cpu,
            nice=min(self.nice, other.nice),
            cpus=0 if 0 in (self.cpus, other.cpus) else max(self.cpus, other.cpus),
        )

    def apply(self) -> None:
        """Set the limits on the calling process (as root, before it drops to the account: `SessionProcess.become`)."""
        mib = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (self.memory_mb * mib, self.memory_mb * mib))
        resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size_mb * mib, self.file_size_mb * mib))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core dumps of microdata in the workspace
        if self.cpu_seconds:
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds))
        os.nice(self.nice)


def can_isolate() -> bool:
    """Per-user OS accounts need root (useradd, chown, setuid)."""
    return os.geteuid() == 0


def _bounded_name(prefix: str, name: str) -> str:
    """`prefix + name`, shortened with a hash when longer than useradd accepts."""
    full = prefix + name
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{full[: MAX_NAME - 9]}-{digest}"


def account_name(prefix: str, username: str) -> str:
    return _bounded_name(prefix, username)


def dataset_group_name(prefix: str, dataset_id: str) -> str:
    return _bounded_name(prefix, dataset_id)


def ensure_account(username: str, person_id: int, *, prefix: str, uid_base: int, home: Path) -> SessionAccount:
    """The researcher's OS account, created on first use with uid = gid = `uid_base + person_id`.

    An account that already exists under that name (e.g. from the directory
    through sssd) is used as it is, unless it is root, a system account or the
    hub's own account.
    """
    name = account_name(prefix, username)
    entry = _existing(pwd.getpwnam, name)
    if entry is None:
        with _account_lock:
            entry = _existing(pwd.getpwnam, name) or _create_account(name, uid_base + person_id, home)
    if entry.pw_uid < MIN_ACCOUNT_UID or entry.pw_uid == os.geteuid():
        raise IsolationError(
            f"OS account {name} has uid {entry.pw_uid}, a system or the hub's own account: "
            f"remove it or change OnsiteSpawner.account_prefix"
        )
    return SessionAccount(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def _create_account(name: str, uid: int, home: Path) -> pwd.struct_passwd:
    for taken, what in ((_uid_owner(uid), "uid"), (_gid_owner(uid), "gid")):
        if taken is not None:
            raise IsolationError(
                f"cannot create OS account {name}: {what} {uid} already belongs to {taken}; "
                f"change OnsiteSpawner.uid_base"
            )
    _run(["groupadd", "--gid", str(uid), name])
    try:
        _run(["useradd", "--uid", str(uid), "--gid", str(uid), "--no-create-home", "--home-dir", str(home),
              "--shell", NOLOGIN_SHELL, "--comment", "Onsite researcher", name])
    except IsolationError:
        _run(["groupdel", name], check=False)
        raise
    log.info("created OS account %s (uid %d)", name, uid)
    return pwd.getpwnam(name)


def _uid_owner(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _gid_owner(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def ensure_dataset_group(dataset_id: str, *, prefix: str) -> int:
    """The gid of the dataset's group, created (system gid range) on first use."""
    name = dataset_group_name(prefix, dataset_id)
    group = _existing(grp.getgrnam, name)
    if group is None:
        with _account_lock:
            group = _existing(grp.getgrnam, name)
            if group is None:
                _run(["groupadd", "--system", name])
                log.info("created group %s for dataset %s", name, dataset_id)
                group = grp.getgrnam(name)
    return group.gr_gid


def _existing(lookup, name: str):
    """`lookup(name)` (pwd.getpwnam, grp.getgrnam), or None. Looked up first without `_account_lock`: a spawn
    whose account and groups exist (every one but a person's first) does not wait behind another's useradd."""
    try:
        return lookup(name)
    except KeyError:
        return None


def secure_dataset_file(path: Path, gid: int) -> None:
    """`root:<dataset group>` 0640 (and any DuckDB WAL beside it): readable only with the group."""
    for candidate in (path, path.with_name(path.name + ".wal")):
        if candidate.exists():
            os.chown(candidate, os.geteuid(), gid, follow_symlinks=False)
            os.chmod(candidate, DATASET_FILE_MODE, follow_symlinks=False)


def secure_state(settings: Settings) -> None:
    """Lay out $ONSITE_HOME so researcher accounts reach their home and dataset files only.

    `home`, `datasets/`, `workspaces/`: traverse only (0711: no listing).
    `run/` (hub database, secrets), `egress/` (the review service's), `demo/`
    (source files) and loose files in `home` (the policy store): the hub's
    account only. Ancestors of `home` lacking o+x get it (traverse only), so a
    state directory under a private parent still works; each change is logged.
    """
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    make_traversable(home)
    os.chmod(home, TRAVERSE_ONLY)
    for directory in (settings.datasets_dir, settings.workspaces_dir):
        directory.mkdir(exist_ok=True)
        os.chmod(directory, TRAVERSE_ONLY)
    for private in (settings.runtime_dir, settings.egress_dir):
        private.mkdir(exist_ok=True)
        os.chmod(private, PRIVATE_DIR)
    if (home / "demo").is_dir():
        os.chmod(home / "demo", PRIVATE_DIR)
    for entry in home.iterdir():
        if entry.is_file() and not entry.is_symlink():
            os.chmod(entry, stat.S_IMODE(entry.stat().st_mode) & 0o700)


def make_traversable(path: Path) -> None:
    """Give o+x (traverse, not list) to the ancestors of `path` that lack it, logging each.

    Session accounts must reach their home, the dataset files, the code and the
    Python interpreter (which may live under a private directory such as
    /root/.pyenv on a build machine).
    """
    for ancestor in reversed(Path(os.path.realpath(path)).parents):
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(ancestor, stat.S_IMODE(mode) | stat.S_IXOTH)
            log.warning("gave %s o+x (traverse only) so session accounts can reach %s", ancestor, path)


def prepare_home(home: Path, account: SessionAccount, directories: list[Path]) -> None:
    """The home and `directories` in it exist, 0700 and owned by the account.

    Never follows a symlink the session may have planted: ownership and mode
    are changed with lchown/`follow_symlinks=False`, and a symlink where a
    directory should be is refused.
    """
    for directory in [home, *directories]:
        if directory.is_symlink():
            raise IsolationError(f"{directory} is a symbolic link, not a directory: remove it")
        directory.mkdir(parents=False, exist_ok=True)
        os.chown(directory, account.uid, account.gid, follow_symlinks=False)
        os.chmod(directory, PRIVATE_DIR, follow_symlinks=False)


def give_file(path: Path, account: SessionAccount, mode: int = 0o600) -> None:
    """A file the hub wrote for the session (e.g. the session manifest): the account's, `mode`."""
    os.chown(path, account.uid, account.gid, follow_symlinks=False)
    os.chmod(path, mode, follow_symlinks=False)


def account_processes(uid: int) -> list[int]:
    """Pids of every live (not zombie) process whose real or effective uid is `uid`."""
    pids = []
    # Not Path.glob: its existence check raises ESRCH for a process exiting meanwhile.
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            lines = Path("/proc", pid, "status").read_text().splitlines()
            uids = next(line for line in lines if line.startswith("Uid:")).split()[1:3]
            state = next((line.split()[1] for line in lines if line.startswith("State:")), "")
        except (OSError, StopIteration, IndexError):  # gone since listed
            continue
        if str(uid) in uids and state != "Z":
            pids.append(int(pid))
    return pids


KILL_ROUNDS = 20

KILL_ALL_OF_MY_UID = ["/bin/sh", "-c", "kill -9 -1"]  # the shell's kill(-1, SIGKILL); procps kill(1) misreads -1


def kill_account_processes(uid: int) -> int:
    """SIGKILL every process of a session account (what a stopped session left behind,
    e.g. a daemonised child of the kernel); returns how many were alive at first.

    A list of pids read from /proc misses a process that forks and exits in a loop
    (its new pid is not in the list yet). So a helper running as the account calls
    kill(-1, SIGKILL): the kernel signals every process of the uid while no new one
    can be forked, and a process with SIGKILL pending cannot fork. Repeated until
    /proc shows none left; IsolationError if some are still alive after KILL_ROUNDS.
    """
    if uid < MIN_ACCOUNT_UID or uid == os.geteuid():
        raise IsolationError(f"refusing to kill the processes of uid {uid}: not a session account")
    alive = account_processes(uid)
    found, rounds = len(alive), 0
    # At least once even when /proc shows nothing: a process hopping pids is never seen there.
    while rounds == 0 or (alive and rounds < KILL_ROUNDS):
        try:
            subprocess.run(KILL_ALL_OF_MY_UID, user=uid, group=uid, extra_groups=[], cwd="/", env={},
                           capture_output=True, check=False)
        except OSError as e:  # no helper the account can run: signal the pids we see
            log.warning("kill helper for uid %d could not start (%s); killing listed pids", uid, e)
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        rounds += 1
        alive = account_processes(uid)
        if alive:
            time.sleep(0.05)  # killed processes may still be exiting
    if alive:
        raise IsolationError(f"processes {alive} of uid {uid} survived {rounds} rounds of SIGKILL")
    return found


def remove_account(name: str) -> None:
    """Delete an OS account and its private group (tests, decommissioning); absent is fine."""
    _run(["userdel", name], check=False)
    _run(["groupdel", name], check=False)


def remove_group(name: str) -> None:
    _run(["groupdel", name], check=False)


def _run(argv: list[str], *, check: bool = True) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise IsolationError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
