"""A Kubernetes node reached over SSH: its prerequisites (and, later, its kubelet and join)."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from components.base import Component
from components.remote import Host, run_script
from topology import Cluster


class Node(Component):
    """One Kubernetes node: a bare-metal host, or a control-plane VM once it is up."""

    def __init__(
        self, name: str, cluster: Cluster, host: Host, role: str, *, opts: pulumi.ResourceOptions,
        after: Sequence[pulumi.Resource] = (),
    ) -> None:
        super().__init__("Node", name, {"host": host.name, "address": host.address, "role": role}, opts)
        self.host = host
        env = {"KUBERNETES_VERSION": cluster.kubernetes_version}
        if role == "control-plane":
            env["ETCD_CLIENT"] = "true"
        if cluster.packages.kubernetes_apt_source:
            env["KUBERNETES_APT_SOURCE"] = cluster.packages.kubernetes_apt_source
        self.prerequisites = run_script(
            f"{name}-prereqs", host, "node-prereqs.sh", env=env,
            # The packages a node starts with; later version changes are the upgrade steps' job,
            # which take one node at a time (re-running this everywhere at once would not).
            ignore_changes=["create"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )
        self.finish()
