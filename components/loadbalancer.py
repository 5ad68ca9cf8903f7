"""The API endpoint: keepalived + HAProxy on the LB pair (external) or the control plane (stacked)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.base import Component
from components.files import FileDrop
from components.node import apt_proxy
from components.step import Host, Step, run
from configs import loadbalancer as lb
from topology import Cluster


class LoadBalancerHost(Component):
    """One LB node: packages and sysctl, then haproxy.cfg and keepalived.conf dropped and reloaded."""

    def __init__(self, cluster: Cluster, peer: lb.LbPeer, host: Host, haproxy_cfg: str, *,
                 after: Sequence[pulumi.Resource], opts: pulumi.ResourceOptions) -> None:
        super().__init__("LoadBalancerHost", f"{peer.name}-lb",
                         {"host": peer.name, "address": str(peer.address), "priority": peer.priority}, opts)
        # A stacked LB node is a Kubernetes node: its Node places the proxy files.
        external = cluster.load_balancer.placement == "external"
        apt = apt_proxy(peer.name, cluster, host, pulumi.ResourceOptions(parent=self)) if external else []
        self.prepare = run(
            f"{peer.name}-lb-prepare", host, Step(lb.prepare_script()),
            # On stacked nodes the node prerequisites own apt first; two apt runs at once would collide.
            pulumi.ResourceOptions(parent=self, depends_on=[*after, *apt]),
        )
        contents = {"haproxy": haproxy_cfg, "keepalived": lb.render_keepalived(cluster, peer.name)}
        self.drops = [
            FileDrop(
                f"{peer.name}-{daemon}", host, lb.config_drop(daemon), contents[daemon],
                # The daemons and their script user come from lb-prepare.sh.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.prepare]),
            )
            for daemon in ("haproxy", "keepalived")
        ]
        self.finish()


class LoadBalancerPair(Component):
    """The VIP in front of every kube-apiserver; ready once every node's files are in place."""

    def __init__(self, cluster: Cluster, hosts: Mapping[str, Host], *,
                 after: Mapping[str, Sequence[pulumi.Resource]], opts: pulumi.ResourceOptions) -> None:
        peers = lb.lb_nodes(cluster)
        props = {
            "placement": cluster.load_balancer.placement,
            "vip": str(cluster.api_endpoint.vip),
            "port": cluster.api_endpoint.port,
            "apiserverPort": cluster.apiserver_port,
            "nodes": [{"name": p.name, "address": str(p.address), "priority": p.priority} for p in peers],
        }
        super().__init__("LoadBalancerPair", "api-lb", props, opts)
        haproxy_cfg = lb.render_haproxy(cluster)
        self.hosts = [
            LoadBalancerHost(cluster, peer, hosts[peer.name], haproxy_cfg, after=after.get(peer.name, ()),
                             opts=pulumi.ResourceOptions(parent=self))
            for peer in peers
        ]
        self.finish()

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What `kubeadm init` waits for: every config drop applied (daemons reloaded)."""
        return [drop.command for host in self.hosts for drop in host.drops]
