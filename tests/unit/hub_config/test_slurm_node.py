"""The job comment the hub writes and the node's Prolog/Epilog read (hub_config.slurm_node): only a root job's
`onsite-session` comment names a uid to confine; anything else is ignored or refused."""
from __future__ import annotations

import pytest

from hub_config.netfilter import Endpoint
from hub_config.slurm_node import job_comment, onsite_job, parse_job_comment

ALLOWED = [Endpoint("127.0.0.1", 8081), Endpoint("10.1.2.3", 9000)]


def test_the_comment_round_trips():
    comment = job_comment(200001, ALLOWED)
    assert comment == "onsite-session uid=200001 allow=127.0.0.1:8081,10.1.2.3:9000"
    assert parse_job_comment(comment) == (200001, ALLOWED)
    assert parse_job_comment(job_comment(200001, [])) == (200001, [])


def test_only_a_job_the_hub_submitted_as_root_is_acted_on():
    comment = job_comment(200001, ALLOWED)
    assert onsite_job({"SLURM_JOB_UID": "0", "SLURM_JOB_COMMENT": comment}) == (200001, ALLOWED)
    # Another cluster user naming a researcher's uid: neither confined nor killed by the Prolog/Epilog.
    assert onsite_job({"SLURM_JOB_UID": "1000", "SLURM_JOB_COMMENT": comment}) is None
    assert onsite_job({"SLURM_JOB_UID": "0", "SLURM_JOB_COMMENT": "nightly backup"}) is None
    assert onsite_job({"SLURM_JOB_UID": "0"}) is None


@pytest.mark.parametrize("comment", ["onsite-session uid=abc allow=", "onsite-session uid=1", "onsite-session uid=1 allow=x:1 y=2",
                                     "onsite-session uid=1 allow=127.0.0.1:99999", "onsite-session uid=1 allow=:80"])
def test_a_malformed_onsite_comment_is_refused(comment):
    with pytest.raises(ValueError):
        parse_job_comment(comment)
