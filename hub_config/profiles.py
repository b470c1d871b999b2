"""Spawner profiles for hosts with systemd and for Kubernetes, from the same policy inputs.

The local spawner (`hub_config.spawner.OnsiteSpawner`) is the default. On a host
with systemd, `jupyterhub-systemdspawner` runs each session in a transient unit
whose cgroup limits memory and CPU for the whole session and whose
`IPAddressDeny`/`IPAddressAllow` keep it on localhost. On Kubernetes,
`jupyterhub-kubespawner` runs a pod that mounts only the granted datasets
(read-only), as a non-root uid with the datasets' groups, with resource limits
and a NetworkPolicy denying all egress but the hub.

`SessionPlan` is what the policy decides for one session (the same facts the
local spawner uses); `systemd_config` and `kube_config` render it as the
traits of those spawners, and `egress_network_policy` as a NetworkPolicy
manifest. They are validated in `tests/unit/hub_config/test_isolation_profiles.py`
by building the real spawner classes with them.
Install with the optional extra: jupyterhub-systemdspawner, jupyterhub-kubespawner.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hub_config.isolation import SessionLimits

DATASET_MOUNT_ROOT = "/srv/onsite/datasets"


@dataclass(frozen=True)
class GrantedDataset:
    id: str
    path: str
    """Path of the dataset file on the host (systemd) or in the dataset volume (Kubernetes)."""
    gid: int
    claim: str = ""
    """Kubernetes: the PersistentVolumeClaim holding the dataset file (read-only)."""


@dataclass(frozen=True)
class SessionPlan:
    """One session as the policy decides it: who, which datasets, which limits, where the hub is."""

    username: str
    uid: int
    gid: int
    home: str
    datasets: tuple[GrantedDataset, ...]
    limits: SessionLimits = field(default_factory=SessionLimits)
    cpu_cores: float = 1.0
    hub_port: int = 8081
    review_port: int = 0
    """The review service's port when it runs beside the hub (the outbox forwarder posts there); 0: none."""
    hub_pod_labels: dict[str, str] = field(default_factory=lambda: {"component": "hub"})

    @property
    def supplementary_gids(self) -> list[int]:
        return sorted({d.gid for d in self.datasets})


def systemd_config(plan: SessionPlan, *, state_dir: str) -> dict:
    """Traits of `systemdspawner.SystemdSpawner` for the session."""
    return {
        "mem_limit": f"{plan.limits.memory_mb}M",
        "cpu_limit": plan.cpu_cores,
        "isolate_tmp": True,
        "isolate_devices": True,
        "disable_user_sudo": True,
        "dynamic_users": False,
        "user_workingdir": plan.home,
        "readonly_paths": ["/", *[d.path for d in plan.datasets]],
        "readwrite_paths": [plan.home],
        "unit_extra_properties": {
            "IPAddressDeny": "any",
            "IPAddressAllow": "localhost",
            "TasksMax": str(plan.limits.processes),
            "LimitFSIZE": str(plan.limits.file_size_mb * 1024 * 1024),
            "LimitCORE": "0",
            "Nice": str(plan.limits.nice),
            "SupplementaryGroups": " ".join(str(g) for g in plan.supplementary_gids),
            # The policy store, the hub's state and every other home stay invisible.
            "InaccessiblePaths": f"-{state_dir}/run -{state_dir}/egress -{state_dir}/onsite.sqlite",
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "PrivateUsers": "no",
        },
    }


def kube_config(plan: SessionPlan, *, image: str, home_claim: str) -> dict:
    """Traits of `kubespawner.KubeSpawner` for the session: only granted datasets mounted read-only."""
    volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": home_claim}}]
    mounts = [{"name": "home", "mountPath": plan.home}]
    for dataset in plan.datasets:
        name = "ds-" + dataset.id.replace("_", "-")
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": dataset.claim or name, "readOnly": True}})
        mounts.append({"name": name, "mountPath": f"{DATASET_MOUNT_ROOT}/{dataset.id}", "readOnly": True})
    memory = f"{plan.limits.memory_mb}M"
    return {
        "image": image,
        "uid": plan.uid,
        "gid": plan.gid,
        "fs_gid": plan.gid,
        "supplemental_gids": plan.supplementary_gids,
        "allow_privilege_escalation": False,
        "privileged": False,
        "container_security_context": {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "automount_service_account_token": False,
        "volumes": volumes,
        "volume_mounts": mounts,
        "mem_limit": memory,
        "mem_guarantee": memory,
        "cpu_limit": plan.cpu_cores,
        "cpu_guarantee": plan.cpu_cores,
        "extra_labels": {"onsite/session": "true"},
    }


def egress_network_policy(plan: SessionPlan, *, namespace: str) -> dict:
    """A NetworkPolicy for session pods: ingress only from the hub and proxy, egress only to the hub's API
    (and review service) ports — no DNS, no other pod, nothing outside the cluster."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "onsite-session-egress", "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": {"onsite/session": "true"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"component": c}}} for c in ("hub", "proxy")]}],
            "egress": [{
                "to": [{"podSelector": {"matchLabels": plan.hub_pod_labels}}],
                "ports": [{"protocol": "TCP", "port": p} for p in (plan.hub_port, plan.review_port) if p],
            }],
        },
    }
