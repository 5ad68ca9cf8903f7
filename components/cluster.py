"""The whole cluster, constructed in deployment order."""

from __future__ import annotations

import pulumi

from components.node import Node
from components.remote import Host, connect
from topology import Cluster, Worker


class HakubeCluster(pulumi.ComponentResource):
    """Root component: one child component per host, wired in the order kubeadm needs."""

    def __init__(self, cluster: Cluster, ssh_private_key: pulumi.Output[str]) -> None:
        super().__init__("hakube:index:Cluster", cluster.name, {"name": cluster.name,
                                                                "kubernetesVersion": cluster.kubernetes_version})
        self.cluster = cluster
        self._key = ssh_private_key
        child = pulumi.ResourceOptions(parent=self)
        self.nodes: dict[str, Node] = {}
        for node in cluster.bare_metal_nodes():
            role = "worker" if isinstance(node, Worker) else "control-plane"
            self.nodes[node.name] = Node(node.name, cluster, self.host(node.name, str(node.address)), role, opts=child)
        self.register_outputs({})

    def host(self, name: str, address: str) -> Host:
        return connect(name, address, self.cluster.ssh.user, self.cluster.ssh.port, self._key)
