"""kubeadm over SSH: files placed, `kubeadm init`, control-plane joins one at a time, workers in
parallel, each join with fresh credentials, and the admin kubeconfig as a secret.

Every step is a resource parented to the node it concerns, so adding a node adds only that node's
resources and removing one runs only its delete steps, in reverse dependency order:
membership (drain, delete the Node, remove its etcd member; on the first control-plane node)
-> join (kubeadm reset on the node itself).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence

import pulumi

from components.files import FileDrop, FileSet
from components.node import Node
from components.step import Step, run
from configs import kubeadm
from configs.remote import ConfigDrop, Script
from topology import Cluster, ControlPlaneNode, Worker
from topology.bootstrap import Bootstrap

KubeNode = ControlPlaneNode | Worker


def place_files(cluster: Cluster, spec: KubeNode, node: Node, *, runs_init: bool) -> list[pulumi.Resource]:
    """The node's kubeadm config, patches and kubelet record; returns what kubeadm must wait for."""
    files = {**kubeadm.node_files(cluster, spec, runs_init),
             kubeadm.KUBELET_RECORD_PATH: kubeadm.kubelet_config(cluster, spec)}
    # Placed once the host is prepared (directories, kubeadm installed).
    after = pulumi.ResourceOptions(parent=node, depends_on=[node.prerequisites])
    placed: list[pulumi.Resource] = []
    init_config = files.pop(kubeadm.INIT_CONFIG_PATH, None)
    if init_config is not None:
        # init.yaml is read by `kubeadm init` only (afterwards the cluster keeps its
        # ClusterConfiguration in the kubeadm-config ConfigMap): it stays as init read it, so adding
        # a control-plane node (certSANs) does not touch the init node.
        placed.append(FileDrop(f"{spec.name}-kubeadm-init-config", node.host,
                               ConfigDrop(kubeadm.INIT_CONFIG_PATH, mode="0600"), init_config, write_once=True,
                               opts=after).command)
    placed.append(FileSet(f"{spec.name}-kubeadm-files", node.host, files, then=kubeadm.APPLY_KUBELET_RECORD,
                          opts=after).command)
    return placed


# Steps whose delete resets or removes a node must never be *replaced* (a replacement runs the
# old one's delete): a changed script changes `create`, which runs it again as an update instead.
KEEP = ("triggers",)


