"""containerd's configuration on every Kubernetes node, built as data and written as TOML.

containerd 2.x reads config version 3: the CRI plugin is split into `io.containerd.cri.v1.runtime`
(runtimes, here runc with the systemd cgroup driver, which the kubelet's `cgroupDriver: systemd`
must match) and `io.containerd.cri.v1.images` (the pinned sandbox image: kubeadm's pause for the
cluster's minor, topology/versions.py). Keys not written keep containerd's defaults.

configs/scripts/node-prereqs.sh installs it when a node is prepared, and kubeadm-upgrade.sh again
when the node is upgraded (drained), so the sandbox image follows kubernetesVersion.
"""

from __future__ import annotations

from typing import Any

from configs.tomlwriter import dumps
from topology.model import Cluster
from topology.versions import minor_of

CONTAINERD_CONFIG_PATH = "/etc/containerd/config.toml"
CONFIG_VERSION = 3
# containerd's socket, written into its config so that it and the kubelet's endpoint are one fact.
SOCKET_PATH = "/var/run/containerd/containerd.sock"
CRI_SOCKET = f"unix://{SOCKET_PATH}"
PAUSE_IMAGE = "registry.k8s.io/pause"  # kubeadm's default imageRepository
RUNC_RUNTIME_TYPE = "io.containerd.runc.v2"


def sandbox_image(cluster: Cluster) -> str:
    return f"{PAUSE_IMAGE}:{minor_of(cluster.kubernetes_version).pause}"


def config_data(cluster: Cluster) -> dict[str, Any]:
    runc = {"runtime_type": RUNC_RUNTIME_TYPE, "options": {"SystemdCgroup": True}}
    return {
        "version": CONFIG_VERSION,
        "grpc": {"address": SOCKET_PATH},
        "plugins": {
            "io.containerd.cri.v1.images": {"pinned_images": {"sandbox": sandbox_image(cluster)}},
            "io.containerd.cri.v1.runtime": {"containerd": {"default_runtime_name": "runc",
                                                            "runtimes": {"runc": runc}}},
        },
    }


def containerd_config(cluster: Cluster) -> str:
    """/etc/containerd/config.toml of every node of `cluster`."""
    return dumps(config_data(cluster))
