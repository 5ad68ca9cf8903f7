"""kubeadm over SSH: files placed, `kubeadm init`, control-plane joins one at a time, workers in
parallel, each join with fresh credentials, and the admin kubeconfig as a secret.

Every step is a resource parented to the node it concerns, so adding a node adds only that node's
resources and removing one runs only its delete steps, in reverse dependency order:
membership (drain, delete the Node, remove its etcd member; on the first control-plane node)
-> join (kubeadm reset on the node itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.node import Node
from components.remote import FileDrop, run_script
from configs import kubeadm
from topology import Cluster, ControlPlaneNode, Worker

KubeNode = ControlPlaneNode | Worker
# hakube's record of the node's kubelet configuration; kubelet-cpu-manager.sh applies its CPU
# manager fields to the file kubeadm owns (/var/lib/kubelet/config.yaml).
KUBELET_RECORD_PATH = "/var/lib/kubelet/hakube-config.yaml"


def _drop_name(node: str, path: str) -> str:
    """/etc/kubernetes/kubeadm/join.yaml -> cp2-kubeadm-config; .../patches/etcd+strategic.yaml -> cp2-patch-etcd."""
    if path.startswith(kubeadm.KUBEADM_DIR):
        return f"{node}-kubeadm-config"
    if path == KUBELET_RECORD_PATH:
        return f"{node}-kubelet-config"
    return f"{node}-patch-{path.rsplit('/', 1)[-1].split('+', 1)[0]}"


def place_files(cluster: Cluster, spec: KubeNode, node: Node) -> list[pulumi.Resource]:
    """The node's kubeadm config and patches; returns what kubeadm must wait for."""
    files = {**kubeadm.node_files(cluster, spec), KUBELET_RECORD_PATH: kubeadm.kubelet_config(cluster, spec)}
    drops = [
        FileDrop(_drop_name(spec.name, path), node.host, path, content, mode="0600",
                 # Placed once the host is prepared (directories, kubeadm installed).
                 opts=pulumi.ResourceOptions(parent=node, depends_on=[node.prerequisites]))
        for path, content in files.items()
    ]
    return [drop.command for drop in drops]


class KubeadmCluster:
    """Wires the kubeadm steps onto the nodes; holds no resource of its own."""

    def __init__(self, cluster: Cluster, nodes: Mapping[str, Node], *, lb_ready: Sequence[pulumi.Resource]) -> None:
        self.cluster = cluster
        first_spec = cluster.first_control_plane
        first = nodes[first_spec.name]
        self.first_host = first.host
        files = {spec.name: place_files(cluster, spec, nodes[spec.name]) for spec in self._specs()}

        self.init = run_script(
            "kubeadm-init", first.host, "kubeadm-init.sh",
            delete_scripts=["node-reset.sh"],
            # The VIP must answer before init: kubeadm waits on controlPlaneEndpoint.
            opts=pulumi.ResourceOptions(parent=first, depends_on=[*files[first_spec.name], *lb_ready]),
        )
        self.kubelets = {first_spec.name: self._kubelet(first_spec, first, self.init)}

        # Control-plane joins one at a time: etcd grows by one member, and is healthy, before the next.
        previous: pulumi.Resource = self.init
        self.joins: dict[str, pulumi.Resource] = {}
        for spec in cluster.control_plane.nodes[1:]:
            previous = self._join(spec, nodes[spec.name], files[spec.name], after=previous, control_plane=True)
        self.last_control_plane = previous
        # Workers in parallel: each waits only for init (which waited for the LB) and itself.
        for spec in cluster.workers:
            self._join(spec, nodes[spec.name], files[spec.name], after=self.init, control_plane=False)

        kubeconfig_cmd = run_script(
            "admin-kubeconfig", first.host, "admin-kubeconfig.sh", secret_stdout=True,
            opts=pulumi.ResourceOptions(parent=first, depends_on=[self.init]),
        )
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(kubeconfig_cmd.stdout)

    def _specs(self) -> list[KubeNode]:
        return [*self.cluster.control_plane.nodes, *self.cluster.workers]

    def _kubelet(self, spec: KubeNode, node: Node, after: pulumi.Resource) -> pulumi.Resource:
        """Keep the kubelet's CPU manager settings in line with config after the node joined."""
        return run_script(
            f"{spec.name}-kubelet", node.host, "kubelet-cpu-manager.sh",
            payload=kubeadm.kubelet_config(self.cluster, spec),
            opts=pulumi.ResourceOptions(parent=node, depends_on=[after]),
        )

    def _join(self, spec: KubeNode, node: Node, files: list[pulumi.Resource], *, after: pulumi.Resource,
              control_plane: bool) -> pulumi.Resource:
        flag = "true" if control_plane else "false"
        credentials = run_script(
            f"{spec.name}-credentials", self.first_host, "kubeadm-token.sh",
            env={"CONTROL_PLANE": flag, "NODE_NAME": spec.name},
            secret_stdout=True,
            # Made right before this join: tokens live 30 minutes, uploaded certificates two hours.
            opts=pulumi.ResourceOptions(parent=node, depends_on=[after]),
        )
        env = pulumi.Output.secret(credentials.stdout).apply(
            lambda out: kubeadm.join_credentials(out, control_plane))
        names = ["JOIN_TOKEN", "CA_CERT_HASH", *(["CERTIFICATE_KEY"] if control_plane else [])]
        join = run_script(
            f"{spec.name}-join", node.host, "kubeadm-join.sh", env={"CONTROL_PLANE": flag},
            secrets={name: env.apply(lambda values, n=name: values[n]) for name in names},
            delete_scripts=["node-reset.sh"],
            opts=pulumi.ResourceOptions(parent=node, depends_on=[credentials, *files]),
        )
        removal = ["node-remove.sh", *(["etcd-member-remove.sh"] if control_plane else [])]
        membership = run_script(
            f"{spec.name}-membership", self.first_host, "node-registered.sh",
            env={"NODE_NAME": spec.name, "MEMBER_NAME": spec.name},
            delete_scripts=removal,
            # Depends on the join so that on removal it goes first: drain and delete before reset.
            opts=pulumi.ResourceOptions(parent=node, depends_on=[join]),
        )
        self.joins[spec.name] = join
        self.kubelets[spec.name] = self._kubelet(spec, node, membership)
        return membership
