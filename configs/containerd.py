"""containerd's configuration on every Kubernetes node, built as data and written as TOML.

containerd 2.x reads config version 3: the CRI plugin is split into `io.containerd.cri.v1.runtime`
(runtimes, here runc with the systemd cgroup driver, which the kubelet's `cgroupDriver: systemd`
must match) and `io.containerd.cri.v1.images` (the pinned sandbox image: kubeadm's pause for the
cluster's minor, topology/versions.py, under images.repository when set; and the registry hosts
directory, configs/registries.py). `imports` takes /etc/containerd/conf.d/*.toml, where the registry
logins go (a file of their own, so this one holds no secret). Keys not written keep containerd's defaults.

configs/scripts/node-prereqs.sh installs it when a node is prepared, and kubeadm-upgrade.sh again
when the node is upgraded (drained), so the sandbox image follows kubernetesVersion.
"""

from __future__ import annotations

from typing import Any

from configs import registries
from configs.images import pause_image
from configs.tomlwriter import dumps
from topology.model import Cluster

CONTAINERD_CONFIG_PATH = "/etc/containerd/config.toml"
CONFIG_VERSION = registries.CONFIG_VERSION
# containerd's socket, written into its config so that it and the kubelet's endpoint are one fact.
SOCKET_PATH = "/var/run/containerd/containerd.sock"
CRI_SOCKET = f"unix://{SOCKET_PATH}"
RUNC_RUNTIME_TYPE = "io.containerd.runc.v2"


def config_data(cluster: Cluster) -> dict[str, Any]:
    runc = {"runtime_type": RUNC_RUNTIME_TYPE, "options": {"SystemdCgroup": True}}
    # Written, though containerd 2.x defaults to /etc/containerd/certs.d:/etc/docker/certs.d: only ours counts.
    images = {"pinned_images": {"sandbox": pause_image(cluster)}, "registry": {"config_path": registries.CERTS_DIR}}
    return {
        "version": CONFIG_VERSION,
        "imports": [registries.IMPORTS],
        "grpc": {"address": SOCKET_PATH},
        "plugins": {
            registries.CRI_IMAGES_PLUGIN: images,
            "io.containerd.cri.v1.runtime": {"containerd": {"default_runtime_name": "runc",
                                                            "runtimes": {"runc": runc}}},
        },
    }


def containerd_config(cluster: Cluster) -> str:
    """/etc/containerd/config.toml of every node of `cluster`."""
    return dumps(config_data(cluster))


def prereqs_env(cluster: Cluster, role: str) -> dict[str, str]:
    """node-prereqs.sh's environment on a node of `role` (control-plane or worker)."""
    env = {"KUBERNETES_VERSION": cluster.kubernetes_version}
    if role == "control-plane":
        env["ETCD_CLIENT"] = "true"  # etcdctl for the snapshot and membership scripts
    if cluster.packages.kubernetes_apt_source:
        env["KUBERNETES_APT_SOURCE"] = cluster.packages.kubernetes_apt_source
    return env
