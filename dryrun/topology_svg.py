"""The topology picture (topology.svg): hypervisors holding their control-plane VMs (pinned cores,
locked memory) and pools, the LB pair with the VIP, the workers and the two networks.

`topology_dot` is a pure function of the topology (Graphviz DOT text); `write_svg` runs Graphviz's
`dot`. The dry run calls `write_dry_run_svg`: when `dot` is not installed it prints one warning on
stderr and writes everything but topology.svg, since the picture is for people and the plan and
host files do not need it; a `dot` that refuses the DOT is a bug here and raises.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from topology import Cluster, ControlPlaneNode, Hypervisor, Worker, load_cluster

# Beyond this many workers they are drawn as a few summary nodes, so prod stays readable.
WORKER_DETAIL_LIMIT = 8
# Workers are summarised per label set (e.g. per zone) unless that makes more groups than this.
MAX_WORKER_GROUPS = 4
DOT_TIMEOUT_S = 60

NODES_NET, CP_NET = "net:nodes", "net:controlPlane"
COLOURS = {
    "nodes": "#2b6cb0", "controlPlane": "#c05621", "vip": "#fff3b0", "lb": "#e9d8fd", "vm": "#fed7d7",
    "cp": "#fed7d7", "worker": "#c6f6d5", "hypervisor": "#edf2f7", "cpPool": "#fbd38d", "pool": "#f7fafc",
}


class GraphvizMissing(RuntimeError):
    """Graphviz's `dot` is not on PATH."""


def _esc(text: object) -> str:
    """Text safe inside a double-quoted DOT string (where `\\n` is our line break)."""
    return str(text).replace("\\", "\\\\").replace('"', '\\"')


def _label(*lines: object) -> str:
    return "\\n".join(_esc(line) for line in lines if line not in (None, ""))


def _attrs(**attrs: Any) -> str:
    # Labels come pre-escaped from _label; every other value is escaped here.
    body = ", ".join(f'{k}="{v if k.endswith("label") else _esc(v)}"' for k, v in attrs.items())
    return f" [{body}]" if body else ""


def _node(node_id: str, **attrs: Any) -> str:
    return f'"{_esc(node_id)}"{_attrs(**attrs)};'


def _edge(a: str, b: str, **attrs: Any) -> str:
    return f'"{_esc(a)}" -> "{_esc(b)}"{_attrs(**attrs)};'


def _cluster(cluster_id: str, label: str, body: list[str], **attrs: Any) -> list[str]:
    return [f'subgraph "cluster_{_esc(cluster_id)}" {{', f'label="{label}";',
            *(f"{k}=\"{_esc(v)}\";" for k, v in attrs.items()), *body, "}"]


def _cp_lines(cluster: Cluster, cp: ControlPlaneNode) -> list[str]:
    lines = [f"{cp.name}  control plane" + ("" if cp.is_vm else " (bare metal)"),
             f"{cp.address}  |  cp net {cp.control_plane_address}"]
    if cp.is_vm:
        lines += [f"{cp.cpus} vCPUs pinned to cpus {cp.pinned_cpus}",
                  f"{cp.memory_gib} GiB memory, locked",
                  f"disks: os {cp.os_disk_gib or 40} GiB + etcd {cp.etcd_disk_gib or 20} GiB"]
    lines.append(f"kubelet reserves {'vCPUs' if cp.is_vm else 'cpus'} {cp.reserved_cpus}")
    peer = next((n for n in cluster.load_balancer.nodes if n.name == cp.name), None)
    if _stacked(cluster) and peer is not None:
        lines += [f"keepalived priority {peer.priority} ({peer.interface})",
                  f"HAProxy :{cluster.api_endpoint.port} -> apiservers :{cluster.apiserver_port}"]
    return lines


def _left_to_right(node_ids: list[str]) -> list[str]:
    """Keep nodes of one cluster in declaration order (w01 before w07), on one row."""
    if len(node_ids) < 2:
        return []
    quoted = [f'"{_esc(n)}"' for n in node_ids]
    return ["{ rank=same; " + "; ".join(quoted) + "; }", " -> ".join(quoted) + ' [style="invis"];']


def _stacked(cluster: Cluster) -> bool:
    return cluster.load_balancer.placement == "stacked"


def _network_edges(node_id: str, *, nodes_bridge: str = "", cp_bridge: str = "", cp_net: bool = False) -> list[str]:
    # A VM edge names the hypervisor bridge it is attached to.
    edges = [_edge(node_id, NODES_NET, color=COLOURS["nodes"], arrowhead="none", label=_label(nodes_bridge),
                   fontcolor=COLOURS["nodes"])]
    if cp_net:
        edges.append(_edge(node_id, CP_NET, color=COLOURS["controlPlane"], arrowhead="none",
                           label=_label(cp_bridge), fontcolor=COLOURS["controlPlane"]))
    return edges


