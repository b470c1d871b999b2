"""What runs as root on a Slurm compute node for an Onsite session (`hub_config.slurm`).

    python -m hub_config.slurm_node prolog     the node's Slurm Prolog: the session uid's nftables table
    python -m hub_config.slurm_node epilog     the node's Slurm Epilog: the uid's processes killed, its table dropped
    python -m hub_config.slurm_node session JSON COMMAND...
                                               the job itself: check the granted datasets, become the session, exec COMMAND

Prolog and Epilog act only on jobs submitted by root (the hub) whose comment
starts with `onsite-session`: another cluster user's job cannot name a
researcher's uid to confine or kill. Slurm passes the job's id, uid and comment
in SLURM_JOB_ID, SLURM_JOB_UID and SLURM_JOB_COMMENT. A Prolog that fails
stops the job from starting (Slurm drains the node: a node that cannot confine
a session takes none).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from dataplane.catalogue import DatasetNotFound, read_dataset_info
from hub_config import isolation, netfilter
from hub_config.session_namespace import SessionProcess
from onsite_base.namespaces import Libc

COMMENT_PREFIX = "onsite-session"
"""The first word of an Onsite job's comment, which the Prolog and Epilog act on."""


class NodeError(RuntimeError):
    """A session job could not be set up on this node; the message says what is missing."""


def job_comment(uid: int, allowed: list[netfilter.Endpoint]) -> str:
    """What the hub puts in a session job's comment: `onsite-session uid=<uid> allow=<host>:<port>,...`."""
    return f"{COMMENT_PREFIX} uid={uid} allow=" + ",".join(f"{e.host}:{e.port}" for e in allowed)


def parse_job_comment(comment: str) -> tuple[int, list[netfilter.Endpoint]] | None:
    """The uid and endpoints of an Onsite job's comment; None for any other job's. Malformed: ValueError."""
    words = comment.split()
    if not words or words[0] != COMMENT_PREFIX:
        return None
    fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    if set(fields) != {"uid", "allow"} or len(words) != 3 or not fields["uid"].isdigit():
        raise ValueError(f"an Onsite job comment is 'onsite-session uid=<n> allow=<host>:<port>,...', not {comment!r}")
    endpoints = []
    for item in filter(None, fields["allow"].split(",")):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad endpoint {item!r} in job comment {comment!r}")
        endpoints.append(netfilter.Endpoint(host.strip("[]"), int(port)))
    return int(fields["uid"]), endpoints


def onsite_job(environ: dict[str, str]) -> tuple[int, list[netfilter.Endpoint]] | None:
    """The session of the job Slurm describes in `environ`, or None when it is not a session job the hub submitted."""
    if environ.get("SLURM_JOB_UID") != "0":
        return None
    return parse_job_comment(environ.get("SLURM_JOB_COMMENT", ""))


def prolog(environ: dict[str, str]) -> None:
    job = onsite_job(environ)
    if job is not None:
        uid, allowed = job
        netfilter.apply_session_rules(uid, allowed)


def epilog(environ: dict[str, str]) -> None:
    job = onsite_job(environ)
    if job is not None:
        uid, _ = job
        isolation.kill_account_processes(uid)
        netfilter.remove_session_rules(uid)


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
    if argv[:1] == ["prolog"]:
        prolog(dict(os.environ))
    elif argv[:1] == ["epilog"]:
        epilog(dict(os.environ))
    elif argv[:1] == ["session"] and len(argv) >= 3:
        become_session(json.loads(argv[1]))
        # The server's environment is the one a local server gets: Slurm's own variables stay behind.
        os.execve(argv[2], argv[2:], {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")})
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
