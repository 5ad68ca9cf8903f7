"""Hypothesis strategies for hakube stack config.

`clusters()` draws VALID `hakube:cluster` dicts (the stack file's camelCase shape): 1, 3 or 5
control-plane nodes as VMs on 1-5 hypervisors (disjoint pinning, memory that fits), bare metal,
or a mix; stacked or external LB pair; 0-20 workers; addresses in 198.18.0.0/15 networks; random
cpusets. `cluster_models()` is the same, loaded into `topology.Cluster` for renderer tests:
`@given(cluster_models())`. `stack_documents()` wraps one in a whole stack file; `mutated()`
breaks one at random.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from hypothesis import strategies as st

from topology import Cluster, load_cluster
from topology.cpuset import format_cpuset
from topology.sizing import ASSUMED_BARE_METAL, minimum_node
from topology.versions import SUPPORTED

# The public half of an example key; only its shape matters to the topology rules.
AUTHORIZED_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOjEaR6noJnF8NNen+ndNRFNJVLQxG/oNbEK3An3fyS2 hakube-test"
NODEPORTS = range(30000, 32768)

# Built from characters rather than st.from_regex, which made drawing a cluster several times slower.
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ALNUM = _LOWER + "0123456789"
dns_labels = st.one_of(st.sampled_from(_ALNUM), st.tuples(
    st.sampled_from(_ALNUM), st.text(_ALNUM + "-", max_size=8), st.sampled_from(_ALNUM)).map("".join))
if_names = st.tuples(st.sampled_from(_LOWER), st.text(_ALNUM, max_size=6),
                     st.one_of(st.just(""), st.integers(1, 4094).map(".{}".format))).map("".join)  # br0, eth0.42
logins = st.tuples(st.sampled_from(_LOWER + "_"), st.text(_ALNUM + "_.-", max_size=15)).map("".join)
ports = st.integers(1, 65535).filter(lambda p: p not in NODEPORTS)
label_text = dns_labels


def _subnet(draw: st.DrawFn, within: str, prefix: int) -> ipaddress.IPv4Network:
    """A random aligned /prefix inside `within`."""
    parent = ipaddress.IPv4Network(within)
    index = draw(st.integers(0, 2 ** (prefix - parent.prefixlen) - 1))
    return ipaddress.IPv4Network((int(parent.network_address) + index * 2 ** (32 - prefix), prefix))


def _hosts(draw: st.DrawFn, net: ipaddress.IPv4Network, count: int, first: int = 1) -> list[str]:
    """`count` distinct usable host addresses of `net` from offset `first` (never the network or
    broadcast address)."""
    offsets = draw(st.lists(st.integers(first, net.num_addresses - 2), min_size=count, max_size=count, unique=True))
    return [str(net.network_address + offset) for offset in offsets]


def _maybe(draw: st.DrawFn, target: dict[str, Any], key: str, value: Any) -> None:
    """Set an optional key, or leave it out so its default is exercised."""
    if draw(st.booleans()):
        target[key] = value


@st.composite
def _vm_plan(draw: st.DrawFn, cp_count: int) -> tuple[int, list[int | None]]:
    """How many hypervisors, and which one (or None = bare metal) each control-plane node is on."""
    layout = draw(st.sampled_from(["vm", "bare", "mixed"]))
    if layout == "bare":
        return 0, [None] * cp_count
    hv_count = draw(st.integers(1, 5))
    on_hv = st.integers(0, hv_count - 1)
    placement = st.one_of(st.none(), on_hv) if layout == "mixed" else on_hv
    return hv_count, draw(st.lists(placement, min_size=cp_count, max_size=cp_count))


def _vm_sizes(draw: st.DrawFn) -> dict[str, Any]:
    # The static pods need 2 vCPUs beyond reservedCpus (default 1) and 5 GiB (topology/sizing.py).
    spare, min_memory = minimum_node()
    cpus = draw(st.integers(spare + 1, 8))
    sizes: dict[str, Any] = {"cpus": cpus, "memoryGiB": draw(st.integers(min_memory, 32))}
    _maybe(draw, sizes, "osDiskGiB", draw(st.integers(10, 200)))
    _maybe(draw, sizes, "etcdDiskGiB", draw(st.integers(1, 100)))
    reserved = draw(st.sets(st.integers(0, cpus - 1), min_size=1, max_size=cpus - spare))
    _maybe(draw, sizes, "reservedCpus", format_cpuset(sorted(reserved)))
    return sizes


def _bare_metal_sizes(draw: st.DrawFn) -> dict[str, Any]:
    """A bare-metal control-plane node's declared size, or none (it is then taken as ASSUMED_BARE_METAL)."""
    spare, min_memory = minimum_node()
    sizes: dict[str, Any] = {}
    _maybe(draw, sizes, "cpus", draw(st.integers(spare + 1, 64)))
    _maybe(draw, sizes, "memoryGiB", draw(st.integers(min_memory, 512)))
    cpus = sizes.get("cpus", ASSUMED_BARE_METAL[0])
    # Some, not all, CPUs reserved, leaving the static pods `spare` of them; undeclared, any core numbers.
    cores = st.integers(0, cpus - 1) if "cpus" in sizes else st.integers(0, 63)
    reserved = draw(st.sets(cores, min_size=1, max_size=cpus - spare))
    _maybe(draw, sizes, "reservedCpus", format_cpuset(sorted(reserved)))
    return sizes


