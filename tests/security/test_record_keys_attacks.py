"""The cell key method's record keys are out of a session's reach (attack: read them as the session's account).

The state directory is laid out by the hub's own `isolation.secure_state` and the dataset file secured by
`isolation.secure_dataset_file`, as the spawner does; then a process running as a session would — its own uid,
the dataset's group as its only supplementary group — tries to read the dataset file (it must) and the record keys
(it must not), by path and by listing. Needs root (to switch accounts); the uid and gid are numbers no account
holds, so nothing is created on the host.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from dataplane import record_keys
from dataplane.catalogue import DatasetMetadata, ingest
from hub_config import isolation
from onsite_base.settings import Settings

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching to a session's account needs root")

SESSION_UID = 299_977  # no account holds these: the attack runs as a bare uid, as a session's account is one
DATASET_GID = 299_978
PROBE = """
import os, sys
results = []
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as f:
                f.read(16)
        results.append("read")
    except PermissionError:
        results.append("refused")
    except FileNotFoundError:
        results.append("missing")
print(" ".join(results))
"""


@pytest.fixture
def state():
    root = Path(tempfile.mkdtemp(prefix="onsite-rk-"))
    os.chmod(root, 0o711)
    try:
        home = root / "home"
        source = root / "survey.csv"
        with open(source, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["region", "income"])
            out.writerows([["A", 10], ["B", 20], ["A", 30]])
        metadata = DatasetMetadata.from_dict({"id": "survey", "title": {"ja": "調査", "en": "Survey"}, "variables": [
            {"name": "region", "role": "key", "label": {"ja": "地域", "en": "Region"}},
            {"name": "income", "role": "sensitive", "label": {"ja": "所得", "en": "Income"}}]})
        settings = Settings(home=home)
        info = ingest(source, metadata, "survey", settings.datasets_dir, progress=False)
        isolation.secure_state(settings)
        isolation.secure_dataset_file(info.path, DATASET_GID)
        yield settings, info.path
    finally:
        shutil.rmtree(root, ignore_errors=True)


def as_session(*paths: Path) -> list[str]:
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    done = subprocess.run([python, "-c", PROBE, *map(str, paths)], user=SESSION_UID, group=DATASET_GID,
                          extra_groups=[DATASET_GID], capture_output=True, text=True, timeout=30, cwd="/")
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_session_reads_its_dataset_but_never_the_record_keys(state) -> None:
    settings, dataset = state
    key_file = record_keys.key_file(settings.datasets_dir, "survey")
    assert key_file.is_file()
    assert as_session(dataset) == ["read"]  # the control: the group does read the dataset file
    assert as_session(key_file, key_file.parent, settings.runtime_dir) == ["refused", "refused", "refused"]


def test_the_keys_stay_private_even_if_run_is_opened_up(state) -> None:
    settings, _ = state
    os.chmod(settings.runtime_dir, 0o755)  # an operator's mistake on run/: the key directory still holds
    key_file = record_keys.key_file(settings.datasets_dir, "survey")
    assert as_session(key_file, key_file.parent) == ["refused", "refused"]