def _hypervisor(cluster: Cluster, hv: Hypervisor) -> list[str]:
    vms = [cp for cp in cluster.control_plane.nodes if cp.hypervisor == hv.name]
    host = _label(f"{hv.name} host  {hv.address}", f"{hv.cpus} cpus, host keeps {hv.reserved_cpus}",
                  f"{hv.memory_gib} GiB, host keeps {hv.reserved_memory_gib} GiB")
    body = [_node(hv.name, label=host, shape="box3d", fillcolor="white"), *_network_edges(hv.name)]
    pools = [f"{hv.name}/pool/{pool.name}" for pool in hv.pools]
    for pool, pool_id in zip(hv.pools, pools, strict=True):
        highlight = pool.role == "controlPlane"
        body.append(_node(pool_id, shape="cylinder", fillcolor=COLOURS["cpPool" if highlight else "pool"],
                          label=_label(f"pool {pool.name}" + (" (controlPlane)" if highlight else ""), pool.path),
                          penwidth=2 if highlight else 1))
        # Pools sit below the VMs and above the networks.
        body.append(_edge(pool_id, NODES_NET, style="invis"))
    body += _left_to_right(pools)
    cp_pool = next((f"{hv.name}/pool/{p.name}" for p in hv.pools if p.role == "controlPlane"), None)
    for vm in vms:
        body.append(_node(vm.name, label=_label(*_cp_lines(cluster, vm)), fillcolor=COLOURS["vm"], penwidth=2))
        body.append(_edge(hv.name, vm.name, style="dashed", arrowhead="none", color="#718096"))
        body += [_edge(vm.name, pool_id, style="dotted" if pool_id == cp_pool else "invis",
                       label=_label("os + etcd disks" if pool_id == cp_pool else "")) for pool_id in pools]
        body += _network_edges(vm.name, nodes_bridge=hv.bridges.nodes, cp_bridge=hv.bridges.control_plane or "",
                               cp_net=True)
    return _cluster(hv.name, _label(f"hypervisor {hv.name}"), body, style="rounded,filled",
                    fillcolor=COLOURS["hypervisor"], color="#a0aec0")


def _load_balancer(cluster: Cluster) -> list[str]:
    lb, ep = cluster.load_balancer, cluster.api_endpoint
    top = max(n.priority for n in lb.nodes) if lb.nodes else 0
    lines = [_node("vip", shape="doubleoctagon", fillcolor=COLOURS["vip"],
                   label=_label("API endpoint", f"VIP {ep.vip}:{ep.port}", f"VRRP router {lb.vrrp.router_id}"))]
    peers = []
    for node in lb.nodes:
        node_id = node.name  # stacked: the control-plane node itself
        preferred = node.priority == top
        # The preferred VIP holder's edge is bold; its priority is in the node's label.
        lines.append(_edge("vip", node_id, style="solid" if preferred else "dashed", penwidth=2 if preferred else 1))
        if not _stacked(cluster):
            peers.append(_node(node_id, fillcolor=COLOURS["lb"], label=_label(
                f"{node.name}  load balancer", f"{cluster.lb_address(node)} ({node.interface})",
                f"keepalived priority {node.priority}" + (" (preferred)" if preferred else ""),
                f"HAProxy :{ep.port}")))
            lines += _network_edges(node_id)
            lines += [_edge(node_id, cp.name, color="#a0aec0", arrowsize=0.6) for cp in cluster.control_plane.nodes]
    if peers:
        peers += _left_to_right([n.name for n in lb.nodes])
        lines += _cluster("lb", _label("load-balancer pair (external)",
                                       f"HAProxy -> every apiserver :{cluster.apiserver_port}"),
                          peers, style="rounded", color="#805ad5", labelloc="b")  # below: clear of the VIP's edges
    return lines


def worker_groups(cluster: Cluster) -> list[list[Worker]]:
    """Workers as drawn: one per group when few, else summarised by label set (or all in one)."""
    workers = cluster.workers
    if len(workers) <= WORKER_DETAIL_LIMIT:
        return [[w] for w in workers]
    by_labels: dict[tuple[tuple[str, str], ...], list[Worker]] = {}
    for w in workers:
        by_labels.setdefault(tuple(sorted(w.labels.items())), []).append(w)
    return list(by_labels.values()) if len(by_labels) <= MAX_WORKER_GROUPS else [list(workers)]


def summary_title(group: list[Worker]) -> str:
    return f"{group[0].name} … {group[-1].name} ({len(group)} workers)"


