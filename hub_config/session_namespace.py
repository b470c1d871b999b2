"""A session's own view of the filesystem: sessions share nothing.

Entered by the single-user server's process as root, just before it drops to
the researcher's account (`SessionProcess.become`); the server and
every kernel it starts live in it. It is a mount namespace and an IPC namespace
of their own (no new network namespace: the server listens on the host's
loopback, where the hub reaches it) in which:

- every mount is read-only, except the few below: the researcher can write
  nowhere another session could look, whatever modes they set;
- /tmp, /var/tmp and /dev/shm are one private tmpfs of `tmp_size_mb`, which
  also holds the server's runtime directory (the kernels' ipc sockets);
- the workspaces root is an empty tmpfs holding only the researcher's own home
  (the real one, bound in writable): other homes are not there at all;
- host directories the session needs that lie under one of those (`kept`: the
  state directory of a test run under /tmp, say) are bound back, read-only, at
  the same path;
- System V shared memory, semaphores and message queues, and POSIX message
  queues, are the session's own (IPC namespace).

Mounts stay in the namespace (private propagation) and the namespace ends with
its last process: the spawner's teardown kills every process of the account,
and the tmpfs and its contents are freed with it.

`SessionProcess` is the whole of what the server's process does as root before
the server runs (this view, the limits, no new privileges, the dataset groups,
the account's uid): the same steps whether the process was forked from the pre-imported server
(`hub_config.server_fork`), is a Slurm job (`hub_config.slurm_job`) or was started
to exec the server:

    python -m hub_config.session_namespace PROCESS_JSON COMMAND...

as root, which becomes the session described by PROCESS_JSON (`SessionProcess.to_json`)
and execs COMMAND. That fresh interpreter is single-threaded, as `become` requires; a
`preexec_fn` run in the child of the threaded hub is not (the child may deadlock on, or
crash in, a lock another thread held at the fork).
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from hub_config.isolation import SessionLimits
from onsite_base.namespaces import (CLONE_NEWIPC, CLONE_NEWNS, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
                                    MS_NODEV, MS_NOEXEC, MS_NOSUID, Libc, NamespaceError)

PRIVATE_TMP = {"/tmp": "tmp", "/var/tmp": "var-tmp", "/dev/shm": "shm"}
"""Each directory and the folder of the one private tmpfs that replaces it."""
RUNTIME_DIR = "/tmp/onsite-runtime"
"""JUPYTER_RUNTIME_DIR of an isolated session, inside its private /tmp: short, as ZMQ ipc paths must be."""
STICKY_SHARED = 0o1777


@dataclass(frozen=True)
class SessionView:
    """What the session sees; `enter()` sets it up in the calling process."""

    home: Path
    workspaces: Path
    uid: int
    gid: int
    tmp_size_mb: int
    kept: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.home.parent != self.workspaces:
            raise ValueError(f"the home {self.home} is not directly in the workspaces root {self.workspaces}")
        for path in self.kept:
            if not path.is_absolute() or str(path) in PRIVATE_TMP:
                raise ValueError(f"{path} cannot be kept in a session's view: not absolute, or a private directory itself")

    def enter(self, libc: Libc) -> None:
        """Run as root in a single-threaded process before it drops privileges."""
        libc.unshare(CLONE_NEWNS | CLONE_NEWIPC, "unshare(mount, ipc)")
        libc.private_mounts()
        home = self._open_home()
        kept = {path: os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for path in self._kept_in_private_tmp()}
        try:
            libc.set_mount_attributes("/", set=MOUNT_ATTR_RDONLY, recursive=True)
            # /proc stays writable: the kernel sandbox writes its uid map there and mounts a /proc of its own.
            libc.set_mount_attributes("/proc", clear=MOUNT_ATTR_RDONLY)
            self._private_tmp(libc)
            for path, fd in kept.items():
                os.makedirs(path, mode=0o711, exist_ok=True)  # no listing of what leads there
                libc.bind(f"/proc/self/fd/{fd}", path)  # read-only, as everything it came from
            self._only_own_home(libc, home)
        finally:
            for fd in (home, *kept.values()):
                os.close(fd)

    def _kept_in_private_tmp(self) -> list[str]:
        """The kept directories that would vanish under a private directory, none inside another."""
        under = sorted(str(p) for p in self.kept if any(p.is_relative_to(t) for t in PRIVATE_TMP))
        return [p for i, p in enumerate(under) if not any(Path(p).is_relative_to(q) for q in under[:i])]

    def _open_home(self) -> int:
        """The real home, held open before the workspaces root is covered; refused unless it is the
        account's own directory (never a link the session planted)."""
        fd = os.open(self.home, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        info = os.fstat(fd)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != self.uid:
            os.close(fd)
            raise NamespaceError(f"{self.home} is not a directory owned by uid {self.uid}")
        return fd

    def _private_tmp(self, libc: Libc) -> None:
        libc.mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={self.tmp_size_mb}m,mode=0700")
        for target, folder in PRIVATE_TMP.items():
            source = f"/tmp/{folder}"
            os.mkdir(source)
            os.chmod(source, STICKY_SHARED)
            if target != "/tmp" and os.path.isdir(target):
                libc.bind(source, target)
        libc.bind("/tmp/tmp", "/tmp")  # last: over the tmpfs's root, which nothing shows any more
        os.mkdir(RUNTIME_DIR)
        os.chown(RUNTIME_DIR, self.uid, self.gid)
        os.chmod(RUNTIME_DIR, 0o700)

    def _only_own_home(self, libc: Libc, home: int) -> None:
        workspaces, own = str(self.workspaces), str(self.workspaces / self.home.name)
        libc.mount("tmpfs", workspaces, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755")
        os.mkdir(own, 0o700)
        libc.bind(f"/proc/self/fd/{home}", own)
        libc.set_mount_attributes(own, clear=MOUNT_ATTR_RDONLY, set=MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
        libc.set_mount_attributes(workspaces, set=MOUNT_ATTR_RDONLY)


@dataclass(frozen=True)
class SessionProcess:
    """What a session's server process becomes: its view, limits, groups and account, then its home as cwd."""

    view: SessionView
    limits: SessionLimits
    groups: tuple[int, ...]

    def become(self, libc: Libc) -> None:
        """Run as root in a single-threaded process; afterwards it is the account, for good."""
        self.view.enter(libc)
        self.limits.apply()
        libc.no_new_privileges()
        os.setgroups(list(self.groups))
        os.setgid(self.view.gid)
        os.setuid(self.view.uid)
        os.umask(0o077)
        os.chdir(self.view.home)

    def to_json(self) -> dict:
        return {"view": {**dataclasses.asdict(self.view), "home": str(self.view.home),
                         "workspaces": str(self.view.workspaces), "kept": [str(p) for p in self.view.kept]},
                "limits": dataclasses.asdict(self.limits), "groups": list(self.groups)}

    @classmethod
    def from_json(cls, data: dict) -> SessionProcess:
        view = data["view"]
        return cls(view=SessionView(home=Path(view["home"]), workspaces=Path(view["workspaces"]), uid=int(view["uid"]),
                                    gid=int(view["gid"]), tmp_size_mb=int(view["tmp_size_mb"]),
                                    kept=tuple(Path(p) for p in view["kept"])),
                   limits=SessionLimits.from_dict(data["limits"]), groups=tuple(int(g) for g in data["groups"]))


def exec_as_session(process: SessionProcess, command: list[str], env: Mapping[str, str]) -> NoReturn:
    """As root in a fresh single-threaded process: become the session, then exec `command` with `env`."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a hub started with SIGINT ignored (a background job) passed that on
    process.become(Libc())
    os.execvpe(command[0], command, env)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        process = SessionProcess.from_json(json.loads(argv[0]))
        exec_as_session(process, argv[1:], os.environ)
    except Exception as e:  # the hub's log shows the server's stderr: say what failed, not only a traceback
        print(f"onsite: the session's process could not be set up: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
