"""The `slurm` role (ansible/roles/slurm) rendered by Ansible itself on this machine, locally into a temporary directory (nothing installed, no daemon started: onsite_slurm_start false and the package and
key tasks left out by tags): slurm.conf names Onsite's Prolog and Epilog, which run hub_config.slurm_node."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from functional.hubtools import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

PLAY = """- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Render the role's configuration
      ansible.builtin.include_role:
        name: slurm
        tasks_from: main
"""


def test_the_role_renders_slurm_conf_and_the_onsite_hooks(tmp_path):
    host = {"localhost": {"ansible_python_interpreter": sys.executable}}
    inventory = {"onsite_slurm": {"children": {"onsite_slurm_controller": {"hosts": host}, "onsite_slurm_nodes": {"hosts": host}}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    (tmp_path / "play.yml").write_text(PLAY)
    extra = {"onsite_prefix": str(tmp_path / "root"), "onsite_slurm_start": False, "onsite_slurm_munge_key_b64": "a2V5",
             "onsite_slurm_nodes": [{"name": "node1", "cpus": 4, "memory_mb": 16000}], "onsite_slurm_python": sys.executable}
    result = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(tmp_path / "inventory.json"), str(tmp_path / "play.yml"),
                             "--extra-vars", json.dumps(extra), "--skip-tags", "packages,munge_key"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "ANSIBLE_ROLES_PATH": str(ROOT / "ansible" / "roles")})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    conf_dir = tmp_path / "root" / "etc" / "slurm"
    conf = (conf_dir / "slurm.conf").read_text()
    assert f"Prolog={conf_dir}/onsite-prolog" in conf and f"Epilog={conf_dir}/onsite-epilog" in conf
    assert "NodeName=node1 CPUs=4 RealMemory=16000" in conf and "TaskPlugin=task/cgroup" in conf
    assert "ConstrainRAMSpace=yes" in (conf_dir / "cgroup.conf").read_text()
    for hook in ("prolog", "epilog"):
        script = conf_dir / f"onsite-{hook}"
        assert os.access(script, os.X_OK) and f"-m hub_config.slurm_node {hook}" in script.read_text()
        # Run for another user's job it does nothing and succeeds (Slurm would drain the node on a failure).
        ran = subprocess.run([str(script)], env={"SLURM_JOB_UID": "1000", "SLURM_JOB_COMMENT": "onsite-session uid=1 allow="},
                             capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
