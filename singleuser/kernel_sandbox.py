"""Start a kernel cut off from every network and from daemon sockets.

    python -I -m singleuser.kernel_sandbox -- python -m ipykernel_launcher -f CONNECTION_FILE

Run by the Onsite kernelspec as the session's account (no privileges). It
creates, with `unshare(2)`, a user namespace mapping only the account's own
uid and gid (file access stays that of the account and its dataset groups), a
network namespace (only a downed loopback: every connect fails with
ENETUNREACH, DNS fails; the kernel talks to its server over ZMQ ipc sockets,
`KernelManager.transport = "ipc"`) and a mount namespace in which /run is an
empty tmpfs (hides filesystem sockets such as PostgreSQL's, which a network
namespace does not). Hub tokens and other secrets are dropped from the
environment, then the kernel command is exec'd. If any step fails the kernel
does not start: no fallback without the sandbox.

`-I` matters: the kernel's working directory belongs to the researcher, who
could otherwise shadow this module with a file of the same name.
"""
from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

HIDDEN_DIRECTORIES = ("/run",)
"""Replaced by an empty tmpfs in the kernel's mount namespace (daemon sockets live there)."""
SECRET_PREFIXES = ("JUPYTERHUB_", "JPY_")
SECRET_NAMES = ("ONSITE_REVIEW_URL", "ONSITE_DB_URL", "ONSITE_HUB_DB_URL")


class SandboxError(RuntimeError):
    """The namespaces could not be set up; the kernel is not started."""


def kernel_environment(environ: dict[str, str]) -> dict[str, str]:
    """The environment without Hub tokens, OAuth client data and service addresses."""
    return {k: v for k, v in environ.items() if not k.startswith(SECRET_PREFIXES) and k not in SECRET_NAMES}


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SandboxError(f"{what} failed: {os.strerror(errno)} (errno {errno})")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter_sandbox(hidden: tuple[str, ...] = HIDDEN_DIRECTORIES) -> None:
    """Move the calling (single-threaded) process into new user, network and mount namespaces."""
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS), "unshare(user, net, mount) "
           "(are unprivileged user namespaces enabled? sysctl user.max_user_namespaces)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "making mounts private")
    for directory in hidden:
        if os.path.isdir(directory):
            _check(libc.mount(b"tmpfs", directory.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                              b"size=64k,mode=0755"), f"hiding {directory}")


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python -I -m singleuser.kernel_sandbox -- KERNEL COMMAND...", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    environment = kernel_environment(dict(os.environ))
    try:
        enter_sandbox()
    except (SandboxError, OSError) as e:
        print(f"onsite: the kernel was not started: its network sandbox could not be set up: {e}", file=sys.stderr)
        return 1
    os.execvpe(command[0], command, environment)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
