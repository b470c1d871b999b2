"""The one kernel a session may start, and a kernelspec manager that knows no other.

`write_kernelspec(settings)` writes the `onsite` kernelspec into
`$ONSITE_HOME/share/jupyter/kernels/onsite/` (root-owned, readable by
session accounts, not writable by them). Its command starts the kernel
through `singleuser.kernel_sandbox` (no network, no daemon sockets, no Hub
tokens, no signal to its server and no life beyond it).

`LockedKernelSpecManager` is the single-user server's kernelspec manager: it
lists and starts only that spec, read from a fixed directory, so neither a
`POST /api/kernels {"name": "python3"}` nor a kernelspec the researcher drops
into `~/.local/share/jupyter/kernels` can start anything else
(`KernelSpecManager.allowed_kernelspecs` only filters the list).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel
from traitlets import Unicode

from onsite_base.settings import Settings

KERNEL_NAME = "onsite"


STRIPPED_BY_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_CLIENT_ID", "ONSITE_REVIEW_URL")


def kernelspec_argv(python: str = sys.executable) -> list[str]:
    """`env -u …` drops the best-known secrets even before Python starts (the sandbox
    drops every JUPYTERHUB_*/JPY_* variable); `-Im` is `-I -m`: isolated mode, so
    neither the researcher's working directory nor PYTHON* variables can replace
    the sandbox module."""
    unset = [arg for name in STRIPPED_BY_ENV for arg in ("-u", name)]
    return ["/usr/bin/env", *unset, python, "-Im", "singleuser.kernel_sandbox", "--",
            python, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def write_kernelspec(settings: Settings) -> Path:
    """Write the `onsite` kernelspec; returns the Jupyter data directory holding it."""
    data_dir = settings.home / "share" / "jupyter"
    spec_dir = data_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    for directory in (settings.home / "share", data_dir, data_dir / "kernels", spec_dir):
        os.chmod(directory, 0o755)
    spec = {
        "display_name": "Python 3 (Onsite)",
        "language": "python",
        "argv": kernelspec_argv(),
        "metadata": {"debugger": False},
    }
    spec_file = spec_dir / "kernel.json"
    spec_file.write_text(json.dumps(spec, indent=1))
    os.chmod(spec_file, 0o644)
    return data_dir


def kernelspec_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "kernels" / KERNEL_NAME


class LockedKernelSpecManager(KernelSpecManager):
    """Exposes and starts exactly one kernelspec, from `spec_dir`; every other name is unknown."""

    spec_dir = Unicode(
        "",
        help="""Directory of the only kernelspec (holding kernel.json). Set by the
        Onsite spawner on the server's command line; search paths are ignored.""",
    ).tag(config=True)

    locked_name = Unicode(KERNEL_NAME, help="The name the locked kernelspec is listed under.").tag(config=True)

    def find_kernel_specs(self) -> dict[str, str]:
        return {self.locked_name: self.spec_dir} if self.spec_dir else {}

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if kernel_name != self.locked_name or not self.spec_dir:
            raise NoSuchKernel(kernel_name)
        return self.kernel_spec_class.from_resource_dir(self.spec_dir)

    def get_all_specs(self) -> dict[str, dict]:
        if not self.spec_dir:
            return {}
        spec = self.get_kernel_spec(self.locked_name)
        return {self.locked_name: {"resource_dir": self.spec_dir, "spec": spec.to_dict()}}

    def install_kernel_spec(self, *args, **kwargs):  # type: ignore[override]
        raise PermissionError("kernelspecs cannot be installed in an Onsite session")

    def remove_kernel_spec(self, name: str) -> str:
        raise PermissionError("kernelspecs cannot be removed in an Onsite session")
