"""What a control-plane node must leave for the four control-plane static pods.

configs/kubeadm.py sizes the static pods from these tiers; topology/rules.py refuses, by path, a
node too small for the smallest tier, so a stack file that loads always renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from topology.cpuset import parse_cpuset
from topology.model import ControlPlaneNode


@dataclass(frozen=True)
class Size:
    """CPU in millicores and memory in MiB; used as both request and limit."""

    cpu_milli: int
    memory_mib: int

    def fits(self, budget: Size) -> bool:
        return self.cpu_milli <= budget.cpu_milli and self.memory_mib <= budget.memory_mib


# Control-plane static pod sizes, largest tier first; a node gets the largest tier that fits.
# Fits means: CPU sum <= (node CPUs - reservedCpus) * 1000 - NODE_HEADROOM.cpu_milli and memory sum
# <= node memory - NODE_HEADROOM.memory_mib, so DaemonSets (CNI agent, kube-proxy), the kubelet,
# containerd and the OS keep room, and the kubelet admits all four pods.
# Whole CPUs (1000m multiples) get exclusive cores from the static CPU manager. In `small` only the
# latency-critical apiserver and etcd do; in `minimal` none does: those pods are still Guaranteed
# (requests == limits) but share the pool, under a CFS quota. Memory limits are hard: an apiserver
# or etcd above its limit is OOM-killed, so the smaller tiers suit small clusters only (watch
# `kubectl top pod -n kube-system` and give the nodes more memory before the limits come near).
STATIC_POD_SIZES: tuple[tuple[str, dict[str, Size]], ...] = (
    ("large", {"kube-apiserver": Size(2000, 4096), "etcd": Size(2000, 4096),
               "kube-controller-manager": Size(1000, 1024), "kube-scheduler": Size(1000, 512)}),
    ("medium", {"kube-apiserver": Size(1000, 2048), "etcd": Size(1000, 2048),
                "kube-controller-manager": Size(1000, 512), "kube-scheduler": Size(1000, 256)}),
    ("small", {"kube-apiserver": Size(1000, 1536), "etcd": Size(1000, 1536),
               "kube-controller-manager": Size(250, 384), "kube-scheduler": Size(150, 192)}),
    ("minimal", {"kube-apiserver": Size(500, 1024), "etcd": Size(500, 1024),
                 "kube-controller-manager": Size(200, 256), "kube-scheduler": Size(100, 128)}),
)
NODE_HEADROOM = Size(500, 2048)
# A bare-metal control-plane node that does not declare its cpus/memoryGiB is sized as this machine
# (kubeadm itself needs 2 CPUs and ~1.7 GiB on a control-plane node).
ASSUMED_BARE_METAL = (4, 8)  # (CPUs, GiB)


def total(sizes: dict[str, Size]) -> Size:
    return Size(sum(s.cpu_milli for s in sizes.values()), sum(s.memory_mib for s in sizes.values()))


def node_capacity(node: ControlPlaneNode) -> tuple[int, int]:
    """(CPUs, memory GiB) of a control-plane node: as declared (always, for a VM), else ASSUMED_BARE_METAL."""
    cpus, memory_gib = ASSUMED_BARE_METAL
    return (node.cpus if node.cpus is not None else cpus,
            node.memory_gib if node.memory_gib is not None else memory_gib)


def static_pod_budget(node: ControlPlaneNode) -> Size:
    """What the four control-plane static pods may use together on `node`."""
    cpus, memory_gib = node_capacity(node)
    usable = cpus - len(parse_cpuset(node.reserved_cpus))
    return Size(usable * 1000 - NODE_HEADROOM.cpu_milli, memory_gib * 1024 - NODE_HEADROOM.memory_mib)


def minimum_node() -> tuple[int, int]:
    """(CPUs beyond reservedCpus, memory GiB) a control-plane node needs for the smallest tier."""
    smallest = total(STATIC_POD_SIZES[-1][1])
    return (math.ceil((smallest.cpu_milli + NODE_HEADROOM.cpu_milli) / 1000),
            math.ceil((smallest.memory_mib + NODE_HEADROOM.memory_mib) / 1024))
