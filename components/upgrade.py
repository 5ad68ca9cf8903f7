"""Version upgrades and certificate checks, one node at a time (configs/upgrade.py has the order).

Every step is a resource parented to the node it concerns, replaced only when the target version
changes (its trigger), and idempotent: on a node already at the version it changes nothing, which
is what the first deployment finds. Cordon, drain and uncordon run on the first control-plane node,
the one node with the admin kubeconfig, each as its own step over that node's connection, so the
admin credentials never travel to another host; the package and kubeadm work runs on the node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pulumi

from components.etcd import EtcdSnapshots
from components.node import Node
from components.step import Host, Step, run
from configs import containerd, upgrade
from configs.remote import Script
from topology import Cluster


def _parsed(stdout: str) -> Any:
    """A step's JSON report, or its raw text when it is not JSON."""
    try:
        return json.loads(stdout)
    except ValueError:
        return stdout


class Upgrades:
    """Wires the upgrade and certificate steps onto the nodes; holds no resource of its own."""

    def __init__(self, cluster: Cluster, nodes: Mapping[str, Node], lb_hosts: Mapping[str, Host], *,
                 joined: Mapping[str, pulumi.Resource], previous_version: str | None = None,
                 snapshots: EtcdSnapshots | None = None) -> None:
        self.cluster = cluster
        self.snapshots = snapshots
        self.nodes = nodes
        self.lb_hosts = lb_hosts
        self.admin_host = nodes[cluster.first_control_plane.name].host
        self.joined = joined
        self.versions: dict[str, pulumi.Output[Any]] = {}
        version = [cluster.kubernetes_version]

        # Control-plane nodes strictly one at a time, the first (upgrade apply) first: the API stays
        # served by the others, and etcd loses at most one member at a time.
        previous: list[pulumi.Resource] = []
        for i, spec in enumerate(cluster.control_plane.nodes):
            previous = self._control_plane(spec.name, "first" if i == 0 else "control-plane", previous, version)
        last_control_plane = previous

        # Workers after every control-plane node (kubelets may not be newer than the apiservers), in
        # `workerParallelism` lanes: worker i waits for worker i - parallelism. Only while the version
        # changes: otherwise every step finds nothing to do, and a chain of no-op steps would make a
        # first deployment (or adding a worker) take one SSH round trip per worker in series.
        # Dropping or adding these dependencies rewires the steps without replacing them.
        rolling = previous_version not in (None, cluster.kubernetes_version)
        done: dict[str, pulumi.Resource] = {}
        parallelism = cluster.upgrade.worker_parallelism if rolling else max(len(cluster.workers), 1)
        waits = upgrade.worker_waits([w.name for w in cluster.workers], parallelism)
        for worker in cluster.workers:
            wait = waits[worker.name]
            before = [done[wait]] if wait else last_control_plane
            done[worker.name] = self._node_steps(worker.name, "worker", before, version)

        # Certificate checks after the control-plane upgrades (kubeadm upgrade renews them too),
        # one node at a time: a renewal restarts that node's static pods.
        self.certificates: dict[str, pulumi.Output[Any]] = {}
        check_trigger = upgrade.check_period(date.today(), cluster.certificates.renew_before_days)
        after = last_control_plane
        for spec in cluster.control_plane.nodes:
            step = run(
                f"{spec.name}-certs", nodes[spec.name].host,
                Step(Script("certs-check.sh", upgrade.certs_env(cluster, spec.name)),
                     triggers=(check_trigger, *version)),
                # After this node exists and the upgrades are through; one renewal (restart) at a time.
                pulumi.ResourceOptions(parent=nodes[spec.name], depends_on=[*after, joined[spec.name]]),
            )
            self.certificates[spec.name] = step.stdout.apply(_parsed)
            after = [step]

    def _control_plane(self, name: str, role: str, before: Sequence[pulumi.Resource],
                       version: list[str]) -> list[pulumi.Resource]:
        """etcd snapshot -> backend out on every LB node -> the node's steps -> backend back; returns the
        restores."""
        # First a snapshot of the node's etcd member: kubeadm upgrade rewrites (and may upgrade) etcd.
        snapshot = self.snapshots.before_upgrade(name, [*before, self.joined[name]], version) if self.snapshots else []
        disabled = [self._backend(name, lb, host, "disable", [*before, self.joined[name], *snapshot], version)
                    for lb, host in self.lb_hosts.items()]
        steps = self._node_steps(name, role, [*disabled, *snapshot], version)
        # Back in service only once the apiserver runs the new version and the node is uncordoned.
        return [self._backend(name, lb, host, "enable", [steps], version) for lb, host in self.lb_hosts.items()]

    def _backend(self, name: str, lb: str, host: Host, action: str, after: Sequence[pulumi.Resource],
                 version: list[str]) -> pulumi.Resource:
        suffix = "drain" if action == "disable" else "restore"
        return run(
            f"{name}-backend-{suffix}-{lb}", host,
            Step(Script("haproxy-backend.sh", upgrade.backend_env(self.cluster, name, action)),
                 triggers=tuple(version)),
            pulumi.ResourceOptions(parent=self.nodes[name], depends_on=list(after)),
        )

    def _node_steps(self, name: str, role: str, before: Sequence[pulumi.Resource],
                    version: list[str]) -> pulumi.Resource:
        """drain (first control-plane node) -> upgrade (the node) -> uncordon; returns the uncordon."""
        node = self.nodes[name]
        drain = run(
            f"{name}-drain", self.admin_host,
            Step(Script("node-drain.sh", upgrade.drain_env(self.cluster, name, "drain")), triggers=tuple(version)),
            # Not before the node has joined (nothing to drain) and its predecessor is done.
            pulumi.ResourceOptions(parent=node, depends_on=[*before, self.joined[name]]),
        )
        step = run(
            f"{name}-upgrade", node.host,
            # The new version's containerd configuration (its sandbox image), installed while drained.
            Step(Script("kubeadm-upgrade.sh", upgrade.node_env(self.cluster, name, role)),
                 payload=containerd.containerd_config(self.cluster), triggers=tuple(version)),
            # Pods are evicted before the kubelet restarts under them.
            pulumi.ResourceOptions(parent=node, depends_on=[drain]),
        )
        self.versions[name] = step.stdout.apply(_parsed)
        return run(
            f"{name}-uncordon", self.admin_host,
            Step(Script("node-drain.sh", upgrade.drain_env(self.cluster, name, "uncordon")), triggers=tuple(version)),
            pulumi.ResourceOptions(parent=node, depends_on=[step]),
        )
