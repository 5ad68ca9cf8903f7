"""The topology model: every structural and cross-field rule refuses its bad input with the exact line.

Each case edits a deep copy of a committed stack's `hakube:cluster` (dev: 3 control-plane VMs on
hv1-hv3, external LB pair, 3 workers; edge: 3 bare-metal nodes with a stacked LB pair) and
asserts the complete list of lines the loader reports, path first.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dryrun.mockrun import REPO
from topology import ROOT, Cluster, TopologyError, load_cluster, load_stack_file, read_stack_file
from topology.rules import RULES

STACKS = {name: read_stack_file(REPO / f"Pulumi.{name}.yaml")[ROOT] for name in ("dev", "edge", "prod")}
R = ROOT
DNS = ("is not a DNS label (lower-case letters, digits and '-', 1-63 characters, starting and ending"
       " with a letter or digit)")
IFNAME = "is not a Linux interface name (1-15 characters, no '/', ':' or spaces)"
LOGIN = "is not a login name (1-32 characters, no spaces, ':' or '@', no leading '-')"
VM_ONLY = "only control-plane VMs (with `hypervisor`) take this field"
VM_SIZES = ("cpus", "pinnedCpus", "memoryGiB")
SAME_PORT = "equals apiEndpoint.port; stacked HAProxy and kube-apiserver would bind the same port"
DELETE = object()
REGISTRY_HOST = "is not a registry host name (lower-case host[:port], e.g. docker.io or registry.site.example:5000)"
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [key if key else int(index) for key, index in _STEP.findall(path)]


def edited(stack: str, edits: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a stack's cluster value with `edits` applied: {"a.b[1].c": value}.

    A value may be DELETE (drop the key) or a callable (receives the old value, returns the new).
    """
    data = copy.deepcopy(STACKS[stack])
    for path, value in edits.items():
        *parents, last = _steps(path)
        holder = data
        for step in parents:
            holder = holder[step]
        if value is DELETE:
            del holder[last]
        elif callable(value):
            holder[last] = value(holder[last])
        else:
            holder[last] = copy.deepcopy(value)
    return data


def refused(data: object) -> list[str]:
    with pytest.raises(TopologyError) as error:
        load_cluster(data)
    assert str(error.value) == "\n".join(error.value.lines)
    return error.value.lines


def appended(item: dict[str, Any]) -> Callable[[list[Any]], list[Any]]:
    return lambda items: [*items, item]


def bare_cp(n: int, net: str = "198.18.0", cp_net: str = "198.18.1") -> dict[str, Any]:
    return {"name": f"cp{n}", "address": f"{net}.{20 + n}", "controlPlaneAddress": f"{cp_net}.{20 + n}"}


