"""etcd snapshots (configs/etcd.py has the data): on every control-plane node the timer, its
service and script, and the key for the off-node copy; a snapshot step before each control-plane
upgrade (components/upgrade.py asks for it) and one before a control-plane node is removed.

Every step is parented to the control-plane node it concerns, so removing a node removes its
steps; the EtcdSnapshots component itself only declares the settings (the policy pack reads them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.base import Component
from components.files import FileSet
from components.kubeadm import KEEP
from components.node import Node
from components.step import Step, run
from configs import etcd
from configs.remote import Script
from topology import Cluster


class EtcdSnapshots(Component):
    """`joined`: the step after which each control-plane node's etcd member exists (components/kubeadm.py)."""

    def __init__(self, cluster: Cluster, nodes: Mapping[str, Node], joined: Mapping[str, pulumi.Resource],
                 backup_key: pulumi.Output[str] | None, *, opts: pulumi.ResourceOptions) -> None:
        super().__init__("EtcdSnapshots", "etcd-snapshots", etcd.snapshot_props(cluster), opts)
        self.cluster = cluster
        self.nodes = nodes
        self.enabled = cluster.etcd.snapshots.enabled
        target = cluster.etcd.snapshots.target
        if target is not None and backup_key is None:
            raise ValueError("hakube:etcdBackupSshKey is required when hakube:cluster.etcd.snapshots.target is set")
        self.keys: dict[str, pulumi.Resource] = {}
        for spec in cluster.control_plane.nodes:
            node = nodes[spec.name]
            after: list[pulumi.Resource] = [joined[spec.name]]
            if target is not None and backup_key is not None:
                self.keys[spec.name] = run(
                    f"{spec.name}-etcd-backup-key", node.host,
                    Step(Script("etcd-backup-key.sh", etcd.backup_key_env(cluster, target)),
                         secrets={"BACKUP_PRIVATE_KEY": backup_key.apply(etcd.key_secret)},
                         delete=(Script("etcd-backup-key.sh", etcd.backup_key_env(cluster, target, "remove")),),
                         ignore_changes=KEEP),  # a replacement's delete would remove the key its create placed
                    # The public half, to authorize on the target, is what it prints.
                    pulumi.ResourceOptions(parent=node, depends_on=[node.prerequisites]),
                )
                after.append(self.keys[spec.name])
            # Once the member exists (a timer firing before would only fail) and the copy has its key.
            FileSet(f"{spec.name}-etcd-snapshot", node.host, etcd.node_files(cluster, spec.name), mode="0644",
                    then=Script("etcd-snapshot-timer.sh", etcd.timer_env(cluster)),
                    opts=pulumi.ResourceOptions(parent=node, depends_on=after))
        admin = cluster.first_control_plane.name
        if self.enabled:
            for spec in cluster.control_plane.nodes:
                self._before_removal(spec.name, admin, joined)
        self.finish()

    def _before_removal(self, name: str, admin: str, joined: Mapping[str, pulumi.Resource]) -> None:
        """A step whose *delete* takes a snapshot on the first control-plane node (which stays) when
        `name` leaves the stack. It depends on the node's membership step, so Pulumi deletes it
        first: the snapshot is taken before the drain, the etcd member removal and the reset.
        Its create only checks that the admin node can take snapshots."""
        after = [joined[name], *([self.keys[admin]] if admin in self.keys else [])]
        snapshot = etcd.snapshot_env(self.cluster, admin, "pre-removal", label=name)
        run(
            f"{name}-etcd-snapshot-pre-removal", self.nodes[admin].host,
            Step(Script(etcd.SNAPSHOT_SCRIPT, {**snapshot, "MODE": "check"}),
                 delete=(Script(etcd.SNAPSHOT_SCRIPT, snapshot),), ignore_changes=KEEP),
            pulumi.ResourceOptions(parent=self.nodes[name], depends_on=after),
        )

    def before_upgrade(self, name: str, after: Sequence[pulumi.Resource],
                       version: Sequence[str]) -> list[pulumi.Resource]:
        """A snapshot of control-plane node `name`'s member right before its upgrade (kubeadm upgrades
        etcd with the control plane); none when snapshots are disabled. Replaced, so run again,
        whenever the target version changes, like the upgrade steps."""
        if not self.enabled:
            return []
        return [run(
            f"{name}-etcd-snapshot-pre-upgrade", self.nodes[name].host,
            Step(Script(etcd.SNAPSHOT_SCRIPT, etcd.snapshot_env(self.cluster, name, "pre-upgrade")),
                 triggers=tuple(version)),
            pulumi.ResourceOptions(parent=self.nodes[name],
                                   depends_on=[*after, *([self.keys[name]] if name in self.keys else [])]),
        )]
