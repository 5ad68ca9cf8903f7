"""The load-balancer pair: its props and the rendered keepalived.conf and haproxy.cfg."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._data import Resource, Stack, Violation, as_int
from ._engine import MANDATORY, Policy, Scope, stack_policy
from .contract import FILE_DROP, HYPERVISOR, LB_HOST, LB_PAIR, NODE
from .kubeadm import apiserver_bind_port


def _drops(stack: Stack, suffix: str) -> list[Resource]:
    drops = [d for d in stack.of_type(FILE_DROP) if str(d.props.get("path") or "").endswith(suffix)]
    return sorted(drops, key=lambda d: d.name)  # registration order varies; reports should not


def keepalived_facts(text: str) -> dict[str, Any]:
    """priority, virtual_router_id, unicast_src_ip and the VIPs of a rendered keepalived.conf."""
    lines = [ln.split("!")[0].split("#")[0].strip() for ln in str(text).splitlines()]
    facts: dict[str, Any] = {"vips": []}
    in_vips = False
    for line in lines:
        words = line.split()
        if not words:
            continue
        if in_vips:
            if words[0] == "}":
                in_vips = False
            else:
                facts["vips"].append(words[0].split("/")[0])
        elif words[0] == "virtual_ipaddress":
            in_vips = True
        elif words[0] in ("priority", "virtual_router_id", "unicast_src_ip") and len(words) > 1:
            facts[words[0]] = words[1]
    return facts


def lb_redundancy(stack: Stack) -> list[Violation]:
    """At least two LB nodes, on distinct hosts, each running HAProxy and keepalived."""
    out = []
    for pair in stack.of_type(LB_PAIR):
        hosts = stack.children(pair, LB_HOST)
        nodes = [n for n in pair.props.get("nodes") or [] if isinstance(n, Mapping)]
        if min(len(hosts), len(nodes)) < 2:
            out.append(Violation(pair.urn, f"{pair.name}: {min(len(hosts), len(nodes))} LB node(s); a VIP needs two"))
        for key in ("host", "address"):
            values = [str(h.props.get(key)) for h in hosts]
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                out.append(Violation(pair.urn, f"{pair.name}: LB nodes share {key} {', '.join(dupes)}"))
        for host in hosts:
            paths = {str(d.props.get("path")) for d in stack.children(host, FILE_DROP)}
            missing = [d for d in ("haproxy.cfg", "keepalived.conf") if not any(p.endswith(d) for p in paths)]
            if missing:
                out.append(Violation(host.urn, f"{host.name}: no {' or '.join(missing)} dropped on this LB node"))
    return out


def lb_priorities(stack: Stack) -> list[Violation]:
    """The VRRP priorities in the rendered keepalived.conf files are distinct within a router id."""
    seen: dict[tuple[str, str], str] = {}
    out = []
    for drop in _drops(stack, "keepalived.conf"):
        facts = keepalived_facts(drop.props.get("content") or "")
        if "priority" not in facts:
            out.append(Violation(drop.urn, f"{drop.name}: keepalived.conf sets no priority"))
            continue
        key = (facts.get("virtual_router_id", "?"), facts["priority"])
        other = seen.setdefault(key, drop.name)
        if other != drop.name:
            out.append(Violation(drop.urn, f"{drop.name}: priority {facts['priority']} equals {other}'s "
                                           f"(virtual_router_id {key[0]}): VRRP needs distinct priorities"))
    return out


def _host_addresses(stack: Stack) -> dict[str, str]:
    """Every address a host holds (address -> owner), from the components and the rendered files."""
    owners: dict[str, str] = {}
    for r in stack.of_type(NODE) + stack.of_type(HYPERVISOR) + stack.of_type(LB_HOST):
        if r.props.get("address"):
            owners.setdefault(str(r.props["address"]), r.name)
    for pair in stack.of_type(LB_PAIR):
        for node in pair.props.get("nodes") or []:
            if isinstance(node, Mapping) and node.get("address"):
                owners.setdefault(str(node["address"]), str(node.get("name")))
    for drop in _drops(stack, "keepalived.conf"):
        src = keepalived_facts(drop.props.get("content") or "").get("unicast_src_ip")
        if src:
            owners.setdefault(src, str(drop.props.get("host") or drop.name))
    return owners


def lb_vip(stack: Stack) -> list[Violation]:
    """The VIP is the pair's, the same in every keepalived.conf, and no host's own address."""
    owners = _host_addresses(stack)
    out = []
    for pair in stack.of_type(LB_PAIR):
        vip = str(pair.props.get("vip") or "")
        if vip in owners:
            out.append(Violation(pair.urn, f"{pair.name}: VIP {vip} is the address of {owners[vip]}"))
    pair_vips = {str(p.props.get("vip")) for p in stack.of_type(LB_PAIR)}
    for drop in _drops(stack, "keepalived.conf"):
        vips = keepalived_facts(drop.props.get("content") or "")["vips"]
        if not vips:
            out.append(Violation(drop.urn, f"{drop.name}: keepalived.conf holds no virtual_ipaddress"))
        for vip in vips:
            if vip in owners:
                out.append(Violation(drop.urn, f"{drop.name}: VIP {vip} is the address of {owners[vip]}"))
            elif pair_vips and vip not in pair_vips:
                out.append(Violation(drop.urn, f"{drop.name}: VIP {vip} is not the pair's ({', '.join(pair_vips)})"))
    return out


def haproxy_bind_ports(text: str) -> set[int]:
    """Ports of every `bind` line in a haproxy.cfg (`bind 198.18.0.100:6443`, `bind :6443,:8443 ...`)."""
    ports: set[int] = set()
    for line in str(text).splitlines():
        words = line.split("#")[0].split()
        if len(words) >= 2 and words[0] == "bind":
            for address in words[1].split(","):
                port = address.rpartition(":")[2]
                low, _, high = port.partition("-")
                if low.isdigit():
                    ports.update(range(int(low), int(high or low) + 1))
    return ports


def lb_stacked_ports(stack: Stack) -> list[Violation]:
    """On a host running both, HAProxy never binds kube-apiserver's port."""
    declared = {as_int(p.props.get("apiserverPort")) for p in stack.of_type(LB_PAIR)} - {None}
    nodes = {n.name: n for n in stack.of_type(NODE)}
    out = []
    for drop in _drops(stack, "haproxy.cfg"):
        node = nodes.get(str(drop.props.get("host")))
        if node is None or node.props.get("role") != "control-plane":
            continue
        port = apiserver_bind_port(stack.kubeadm_docs(node))
        ports = {port} if port is not None else declared
        clash = sorted(haproxy_bind_ports(drop.props.get("content") or "") & ports)
        if clash:
            source = "its kubeadm config" if port is not None else "the pair's apiserverPort"
            out.append(Violation(drop.urn, f"{drop.name}: HAProxy binds port {clash[0]} on {node.name}, which is "
                                           f"kube-apiserver's bind port ({source})"))
    return out


_LB = Scope((LB_PAIR, LB_HOST))
POLICIES: list[Policy] = [
    stack_policy("lb-redundancy", "At least two LB nodes on distinct hosts, each with HAProxy and keepalived.",
                 lb_redundancy, MANDATORY, _LB),
    stack_policy("lb-vrrp-priorities", "The keepalived.conf files give each LB node a distinct VRRP priority.",
                 lb_priorities, MANDATORY, _LB),
    stack_policy("lb-vip", "The VIP is the pair's in every keepalived.conf and no host's own address.",
                 lb_vip, MANDATORY, _LB),
    stack_policy("lb-stacked-ports", "On a node running both, HAProxy never binds kube-apiserver's bind port.",
                 lb_stacked_ports, MANDATORY, _LB),
]