def _hypervisor(draw: st.DrawFn, name: str, address: str, vms: list[dict[str, Any]]) -> dict[str, Any]:
    """A hypervisor big enough for `vms`, pinning each VM to cores of its own (sets their pinnedCpus)."""
    reserved_count = draw(st.integers(1, 4))
    cpus = reserved_count + sum(vm["cpus"] for vm in vms) + draw(st.integers(0, 8))
    cores = draw(st.permutations(range(cpus)))
    taken = reserved_count
    for vm in vms:
        vm["pinnedCpus"] = format_cpuset(cores[taken:taken + vm["cpus"]])
        taken += vm["cpus"]
    reserved_memory = draw(st.integers(0, 16))
    hv: dict[str, Any] = {
        "name": name, "address": address, "cpus": cpus, "reservedCpus": format_cpuset(cores[:reserved_count]),
        "memoryGiB": reserved_memory + sum(vm["memoryGiB"] for vm in vms) + draw(st.integers(1, 64)),
        "reservedMemoryGiB": reserved_memory,
        "pools": [{"name": "general", "path": "/var/lib/libvirt/images", "role": "general"}],
        "bridges": {"nodes": draw(if_names)},
    }
    if vms or draw(st.booleans()):
        cp_pool = {"name": "cp", "path": "/var/lib/hakube/cp", "role": "controlPlane"}
        hv["pools"].insert(draw(st.integers(0, 1)), cp_pool)
        hv["bridges"]["controlPlane"] = draw(if_names)
    return hv


def _load_balancer(draw: st.DrawFn, placement: str, names: list[str], addresses: list[str],
                   cp_nodes: list[dict[str, Any]]) -> dict[str, Any]:
    if placement == "stacked":
        chosen = draw(st.lists(st.sampled_from(cp_nodes), min_size=2, max_size=len(cp_nodes), unique_by=id))
        nodes = [{"name": cp["name"]} for cp in chosen]
        for node, cp in zip(nodes, chosen, strict=True):
            _maybe(draw, node, "address", cp["address"])  # stacked nodes may repeat their own address
    else:
        nodes = [{"name": name, "address": address} for name, address in zip(names, addresses, strict=True)]
    priorities = draw(st.lists(st.integers(1, 254), min_size=len(nodes), max_size=len(nodes), unique=True))
    for node, priority in zip(nodes, priorities, strict=True):
        node["priority"] = priority
        _maybe(draw, node, "interface", draw(if_names))
    vrrp: dict[str, Any] = {"routerId": draw(st.integers(1, 255))}
    _maybe(draw, vrrp, "advertIntervalMs", 10 * draw(st.integers(1, 4095)))
    _maybe(draw, vrrp, "preempt", draw(st.booleans()))
    lb: dict[str, Any] = {"vrrp": vrrp, "nodes": nodes}
    if placement == "stacked" or draw(st.booleans()):
        lb["placement"] = placement
    return lb