# (id, stack, edits, exact lines)
Case = tuple[str, str, dict[str, Any], list[str]]
CASES: list[Case] = [
    # --- DNS labels: host names, references to them, and the cluster name
    ("host-name-underscore", "dev", {"workers[1].name": "w_2"}, [f"{R}.workers[1].name: 'w_2' {DNS}"]),
    ("host-name-upper", "dev", {"hypervisors[0].name": "HV1"}, [f"{R}.hypervisors[0].name: 'HV1' {DNS}"]),
    ("host-name-64", "dev", {"workers[0].name": "a" * 64}, [f"{R}.workers[0].name: '{'a' * 64}' {DNS}"]),
    ("host-name-leading-dash", "dev", {"loadBalancer.nodes[0].name": "-lb1"},
     [f"{R}.loadBalancer.nodes[0].name: '-lb1' {DNS}"]),
    ("host-name-trailing-dash", "edge", {"controlPlane.nodes[2].name": "edge3-"},
     [f"{R}.controlPlane.nodes[2].name: 'edge3-' {DNS}"]),
    ("host-name-empty", "edge", {"controlPlane.nodes[0].name": ""}, [f"{R}.controlPlane.nodes[0].name: '' {DNS}"]),
    ("host-name-dotted", "dev", {"workers[2].name": "w3.example"}, [f"{R}.workers[2].name: 'w3.example' {DNS}"]),
    ("hypervisor-reference", "dev", {"controlPlane.nodes[0].hypervisor": "hv.1"},
     [f"{R}.controlPlane.nodes[0].hypervisor: 'hv.1' {DNS}"]),
    ("pool-name", "dev", {"hypervisors[1].pools[0].name": "CP"}, [f"{R}.hypervisors[1].pools[0].name: 'CP' {DNS}"]),
    ("cluster-name", "dev", {"name": "dev_1"}, [f"{R}.name: 'dev_1' {DNS}"]),
    ("cluster-name-trailing-newline", "dev", {"name": "dev\n"}, [f"{R}.name: 'dev\\n' {DNS}"]),
    # --- names unique across every role
    ("name-worker-is-cp", "dev", {"workers[2].name": "cp1"},
     [f"{R}.workers[2].name: cp1 is already used by controlPlane.nodes[0]"]),
    ("name-lb-is-hypervisor", "dev", {"loadBalancer.nodes[1].name": "hv2"},
     [f"{R}.loadBalancer.nodes[1].name: hv2 is already used by hypervisors[1]"]),
    ("name-cp-is-hypervisor", "dev", {"controlPlane.nodes[0].name": "hv1"},
     [f"{R}.controlPlane.nodes[0].name: hv1 is already used by hypervisors[0]"]),
    ("name-worker-twice", "dev", {"workers[1].name": "w1"}, [f"{R}.workers[1].name: w1 is already used by workers[0]"]),
    ("name-edge-worker-is-cp", "edge", {"workers": [{"name": "edge2", "address": "198.18.4.41"}]},
     [f"{R}.workers[0].name: edge2 is already used by controlPlane.nodes[1]"]),
    # --- addresses unique
    ("address-worker-twice", "dev", {"workers[1].address": "198.18.0.41"},
     [f"{R}.workers[1].address: 198.18.0.41 is already the address of w1"]),
    ("address-lb-is-hypervisor", "dev", {"loadBalancer.nodes[0].address": "198.18.0.31"},
     [f"{R}.loadBalancer.nodes[0].address: 198.18.0.31 is already the address of hv1"]),
    # Hosts are checked hypervisors, control plane, workers, LB: the later entry carries the line.
    ("address-cp-is-worker", "dev", {"controlPlane.nodes[2].address": "198.18.0.43"},
     [f"{R}.workers[2].address: 198.18.0.43 is already the address of cp3"]),
    ("cp-address-twice", "dev", {"controlPlane.nodes[1].controlPlaneAddress": "198.18.1.21"},
     [f"{R}.controlPlane.nodes[1].controlPlaneAddress: 198.18.1.21 is already used by cp1"]),
    ("cp-address-is-node-address", "dev", {"controlPlane.nodes[0].controlPlaneAddress": "198.18.0.41"},
     [f"{R}.controlPlane.nodes[0].controlPlaneAddress: 198.18.0.41 is already the address of w1",
      f"{R}.controlPlane.nodes[0].controlPlaneAddress: 198.18.0.41 is outside network.controlPlaneCidr 198.18.1.0/24"]),
    # --- addresses inside their networks
    ("worker-outside-node-cidr", "dev", {"workers[0].address": "198.18.2.41"},
     [f"{R}.workers[0].address: 198.18.2.41 is outside network.nodeCidr 198.18.0.0/24"]),
    ("hypervisor-outside-node-cidr", "dev", {"hypervisors[2].address": "10.0.0.1"},
     [f"{R}.hypervisors[2].address: 10.0.0.1 is outside network.nodeCidr 198.18.0.0/24"]),
    ("lb-outside-node-cidr", "dev", {"loadBalancer.nodes[1].address": "198.19.0.12"},
     [f"{R}.loadBalancer.nodes[1].address: 198.19.0.12 is outside network.nodeCidr 198.18.0.0/24"]),
    ("edge-outside-node-cidr", "edge", {"controlPlane.nodes[0].address": "198.18.0.21"},
     [f"{R}.controlPlane.nodes[0].address: 198.18.0.21 is outside network.nodeCidr 198.18.4.0/24"]),
    ("address-network", "dev", {"workers[0].address": "198.18.0.0"},
     [f"{R}.workers[0].address: 198.18.0.0 is the network or broadcast address of 198.18.0.0/24"]),
    ("address-broadcast", "dev", {"hypervisors[0].address": "198.18.0.255"},
     [f"{R}.hypervisors[0].address: 198.18.0.255 is the network or broadcast address of 198.18.0.0/24"]),
    ("cp-address-outside", "dev", {"controlPlane.nodes[2].controlPlaneAddress": "198.18.2.23"},
     [f"{R}.controlPlane.nodes[2].controlPlaneAddress: 198.18.2.23 is outside network.controlPlaneCidr 198.18.1.0/24"]),
    ("cp-address-broadcast", "edge", {"controlPlane.nodes[1].controlPlaneAddress": "198.18.5.255"},
     [f"{R}.controlPlane.nodes[1].controlPlaneAddress: 198.18.5.255 is the network or broadcast address of"
      " 198.18.5.0/24"]),
    # --- the VIP
    ("vip-outside-node-cidr", "dev", {"apiEndpoint.vip": "198.18.1.100"},
     [f"{R}.apiEndpoint.vip: 198.18.1.100 is outside network.nodeCidr 198.18.0.0/24"]),
    ("vip-network-address", "dev", {"apiEndpoint.vip": "198.18.0.0"},
     [f"{R}.apiEndpoint.vip: 198.18.0.0 is the network or broadcast address of 198.18.0.0/24"]),
    ("vip-broadcast", "edge", {"apiEndpoint.vip": "198.18.4.255"},
     [f"{R}.apiEndpoint.vip: 198.18.4.255 is the network or broadcast address of 198.18.4.0/24"]),
    ("vip-is-cp", "dev", {"apiEndpoint.vip": "198.18.0.21"},
     [f"{R}.apiEndpoint.vip: 198.18.0.21 is the address of cp1 (controlPlane.nodes[0]); the VIP must be free"]),
    ("vip-is-hypervisor", "dev", {"apiEndpoint.vip": "198.18.0.33"},
     [f"{R}.apiEndpoint.vip: 198.18.0.33 is the address of hv3 (hypervisors[2]); the VIP must be free"]),
    ("vip-is-lb", "dev", {"apiEndpoint.vip": "198.18.0.11"},
     [f"{R}.apiEndpoint.vip: 198.18.0.11 is the address of lb1 (loadBalancer.nodes[0]); the VIP must be free"]),
    ("vip-is-worker", "dev", {"apiEndpoint.vip": "198.18.0.43"},
     [f"{R}.apiEndpoint.vip: 198.18.0.43 is the address of w3 (workers[2]); the VIP must be free"]),
    ("vip-is-stacked-node", "edge", {"apiEndpoint.vip": "198.18.4.22"},
     [f"{R}.apiEndpoint.vip: 198.18.4.22 is the address of edge2 (controlPlane.nodes[1]); the VIP must be free"]),
    # --- networks pairwise disjoint
    ("pod-inside-service", "dev", {"network.podCidr": "10.100.0.0/16"},
     [f"{R}.network.serviceCidr: 10.96.0.0/12 overlaps network.podCidr 10.100.0.0/16"]),
    ("pod-over-host-networks", "dev", {"network.podCidr": "198.18.0.0/16"},
     [f"{R}.network.podCidr: 198.18.0.0/16 overlaps network.nodeCidr 198.18.0.0/24",
      f"{R}.network.podCidr: 198.18.0.0/16 overlaps network.controlPlaneCidr 198.18.1.0/24"]),
    ("service-is-node", "dev", {"network.serviceCidr": "198.18.0.0/24"},
     [f"{R}.network.serviceCidr: 198.18.0.0/24 overlaps network.nodeCidr 198.18.0.0/24"]),
    ("cp-cidr-contains-node", "dev", {"network.controlPlaneCidr": "198.18.0.0/23"},
     [f"{R}.network.controlPlaneCidr: 198.18.0.0/23 overlaps network.nodeCidr 198.18.0.0/24"]),
    ("service-overlaps-default-pod", "edge", {"network.podCidr": DELETE, "network.serviceCidr": "10.244.128.0/17"},
     [f"{R}.network.serviceCidr: 10.244.128.0/17 overlaps network.podCidr 10.244.0.0/16"]),
    # --- kubernetesVersion
    ("version-two-parts", "dev", {"kubernetesVersion": "1.37"},
     [f"{R}.kubernetesVersion: '1.37' is not a full version x.y.z such as 1.37.2"]),
    ("version-v-prefix", "dev", {"kubernetesVersion": "v1.37.2"},
     [f"{R}.kubernetesVersion: 'v1.37.2' is not a full version x.y.z such as 1.37.2"]),
    ("version-prerelease", "dev", {"kubernetesVersion": "1.37.2-rc.0"},
     [f"{R}.kubernetesVersion: '1.37.2-rc.0' is not a full version x.y.z such as 1.37.2"]),
    ("version-leading-zero", "dev", {"kubernetesVersion": "1.037.2"},
     [f"{R}.kubernetesVersion: '1.037.2' is not a full version x.y.z such as 1.37.2"]),
    ("version-1-33", "dev", {"kubernetesVersion": "1.33.9"},
     [f"{R}.kubernetesVersion: 1.33.9 is not supported; supported minors: 1.35, 1.36, 1.37"]),
    ("version-1-34", "edge", {"kubernetesVersion": "1.34.2"},
     [f"{R}.kubernetesVersion: 1.34.2 is not supported; supported minors: 1.35, 1.36, 1.37"]),
    ("version-too-new", "prod", {"kubernetesVersion": "1.38.0"},
     [f"{R}.kubernetesVersion: 1.38.0 is not supported; supported minors: 1.35, 1.36, 1.37"]),
    ("version-major-2", "dev", {"kubernetesVersion": "2.37.0"},
     [f"{R}.kubernetesVersion: 2.37.0 is not supported; supported minors: 1.35, 1.36, 1.37"]),
    ("version-float", "dev", {"kubernetesVersion": 1.37},
     [f"{R}.kubernetesVersion: Input should be a valid string (got 1.37)"]),
    # --- control-plane count: odd, at least one
    ("cp-count-2", "dev", {"controlPlane.nodes": lambda nodes: nodes[:2]},
     [f"{R}.controlPlane.nodes: 2 nodes: etcd needs an odd count (an even one adds no fault tolerance)"]),
    ("cp-count-4", "edge", {"controlPlane.nodes": appended(bare_cp(4, "198.18.4", "198.18.5"))},
     [f"{R}.controlPlane.nodes: 4 nodes: etcd needs an odd count (an even one adds no fault tolerance)"]),
    ("cp-count-0", "dev", {"controlPlane.nodes": []},
     [f"{R}.controlPlane.nodes: at least one control-plane node is needed"]),
    # --- external LB placement
    ("external-three-nodes", "dev",
     {"loadBalancer.nodes": appended({"name": "lb3", "address": "198.18.0.13", "priority": 50})},
     [f"{R}.loadBalancer.nodes: external placement needs exactly 2 nodes, not 3"]),
    ("external-one-node", "dev", {"loadBalancer.nodes": lambda nodes: nodes[:1]},
     [f"{R}.loadBalancer.nodes: external placement needs exactly 2 nodes, not 1"]),
    ("external-lb-is-cp", "dev", {"loadBalancer.nodes[1].name": "cp2"},
     [f"{R}.loadBalancer.nodes[1].name: cp2 is already used by controlPlane.nodes[1]",
      f"{R}.loadBalancer.nodes[1].name: cp2 is a control-plane node; external placement needs dedicated LB nodes"]),
    ("external-no-address", "dev", {"loadBalancer.nodes[0].address": DELETE},
     [f"{R}.loadBalancer.nodes[0].address: required for external placement"]),
    # --- stacked LB placement
    ("stacked-not-cp", "edge", {"loadBalancer.nodes[2].name": "lb9"},
     [f"{R}.loadBalancer.nodes[2].name: lb9 is not a control-plane node; stacked placement runs the LB on them"]),
    ("stacked-on-dedicated-nodes", "dev", {"loadBalancer.placement": "stacked"},
     [f"{R}.loadBalancer.nodes[0].name: lb1 is not a control-plane node; stacked placement runs the LB on them",
      f"{R}.loadBalancer.nodes[1].name: lb2 is not a control-plane node; stacked placement runs the LB on them"]),
    ("stacked-one-node", "edge", {"loadBalancer.nodes": lambda nodes: nodes[:1]},
     [f"{R}.loadBalancer.nodes: stacked placement needs at least 2 control-plane nodes in the pair"]),
    ("stacked-address-differs", "edge", {"loadBalancer.nodes[0].address": "198.18.4.99"},
     [f"{R}.loadBalancer.nodes[0].address: 198.18.4.99 differs from edge1's address 198.18.4.21"]),
    ("stacked-listed-twice", "edge", {"loadBalancer.nodes[2].name": "edge1"},
     [f"{R}.loadBalancer.nodes[2].name: edge1 is listed twice"]),
    ("stacked-same-port", "edge", {"controlPlane.apiserverPort": 6443},
     [f"{R}.controlPlane.apiserverPort: 6443 {SAME_PORT}"]),
    ("stacked-default-port-clash", "edge", {"controlPlane.apiserverPort": DELETE, "apiEndpoint.port": 6444},
     [f"{R}.controlPlane.apiserverPort: 6444 {SAME_PORT}"]),
    # --- VRRP
    ("router-id-0", "dev", {"loadBalancer.vrrp.routerId": 0},
     [f"{R}.loadBalancer.vrrp.routerId: Input should be greater than or equal to 1"]),
    ("router-id-256", "dev", {"loadBalancer.vrrp.routerId": 256},
     [f"{R}.loadBalancer.vrrp.routerId: Input should be less than or equal to 255"]),
    ("router-id-missing", "edge", {"loadBalancer.vrrp.routerId": DELETE},
     [f"{R}.loadBalancer.vrrp.routerId: required key is missing"]),
    ("priorities-equal", "dev", {"loadBalancer.nodes[1].priority": 150},
     [f"{R}.loadBalancer.nodes[1].priority: equals nodes[0].priority (150); the pair needs distinct priorities"]),
    ("priorities-equal-stacked", "edge", {"loadBalancer.nodes[2].priority": 120},
     [f"{R}.loadBalancer.nodes[2].priority: equals nodes[1].priority (120); the pair needs distinct priorities"]),
    ("priority-0", "dev", {"loadBalancer.nodes[0].priority": 0},
     [f"{R}.loadBalancer.nodes[0].priority: Input should be greater than or equal to 1"]),
    ("priority-255", "dev", {"loadBalancer.nodes[0].priority": 255},
     [f"{R}.loadBalancer.nodes[0].priority: Input should be less than or equal to 254"]),
    *[(f"advert-interval-{ms}", "dev", {"loadBalancer.vrrp.advertIntervalMs": ms},
       [f"{R}.loadBalancer.vrrp.advertIntervalMs: {ms}: VRRPv3 adverts are whole centiseconds from 10 to 40950 ms"])
      for ms in (105, 5, 0, -10, 40960)],
    *[(f"interface-{n}", "dev", {"loadBalancer.nodes[1].interface": name},
       [f"{R}.loadBalancer.nodes[1].interface: {name!r} {IFNAME}"])
      for n, name in enumerate(("eth0:1", "a" * 16, "br/0", "eth 0", "", ".", "..", "eth0\n"))],
    ("bridge-name", "dev", {"hypervisors[1].bridges.controlPlane": "br:cp"},
     [f"{R}.hypervisors[1].bridges.controlPlane: 'br:cp' {IFNAME}"]),
    # --- endpoint port
    ("endpoint-port-0", "dev", {"apiEndpoint.port": 0},
     [f"{R}.apiEndpoint.port: Input should be greater than or equal to 1"]),
    ("endpoint-port-65536", "dev", {"apiEndpoint.port": 65536},
     [f"{R}.apiEndpoint.port: Input should be less than or equal to 65535"]),
    ("endpoint-port-30000", "dev", {"apiEndpoint.port": 30000},
     [f"{R}.apiEndpoint.port: 30000 is inside the NodePort range 30000-32767"]),
    ("endpoint-port-32767", "edge", {"apiEndpoint.port": 32767},
     [f"{R}.apiEndpoint.port: 32767 is inside the NodePort range 30000-32767"]),
    ("apiserver-port-nodeport-stacked", "edge", {"controlPlane.apiserverPort": 30001},
     [f"{R}.controlPlane.apiserverPort: 30001 is inside the NodePort range 30000-32767"]),
    ("apiserver-port-nodeport-external", "dev", {"controlPlane.apiserverPort": 31000},
     [f"{R}.controlPlane.apiserverPort: 31000 is inside the NodePort range 30000-32767"]),
    ("endpoint-port-string", "dev", {"apiEndpoint.port": "6443"},
     [f"{R}.apiEndpoint.port: Input should be a valid integer (got '6443')"]),
    # --- control-plane VMs: hypervisor, pinning, vCPU reservation
    ("hypervisor-unknown", "dev", {"controlPlane.nodes[1].hypervisor": "hv9"},
     [f"{R}.controlPlane.nodes[1].hypervisor: hv9 is not a declared hypervisor (hv1, hv2, hv3)"]),
    ("hypervisors-none", "dev", {"hypervisors": []},
     [f"{R}.controlPlane.nodes[{i}].hypervisor: hv{i + 1} is not a declared hypervisor (none declared)"
      for i in range(3)]
     # dev's etcd backup target is hv1 by name.
     + [f"{R}.etcd.snapshots.target.address: required: hv1 is not a hypervisor, worker or LB node of this stack"]),
    ("pinned-syntax", "dev", {"controlPlane.nodes[0].pinnedCpus": "2-5,x"},
     [f"{R}.controlPlane.nodes[0].pinnedCpus: '2-5,x' is not a cpuset: 'x' is not a core number or range like 2-5"]),
    ("pinned-empty", "dev", {"controlPlane.nodes[0].pinnedCpus": ""},
     [f"{R}.controlPlane.nodes[0].pinnedCpus: '' is not a cpuset: empty cpuset"]),
    ("pinned-backwards", "dev", {"controlPlane.nodes[1].pinnedCpus": "5-2"},
     [f"{R}.controlPlane.nodes[1].pinnedCpus: '5-2' is not a cpuset: range 5-2 runs backwards"]),
    ("pinned-repeated", "dev", {"controlPlane.nodes[2].pinnedCpus": "2-5,3"},
     [f"{R}.controlPlane.nodes[2].pinnedCpus: '2-5,3' is not a cpuset: 2-5,3 names a core twice"]),
    ("pinned-int", "dev", {"controlPlane.nodes[0].pinnedCpus": 5},
     [f"{R}.controlPlane.nodes[0].pinnedCpus: Input should be a valid string (got 5)"]),
    ("pinned-size", "dev", {"controlPlane.nodes[0].pinnedCpus": "2-4"},
     [f"{R}.controlPlane.nodes[0].pinnedCpus: 2-4 names 3 cores but cpus is 4"]),
    ("pinned-size-cpus-changed", "dev", {"controlPlane.nodes[1].cpus": 6},
     [f"{R}.controlPlane.nodes[1].pinnedCpus: 2-5 names 4 cores but cpus is 6"]),
    ("pinned-outside-host", "dev", {"controlPlane.nodes[0].pinnedCpus": "14-17"},
     [f"{R}.controlPlane.nodes[0].pinnedCpus: core 16 is outside hv1's cores 0-15"]),
    ("pinned-on-reserved", "dev", {"controlPlane.nodes[0].pinnedCpus": "1-4"},
     [f"{R}.controlPlane.nodes[0].pinnedCpus: 1-4 overlaps hv1's reservedCpus 0-1"]),
    ("pinned-same-cores-as-other-vm", "dev", {"controlPlane.nodes[2].hypervisor": "hv1"},
     [f"{R}.controlPlane.nodes[2].pinnedCpus: 2-5 overlaps cp1 on hypervisor hv1"]),
    ("pinned-one-core-shared", "dev",
     {"controlPlane.nodes[1].hypervisor": "hv1", "controlPlane.nodes[1].pinnedCpus": "5-8"},
     [f"{R}.controlPlane.nodes[1].pinnedCpus: 5-8 overlaps cp1 on hypervisor hv1"]),
    ("pinned-three-vms-one-host", "dev",
     {"controlPlane.nodes[1].hypervisor": "hv1", "controlPlane.nodes[2].hypervisor": "hv1"},
     [f"{R}.controlPlane.nodes[1].pinnedCpus: 2-5 overlaps cp1 on hypervisor hv1",
      f"{R}.controlPlane.nodes[2].pinnedCpus: 2-5 overlaps cp1 on hypervisor hv1",
      f"{R}.controlPlane.nodes[2].pinnedCpus: 2-5 overlaps cp2 on hypervisor hv1"]),
    ("vm-missing-pinning", "dev", {"controlPlane.nodes[0].pinnedCpus": DELETE},
     [f"{R}.controlPlane.nodes[0].pinnedCpus: required for a control-plane VM"]),
    ("vm-missing-sizes", "dev", {f"controlPlane.nodes[2].{key}": DELETE for key in VM_SIZES},
     [f"{R}.controlPlane.nodes[2].{key}: required for a control-plane VM" for key in VM_SIZES]),
    ("vm-reserves-every-vcpu", "dev", {"controlPlane.nodes[0].reservedCpus": "0-3"},
     [f"{R}.controlPlane.nodes[0].reservedCpus: 0-3 must name some, not all, of the VM's vCPUs 0-3"]),
    ("vm-reserves-missing-vcpu", "dev", {"controlPlane.nodes[0].reservedCpus": "4"},
     [f"{R}.controlPlane.nodes[0].reservedCpus: 4 must name some, not all, of the VM's vCPUs 0-3"]),
    # --- room for the control-plane static pods (topology/sizing.py: 2 CPUs beyond reservedCpus, 5 GiB)
    ("vm-too-few-vcpus", "dev", {"controlPlane.nodes[0].cpus": 2, "controlPlane.nodes[0].pinnedCpus": "2-3",
                                 "controlPlane.nodes[0].reservedCpus": "0"},
     [f"{R}.controlPlane.nodes[0].cpus: 2 vCPUs less reservedCpus 0 (1) leave too few for the control-plane"
      " static pods: they need 2 beyond reservedCpus"]),
    ("vm-too-little-memory", "dev", {"controlPlane.nodes[2].memoryGiB": 4},
     [f"{R}.controlPlane.nodes[2].memoryGiB: 4 GiB is too little for the control-plane static pods: they need 5 GiB"]),
    ("bare-metal-reserves-too-many", "edge",
     {"controlPlane.nodes[1].reservedCpus": "0-2", "controlPlane.nodes[1].cpus": DELETE},
     [f"{R}.controlPlane.nodes[1].reservedCpus: the 4 CPUs assumed of a bare-metal control-plane node without"
      " `cpus` less reservedCpus 0-2 (3) leave too few for the control-plane static pods: they need 2 beyond"
      " reservedCpus"]),
    ("bare-metal-too-few-cpus", "edge", {"controlPlane.nodes[0].cpus": 3},
     [f"{R}.controlPlane.nodes[0].cpus: 3 CPUs less reservedCpus 0-1 (2) leave too few for the control-plane"
      " static pods: they need 2 beyond reservedCpus"]),
    ("bare-metal-reserves-every-cpu", "edge", {"controlPlane.nodes[2].reservedCpus": "0-7"},
     [f"{R}.controlPlane.nodes[2].reservedCpus: 0-7 must name some, not all, of the node's CPUs 0-7"]),
    ("bare-metal-too-little-memory", "edge", {"controlPlane.nodes[1].memoryGiB": 4},
     [f"{R}.controlPlane.nodes[1].memoryGiB: 4 GiB is too little for the control-plane static pods: they need"
      " 5 GiB"]),
    ("bare-metal-cpus-not-a-number", "edge", {"controlPlane.nodes[1].cpus": "8"},
     [f"{R}.controlPlane.nodes[1].cpus: Input should be a valid integer (got '8')"]),
    # --- the nodes network's first address routes the control-plane VMs
    ("vm-on-gateway", "dev", {"controlPlane.nodes[1].address": "198.18.0.1"},
     [f"{R}.controlPlane.nodes[1].address: 198.18.0.1 is the first address of network.nodeCidr, the default"
      " gateway of control-plane VMs; give the VM another address"]),
    # --- hypervisor capacity
    ("memory-one-vm-over", "dev", {"controlPlane.nodes[0].memoryGiB": 57},
     [f"{R}.hypervisors[0].memoryGiB: VMs cp1 need 57 GiB but only 56 GiB is free after reservedMemoryGiB"]),
    ("memory-sum-over", "dev",
     {"controlPlane.nodes[1].hypervisor": "hv1", "controlPlane.nodes[1].pinnedCpus": "6-9",
      "controlPlane.nodes[0].memoryGiB": 30, "controlPlane.nodes[1].memoryGiB": 30},
     [f"{R}.hypervisors[0].memoryGiB: VMs cp1, cp2 need 60 GiB but only 56 GiB is free after reservedMemoryGiB"]),
    ("reserved-memory-all", "dev", {"hypervisors[0].reservedMemoryGiB": 64},
     [f"{R}.hypervisors[0].reservedMemoryGiB: 64 leaves no memory of 64 GiB",
      f"{R}.hypervisors[0].memoryGiB: VMs cp1 need 8 GiB but only 0 GiB is free after reservedMemoryGiB"]),
    ("hypervisor-reserved-outside", "dev", {"hypervisors[1].reservedCpus": "0-1,16"},
     [f"{R}.hypervisors[1].reservedCpus: core 16 is outside the host's cores 0-15"]),
    # --- pools and bridges
    ("no-cp-pool", "dev", {"hypervisors[0].pools": lambda pools: pools[1:]},
     [f"{R}.hypervisors[0].pools: needs a pool with role controlPlane: this hypervisor hosts a control-plane VM"]),
    ("no-cp-bridge", "dev", {"hypervisors[2].bridges.controlPlane": DELETE},
     [f"{R}.hypervisors[2].bridges.controlPlane: required: this hypervisor hosts a control-plane VM"]),
    *[(f"pool-shares-storage-{n}", "dev", {"hypervisors[0].pools[1].path": path},
       [f"{R}.hypervisors[0].pools[1].path: {path} shares storage with pool cp-nvme"])
      for n, path in enumerate(("/var/lib/hakube/cp", "/var/lib/hakube/cp/", "/var/lib/hakube/cp/img",
                                "/var/lib/hakube", "/"))],
    ("pool-relative-path", "dev", {"hypervisors[0].pools[1].path": "images"},
     [f"{R}.hypervisors[0].pools[1].path: images is not an absolute path"]),
    ("pool-empty-path", "dev", {"hypervisors[0].pools[1].path": ""},
     [f"{R}.hypervisors[0].pools[1].path: String should have at least 1 character"]),
    ("pool-name-twice", "dev", {"hypervisors[0].pools[1].name": "cp-nvme"},
     [f"{R}.hypervisors[0].pools[1].name: cp-nvme is already pools[0]"]),
    ("two-cp-pools", "dev", {"hypervisors[0].pools[1].role": "controlPlane"},
     [f"{R}.hypervisors[0].pools: declares more than one controlPlane pool"]),
    ("pool-role", "dev", {"hypervisors[0].pools[1].role": "etcd"},
     [f"{R}.hypervisors[0].pools[1].role: Input should be 'controlPlane' or 'general' (got 'etcd')"]),
    # --- bare-metal control-plane nodes take no VM-only fields (cpus and memoryGiB size them too)
    ("bare-metal-vm-fields", "edge",
     {"controlPlane.nodes[1].pinnedCpus": "2-5", "controlPlane.nodes[1].osDiskGiB": 40,
      "controlPlane.nodes[1].etcdDiskGiB": 20},
     [f"{R}.controlPlane.nodes[1].{key}: {VM_ONLY}" for key in ("pinnedCpus", "osDiskGiB", "etcdDiskGiB")]),
    # --- the control-plane VM image: a digest you give, or a file name to look up in the signed SHA256SUMS
    ("vm-image-url-without-file-name", "dev", {"vmImage": {"url": "https://mirror.invalid/images/"}},
     [f"{R}.vmImage: https://mirror.invalid/images/ does not end in a file name to look up in the SHA256SUMS"
      " beside it; give the image's own URL, or set vmImage.sha256"]),
    ("vm-image-url-with-query", "dev", {"vmImage": {"url": "https://mirror.invalid/noble.img?token=1"}},
     [f"{R}.vmImage: https://mirror.invalid/noble.img?token=1 does not end in a file name to look up in the"
      " SHA256SUMS beside it; give the image's own URL, or set vmImage.sha256"]),
    ("vm-image-digest-upper-case", "dev", {"vmImage": {"sha256": "AB" * 32}},
     [f"{R}.vmImage.sha256: {'AB' * 32!r} is not a SHA-256 digest (64 lower-case hex digits)"]),
    ("vm-image-ftp", "dev", {"vmImage": {"url": "ftp://mirror.invalid/noble.img"}},
     [f"{R}.vmImage.url: 'ftp://mirror.invalid/noble.img' is not an http(s):// or file:// URL without spaces"]),
    # --- workers, ssh, addons, profile
    ("worker-reserved-open-range", "dev", {"workers[0].reservedCpus": "0-"},
     [f"{R}.workers[0].reservedCpus: '0-' is not a cpuset: '0-' is not a core number or range like 2-5"]),
    ("worker-reserved-int", "dev", {"workers[1].reservedCpus": 0},
     [f"{R}.workers[1].reservedCpus: Input should be a valid string (got 0)"]),
    ("worker-reserved-huge", "dev", {"workers[2].reservedCpus": "0-99999999999"},
     [f"{R}.workers[2].reservedCpus: '0-99999999999' is not a cpuset: core 99999999999 is beyond Linux's highest"
      " core number 8191"]),
    *[(f"ssh-user-{n}", "dev", {"ssh.user": user}, [f"{R}.ssh.user: {user!r} {LOGIN}"])
      for n, user in enumerate(("", "ops admin", "-oProxyCommand=x", "ops@host", "a" * 33))],
    ("ssh-user-missing", "dev", {"ssh.user": DELETE}, [f"{R}.ssh.user: required key is missing"]),
    ("ssh-user-null", "dev", {"ssh.user": None}, [f"{R}.ssh.user: Input should be a valid string (got None)"]),
    ("ssh-port-0", "dev", {"ssh.port": 0}, [f"{R}.ssh.port: Input should be greater than or equal to 1"]),
    ("ssh-port-65536", "edge", {"ssh.port": 65536}, [f"{R}.ssh.port: Input should be less than or equal to 65535"]),
    ("ssh-port-string", "dev", {"ssh.port": "22"}, [f"{R}.ssh.port: Input should be a valid integer (got '22')"]),
    ("cni-unknown", "dev", {"addons.cni": "weave"},
     [f"{R}.addons.cni: Input should be 'calico', 'cilium' or 'flannel' (got 'weave')"]),
    ("cni-capital", "edge", {"addons.cni": "Calico"},
     [f"{R}.addons.cni: Input should be 'calico', 'cilium' or 'flannel' (got 'Calico')"]),
    ("schedulable-standard", "dev", {"controlPlane.schedulable": True},
     [f"{R}.controlPlane.schedulable: only the edge profile runs workloads on control-plane nodes"
      " (set profile: edge)"]),
    ("edge-with-hypervisor", "edge",
     {"hypervisors": [{**STACKS["dev"]["hypervisors"][0], "address": "198.18.4.31"}]},
     [f"{R}.hypervisors: the edge profile runs bare-metal nodes only"]),
    ("vm-without-authorized-key", "dev", {"ssh.authorizedKey": DELETE},
     [f"{R}.ssh.authorizedKey: required: cloud-init puts this public key into the control-plane VMs"]),
    ("authorized-key-not-openssh", "edge", {"ssh.authorizedKey": "-----BEGIN PUBLIC KEY-----"},
     [f"{R}.ssh.authorizedKey: is not an OpenSSH public key (ssh-ed25519 AAAA... comment)"]),
    # --- strict types: no coercion
    ("cpus-string", "dev", {"controlPlane.nodes[0].cpus": "4"},
     [f"{R}.controlPlane.nodes[0].cpus: Input should be a valid integer (got '4')"]),
    ("cpus-float", "dev", {"controlPlane.nodes[0].cpus": 4.0},
     [f"{R}.controlPlane.nodes[0].cpus: Input should be a valid integer (got 4.0)"]),
    ("cpus-bool", "dev", {"hypervisors[0].cpus": True},
     [f"{R}.hypervisors[0].cpus: Input should be a valid integer (got True)"]),
    ("memory-bool", "dev", {"controlPlane.nodes[0].memoryGiB": False},
     [f"{R}.controlPlane.nodes[0].memoryGiB: Input should be a valid integer (got False)"]),
    ("address-int", "dev", {"workers[0].address": 3323068457},
     [f"{R}.workers[0].address: must be a string such as 198.18.0.10"]),
    ("vip-int", "edge", {"apiEndpoint.vip": 3323069540},
     [f"{R}.apiEndpoint.vip: must be a string such as 198.18.0.10"]),
    ("cidr-int", "dev", {"network.nodeCidr": 3323068416},
     [f"{R}.network.nodeCidr: must be a string such as 198.18.0.0/24 (address/prefix length)"]),
    ("cidr-without-prefix", "dev", {"network.serviceCidr": "10.96.0.0"},
     [f"{R}.network.serviceCidr: must be a string such as 198.18.0.0/24 (address/prefix length)"]),
    ("cidr-host-bits", "dev", {"network.nodeCidr": "198.18.0.1/24"},
     [f"{R}.network.nodeCidr: not an IPv4 network: 198.18.0.1/24 has host bits set"]),
    ("address-octet", "dev", {"workers[0].address": "198.18.0.300"},
     [f"{R}.workers[0].address: not an IPv4 address: Octet 300 (> 255) not permitted in '198.18.0.300'"]),
    ("address-ipv6", "dev", {"apiEndpoint.vip": "2001:db8::1"},
     [f"{R}.apiEndpoint.vip: not an IPv4 address: Expected 4 octets in '2001:db8::1'"]),
    ("bool-string", "dev", {"addons.smokeTest": "yes"},
     [f"{R}.addons.smokeTest: Input should be a valid boolean (got 'yes')"]),
    ("label-value-int", "dev", {"workers[0].labels.zone": 1},
     [f"{R}.workers[0].labels.zone: Input should be a valid string (got 1)"]),
    ("label-key-bool", "dev", {"workers[0].labels": {True: "a"}},
     [f"{R}.workers[0].labels: key True is not a string; quote it"]),
    ("key-null", "dev", {"ssh": lambda s: {**s, None: 1}},
     [f"{R}.ssh: key None is not a string; quote it"]),
    ("name-int", "dev", {"name": 5}, [f"{R}.name: Input should be a valid string (got 5)"]),
    ("section-null", "dev", {"ssh": None}, [f"{R}.ssh: must be a mapping, not null"]),
    ("section-list", "dev", {"network": []}, [f"{R}.network: must be a mapping, not a list"]),
    ("section-string", "dev", {"addons": "calico"}, [f"{R}.addons: must be a mapping, not a string"]),
    ("list-as-mapping", "dev", {"workers": {}}, [f"{R}.workers: Input should be a valid list (got {{}})"]),
    ("list-item-string", "dev", {"workers[1]": "w2"}, [f"{R}.workers[1]: must be a mapping, not a string"]),
    ("long-input-cut-short", "dev", {"ssh.port": "x" * 500},
     [f"{R}.ssh.port: Input should be a valid integer (got '{'x' * 56}...)"]),
    # --- unknown keys: refused with the nearest known key
    ("unknown-ssh-usr", "dev", {"ssh.usr": "ops"}, [f"{R}.ssh.usr: unknown key; did you mean user?"]),
    ("unknown-pinned-case", "dev", {"controlPlane.nodes[0].pinnedCPUs": "2-5"},
     [f"{R}.controlPlane.nodes[0].pinnedCPUs: unknown key; did you mean pinnedCpus?"]),
    ("unknown-top-level", "dev", {"worker": []}, [f"{R}.worker: unknown key; did you mean workers?"]),
    ("unknown-gib-case", "dev", {"hypervisors[0].memoryGib": 64},
     [f"{R}.hypervisors[0].memoryGib: unknown key; did you mean memoryGiB?"]),
    ("unknown-key-newline", "dev", {"ssh.usr\n": "ops"}, [f"{R}.ssh['usr\\n']: unknown key; did you mean user?"]),
    ("label-key-quoted", "dev", {"workers[0].labels": {"kubernetes.io/os": 1}},
     [f"{R}.workers[0].labels['kubernetes.io/os']: Input should be a valid string (got 1)"]),
    ("unknown-no-match", "dev", {"apiEndpoint.zzz": 1}, [f"{R}.apiEndpoint.zzz: unknown key; known keys: vip, port"]),
    # --- MetalLB's L2 pool: inside nodeCidr, clear of hosts, the VIP and itself
    ("upgrade-lane-too-long", "dev",
     {"workers": [{"name": f"x{i}", "address": f"198.18.0.{i}"} for i in [*range(44, 100), *range(101, 246)]]},
     [f"{R}.upgrade.workerParallelism: 1 chains 201 worker upgrades one after another; Pulumi fails on"
      " dependency chains that long: use at least 2 for 201 workers"]),
    ("metallb-no-addresses", "dev", {"addons.metallb": {"enabled": True}},
     [f"{R}.addons.metallb.addresses: required when addons.metallb.enabled is true"]),
    ("metallb-outside", "dev", {"addons.metallb": {"addresses": ["198.18.2.0/29"]}},
     [f"{R}.addons.metallb.addresses[0]: 198.18.2.0/29 is not inside network.nodeCidr 198.18.0.0/24"]),
    ("metallb-hosts", "dev", {"addons.metallb": {"enabled": True, "addresses": ["198.18.0.40-198.18.0.42"]}},
     [f"{R}.addons.metallb.addresses[0]: 198.18.0.40-198.18.0.42 includes 198.18.0.41, the address of w1",
      f"{R}.addons.metallb.addresses[0]: 198.18.0.40-198.18.0.42 includes 198.18.0.42, the address of w2"]),
    ("metallb-vip-broadcast", "dev", {"addons.metallb": {"enabled": True, "addresses": ["198.18.0.96/29",
                                                                                          "198.18.0.0/30"]}},
     [f"{R}.addons.metallb.addresses[0]: 198.18.0.96/29 includes 198.18.0.100, the address of apiEndpoint.vip",
      f"{R}.addons.metallb.addresses[1]: 198.18.0.0/30 includes the network or broadcast address of 198.18.0.0/24"]),
    ("metallb-overlap", "dev", {"addons.metallb": {"enabled": True, "addresses": ["198.18.0.200/29",
                                                                                    "198.18.0.204-198.18.0.210"]}},
     [f"{R}.addons.metallb.addresses[1]: 198.18.0.204-198.18.0.210 overlaps addresses[0]"]),
    ("addons-off-yet-asked-for", "dev", {"addons.enabled": False},
     [f"{R}.addons.smokeTest: is on, but addons.enabled is false: nothing in the cluster is installed",
      f"{R}.addons.gateway.enabled: is on, but addons.enabled is false: nothing in the cluster is installed"]),
    ("metallb-format", "dev", {"addons.metallb": {"addresses": ["198.18.0.201/29", "198.18.0.210-198.18.0.200"]}},
     [f"{R}.addons.metallb.addresses[0]: '198.18.0.201/29' is not a CIDR or an address range: 198.18.0.201/29"
      " has host bits set",
      f"{R}.addons.metallb.addresses[1]: '198.18.0.210-198.18.0.200' is not a CIDR or an address range:"
      " 198.18.0.210 comes after 198.18.0.200"]),
    # --- sites without the internet: registries, images, proxy, charts
    ("mirror-host-not-a-registry", "dev", {"registries": {"mirrors": {"Docker.io": ["https://r.site.example"],
                                                                     "quay.io/x": ["https://r.site.example"]}}},
     [f"{R}.registries.mirrors['Docker.io']: 'Docker.io' {REGISTRY_HOST} or \"*\"",
      f"{R}.registries.mirrors['quay.io/x']: 'quay.io/x' {REGISTRY_HOST} or \"*\""]),
    ("mirror-endpoint-not-a-url", "dev", {"registries": {"mirrors": {"docker.io": ["r.site.example:5000",
                                                                                  "ftp://r.site.example"]}}},
     [f"{R}.registries.mirrors['docker.io'][{i}]: '{url}' is not a registry endpoint URL (https:// or"
      " http://host[:port][/path])" for i, url in enumerate(("r.site.example:5000", "ftp://r.site.example"))]),
    ("mirror-endpoint-credentials", "dev", {"registries": {"mirrors": {"*": ["https://u:p@r.site.example"]}}},
     [f"{R}.registries.mirrors['*'][0]: 'https://u:p@r.site.example' carries credentials; they would land in plain"
      " files (give them as secrets)"]),
    ("mirror-without-endpoints", "dev", {"registries": {"mirrors": {"ghcr.io": []}, "skipFallback": True}},
     [f"{R}.registries.mirrors['ghcr.io']: needs at least one endpoint"]),
    ("skip-fallback-alone", "dev", {"registries": {"skipFallback": True}},
     [f"{R}.registries.skipFallback: has no effect without registries.mirrors"]),
    ("endpoint-settings-unused", "dev", {"registries": {"mirrors": {"docker.io": ["https://a.site.example"]},
                                                        "endpoints": {"https://b.site.example": {"username": "u"}}}},
     [f"{R}.registries.endpoints['https://b.site.example']: is not an endpoint of any registries.mirrors entry,"
      " nor images.repository's registry"]),
    ("endpoint-two-users-one-host", "dev",
     {"registries": {"mirrors": {"docker.io": ["https://a.site.example/hub"], "quay.io": ["https://a.site.example/q"]},
                     "endpoints": {"https://a.site.example/hub": {"username": "u"},
                                   "https://a.site.example/q": {"username": "v"}}}},
     [f"{R}.registries.endpoints['https://a.site.example/q'].username: differs from https://a.site.example/hub's;"
      " containerd logs in to a.site.example as one user"]),
    ("endpoint-bad-settings", "dev",
     {"registries": {"mirrors": {"docker.io": ["https://a.site.example"]},
                     "endpoints": {"https://a.site.example": {"ca": "MIIB", "username": "a:b",
                                                              "passwordSecret": "sshPrivateKey"}}}},
     [f"{R}.registries.endpoints['https://a.site.example'].ca: is not a PEM certificate (-----BEGIN CERTIFICATE-----"
      " ... -----END CERTIFICATE-----)",
      f"{R}.registries.endpoints['https://a.site.example'].username: 'a:b' is not a registry user name (no ':' or"
      " whitespace)",
      f"{R}.registries.endpoints['https://a.site.example'].passwordSecret: 'sshPrivateKey' is not a free hakube"
      " config key name for a secret (letters, digits, '_', '-'; not one of cluster, sshPrivateKey,"
      " etcdBackupSshKey, vrrpPassword)"]),
    ("image-repository-with-scheme", "dev", {"images": {"repository": "https://r.site.example"}},
     [f"{R}.images.repository: 'https://r.site.example' is not an image repository (host[:port][/path], no scheme,"
      " e.g. registry.site.example:5000/k8s)"]),
    ("proxy-bad", "dev", {"proxy": {"http": "proxy.site.example:3128", "https": "http://proxy.site.example:99999",
                                    "noProxy": ["10.0.0.1/8", "10.0.0.0/33", "two words", ".site.example"]}},
     [f"{R}.proxy.http: 'proxy.site.example:3128' is not a proxy URL (http:// or https://host[:port])",
      f"{R}.proxy.https: 'http://proxy.site.example:99999' has a bad port",
      f"{R}.proxy.noProxy[0]: '10.0.0.1/8' is not a CIDR: 10.0.0.1/8 has host bits set",
      f"{R}.proxy.noProxy[1]: '10.0.0.0/33' is not a CIDR: '10.0.0.0/33' does not appear to be an IPv4 or IPv6"
      " network",
      f"{R}.proxy.noProxy[2]: 'two words' is not a host name, domain (.example.com), IP address or CIDR"]),
    ("no-proxy-alone", "dev", {"proxy": {"noProxy": [".site.example"]}},
     [f"{R}.proxy.noProxy: has no effect without proxy.http or proxy.https"]),
    ("chart-repository-bad", "dev", {"charts": {"repository": "charts.site.example", "gatewayApiCrds": "crds.yaml"}},
     [f"{R}.charts.repository: 'charts.site.example' is not a Helm repository URL or OCI registry path (https:// or"
      " http:// or oci://host[:port][/path])",
      f"{R}.charts.gatewayApiCrds: 'crds.yaml' is not an http(s) URL or an absolute path of a manifest (https:// or"
      " http://host[:port][/path])"]),
    # --- missing keys
    ("missing-network", "dev", {"network": DELETE}, [f"{R}.network: required key is missing"]),
    ("missing-vip", "edge", {"apiEndpoint.vip": DELETE}, [f"{R}.apiEndpoint.vip: required key is missing"]),
    ("missing-cp-address", "dev", {"controlPlane.nodes[0].controlPlaneAddress": DELETE},
     [f"{R}.controlPlane.nodes[0].controlPlaneAddress: required key is missing"]),
]


