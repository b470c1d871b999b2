"""The Linux calls that give a process its own namespaces and mounts, through libc.

Used by the session's view of the filesystem (`hub_config.session_namespace`,
entered as root in the server's process just before it drops to the account)
and by the kernel's sandbox (`singleuser.kernel_sandbox`, unprivileged, in a
user namespace). The functions are looked up once, when `Libc()` is made,
before any namespace or mount work starts.
"""
from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
AT_FDCWD = -100
AT_RECURSIVE = 0x8000

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38


class NamespaceError(RuntimeError):
    """A namespace or mount could not be set up; whatever needed it does not start."""


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class Libc:
    """unshare(2), mount(2), mount_setattr(2) and prctl(2), raising NamespaceError with the errno."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._unshare, self._mount, self._prctl = libc.unshare, libc.mount, libc.prctl
        self._mount_setattr = getattr(libc, "mount_setattr", None)  # glibc >= 2.36 (Debian 12)

    @staticmethod
    def _check(result: int, what: str) -> None:
        if result != 0:
            errno = ctypes.get_errno()
            raise NamespaceError(f"{what} failed: {os.strerror(errno)} (errno {errno})")

    def unshare(self, flags: int, what: str) -> None:
        self._check(self._unshare(flags), what)

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
        def encode(text: str | None) -> bytes | None:
            return None if text is None else os.fsencode(text)

        self._check(self._mount(encode(source), encode(target), encode(fstype), flags, encode(data)),
                    f"mounting {fstype or source or ''} on {target}")

    def private_mounts(self) -> None:
        """Nothing mounted here from now on reaches the parent namespace, nor the other way."""
        self.mount(None, "/", None, MS_REC | MS_PRIVATE)

    def bind(self, source: str, target: str) -> None:
        self.mount(source, target, None, MS_BIND)

    def set_mount_attributes(self, path: str, *, set: int = 0, clear: int = 0, recursive: bool = False) -> None:
        """mount_setattr(2): e.g. every mount under `path` read-only (`recursive`), or one made writable."""
        if self._mount_setattr is None:
            raise NamespaceError("mount_setattr is missing from this C library (needs glibc 2.36 or later)")
        attr = _MountAttr(attr_set=set, attr_clr=clear)
        result = self._mount_setattr(AT_FDCWD, os.fsencode(path), AT_RECURSIVE if recursive else 0,
                                     ctypes.byref(attr), ctypes.sizeof(attr))
        self._check(result, f"changing the mount attributes of {path}")

    def die_with_parent(self, signal_number: int) -> None:
        """PR_SET_PDEATHSIG: the calling process gets `signal_number` when its parent exits."""
        self._check(self._prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")

    def no_new_privileges(self) -> None:
        """PR_SET_NO_NEW_PRIVS: no setuid program (su, sudo, ping) can raise this process's privileges."""
        self._check(self._prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