class KubeadmCluster:
    """Wires the kubeadm steps onto the nodes; holds no resource of its own.

    `roles` (topology/bootstrap.py) name the node that ran `kubeadm init` (None once it was removed)
    and the admin node, controlPlane.nodes[0], where credentials, membership checks and removals
    and the admin kubeconfig run. Every other control-plane node joins.
    """

    def __init__(self, cluster: Cluster, nodes: Mapping[str, Node], *, lb_ready: Sequence[pulumi.Resource],
                 roles: Bootstrap | None = None, before: Mapping[str, pulumi.Resource] | None = None) -> None:
        """`before`: node -> a step its init or join waits for besides its kubeadm files (the apiserver's
        own files, components/apiserver.py)."""
        self.cluster = cluster
        admin = cluster.first_control_plane.name
        roles = roles or Bootstrap(init_node=admin, admin_node=admin)
        self.first_host = nodes[roles.admin_node].host
        files = {spec.name: [*place_files(cluster, spec, nodes[spec.name], runs_init=spec.name == roles.init_node),
                             *([before[spec.name]] if before and spec.name in before else [])]
                 for spec in self._specs()}
        # The step after which each node counts as joined: init, or the node's membership check.
        self.members: dict[str, pulumi.Resource] = {}
        self.joins: dict[str, pulumi.Resource] = {}
        self._first_member: pulumi.Resource | None = None

        self.init: pulumi.Resource | None = None
        if roles.init_node is not None:
            init_node = nodes[roles.init_node]
            self.init = run(
                "kubeadm-init", init_node.host,
                Step(Script("kubeadm-init.sh"), delete=(Script("node-reset.sh"),), ignore_changes=KEEP),
                # The VIP must answer before init: kubeadm waits on controlPlaneEndpoint.
                pulumi.ResourceOptions(parent=init_node, depends_on=[*files[roles.init_node], *lb_ready]),
            )
            joined: pulumi.Resource = self.init
            if roles.init_node != roles.admin_node:
                # Promoted: the init node is removed like any member, from the admin node.
                joined = self._membership(roles.init_node, init_node, self.init, control_plane=True)
            self.members[roles.init_node] = joined

        # Control-plane joins one at a time: etcd grows by one member, and is healthy, before the next.
        previous: pulumi.Resource | None = self.init
        for spec in cluster.control_plane.nodes:
            if spec.name != roles.init_node:
                previous = self._join(spec, nodes[spec.name], files[spec.name], after=previous, control_plane=True)
        if previous is None:  # topology/rules.py refuses such a stack first
            raise ValueError(f"{cluster.name}: no control-plane node to initialise or join")
        self.last_control_plane = previous
        # Workers in parallel: each waits only for init (which waited for the LB), or once the init
        # node is gone for the first control-plane join, and for its own files.
        anchor = self.init or self._first_member or previous
        for worker in cluster.workers:
            self._join(worker, nodes[worker.name], files[worker.name], after=anchor, control_plane=False)

        kubeconfig_cmd = run(
            "admin-kubeconfig", self.first_host, Step(Script("admin-kubeconfig.sh"), secret_stdout=True),
            pulumi.ResourceOptions(parent=nodes[roles.admin_node],
                                   depends_on=[self.init or self.joins[roles.admin_node]]),
        )
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(kubeconfig_cmd.stdout)

    def _specs(self) -> list[KubeNode]:
        return [*self.cluster.control_plane.nodes, *self.cluster.workers]

    def _membership(self, name: str, node: Node, join: pulumi.Resource, *, control_plane: bool) -> pulumi.Resource:
        """Waits for the node's registration; its delete takes the node out (drain, delete, etcd member)."""
        env = kubeadm.membership_env(name)
        removal = (Script("node-remove.sh", env), *([Script("etcd-member-remove.sh", env)] if control_plane else []))
        return run(
            f"{name}-membership", self.first_host,
            Step(Script("node-registered.sh", env), delete=removal, ignore_changes=KEEP),
            # Depends on the join so that on removal it goes first: drain and delete before reset.
            pulumi.ResourceOptions(parent=node, depends_on=[join]),
        )

    def _join(self, spec: KubeNode, node: Node, files: list[pulumi.Resource], *, after: pulumi.Resource | None,
              control_plane: bool) -> pulumi.Resource:
        credentials = run(
            f"{spec.name}-credentials", self.first_host,
            Step(Script("kubeadm-token.sh", kubeadm.token_env(spec.name, control_plane)), secret_stdout=True),
            # Made right before this join: tokens live 30 minutes, uploaded certificates two hours.
            pulumi.ResourceOptions(parent=node, depends_on=[after] if after else []),
        )
        stdout: pulumi.Output[str] = pulumi.Output.secret(credentials.stdout)
        env = stdout.apply(functools.partial(kubeadm.join_credentials, control_plane=control_plane))
        names = ["JOIN_TOKEN", "CA_CERT_HASH", *(["CERTIFICATE_KEY"] if control_plane else [])]
        join_env = kubeadm.join_env(control_plane)
        join = run(
            f"{spec.name}-join", node.host,
            Step(Script("kubeadm-join.sh", join_env),
                 secrets={name: env.apply(operator.itemgetter(name)) for name in names},
                 delete=(Script("node-reset.sh", join_env),), ignore_changes=KEEP),
            pulumi.ResourceOptions(parent=node, depends_on=[credentials, *files]),
        )
        membership = self._membership(spec.name, node, join, control_plane=control_plane)
        self.joins[spec.name] = join
        self._first_member = self._first_member or membership
        self.members[spec.name] = membership
        return membership