def _networks(draw: st.DrawFn) -> tuple[dict[str, Any], ipaddress.IPv4Network, ipaddress.IPv4Network]:
    # Hosts in 198.18.0.0/16, control-plane NICs in 198.19.0.0/16, pods and services in 10/8 halves.
    node_net = _subnet(draw, "198.18.0.0/16", draw(st.integers(20, 26)))
    cp_net = _subnet(draw, "198.19.0.0/16", draw(st.integers(24, 28)))
    network: dict[str, Any] = {"nodeCidr": str(node_net), "controlPlaneCidr": str(cp_net)}
    if draw(st.booleans()):
        network["podCidr"] = str(_subnet(draw, "10.0.0.0/9", draw(st.integers(12, 18))))
        network["serviceCidr"] = str(_subnet(draw, "10.128.0.0/9", draw(st.integers(12, 20))))
    return network, node_net, cp_net


def _ports(draw: st.DrawFn, placement: str) -> tuple[dict[str, Any], int | None]:
    """apiEndpoint port (None = default 6443) and controlPlane.apiserverPort (None = default)."""
    endpoint = draw(st.one_of(st.none(), ports))
    apiserver = draw(st.one_of(st.none(), ports))
    effective_endpoint = 6443 if endpoint is None else endpoint
    if placement == "stacked" and (6444 if apiserver is None else apiserver) == effective_endpoint:
        apiserver = 6444 if effective_endpoint != 6444 else 6445
    return ({} if endpoint is None else {"port": endpoint}), apiserver


@st.composite
def clusters(draw: st.DrawFn, max_workers: int = 20) -> dict[str, Any]:
    """A valid `hakube:cluster` value."""
    cp_count = draw(st.sampled_from([1, 3, 5]))
    hv_count, on_hv = draw(_vm_plan(cp_count))
    placement = "external" if cp_count == 1 else draw(st.sampled_from(["external", "stacked"]))
    lb_count = 2 if placement == "external" else 0
    worker_count = draw(st.integers(0, max_workers))
    network, node_net, cp_net = _networks(draw)

    host_count = hv_count + cp_count + lb_count + worker_count
    names = draw(st.lists(dns_labels, min_size=host_count + 1, max_size=host_count + 1, unique=True))
    # From offset 2: the first address is the nodes network's gateway (control-plane VMs route via it).
    addresses = _hosts(draw, node_net, host_count + 1, first=2)  # the last one is the VIP
    cp_addresses = _hosts(draw, cp_net, cp_count)

    cp_nodes: list[dict[str, Any]] = []
    for i in range(cp_count):
        node: dict[str, Any] = {"name": names[hv_count + i], "address": addresses[hv_count + i],
                                "controlPlaneAddress": cp_addresses[i]}
        if on_hv[i] is not None:
            node["hypervisor"] = names[on_hv[i]]
            node.update(_vm_sizes(draw))
        else:
            node.update(_bare_metal_sizes(draw))
        _maybe(draw, node, "memoryManager", draw(st.sampled_from(["none", "static"])))
        cp_nodes.append(node)
    hypervisors = [
        _hypervisor(draw, names[h], addresses[h], [cp for cp, at in zip(cp_nodes, on_hv, strict=True) if at == h])
        for h in range(hv_count)
    ]
    first_lb = hv_count + cp_count
    lb = _load_balancer(draw, placement, names[first_lb:first_lb + lb_count],
                        addresses[first_lb:first_lb + lb_count], cp_nodes)
    first_worker = first_lb + lb_count
    workers = []
    for name, address in zip(names[first_worker:host_count], addresses[first_worker:host_count], strict=True):
        worker: dict[str, Any] = {"name": name, "address": address}
        _maybe(draw, worker, "reservedCpus", format_cpuset(sorted(draw(st.sets(st.integers(0, 127), min_size=1)))))
        _maybe(draw, worker, "labels", draw(st.dictionaries(label_text, label_text, max_size=3)))
        _maybe(draw, worker, "memoryManager", draw(st.sampled_from(["none", "static"])))
        workers.append(worker)

    endpoint, apiserver_port = _ports(draw, placement)
    control_plane: dict[str, Any] = {"nodes": cp_nodes}
    if apiserver_port is not None:
        control_plane["apiserverPort"] = apiserver_port
    profile = "edge" if not hypervisors and draw(st.booleans()) else "standard"
    if profile == "edge":
        _maybe(draw, control_plane, "schedulable", draw(st.booleans()))
    minor = draw(st.sampled_from([m.minor for m in SUPPORTED]))
    ssh: dict[str, Any] = {"user": draw(logins)}
    _maybe(draw, ssh, "port", draw(st.integers(1, 65535)))
    if hypervisors:
        ssh["authorizedKey"] = AUTHORIZED_KEY
    cluster: dict[str, Any] = {
        "name": names[-1],
        "ssh": ssh,
        "network": network,
        "apiEndpoint": {"vip": addresses[-1], **endpoint},
        "loadBalancer": lb,
        "controlPlane": control_plane,
    }
    _maybe(draw, cluster, "kubernetesVersion", f"1.{minor}.{draw(st.integers(0, 30))}")
    if profile == "edge" or draw(st.booleans()):
        cluster["profile"] = profile
    if hypervisors or draw(st.booleans()):
        cluster["hypervisors"] = hypervisors
    if workers or draw(st.booleans()):
        cluster["workers"] = workers
    addons: dict[str, Any] = {}
    _maybe(draw, addons, "cni", draw(st.sampled_from(["calico", "cilium", "flannel"])))
    _maybe(draw, addons, "smokeTest", draw(st.booleans()))
    _maybe(draw, addons, "gateway", {"enabled": draw(st.booleans())})
    _maybe(draw, cluster, "addons", addons)
    return cluster


