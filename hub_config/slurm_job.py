"""The session job itself on a Slurm compute node (`hub_config.slurm`), as root:

    python -m hub_config.slurm_job JSON COMMAND...

checks the granted datasets against the catalogue, becomes the session (the
same steps as a local server's process) and execs COMMAND, the single-user
server. The node's Prolog and Epilog are `hub_config.slurm_node`.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from dataplane.catalogue import DatasetNotFound, read_dataset_info
from hub_config import netfilter
from hub_config.session_namespace import SessionProcess
from onsite_base.namespaces import Libc


class NodeError(RuntimeError):
    """A session job could not be set up on this node; the message says what is missing."""


def check_datasets(expected: dict[str, str]) -> None:
    """Each granted dataset file as this node sees it (the shared read-only path) is the one the catalogue
    registered: the SHA-256 of its source recorded in the file equals the policy store's. A stale or
    replaced copy stops the session before it starts."""
    for path, digest in expected.items():
        try:
            found = read_dataset_info(Path(path)).source_sha256
        except DatasetNotFound as e:
            raise NodeError(f"dataset {path} is not readable on this node: {e}") from e
        if found != digest:
            raise NodeError(f"dataset {path} on this node is not the catalogue's (source SHA-256 {found}, "
                            f"registered {digest}): check the shared dataset file system")


def become_session(spec: dict) -> None:
    """As root in the job: refuse without the Prolog's network rules, then become the session (as on the hub host)."""
    process = SessionProcess.from_json(spec["process"])
    if spec.get("firewall", True) and netfilter.table_name(process.view.uid) not in netfilter.session_tables():
        raise NodeError(f"no nftables table {netfilter.table_name(process.view.uid)} on this node: its Slurm Prolog "
                        "must be `python -m hub_config.slurm_node prolog` (docs/how-to/operator.md, Slurm)")
    if os.geteuid() != 0:
        raise NodeError("a session job must start as root (submitted by the hub as root) to become the researcher")
    check_datasets(spec.get("datasets", {}))
    process.become(Libc())


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    become_session(json.loads(argv[0]))
    # The server's environment is the one a local server gets: Slurm's own variables stay behind.
    os.execve(argv[1], argv[1:], {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