@pytest.mark.parametrize(("stack", "edits", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_with_exact_lines(stack: str, edits: dict[str, Any], expected: list[str]) -> None:
    assert refused(edited(stack, edits)) == expected


def _rules_hit(data: dict[str, Any]) -> set[str]:
    """Names of the cross-field rules that object to `data` (empty if the model itself refuses it)."""
    try:
        cluster = Cluster.model_validate(data)
    except ValueError:
        return set()
    return {rule.__name__ for rule in RULES if list(rule(cluster))}


def test_every_cross_field_rule_has_a_failing_case() -> None:
    """A rule added to topology/rules.py without a case above fails here."""
    hit = set().union(*(_rules_hit(edited(stack, edits)) for _, stack, edits, _ in CASES))
    assert {rule.__name__ for rule in RULES} - hit == set()


def test_config_md_examples_verbatim() -> None:
    """The two error lines CONFIG.md shows users are the lines they get."""
    assert refused(edited("dev", {"loadBalancer.nodes[1].priority": 150})) == [
        "hakube:cluster.loadBalancer.nodes[1].priority: equals nodes[0].priority (150);"
        " the pair needs distinct priorities"]
    assert refused(edited("dev", {"controlPlane.nodes[2].hypervisor": "hv1"})) == [
        "hakube:cluster.controlPlane.nodes[2].pinnedCpus: 2-5 overlaps cp1 on hypervisor hv1"]


def test_several_rule_problems_reported_at_once_one_line_each() -> None:
    data = edited("dev", {"loadBalancer.nodes[1].priority": 150, "workers[1].address": "198.18.0.41",
                          "apiEndpoint.vip": "198.18.0.255", "controlPlane.nodes[2].hypervisor": "hv1",
                          "addons.cni": "flannel"})
    assert refused(data) == [
        f"{R}.workers[1].address: 198.18.0.41 is already the address of w1",
        f"{R}.apiEndpoint.vip: 198.18.0.255 is the network or broadcast address of 198.18.0.0/24",
        f"{R}.loadBalancer.nodes[1].priority: equals nodes[0].priority (150); the pair needs distinct priorities",
        f"{R}.controlPlane.nodes[2].pinnedCpus: 2-5 overlaps cp1 on hypervisor hv1",
    ]


def test_several_structural_problems_reported_at_once_one_line_each() -> None:
    data = edited("dev", {"ssh.port": "22", "workers[1].name": "W2", "loadBalancer.vrrp.routerId": 0,
                          "controlPlane.nodes[0].pinnedCPUs": "2-5", "network.serviceCidr": DELETE})
    assert sorted(refused(data)) == sorted([
        f"{R}.ssh.port: Input should be a valid integer (got '22')",
        f"{R}.workers[1].name: 'W2' {DNS}",
        f"{R}.loadBalancer.vrrp.routerId: Input should be greater than or equal to 1",
        f"{R}.controlPlane.nodes[0].pinnedCPUs: unknown key; did you mean pinnedCpus?",
    ])


def test_unknown_key_lists_known_keys_when_nothing_is_close() -> None:
    (line,) = refused(edited("dev", {"qqqq": 1}))
    assert line.startswith(f"{R}.qqqq: unknown key; known keys: name, profile, kubernetesVersion, ssh, network,")


@pytest.mark.parametrize(("value", "kind"), [([], "a list"), (None, "null"), ("dev", "a string"), (3, "a number")])
def test_cluster_value_must_be_a_mapping(value: object, kind: str) -> None:
    assert refused(value) == [f"{R}: must be a mapping, not {kind}"]


def test_unreadable_stack_files(tmp_path: Path) -> None:
    missing = tmp_path / "Pulumi.none.yaml"
    with pytest.raises(TopologyError) as error:
        load_stack_file(missing)
    assert error.value.lines == [f"{missing}: cannot read: No such file or directory"]
    with pytest.raises(TopologyError) as error:
        load_stack_file(tmp_path)
    assert error.value.lines == [f"{tmp_path}: cannot read: Is a directory"]


@pytest.mark.parametrize(("text", "line"), [
    ("config:\n  hakube:cluster: {}\n  hakube:cluster: {}\n",
     "not valid YAML at line 3: found duplicate key 'hakube:cluster'"),
    ("config:\n  x: \x08\n",
     "not valid YAML at line 2: unacceptable character #x0008: special characters are not allowed"),
    ("config:\n  x: [1\n", "not valid YAML at line 3: expected ',' or ']', but got '<stream end>'"),
    ("- 1\n", "the stack file is a list, not a mapping; expected a mapping with a config: key"),
    ("", "the stack file is empty; expected a mapping with a config: key"),
    ("config: 3\n", "config: must be a mapping holding hakube:cluster"),
])
def test_file_level_problems_name_the_file(tmp_path: Path, text: str, line: str) -> None:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(text)
    with pytest.raises(TopologyError) as error:
        load_stack_file(path)
    assert error.value.lines == [f"{path}: {line}"]


def test_yaml_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """Refusing duplicate keys must not refuse `<<:` merges, whose keys a mapping may override."""
    path = tmp_path / "Pulumi.merge.yaml"
    path.write_text("x-common: &ops { user: ops, port: 2222 }\n"
                    "config:\n  hakube:cluster:\n    ssh: { <<: *ops, port: 22 }\n")
    assert read_stack_file(path)[ROOT] == {"ssh": {"user": "ops", "port": 22}}


# --- what loads, and the derived facts


@pytest.mark.parametrize("stack", ["dev", "edge", "prod"])
def test_committed_stacks_load(stack: str) -> None:
    cluster = load_stack_file(REPO / f"Pulumi.{stack}.yaml")
    assert isinstance(cluster, Cluster)
    assert cluster.name == stack
    assert len(cluster.control_plane.nodes) % 2 == 1


def test_committed_stack_shapes() -> None:
    dev, edge, prod = (load_stack_file(REPO / f"Pulumi.{s}.yaml") for s in ("dev", "edge", "prod"))
    assert [n.is_vm for n in dev.control_plane.nodes] == [True, True, True]
    assert dev.load_balancer.placement == "external" and len(dev.bare_metal_nodes()) == 3
    assert edge.load_balancer.placement == "stacked" and not edge.hypervisors and len(edge.bare_metal_nodes()) == 3
    assert len(prod.hypervisors) == 3 and len(prod.workers) >= 10
    assert {cp.hypervisor for cp in prod.control_plane.nodes} == {h.name for h in prod.hypervisors}


@pytest.mark.parametrize(("stack", "edits", "port"), [
    ("edge", {}, 6444),                                           # stacked default: 6444 beside HAProxy's 6443
    ("edge", {"controlPlane.apiserverPort": DELETE}, 6444),
    ("edge", {"controlPlane.apiserverPort": 7000}, 7000),
    ("dev", {}, 6443),                                            # external: the endpoint port itself
    ("dev", {"apiEndpoint.port": 7443}, 7443),
    ("dev", {"apiEndpoint.port": DELETE}, 6443),
    ("dev", {"controlPlane.apiserverPort": 6445}, 6445),
])
def test_apiserver_port(stack: str, edits: dict[str, Any], port: int) -> None:
    assert load_cluster(edited(stack, edits)).apiserver_port == port


@pytest.mark.parametrize("version", ["1.35.0", "1.35.9", "1.36.3", "1.36.5", "1.37.0", "1.37.2", "1.37.10"])
def test_every_patch_of_a_supported_minor_loads(version: str) -> None:
    cluster = load_cluster(edited("dev", {"kubernetesVersion": version}))
    assert cluster.kubernetes_version == version
    assert cluster.minor == int(version.split(".")[1])


def test_kubernetes_version_defaults_to_the_newest_patch_of_the_newest_minor() -> None:
    from topology import versions

    cluster = load_cluster(edited("dev", {"kubernetesVersion": DELETE}))
    newest = versions.SUPPORTED[-1]
    assert cluster.kubernetes_version == versions.DEFAULT_VERSION == f"1.{newest.minor}.{newest.newest_patch}"
    assert cluster.kubernetes_version == "1.37.2"


def test_the_version_table_is_consecutive_minors_in_support() -> None:
    from datetime import date

    from topology import versions

    minors = [m.minor for m in versions.SUPPORTED]
    # Upgrades go one minor at a time: a gap would strand clusters at the minor below it.
    assert minors == list(range(minors[0], minors[0] + len(minors)))
    assert all(m.released < m.end_of_life for m in versions.SUPPORTED)
    # As of the table's date (2026-12), every listed minor is still maintained upstream.
    assert all(m.end_of_life > date(2026, 12, 3) for m in versions.SUPPORTED)
    assert versions.supported_minors() == "1.35, 1.36, 1.37"


def test_adding_a_minor_is_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import date

    from topology import versions

    row = versions.Minor(38, 0, released=date(2026, 12, 16), end_of_life=date(2028, 2, 28), pause="3.10.2",
                         coredns="v1.14.6", etcd="3.7.0-0")
    monkeypatch.setattr(versions, "SUPPORTED", (*versions.SUPPORTED, row))
    assert versions.check_version("1.38.0") == "1.38.0"
    assert versions.minor_of("1.38.0") is row
    with pytest.raises(ValueError, match=re.escape("supported minors: 1.35, 1.36, 1.37, 1.38")):
        versions.check_version("1.39.0")


def test_defaults_of_omitted_keys() -> None:
    cluster = load_cluster(edited("dev", {
        "ssh.port": DELETE, "network.podCidr": DELETE, "network.serviceCidr": DELETE, "apiEndpoint.port": DELETE,
        "loadBalancer.placement": DELETE, "loadBalancer.vrrp.advertIntervalMs": DELETE,
        "loadBalancer.vrrp.preempt": DELETE, "loadBalancer.nodes[0].interface": DELETE,
        "hypervisors[0].reservedMemoryGiB": DELETE, "workers[0].reservedCpus": DELETE, "workers[1].labels": {},
        "addons": DELETE,
    }))
    assert cluster.ssh.port == 22
    assert (str(cluster.network.pod_cidr), str(cluster.network.service_cidr)) == ("10.244.0.0/16", "10.96.0.0/12")
    assert cluster.api_endpoint.port == 6443
    assert cluster.load_balancer.placement == "external"
    assert (cluster.load_balancer.vrrp.advert_interval_ms, cluster.load_balancer.vrrp.preempt) == (100, False)
    assert cluster.load_balancer.nodes[0].interface == "eth0"
    assert cluster.hypervisors[0].reserved_memory_gib == 4
    assert cluster.workers[0].reserved_cpus == "0"
    assert (cluster.addons.cni, cluster.addons.smoke_test) == ("calico", True)
    assert cluster.profile == "standard" and cluster.control_plane.schedulable is False


def test_stacked_lb_nodes_borrow_control_plane_addresses() -> None:
    cluster = load_cluster(edited("edge", {}))
    assert [str(cluster.lb_address(n)) for n in cluster.load_balancer.nodes] == [
        "198.18.4.21", "198.18.4.22", "198.18.4.23"]


@pytest.mark.parametrize(("stack", "edits"), [
    ("dev", {"controlPlane.nodes": lambda nodes: nodes[:1]}),                    # one control-plane node
    ("edge", {"controlPlane.nodes": lambda nodes: [*nodes, bare_cp(4, "198.18.4", "198.18.5"),
                                                   bare_cp(5, "198.18.4", "198.18.5")]}),  # five
    ("dev", {"controlPlane.nodes": lambda nodes: nodes[:1], "hypervisors[1].pools": lambda p: p[1:],
             "hypervisors[1].bridges.controlPlane": DELETE}),  # a hypervisor without VMs needs neither
    ("dev", {"name": "a" * 63, "workers[0].name": "0"}),                         # DNS label limits
    ("dev", {"loadBalancer.nodes[0].interface": "a" * 15}),                      # IFNAMSIZ - 1
    ("dev", {"apiEndpoint.port": 29999}),                                        # just below NodePorts
    ("dev", {"apiEndpoint.port": 32768}),                                        # just above
    ("dev", {"loadBalancer.vrrp.advertIntervalMs": 10}),
    ("dev", {"loadBalancer.vrrp.advertIntervalMs": 40950}),
    ("dev", {"loadBalancer.vrrp.routerId": 255, "loadBalancer.nodes[0].priority": 254,
             "loadBalancer.nodes[1].priority": 1}),
    ("dev", {"controlPlane.nodes[0].memoryGiB": 56}),                            # exactly the free memory
    ("dev", {"controlPlane.nodes[1].hypervisor": "hv1", "controlPlane.nodes[1].pinnedCpus": "6-9"}),
    # Reserves all but 2 vCPUs: the least the static pods need (topology/sizing.py).
    ("dev", {"controlPlane.nodes[0].cpus": 5, "controlPlane.nodes[0].pinnedCpus": "2,4,6,8,10",
             "controlPlane.nodes[0].reservedCpus": "0-2", "controlPlane.nodes[0].memoryGiB": 5}),
    ("dev", {"hypervisors[0].pools[1].path": "/var/lib/hakube/cp2"}),            # a prefix, not a parent
    ("dev", {"ssh.user": "deploy.bot_1"}),
    ("edge", {"apiEndpoint.port": 443, "controlPlane.apiserverPort": DELETE}),
])
def test_valid_edge_cases_load(stack: str, edits: dict[str, Any]) -> None:
    assert isinstance(load_cluster(edited(stack, edits)), Cluster)


# --- upgrades and certificates (topology/upgrade.py, Upgrade/Certificates in the model) -----------


def test_upgrade_and_certificate_defaults() -> None:
    cluster = load_cluster(edited("dev", {}))
    assert cluster.upgrade.worker_parallelism == 1 and cluster.certificates.renew_before_days == 30


@pytest.mark.parametrize(("section", "key"), [("upgrade", "workerParallelism"), ("certificates", "renewBeforeDays")])
def test_upgrade_and_certificate_settings_are_bounded(section: str, key: str) -> None:
    assert refused(edited("dev", {section: {key: 0}}))[0].startswith(f"{R}.{section}.{key}: ")


@pytest.mark.parametrize(("previous", "new", "ok"), [
    (None, "1.37.2", True), ("1.37.2", "1.37.2", True), ("1.36.3", "1.36.5", True), ("1.36.5", "1.37.2", True),
    ("1.35.9", "1.37.2", False), ("1.37.2", "1.37.1", False), ("1.37.0", "1.36.5", False),
])
def test_check_upgrade_one_minor_at_a_time(previous: str | None, new: str, ok: bool) -> None:
    from topology.upgrade import check_upgrade

    problems = check_upgrade(previous, new)
    assert (problems == []) is ok
    assert all(p.loc == ("kubernetesVersion",) for p in problems)


def test_a_two_minor_jump_is_a_path_named_error() -> None:
    from topology.upgrade import refuse_bad_upgrade

    with pytest.raises(TopologyError) as err:
        refuse_bad_upgrade("1.35.9", load_cluster(edited("dev", {"kubernetesVersion": "1.37.2"})))
    assert err.value.lines == [f"{R}.kubernetesVersion: 1.35.9 -> 1.37.2 skips a minor version; kubeadm upgrades"
                               " one minor at a time (go to 1.36.x first)"]
