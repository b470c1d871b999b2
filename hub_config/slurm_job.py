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
from hub_config.session_namespace import SessionProcess, exec_as_session


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


def session_of(spec: dict) -> SessionProcess:
    """As root in the job: what the process becomes, refused without the Prolog's network rules, without root, or
    with a granted dataset this node does not have as the catalogue registered it."""
    process = SessionProcess.from_json(spec["process"])
    if spec.get("firewall", True) and netfilter.table_name(process.view.uid) not in netfilter.session_tables():
        raise NodeError(f"no nftables table {netfilter.table_name(process.view.uid)} on this node: its Slurm Prolog "
                        "must be `python -m hub_config.slurm_node prolog` (docs/how-to/operator.md, Slurm)")
    if os.geteuid() != 0:
        raise NodeError("a session job must start as root (submitted by the hub as root) to become the researcher")
    check_datasets(spec.get("datasets", {}))
    return process


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    process = session_of(json.loads(argv[0]))
    # Becomes the session as a local server's launcher does; the server's environment is the one a local server
    # gets: Slurm's own variables stay behind.
    exec_as_session(process, argv[1:], {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