def _worker_lines(group: list[Worker]) -> list[str]:
    first = group[0]
    reserved = {w.reserved_cpus for w in group}
    labels = ", ".join(f"{k}={v}" for k, v in sorted(first.labels.items())) if all(
        w.labels == first.labels for w in group) else "labels vary"
    if len(group) == 1:
        head = [f"{first.name}  worker", str(first.address)]
    else:
        addresses = sorted(w.address for w in group)
        head = [summary_title(group), f"{addresses[0]} to {addresses[-1]}"]
    return [*head, f"kubelet reserves cpus {', '.join(sorted(reserved))}", labels]


def _workers(cluster: Cluster) -> list[str]:
    body: list[str] = []
    for group in worker_groups(cluster):
        node_id = group[0].name if len(group) == 1 else f"workers:{group[0].name}"
        body.append(_node(node_id, fillcolor=COLOURS["worker"], label=_label(*_worker_lines(group)),
                          peripheries=1 if len(group) == 1 else 2))
        body += _network_edges(node_id)
    if not body:
        return []
    body += _left_to_right([group[0].name if len(group) == 1 else f"workers:{group[0].name}"
                            for group in worker_groups(cluster)])
    return _cluster("workers", _label(f"bare-metal workers ({len(cluster.workers)})"), body, style="rounded",
                    color="#38a169")


def _bare_metal_control_plane(cluster: Cluster) -> list[str]:
    nodes = [n for n in cluster.control_plane.nodes if not n.is_vm]
    if not nodes:
        return []
    body: list[str] = []
    for cp in nodes:
        body.append(_node(cp.name, label=_label(*_cp_lines(cluster, cp)), fillcolor=COLOURS["cp"], penwidth=2))
        body += _network_edges(cp.name, cp_net=True)
    body += _left_to_right([n.name for n in nodes])
    title = "bare-metal control plane" + (" + stacked load balancer" if _stacked(cluster) else "")
    schedulable = "schedulable: runs workloads too" if cluster.control_plane.schedulable else ""
    return _cluster("controlplane", _label(title, schedulable), body, style="rounded", color="#c53030",
                    labelloc="b")


def _networks(cluster: Cluster) -> list[str]:
    net = cluster.network
    return [
        "{ rank=same;",
        _node(NODES_NET, shape="box", style="filled", fontcolor="white", fillcolor=COLOURS["nodes"], width=6,
              label=_label(f"nodes network  {net.node_cidr}")),
        _node(CP_NET, shape="box", style="filled", fontcolor="white", fillcolor=COLOURS["controlPlane"], width=4,
              label=_label(f"control-plane network  {net.control_plane_cidr}", "apiserver and etcd traffic")),
        "}",
    ]


def topology_dot(cluster: Cluster) -> str:
    """The picture as Graphviz DOT: a pure function of the topology."""
    net = cluster.network
    title = _label(f"hakube cluster {cluster.name}: Kubernetes {cluster.kubernetes_version}, profile {cluster.profile},"
                   f" CNI {cluster.addons.cni}", f"pods {net.pod_cidr}, services {net.service_cidr}")
    body = [
        "digraph hakube {",
        f'graph [label="{title}", labelloc="t", fontname="Helvetica", fontsize=14, rankdir="TB",'
        ' nodesep="0.35", ranksep="0.7",'
        # Little crossing minimisation keeps the declared order (hv1, hv2, hv3) for a few more crossings.
        ' mclimit="0.01"];',
        'node [fontname="Helvetica", fontsize=10, shape="box", style="rounded,filled", fillcolor="white"];',
        'edge [fontname="Helvetica", fontsize=9];',
        *_load_balancer(cluster),
        *(line for hv in cluster.hypervisors for line in _hypervisor(cluster, hv)),
        *_bare_metal_control_plane(cluster),
        *_workers(cluster),
        *_networks(cluster),
        "}",
    ]
    return "\n".join(body) + "\n"


def write_svg(cluster: Cluster, path: Path) -> None:
    """Render the picture with Graphviz `dot` into `path`; GraphvizMissing when it is not installed."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing("Graphviz `dot` is not on PATH (install the graphviz package)")
    result = subprocess.run([dot, "-Tsvg", "-o", str(path)], input=topology_dot(cluster), capture_output=True,
                            text=True, timeout=DOT_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"dot refused the topology picture: {result.stderr.strip()}")


def write_dry_run_svg(data: dict[str, Any], out: Path) -> None:
    """The dry run's call: out/topology.svg, or a warning on stderr (and no svg) without Graphviz."""
    try:
        write_svg(load_cluster(data), out / "topology.svg")
    except GraphvizMissing as err:
        print(f"warning: {err}; topology.svg not written", file=sys.stderr)
