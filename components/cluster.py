"""The whole cluster, constructed in deployment order."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from components.addons import Addons, SmokeTarget
from components.apiserver import ApiserverFiles
from components.base import Component
from components.etcd import EtcdSnapshots
from components.hypervisor import ControlPlaneVm, HypervisorHost
from components.kubeadm import KubeadmCluster
from components.loadbalancer import LoadBalancerPair
from components.node import Node
from components.step import Host, connect
from components.upgrade import Upgrades
from topology import Cluster
from topology.bootstrap import Bootstrap


class HakubeCluster(Component):
    """Root component: hosts first, then the API endpoint, then kubeadm, then add-ons."""

    def __init__(self, cluster: Cluster, ssh_private_key: pulumi.Output[str], roles: Bootstrap | None = None,
                 previous_version: str | None = None, etcd_backup_key: pulumi.Output[str] | None = None,
                 registry_passwords: Mapping[str, pulumi.Output[str]] | None = None,
                 encryption_keys: Mapping[str, pulumi.Output[str]] | None = None) -> None:
        props = {
            "name": cluster.name, "profile": cluster.profile, "kubernetesVersion": cluster.kubernetes_version,
            "controlPlaneCount": len(cluster.control_plane.nodes),
            "schedulableControlPlane": cluster.control_plane.schedulable,
        }
        super().__init__("Cluster", cluster.name, props)
        self.cluster = cluster
        self._key = ssh_private_key
        child = pulumi.ResourceOptions(parent=self)

        self.hypervisors = {
            hv.name: HypervisorHost(cluster, hv, self.host(hv.name, str(hv.address)), opts=child)
            for hv in cluster.hypervisors
        }
        self.nodes: dict[str, Node] = {}
        passwords = registry_passwords or {}
        for node in cluster.control_plane.nodes:
            host = self.host(node.name, str(node.address))
            if node.hypervisor is not None:
                self.nodes[node.name] = ControlPlaneVm(cluster, node, self.hypervisors[node.hypervisor], host,
                                                       registry_passwords=passwords).node
            else:
                self.nodes[node.name] = Node(node.name, cluster, host, "control-plane", opts=child,
                                             registry_passwords=passwords)
        for worker in cluster.workers:
            self.nodes[worker.name] = Node(worker.name, cluster, self.host(worker.name, str(worker.address)),
                                           "worker", opts=child, registry_passwords=passwords)

        lb_hosts = {
            n.name: self.nodes[n.name].host if n.name in self.nodes else self.host(n.name, str(cluster.lb_address(n)))
            for n in cluster.load_balancer.nodes
        }
        self.load_balancer = LoadBalancerPair(
            cluster, lb_hosts,
            after={name: [node.prerequisites] for name, node in self.nodes.items()},
            opts=child,
        )
        # The apiserver's encryption configuration and audit policy, in place before kubeadm starts it.
        self.apiserver_files = ApiserverFiles(cluster, self.nodes, encryption_keys or {}, opts=child)
        self.kubeadm = KubeadmCluster(cluster, self.nodes, lb_ready=self.load_balancer.ready, roles=roles,
                                      before=self.apiserver_files.placed)
        self.apiserver_files.rewrite_secrets(self.kubeadm.last_control_plane)
        self.kubeconfig = self.kubeadm.kubeconfig
        first = cluster.first_control_plane
        targets = [SmokeTarget(name, node.host.address, self.kubeadm.joins.get(name), node)
                   for name, node in self.nodes.items()]
        # None when addons.enabled is false: no Kubernetes provider, nothing in the cluster.
        self.addons = Addons(cluster, self.kubeconfig, [self.kubeadm.last_control_plane],
                             self.nodes[first.name].host, targets, child) if cluster.addons.enabled else None
        # etcd snapshots on every control-plane node once its member exists (components/etcd.py).
        self.etcd_snapshots = EtcdSnapshots(cluster, self.nodes, self.kubeadm.members, etcd_backup_key, opts=child)
        # Version changes and certificate renewal, each node once it has joined (components/upgrade.py).
        self.upgrades = Upgrades(cluster, self.nodes, lb_hosts, joined=self.kubeadm.members,
                                 previous_version=previous_version, snapshots=self.etcd_snapshots)
        self.finish()

    def host(self, name: str, address: str) -> Host:
        return connect(name, address, self.cluster.ssh.user, self.cluster.ssh.port, self._key)
