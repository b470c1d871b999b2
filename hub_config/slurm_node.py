"""What runs as root on a Slurm compute node for an Onsite session (`hub_config.slurm`), besides the job itself
(`hub_config.slurm_job`).

    python -m hub_config.slurm_node prolog     the node's Slurm Prolog: the session uid's nftables table
    python -m hub_config.slurm_node epilog     the node's Slurm Epilog: the uid's processes killed, its table dropped

Prolog and Epilog act only on jobs submitted by root (the hub) whose comment
starts with `onsite-session`: another cluster user's job cannot name a
researcher's uid to confine or kill. Slurm passes the job's id, uid and comment
in SLURM_JOB_ID, SLURM_JOB_UID and SLURM_JOB_COMMENT. A Prolog that fails
stops the job from starting (Slurm drains the node: a node that cannot confine
a session takes none). Slurm runs them for every job, before it starts and after
it ends: this module imports only what they need (no dataset or DuckDB code).
"""
from __future__ import annotations

import os
import sys

from hub_config import isolation, netfilter

COMMENT_PREFIX = "onsite-session"
"""The first word of an Onsite job's comment, which the Prolog and Epilog act on."""


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


def main(argv: list[str]) -> int:
    if argv[:1] == ["prolog"]:
        prolog(dict(os.environ))
    elif argv[:1] == ["epilog"]:
        epilog(dict(os.environ))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