def cluster_models(max_workers: int = 20) -> st.SearchStrategy[Cluster]:
    """Valid topologies as loaded `Cluster` objects."""
    return clusters(max_workers=max_workers).map(load_cluster)


def stack_documents(cluster: st.SearchStrategy[dict[str, Any]] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """A whole Pulumi stack file (`config:` -> `hakube:cluster:`) around a valid cluster."""
    return (clusters() if cluster is None else cluster).map(lambda c: {"config": {"hakube:cluster": c}})


# --- mutations: random damage to a valid value

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.integers(-2, 70000),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["", "0-1", "2-5,x", "198.18.0.5", "198.18.0.0/24", "1.37.2", "eth0", "calico",
                     "stacked", "controlPlane", "hv1", "cp1", "lb1", "w1", "/var/lib/hakube/cp", "\t", "a" * 300]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.text(max_size=8), scalars), inner, max_size=3)),
    max_leaves=8)

Path = tuple[str | int, ...]


def _paths(value: Any, here: Path = ()) -> list[Path]:
    """Every location inside a nested dict/list value (the root excluded)."""
    found: list[Path] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append((*here, key))
        found.extend(_paths(child, (*here, key)))
    return found


def _containers(value: Any, here: Path = ()) -> list[Path]:
    found = [here] if isinstance(value, dict | list) else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.extend(_containers(child, (*here, key)))
    return found


def _at(value: Any, path: Path) -> Any:
    for step in path:
        value = value[step]
    return value


def _retyped(old: Any) -> Any:
    """The same content in the wrong type: "4" for 4, 4 for "4", [x] for x, and so on."""
    if isinstance(old, bool):
        return str(old).lower()
    if isinstance(old, int | float):
        return str(old)
    if isinstance(old, str):
        return int(old) if old.isdigit() else [old]
    if isinstance(old, list):
        return {str(i): item for i, item in enumerate(old)}
    if isinstance(old, dict):
        return list(old.values())
    return 0


