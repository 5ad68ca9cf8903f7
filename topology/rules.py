"""Cross-field rules: facts that no single field can check on its own.

Each rule is a generator of `Problem`s so one run reports every problem in the file, each
naming the path a user edits (`controlPlane.nodes[2].pinnedCpus`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations
from urllib.parse import urlsplit

from topology.cpuset import parse_cpuset
from topology.model import (
    ANY_REGISTRY,
    NODEPORT_RANGE,
    Cluster,
    ControlPlaneNode,
    Pool,
    address_range,
    registry_endpoint,
    registry_host,
)
from topology.sizing import STATIC_POD_SIZES, minimum_node, node_capacity, static_pod_budget, total

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str


def _all_hosts(c: Cluster) -> Iterator[tuple[Loc, str, ipaddress.IPv4Address | None]]:
    """(path, name, address) of every separately-declared host entry."""
    for i, h in enumerate(c.hypervisors):
        yield ("hypervisors", i), h.name, h.address
    for i, n in enumerate(c.control_plane.nodes):
        yield ("controlPlane", "nodes", i), n.name, n.address
    for i, w in enumerate(c.workers):
        yield ("workers", i), w.name, w.address
    if c.load_balancer.placement == "external":
        for i, lb in enumerate(c.load_balancer.nodes):
            yield ("loadBalancer", "nodes", i), lb.name, lb.address


def unique_names(c: Cluster) -> Iterator[Problem]:
    seen: dict[str, Loc] = {}
    for loc, name, _ in _all_hosts(c):
        if name in seen:
            yield Problem((*loc, "name"), f"{name} is already used by {_dotted(seen[name])}")
        else:
            seen[name] = loc


def unique_addresses(c: Cluster) -> Iterator[Problem]:
    seen: dict[ipaddress.IPv4Address, str] = {}
    for loc, name, address in _all_hosts(c):
        if address is None:
            continue
        if address in seen:
            yield Problem((*loc, "address"), f"{address} is already the address of {seen[address]}")
        else:
            seen[address] = name
    for i, n in enumerate(c.control_plane.nodes):
        owner = seen.get(n.control_plane_address)
        if owner is not None:
            yield Problem(("controlPlane", "nodes", i, "controlPlaneAddress"),
                          f"{n.control_plane_address} is already the address of {owner}")
    cp_seen: dict[ipaddress.IPv4Address, str] = {}
    for i, n in enumerate(c.control_plane.nodes):
        if n.control_plane_address in cp_seen:
            yield Problem(("controlPlane", "nodes", i, "controlPlaneAddress"),
                          f"{n.control_plane_address} is already used by {cp_seen[n.control_plane_address]}")
        else:
            cp_seen[n.control_plane_address] = n.name


def _misplaced(address: ipaddress.IPv4Address, net: ipaddress.IPv4Network, key: str) -> str | None:
    """Why `address` cannot be a host on `net` (the network.<key> setting), or None."""
    if address not in net:
        return f"{address} is outside network.{key} {net}"
    if address in (net.network_address, net.broadcast_address):
        return f"{address} is the network or broadcast address of {net}"
    return None


def addresses_in_networks(c: Cluster) -> Iterator[Problem]:
    node_net, cp_net = c.network.node_cidr, c.network.control_plane_cidr
    for loc, _, address in _all_hosts(c):
        why = None if address is None else _misplaced(address, node_net, "nodeCidr")
        if why:
            yield Problem((*loc, "address"), why)
    for i, n in enumerate(c.control_plane.nodes):
        why = _misplaced(n.control_plane_address, cp_net, "controlPlaneCidr")
        if why:
            yield Problem(("controlPlane", "nodes", i, "controlPlaneAddress"), why)


def vip_placement(c: Cluster) -> Iterator[Problem]:
    vip, net = c.api_endpoint.vip, c.network.node_cidr
    loc = ("apiEndpoint", "vip")
    if vip not in net:
        yield Problem(loc, f"{vip} is outside network.nodeCidr {net}")
        return
    if vip in (net.network_address, net.broadcast_address):
        yield Problem(loc, f"{vip} is the network or broadcast address of {net}")
    for host_loc, name, address in _all_hosts(c):
        if address == vip:
            yield Problem(loc, f"{vip} is the address of {name} ({_dotted(host_loc)}); the VIP must be free")


def networks_disjoint(c: Cluster) -> Iterator[Problem]:
    nets = {
        "nodeCidr": c.network.node_cidr,
        "controlPlaneCidr": c.network.control_plane_cidr,
        "podCidr": c.network.pod_cidr,
        "serviceCidr": c.network.service_cidr,
    }
    for (a, net_a), (b, net_b) in combinations(nets.items(), 2):
        if net_a.overlaps(net_b):
            yield Problem(("network", b), f"{net_b} overlaps network.{a} {net_a}")


def control_plane_quorum(c: Cluster) -> Iterator[Problem]:
    count = len(c.control_plane.nodes)
    if count == 0:
        yield Problem(("controlPlane", "nodes"), "at least one control-plane node is needed")
    elif count % 2 == 0:
        yield Problem(("controlPlane", "nodes"),
                      f"{count} nodes: etcd needs an odd count (an even one adds no fault tolerance)")


def load_balancer_placement(c: Cluster) -> Iterator[Problem]:
    lb = c.load_balancer
    cp_names = {n.name: n for n in c.control_plane.nodes}
    if lb.placement == "external":
        if len(lb.nodes) != 2:
            yield Problem(("loadBalancer", "nodes"), f"external placement needs exactly 2 nodes, not {len(lb.nodes)}")
        for i, node in enumerate(lb.nodes):
            if node.name in cp_names:
                yield Problem(("loadBalancer", "nodes", i, "name"),
                              f"{node.name} is a control-plane node; external placement needs dedicated LB nodes")
            if node.address is None:
                yield Problem(("loadBalancer", "nodes", i, "address"), "required for external placement")
        return
    if len(lb.nodes) < 2:
        yield Problem(("loadBalancer", "nodes"), "stacked placement needs at least 2 control-plane nodes in the pair")
    for i, node in enumerate(lb.nodes):
        cp = cp_names.get(node.name)
        if cp is None:
            yield Problem(("loadBalancer", "nodes", i, "name"),
                          f"{node.name} is not a control-plane node; stacked placement runs the LB on them")
        elif node.address is not None and node.address != cp.address:
            yield Problem(("loadBalancer", "nodes", i, "address"),
                          f"{node.address} differs from {cp.name}'s address {cp.address}")
    if c.apiserver_port == c.api_endpoint.port:
        yield Problem(("controlPlane", "apiserverPort"),
                      f"{c.apiserver_port} equals apiEndpoint.port; stacked HAProxy and kube-apiserver"
                      " would bind the same port")


def vrrp_settings(c: Cluster) -> Iterator[Problem]:
    interval = c.load_balancer.vrrp.advert_interval_ms
    if interval % 10 or not 10 <= interval <= 40950:
        yield Problem(("loadBalancer", "vrrp", "advertIntervalMs"),
                      f"{interval}: VRRPv3 adverts are whole centiseconds from 10 to 40950 ms")
    seen: dict[int, int] = {}
    for i, node in enumerate(c.load_balancer.nodes):
        if node.priority in seen:
            j = seen[node.priority]
            yield Problem(("loadBalancer", "nodes", i, "priority"),
                          f"equals nodes[{j}].priority ({node.priority}); the pair needs distinct priorities")
        else:
            seen[node.priority] = i
    names = [n.name for n in c.load_balancer.nodes]
    for i, name in enumerate(names):
        if name in names[:i]:
            yield Problem(("loadBalancer", "nodes", i, "name"), f"{name} is listed twice")


def endpoint_port(c: Cluster) -> Iterator[Problem]:
    low, high = NODEPORT_RANGE
    if low <= c.api_endpoint.port <= high:
        yield Problem(("apiEndpoint", "port"), f"{c.api_endpoint.port} is inside the NodePort range {low}-{high}")
    if c.apiserver_port != c.api_endpoint.port and low <= c.apiserver_port <= high:
        yield Problem(("controlPlane", "apiserverPort"),
                      f"{c.apiserver_port} is inside the NodePort range {low}-{high}")


def _declared(node: ControlPlaneNode) -> list[str]:
    """The sizing fields a control-plane node sets (cpus and memoryGiB also describe bare metal)."""
    return [alias for alias, value in (
        ("cpus", node.cpus), ("pinnedCpus", node.pinned_cpus), ("memoryGiB", node.memory_gib),
        ("osDiskGiB", node.os_disk_gib), ("etcdDiskGiB", node.etcd_disk_gib)) if value is not None]


VM_ONLY_FIELDS = ("pinnedCpus", "osDiskGiB", "etcdDiskGiB")


def control_plane_vms(c: Cluster) -> Iterator[Problem]:
    hypervisors = {h.name: h for h in c.hypervisors}
    pinned: dict[str, list[tuple[str, set[int]]]] = {}
    for i, node in enumerate(c.control_plane.nodes):
        loc = ("controlPlane", "nodes", i)
        if node.hypervisor is None:
            for alias in _declared(node):
                if alias in VM_ONLY_FIELDS:
                    yield Problem((*loc, alias), "only control-plane VMs (with `hypervisor`) take this field")
            continue
        hv = hypervisors.get(node.hypervisor)
        if hv is None:
            known = ", ".join(hypervisors) or "none declared"
            yield Problem((*loc, "hypervisor"), f"{node.hypervisor} is not a declared hypervisor ({known})")
            continue
        for alias in ("cpus", "pinnedCpus", "memoryGiB"):
            if alias not in _declared(node):
                yield Problem((*loc, alias), "required for a control-plane VM")
        if node.cpus is None or node.pinned_cpus is None:
            continue
        cores = set(parse_cpuset(node.pinned_cpus))
        if len(cores) != node.cpus:
            yield Problem((*loc, "pinnedCpus"), f"{node.pinned_cpus} names {len(cores)} cores but cpus is {node.cpus}")
        outside = sorted(core for core in cores if core >= hv.cpus)
        if outside:
            yield Problem((*loc, "pinnedCpus"), f"core {outside[0]} is outside {hv.name}'s cores 0-{hv.cpus - 1}")
        reserved = cores & set(parse_cpuset(hv.reserved_cpus))
        if reserved:
            yield Problem((*loc, "pinnedCpus"),
                          f"{node.pinned_cpus} overlaps {hv.name}'s reservedCpus {hv.reserved_cpus}")
        for other, other_cores in pinned.get(hv.name, []):
            if cores & other_cores:
                yield Problem((*loc, "pinnedCpus"), f"{node.pinned_cpus} overlaps {other} on hypervisor {hv.name}")
        pinned.setdefault(hv.name, []).append((node.name, cores))
        if not set(parse_cpuset(node.reserved_cpus)) < set(range(node.cpus)):
            yield Problem((*loc, "reservedCpus"),
                          f"{node.reserved_cpus} must name some, not all, of the VM's vCPUs 0-{node.cpus - 1}")


def control_plane_capacity(c: Cluster) -> Iterator[Problem]:
    """Each control-plane node leaves room for the smallest tier of static pods (topology/sizing.py)."""
    smallest = total(STATIC_POD_SIZES[-1][1])
    cpus_needed, memory_needed = minimum_node()
    for i, node in enumerate(c.control_plane.nodes):
        if node.is_vm and (node.cpus is None or node.memory_gib is None
                           or not set(parse_cpuset(node.reserved_cpus)) < set(range(node.cpus))):
            continue  # control_plane_vms names the missing field or the bad reservedCpus
        loc = ("controlPlane", "nodes", i)
        cpus, memory_gib = node_capacity(node)
        reserved = parse_cpuset(node.reserved_cpus)
        if not node.is_vm and node.cpus is not None and not set(reserved) < set(range(cpus)):
            yield Problem((*loc, "reservedCpus"),
                          f"{node.reserved_cpus} must name some, not all, of the node's CPUs 0-{cpus - 1}")
            continue
        budget = static_pod_budget(node)
        if budget.cpu_milli < smallest.cpu_milli:
            declared = node.cpus is not None
            what = (f"{cpus} vCPUs" if node.is_vm else f"{cpus} CPUs" if declared
                    else f"the {cpus} CPUs assumed of a bare-metal control-plane node without `cpus`")
            yield Problem((*loc, "cpus" if declared else "reservedCpus"),
                          f"{what} less reservedCpus {node.reserved_cpus} ({len(reserved)}) leave too few for the"
                          f" control-plane static pods: they need {cpus_needed} beyond reservedCpus")
        if budget.memory_mib < smallest.memory_mib:
            yield Problem((*loc, "memoryGiB"),
                          f"{memory_gib} GiB is too little for the control-plane static pods: they need"
                          f" {memory_needed} GiB")


def vm_gateway(c: Cluster) -> Iterator[Problem]:
    gateway = c.network.default_gateway
    for i, node in enumerate(c.control_plane.nodes):
        if node.is_vm and node.address == gateway:
            yield Problem(("controlPlane", "nodes", i, "address"),
                          f"{gateway} is the first address of network.nodeCidr, the default gateway of control-plane"
                          " VMs; give the VM another address")


def vm_access(c: Cluster) -> Iterator[Problem]:
    if any(n.is_vm for n in c.control_plane.nodes) and not c.ssh.authorized_key:
        yield Problem(("ssh", "authorizedKey"), "required: cloud-init puts this public key into the control-plane VMs")
    elif c.ssh.authorized_key and not c.ssh.authorized_key.startswith(("ssh-", "ecdsa-", "sk-")):
        yield Problem(("ssh", "authorizedKey"), "is not an OpenSSH public key (ssh-ed25519 AAAA... comment)")


def hypervisor_capacity(c: Cluster) -> Iterator[Problem]:
    for i, hv in enumerate(c.hypervisors):
        loc = ("hypervisors", i)
        reserved = parse_cpuset(hv.reserved_cpus)
        if max(reserved) >= hv.cpus:
            yield Problem((*loc, "reservedCpus"), f"core {max(reserved)} is outside the host's cores 0-{hv.cpus - 1}")
        if hv.reserved_memory_gib >= hv.memory_gib:
            yield Problem((*loc, "reservedMemoryGiB"),
                          f"{hv.reserved_memory_gib} leaves no memory of {hv.memory_gib} GiB")
        vms = [n for n in c.control_plane.nodes if n.hypervisor == hv.name]
        used = sum(n.memory_gib or 0 for n in vms)
        free = hv.memory_gib - hv.reserved_memory_gib
        if used > free:
            names = ", ".join(n.name for n in vms)
            yield Problem((*loc, "memoryGiB"),
                          f"VMs {names} need {used} GiB but only {free} GiB is free after reservedMemoryGiB")
        yield from _pools(hv.pools, loc, hosts_vm=bool(vms))
        if vms and hv.bridges.control_plane is None:
            yield Problem((*loc, "bridges", "controlPlane"), "required: this hypervisor hosts a control-plane VM")


def _nested(a: str, b: str) -> bool:
    a, b = a.rstrip("/") or "/", b.rstrip("/") or "/"
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def _pools(pools: list[Pool], loc: Loc, hosts_vm: bool) -> Iterator[Problem]:
    for j, pool in enumerate(pools):
        if not pool.path.startswith("/"):
            yield Problem((*loc, "pools", j, "path"), f"{pool.path} is not an absolute path")
        for k, other in enumerate(pools[:j]):
            if other.name == pool.name:
                yield Problem((*loc, "pools", j, "name"), f"{pool.name} is already pools[{k}]")
            # A controlPlane pool must sit on storage of its own: not the same or a nested directory.
            elif "controlPlane" in (pool.role, other.role) and _nested(pool.path, other.path):
                yield Problem((*loc, "pools", j, "path"), f"{pool.path} shares storage with pool {other.name}")
    cp_pools = [p for p in pools if p.role == "controlPlane"]
    if hosts_vm and not cp_pools:
        yield Problem((*loc, "pools"), "needs a pool with role controlPlane: this hypervisor hosts a control-plane VM")
    if len(cp_pools) > 1:
        yield Problem((*loc, "pools"), "declares more than one controlPlane pool")


def workers_and_profile(c: Cluster) -> Iterator[Problem]:
    if c.control_plane.schedulable and c.profile != "edge":
        yield Problem(("controlPlane", "schedulable"),
                      "only the edge profile runs workloads on control-plane nodes (set profile: edge)")
    if c.profile == "edge" and c.hypervisors:
        yield Problem(("hypervisors",), "the edge profile runs bare-metal nodes only")


def metallb_pool(c: Cluster) -> Iterator[Problem]:
    """MetalLB answers ARP for its pool on the nodes' network: every address there must be free."""
    pool = c.addons.metallb
    loc: Loc = ("addons", "metallb", "addresses")
    if pool.enabled and not pool.addresses:
        yield Problem(loc, "required when addons.metallb.enabled is true")
    net = c.network.node_cidr
    taken = {address: name for _, name, address in _all_hosts(c) if address is not None}
    taken[c.api_endpoint.vip] = "apiEndpoint.vip"
    spans: list[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]] = []
    for i, text in enumerate(pool.addresses):
        first, last = address_range(text)
        if first not in net or last not in net:
            yield Problem((*loc, i), f"{text} is not inside network.nodeCidr {net}")
        elif first == net.network_address or last == net.broadcast_address:
            yield Problem((*loc, i), f"{text} includes the network or broadcast address of {net}")
        for address, name in taken.items():
            if first <= address <= last:
                yield Problem((*loc, i), f"{text} includes {address}, the address of {name}")
        for j, (other_first, other_last) in enumerate(spans):
            if first <= other_last and other_first <= last:
                yield Problem((*loc, i), f"{text} overlaps addresses[{j}]")
        spans.append((first, last))


