"""A Kubernetes node reached over SSH: its prerequisites (and, later, its kubelet and join)."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.base import Component
from components.remote import Host, run_script
from configs import containerd
from topology import Cluster


class Node(Component):
    """One Kubernetes node: a bare-metal host, or a control-plane VM once it is up."""

    def __init__(
        self, name: str, cluster: Cluster, host: Host, role: str, *, opts: pulumi.ResourceOptions,
        after: Sequence[pulumi.Resource] = (),
    ) -> None:
        runtime_config = containerd.containerd_config(cluster)
        # The files node-prereqs.sh places, as FileSet lists them: the dry run writes them into hosts/.
        files = [{"path": containerd.CONTAINERD_CONFIG_PATH, "content": runtime_config, "mode": "0644"}]
        super().__init__("Node", name, {"host": host.name, "address": host.address, "role": role, "files": files},
                         opts)
        self.host = host
        env = {"KUBERNETES_VERSION": cluster.kubernetes_version}
        if role == "control-plane":
            env["ETCD_CLIENT"] = "true"
        if cluster.packages.kubernetes_apt_source:
            env["KUBERNETES_APT_SOURCE"] = cluster.packages.kubernetes_apt_source
        self.prerequisites = run_script(
            f"{name}-prereqs", host, "node-prereqs.sh", env=env, payload=runtime_config,
            # The packages and containerd configuration a node starts with; later version changes are
            # the upgrade steps' job (kubeadm-upgrade.sh installs the containerd configuration of the new
            # version too), which take one node at a time: re-running this everywhere at once would not,
            # and would run the old `create` (old version) against upgraded packages.
            ignore_changes=["create", "stdin"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )
        self.finish()
