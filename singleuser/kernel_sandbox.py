"""Start a kernel cut off from every network, from daemon sockets and from its server.

    python -I -m singleuser.kernel_sandbox -- python -m ipykernel_launcher -f CONNECTION_FILE

Run by the Onsite kernelspec as the session's account (no privileges). It
creates, with `unshare(2)`:

- a user namespace mapping only the account's own uid and gid (file access
  stays that of the account and its dataset groups);
- a network namespace (only a downed loopback: every connect fails with
  ENETUNREACH, DNS fails; the kernel talks to its server over ZMQ ipc sockets,
  `KernelManager.transport = "ipc"`);
- a mount namespace in which /run is an empty tmpfs (hides filesystem sockets
  such as PostgreSQL's, which a network namespace does not);
- a PID namespace with a /proc of its own: the kernel sees and signals only
  its own processes, never its server (ESRCH), nor any process of another
  session.

This process (the one the server started and signals) dies with its server
(PR_SET_PDEATHSIG), and the first process of the PID namespace dies with it;
when that one dies the Linux kernel kills every process left in the namespace,
daemons included. So a kernel never outlives its server. The first process
reaps orphans and ends with the kernel; SIGINT (an interrupt, sent to the
process group) reaches the kernel itself. Hub tokens and other secrets are
dropped from the environment before the kernel command is exec'd. If any step
fails the kernel does not start: no fallback without the sandbox.

`-I` matters: the kernel's working directory belongs to the researcher, who
could otherwise shadow this module with a file of the same name.
"""
from __future__ import annotations

import os
import select
import signal
import sys

from onsite_base.namespaces import (CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, MS_NODEV, MS_NOEXEC, MS_NOSUID,
                                    Libc, NamespaceError)

HIDDEN_DIRECTORIES = ("/run",)
"""Replaced by an empty tmpfs in the kernel's mount namespace (daemon sockets live there)."""
SECRET_PREFIXES = ("JUPYTERHUB_", "JPY_")
SECRET_NAMES = ("ONSITE_REVIEW_URL", "ONSITE_DB_URL", "ONSITE_HUB_DB_URL")


def kernel_environment(environ: dict[str, str]) -> dict[str, str]:
    """The environment without Hub tokens, OAuth client data and service addresses."""
    return {k: v for k, v in environ.items() if not k.startswith(SECRET_PREFIXES) and k not in SECRET_NAMES}


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter_sandbox(libc: Libc, hidden: tuple[str, ...] = HIDDEN_DIRECTORIES) -> None:
    """Move the calling (single-threaded) process into new user, network and mount namespaces;
    its next child is the first process of a new PID namespace."""
    uid, gid = os.getuid(), os.getgid()
    libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID, "unshare(user, net, mount, pid) "
                 "(are unprivileged user namespaces enabled? sysctl user.max_user_namespaces)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    libc.private_mounts()
    for directory in hidden:
        if os.path.isdir(directory):
            libc.mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755")


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by a signal: 128 + its number, as a shell reports it


def _ignore(signum, frame) -> None:
    """A handler, not SIG_IGN: it is not inherited through exec, and the first process of the
    PID namespace must have one for a signal from outside to reach it at all."""


def _namespace_init(libc: Libc, parent_alive: int, command: list[str], environment: dict[str, str]) -> None:
    """The first process of the PID namespace: a /proc of its own, the kernel as its child, reaping
    orphans until the kernel ends. Never returns."""
    try:
        libc.die_with_parent(signal.SIGKILL)
        if select.select([parent_alive], [], [], 0)[0]:  # end of file: the sandbox process is gone already
            os._exit(1)
        libc.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        kernel = os.fork()
        if kernel == 0:
            os.execvpe(command[0], command, environment)
        while True:
            pid, status = os.wait()
            if pid == kernel:
                os._exit(_exit_code(status))
    except BaseException as e:  # noqa: BLE001 (a forked child must never return into its parent's code)
        print(f"onsite: the kernel was not started: its process namespace could not be set up: {e}", file=sys.stderr)
        os._exit(1)


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python -I -m singleuser.kernel_sandbox -- KERNEL COMMAND...", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1:]
    environment = kernel_environment(dict(os.environ))
    libc = Libc()
    try:
        libc.die_with_parent(signal.SIGKILL)  # the server's end is the kernel's end
        enter_sandbox(libc)
    except (NamespaceError, OSError) as e:
        print(f"onsite: the kernel was not started: its network sandbox could not be set up: {e}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, _ignore)  # an interrupt is for the kernel (same process group), not for us
    parent_alive, alive_end = os.pipe()  # the init's end reads end-of-file once this process is gone
    init = os.fork()
    if init == 0:
        os.close(alive_end)
        _namespace_init(libc, parent_alive, command, environment)
    os.close(parent_alive)
    _, status = os.waitpid(init, 0)
    return _exit_code(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