def addons_off(c: Cluster) -> Iterator[Problem]:
    """With the add-ons off nothing installs one: an add-on still asked for is a contradiction."""
    addons = c.addons
    if addons.enabled:
        return
    asked: list[tuple[str, ...]] = []
    if addons.smoke_test and "smoke_test" in addons.model_fields_set:
        asked.append(("smokeTest",))
    asked += [(name, "enabled") for name in ("metallb", "gateway") if getattr(addons, name).enabled]
    for loc in asked:
        yield Problem(("addons", *loc), "is on, but addons.enabled is false: nothing in the cluster is installed")


# Worker upgrades form lanes of ceil(workers / workerParallelism) chained steps (components/upgrade.py).
# Pulumi's dependency-cycle check recurses once per link: 250 chained workers ran, 400 raised
# RecursionError (bench/scale.py topologies, under mocks; the same SDK code runs under `pulumi up`).
MAX_UPGRADE_LANE = 200


def upgrade_lanes(c: Cluster) -> Iterator[Problem]:
    parallelism = c.upgrade.worker_parallelism
    lane = -(-len(c.workers) // parallelism)
    if lane > MAX_UPGRADE_LANE:
        need = -(-len(c.workers) // MAX_UPGRADE_LANE)
        yield Problem(("upgrade", "workerParallelism"),
                      f"{parallelism} chains {lane} worker upgrades one after another; Pulumi fails on dependency"
                      f" chains that long: use at least {need} for {len(c.workers)} workers")


def backup_target_address(c: Cluster) -> ipaddress.IPv4Address | None:
    """The etcd backup target's address: its own, else that of the declared host it names."""
    target = c.etcd.snapshots.target
    if target is None or target.address is not None:
        return None if target is None else target.address
    return next((address for _, name, address in _all_hosts(c) if name == target.name), None)


def etcd_snapshot_target(c: Cluster) -> Iterator[Problem]:
    """The backup target is off the control-plane nodes; a name of a declared host means that host."""
    target = c.etcd.snapshots.target
    if target is None:
        return
    loc = ("etcd", "snapshots", "target", "address")
    address = backup_target_address(c)
    if address is None:
        yield Problem(loc, f"required: {target.name} is not a hypervisor, worker or LB node of this stack")
        return
    hosts = list(_all_hosts(c))
    if sum(name == target.name for _, name, _ in hosts) > 1 or sum(a == address for _, _, a in hosts) > 1:
        return  # a name or address declared twice: unique_names / unique_addresses report it
    for node in c.control_plane.nodes:
        if target.name == node.name or address in (node.address, node.control_plane_address):
            yield Problem(loc, f"{address} ({target.name}) is control-plane node {node.name}: a copy there is not off"
                               " the node; name another host (e.g. a hypervisor)")
            return
    for host_loc, name, host_address in hosts:
        if target.address is not None and name == target.name and host_address not in (None, address):
            yield Problem(loc, f"{address} is not the address of {name} ({host_address}, {_dotted(host_loc)});"
                               " leave address out to use it")
        elif name != target.name and host_address == address:
            yield Problem(loc, f"{address} is already the address of {name}")


def registry_mirrors(c: Cluster) -> Iterator[Problem]:
    """Mirror keys are registry hosts, each with endpoints; per-endpoint settings name a used endpoint."""
    registries = c.registries
    loc: Loc = ("registries", "mirrors")
    used: set[str] = set()
    for host, endpoints in registries.mirrors.items():
        if host != ANY_REGISTRY:
            try:
                registry_host(host)
            except ValueError as err:
                yield Problem((*loc, host), f"{err} or \"{ANY_REGISTRY}\"")
        if not endpoints:
            yield Problem((*loc, host), "needs at least one endpoint")
        for i, endpoint in enumerate(endpoints):
            if endpoint in endpoints[:i]:
                yield Problem((*loc, host, i), f"{endpoint} is listed twice")
        used.update(endpoints)
    if registries.skip_fallback and not registries.mirrors:
        yield Problem(("registries", "skipFallback"), "has no effect without registries.mirrors")
    users: dict[str, tuple[str, str]] = {}
    repository_host = (c.images.repository or "").split("/", 1)[0]
    for url, settings in registries.endpoints.items():
        where: Loc = ("registries", "endpoints", url)
        try:
            normalized = registry_endpoint(url)
        except ValueError as err:
            yield Problem(where, str(err))
            continue
        netloc = urlsplit(normalized).netloc
        if normalized not in used and netloc != repository_host:
            yield Problem(where, "is not an endpoint of any registries.mirrors entry, nor images.repository's registry")
        if settings.username is None:
            continue
        # containerd keys registry logins by host[:port]: one user per host.
        seen = users.setdefault(netloc, (url, settings.username))
        if seen[1] != settings.username:
            yield Problem((*where, "username"), f"differs from {seen[0]}'s; containerd logs in to {netloc} as one user")


def proxy_settings(c: Cluster) -> Iterator[Problem]:
    if c.proxy.no_proxy and not c.proxy.enabled:
        yield Problem(("proxy", "noProxy"), "has no effect without proxy.http or proxy.https")


RULES: tuple[Callable[[Cluster], Iterator[Problem]], ...] = (
    unique_names,
    unique_addresses,
    addresses_in_networks,
    vip_placement,
    networks_disjoint,
    control_plane_quorum,
    load_balancer_placement,
    vrrp_settings,
    endpoint_port,
    control_plane_vms,
    control_plane_capacity,
    vm_gateway,
    vm_access,
    hypervisor_capacity,
    workers_and_profile,
    metallb_pool,
    addons_off,
    upgrade_lanes,
    etcd_snapshot_target,
    registry_mirrors,
    proxy_settings,
)


def check(c: Cluster) -> list[Problem]:
    return [problem for rule in RULES for problem in rule(c)]


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
