"""Spawner profiles rendered from one session plan and checked by the real spawner classes."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from hub_config.isolation import SessionLimits
from hub_config.profiles import DATASET_MOUNT_ROOT, GrantedDataset, SessionPlan, egress_network_policy, kube_config, systemd_config

systemdspawner = pytest.importorskip("systemdspawner")
kubespawner = pytest.importorskip("kubespawner")

PLAN = SessionPlan(
    username="tanaka", uid=200001, gid=200001, home="/srv/onsite/workspaces/tanaka",
    datasets=(GrantedDataset("lfs_demo", "/srv/onsite/datasets/lfs_demo.duckdb", 990, claim="onsite-ds-lfs-demo"),),
    limits=SessionLimits(memory_mb=4096, processes=128), cpu_cores=2.0, hub_port=8081, review_port=9090,
)


def test_systemd_profile_is_accepted_by_systemdspawner():
    rendered = systemd_config(PLAN, state_dir="/srv/onsite")
    user = SimpleNamespace(name="tanaka", id=1, url="/user/tanaka/", escaped_name="tanaka")
    spawner = systemdspawner.SystemdSpawner(config=Config({"SystemdSpawner": rendered}), user=user)
    assert spawner.mem_limit == 4096 * 1024 * 1024  # parsed by the spawner's ByteSpecification
    assert spawner.cpu_limit == 2.0
    assert spawner.isolate_tmp and spawner.isolate_devices and spawner.disable_user_sudo
    assert spawner.unit_extra_properties["IPAddressDeny"] == "any"
    assert spawner.unit_extra_properties["IPAddressAllow"] == "localhost"
    assert spawner.unit_extra_properties["SupplementaryGroups"] == "990"
    assert spawner.unit_extra_properties["TasksMax"] == "128"
    assert "/srv/onsite/datasets/lfs_demo.duckdb" in spawner.readonly_paths
    assert spawner.readwrite_paths == [PLAN.home]


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    """A kubeconfig naming a cluster that is never contacted: KubeSpawner loads one when built."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: none\n"
        "clusters: [{name: none, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: none, context: {cluster: none, user: none}}]\nusers: [{name: none, user: {token: x}}]\n"
    )
    from kubernetes_asyncio.config import kube_config as kube_config_module

    monkeypatch.setattr(kube_config_module, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))  # read once at import
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def test_kube_profile_mounts_only_granted_datasets_read_only(kubeconfig):
    rendered = kube_config(PLAN, image="registry.example/onsite:1", home_claim="home-tanaka")

    async def manifest():
        # KubeSpawner builds its (never contacted) API client on the running loop.
        spawner = kubespawner.KubeSpawner(config=Config({"KubeSpawner": rendered}), _mock=True)
        return await spawner.get_pod_manifest()

    pod = asyncio.run(manifest())
    container = pod.spec.containers[0]
    dataset_mounts = [m for m in container.volume_mounts if m.mount_path.startswith(DATASET_MOUNT_ROOT)]
    assert [(m.mount_path, m.read_only) for m in dataset_mounts] == [(f"{DATASET_MOUNT_ROOT}/lfs_demo", True)]
    claims = {v["name"]: v["persistentVolumeClaim"] for v in rendered["volumes"]}
    assert claims["ds-lfs-demo"] == {"claimName": "onsite-ds-lfs-demo", "readOnly": True}
    assert len(pod.spec.volumes) == 2  # the home and the one granted dataset, nothing else
    # KubeSpawner renders the security contexts as plain dicts.
    assert pod.spec.security_context == {"fsGroup": 200001, "supplementalGroups": [990]}
    assert container.security_context["runAsUser"] == 200001 and container.security_context["runAsNonRoot"] is True
    assert container.security_context["allowPrivilegeEscalation"] is False
    assert container.security_context["capabilities"] == {"drop": ["ALL"]}
    assert container.resources.limits == {"memory": 4096 * 1024 * 1024, "cpu": 2.0}
    assert pod.spec.automount_service_account_token is False


def test_network_policy_denies_egress_but_the_hub():
    policy = egress_network_policy(PLAN, namespace="onsite")
    spec = policy["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    [rule] = spec["egress"]
    assert rule["to"] == [{"podSelector": {"matchLabels": {"component": "hub"}}}]
    assert sorted(p["port"] for p in rule["ports"]) == [8081, 9090]
    assert spec["podSelector"]["matchLabels"] == kube_config(PLAN, image="x", home_claim="h")["extra_labels"]
