"""The control plane as a whole: its VMs spread over the hypervisors, and an etcd quorum."""

from __future__ import annotations

from collections import defaultdict

from ._data import Stack, Violation, as_int
from ._engine import ADVISORY, MANDATORY, Policy, Scope, stack_policy
from .contract import CLUSTER, CONTROL_PLANE_VM, HYPERVISOR
from .vm import control_plane_vms


def _vms_per_hypervisor(stack: Stack) -> dict[str, list[str]]:
    placed: dict[str, list[str]] = defaultdict(list)
    for vm in control_plane_vms(stack):
        if vm.hypervisor is not None:
            placed[vm.hypervisor.name].append(vm.component.name)
    return placed


def _shared_hypervisors(stack: Stack, best_effort: bool) -> list[Violation]:
    """The hypervisors that host several control-plane VMs. With at least as many hypervisors as VMs
    that is avoidable (spread reports it); with fewer it is not, and best_effort says where one host
    loss costs several etcd members. Each case reports only when it applies."""
    hypervisors, vms = stack.of_type(HYPERVISOR), control_plane_vms(stack)
    if (len(hypervisors) < len(vms)) != best_effort:
        return []
    out = []
    for hv, names in _vms_per_hypervisor(stack).items():
        if len(names) < 2:
            continue
        hosts = f"{hv}: hosts {', '.join(names)}"
        out.append(Violation(_hv_urn(stack, hv), (
            f"{hosts} (only {len(hypervisors)} hypervisors for {len(vms)} control-plane VMs): losing it loses "
            f"{len(names)} members" if best_effort else
            f"{hosts} although {len(hypervisors)} hypervisors are declared for {len(vms)} control-plane VMs")))
    return out


def spread(stack: Stack) -> list[Violation]:
    """With at least as many hypervisors as control-plane VMs, no two VMs share a hypervisor."""
    return _shared_hypervisors(stack, best_effort=False)


def spread_best_effort(stack: Stack) -> list[Violation]:
    """Fewer hypervisors than control-plane VMs: say where VMs share a host (one host loss costs more)."""
    return _shared_hypervisors(stack, best_effort=True)


def _hv_urn(stack: Stack, name: str) -> str:
    return next(h.urn for h in stack.of_type(HYPERVISOR) if h.name == name)


def quorum(stack: Stack) -> list[Violation]:
    """An odd number, at least 3, of control-plane nodes (etcd members)."""
    cluster = stack.cluster()
    counted = [n.name for n in stack.control_plane_nodes]
    declared = as_int(cluster.props.get("controlPlaneCount")) if cluster is not None else None
    count = declared if declared is not None else len(counted)
    urn = cluster.urn if cluster is not None else ""
    name = cluster.name if cluster is not None else "cluster"
    if declared is None and not counted:
        return []
    if count < 3 or count % 2 == 0:
        why = "an even count adds no fault tolerance" if count % 2 == 0 else "fewer than 3 survive no failure"
        return [Violation(urn, f"{name}: {count} control-plane node(s): {why} (etcd quorum needs 3, 5, ...)")]
    return []


_VMS = Scope((CONTROL_PLANE_VM,))
POLICIES: list[Policy] = [
    stack_policy("cp-spread", "With at least as many hypervisors as control-plane VMs, no two VMs share one.",
                 spread, MANDATORY, _VMS),
    stack_policy("cp-spread-best-effort", "With fewer hypervisors than control-plane VMs, report the hosts whose "
                 "loss takes several etcd members.", spread_best_effort, ADVISORY, _VMS),
    stack_policy("quorum", "An odd number, at least 3, of control-plane nodes (etcd quorum).", quorum,
                 MANDATORY, Scope((CLUSTER,))),
]