@st.composite
def _mutate_once(draw: st.DrawFn, data: dict[str, Any]) -> None:
    kind = draw(st.sampled_from(["delete", "retype", "unknown-key", "replace", "duplicate"]))
    if kind in ("unknown-key", "duplicate"):
        where = draw(st.sampled_from(_containers(data)))
        target = _at(data, where)
        if isinstance(target, dict) and kind == "unknown-key":
            near = str(draw(st.sampled_from([*target.keys(), "x"])))
            target[draw(st.sampled_from([f"{near}s", near.lower(), near.upper(), "extra"]))] = draw(values)
            return
        if isinstance(target, list) and target:
            target.insert(draw(st.integers(0, len(target))), copy.deepcopy(draw(st.sampled_from(target))))
            return
        if isinstance(target, dict) and target:  # a duplicate key would be a YAML error: copy a value over
            keys = sorted(target, key=str)
            target[draw(st.sampled_from(keys))] = copy.deepcopy(target[draw(st.sampled_from(keys))])
            return
    paths = _paths(data)
    if not paths:
        return
    path = draw(st.sampled_from(paths))
    parent, last = _at(data, path[:-1]), path[-1]
    if kind == "delete":
        del parent[last]
    elif kind == "retype":
        parent[last] = _retyped(parent[last])
    else:
        parent[last] = draw(values)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]] | None = None,
            max_mutations: int = 3) -> dict[str, Any]:
    """A valid cluster value (from `base`, default `clusters()`) after 1-`max_mutations` random edits."""
    data = copy.deepcopy(draw(clusters(max_workers=4) if base is None else base))
    for _ in range(draw(st.integers(1, max_mutations))):
        draw(_mutate_once(data))
    return data


# -- pod specs for the control-plane isolation predicate (CEL, its Python twin, the pack) --------

_ISOLATION_KEYS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master", "zone", "")


@st.composite
def _toleration(draw: st.DrawFn) -> dict[str, Any]:
    toleration: dict[str, Any] = {}
    _maybe(draw, toleration, "key", draw(st.sampled_from(_ISOLATION_KEYS)))
    _maybe(draw, toleration, "operator", draw(st.sampled_from(("Exists", "Equal"))))
    _maybe(draw, toleration, "effect", draw(st.sampled_from(("NoSchedule", "NoExecute"))))
    return toleration


_expressions = st.lists(st.fixed_dictionaries({
    "key": st.sampled_from(_ISOLATION_KEYS[:3]),
    "operator": st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")),
}), max_size=3)
_terms = st.lists(st.one_of(st.just({}), st.fixed_dictionaries({"matchExpressions": _expressions})), max_size=2)


@st.composite
def _node_affinity(draw: st.DrawFn) -> dict[str, Any]:
    affinity: dict[str, Any] = {}
    _maybe(draw, affinity, "requiredDuringSchedulingIgnoredDuringExecution", {"nodeSelectorTerms": draw(_terms)})
    _maybe(draw, affinity, "preferredDuringSchedulingIgnoredDuringExecution",
           [{"weight": 1, "preference": term} for term in draw(_terms)])
    return affinity


@st.composite
def isolation_pod_specs(draw: st.DrawFn) -> dict[str, Any]:
    """Pod specs in the shapes the API server admits: tolerations with or without key, operator
    and effect; nodeSelector and node affinity on control-plane and other keys."""
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx"}]}
    _maybe(draw, spec, "tolerations", draw(st.lists(_toleration(), max_size=3)))
    _maybe(draw, spec, "nodeSelector", dict.fromkeys(draw(st.sets(st.sampled_from(_ISOLATION_KEYS[:3]), max_size=2)),
                                                     ""))
    affinity = draw(st.one_of(st.none(), st.just({"podAntiAffinity": {}}), _node_affinity().map(
        lambda node: {"nodeAffinity": node})))
    if affinity is not None:
        spec["affinity"] = affinity
    return spec
