"""Control-plane VMs: the domain XSLT applied as libvirt would receive it (pinned vCPUs, locked
memory, no balloon, dedicated cores, no overcommit), their etcd volumes and their network.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from ._data import Resource, Stack, Violation, as_int, dig, fmt_cores, known, parse_cpuset
from ._engine import MANDATORY, Policy, Scope, stack_policy
from .contract import CLOUDINIT_DISK, CONTROL_PLANE_VM, DOMAIN, HYPERVISOR, NETWORK, VOLUME


@dataclass(frozen=True)
class Vm:
    component: Resource
    hypervisor: Resource | None
    domain: Resource | None


def control_plane_vms(stack: Stack) -> list[Vm]:
    vms = []
    for vm in sorted(stack.of_type(CONTROL_PLANE_VM), key=lambda r: r.name):  # reports in a stable order
        domains = stack.children(vm, DOMAIN)
        vms.append(Vm(vm, stack.ancestor(vm, HYPERVISOR), domains[0] if domains else None))
    return vms


def _provider_like_domain(props: Mapping[str, Any]) -> bytes:
    """A domain shaped like terraform-provider-libvirt 0.8.1's (no cputune, no balloon: libvirt
    adds a virtio balloon when none is given), which the XSLT must turn into a pinned, locked one."""
    root = etree.Element("domain", type="kvm")
    etree.SubElement(root, "name").text = str(props.get("name") or "vm")
    etree.SubElement(root, "memory", unit="MiB").text = str(as_int(props.get("memory")) or 0)
    etree.SubElement(root, "vcpu").text = str(as_int(props.get("vcpu")) or 1)
    etree.SubElement(root, "cpu", mode=str(dig(props, "cpu", "mode") or "host-passthrough"))
    devices = etree.SubElement(root, "devices")
    disk = etree.SubElement(devices, "disk", type="volume", device="disk")
    etree.SubElement(disk, "driver", name="qemu", type="qcow2")
    etree.SubElement(devices, "interface", type="network")
    return etree.tostring(root)


@dataclass(frozen=True)
class DomainXml:
    """What the transformed domain says about pinning and memory (or why it could not be read)."""

    pins: dict[int, list[str]] = field(default_factory=dict)
    locked: bool = False
    balloons: tuple[str, ...] = ()
    error: str | None = None


def transformed_domain(props: Mapping[str, Any]) -> DomainXml:
    xslt = dig(props, "xml", "xslt")
    if not isinstance(xslt, str) or not xslt.strip():
        return DomainXml(error="has no xml.xslt: nothing pins its vCPUs or locks its memory")
    if not known(xslt):
        return DomainXml(error="xml.xslt is not known yet")
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        transform = etree.XSLT(etree.XML(xslt.encode(), parser), access_control=etree.XSLTAccessControl.DENY_ALL)  # type: ignore[attr-defined]  # not in lxml-stubs
        result = transform(etree.XML(_provider_like_domain(props), parser)).getroot()
    except (etree.XMLSyntaxError, etree.XSLTError) as err:
        return DomainXml(error=f"xml.xslt does not apply: {err}")
    if result is None or result.tag != "domain":
        return DomainXml(error="xml.xslt does not produce a <domain>")
    pins: dict[int, list[str]] = defaultdict(list)
    for pin in result.findall("cputune/vcpupin"):
        vcpu = as_int(pin.get("vcpu"))
        pins[-1 if vcpu is None else vcpu].append(pin.get("cpuset", ""))
    return DomainXml(
        pins=dict(pins),
        locked=result.find("memoryBacking/locked") is not None,
        balloons=tuple(b.get("model", "") for b in result.findall("devices/memballoon")),
    )


def _pinned_cores(domain: DomainXml) -> set[int]:
    cores: set[int] = set()
    for cpusets in domain.pins.values():
        for cpuset in cpusets:
            try:
                cores |= parse_cpuset(cpuset)
            except ValueError:
                continue
    return cores


def _pinning_problems(vm: Vm, domain: DomainXml) -> Iterator[str]:
    assert vm.domain is not None
    vcpus = as_int(vm.domain.props.get("vcpu")) or 0
    seen: dict[int, int] = {}
    for vcpu in range(vcpus):
        cpusets = domain.pins.get(vcpu, [])
        if len(cpusets) != 1:
            yield f"vCPU {vcpu} has {len(cpusets)} <vcpupin> entries (needs exactly one)"
            continue
        try:
            cores = parse_cpuset(cpusets[0])
        except ValueError:
            yield f"vCPU {vcpu} is pinned to {cpusets[0]!r}, not a cpuset"
            continue
        if len(cores) != 1:
            yield f"vCPU {vcpu} floats over cores {cpusets[0]} (needs one core of its own)"
            continue
        core = next(iter(cores))
        if core in seen:
            yield f"vCPUs {seen[core]} and {vcpu} share core {core}"
        seen[core] = vcpu
    extra = sorted(v for v in domain.pins if not 0 <= v < vcpus)
    if extra:
        yield f"<vcpupin> for vCPU(s) {extra} that the domain does not have (vcpu = {vcpus})"
    yield from _cores_on_host(vm, set(seen))


def _cores_on_host(vm: Vm, cores: set[int]) -> Iterator[str]:
    declared = vm.component.props.get("pinnedCpus")
    if isinstance(declared, str) and known(declared):
        try:
            if parse_cpuset(declared) != cores:
                yield f"pins cores {fmt_cores(cores)} but the VM declares pinnedCpus {declared}"
        except ValueError:
            pass
    if vm.hypervisor is None:
        return
    hv = vm.hypervisor.props
    host_cpus = as_int(hv.get("cpus"))
    if host_cpus is not None and any(c >= host_cpus for c in cores):
        yield f"pins core {max(cores)}, outside {vm.hypervisor.name}'s cores 0-{host_cpus - 1}"
    reserved = _reserved(hv)
    if cores & reserved:
        yield f"pins core(s) {fmt_cores(cores & reserved)} reserved for {vm.hypervisor.name}'s host OS"


def _reserved(hv_props: Mapping[str, Any]) -> set[int]:
    try:
        return parse_cpuset(hv_props.get("reservedCpus") or "")
    except ValueError:
        return set()


def _vms_with_domains(stack: Stack) -> Iterator[tuple[Vm, DomainXml]]:
    for vm in control_plane_vms(stack):
        if vm.domain is not None:
            yield vm, transformed_domain(vm.domain.props)


def vcpu_pinning(stack: Stack) -> list[Violation]:
    """Every vCPU of a control-plane VM pinned to exactly one host core of its own."""
    out = []
    for vm, domain in _vms_with_domains(stack):
        assert vm.domain is not None
        if domain.error:
            out.append(Violation(vm.domain.urn, f"{vm.domain.name}: {domain.error}"))
            continue
        out += [Violation(vm.domain.urn, f"{vm.domain.name}: {p}") for p in _pinning_problems(vm, domain)]
    return out


def memory_locked(stack: Stack) -> list[Violation]:
    """Control-plane VM memory locked (memoryBacking/locked) and no balloon (memballoon model none)."""
    out = []
    for vm, domain in _vms_with_domains(stack):
        assert vm.domain is not None
        problems = [domain.error] if domain.error else []
        if not domain.error and not domain.locked:
            problems.append("memory is not locked (no <memoryBacking><locked/>)")
        if not domain.error and list(domain.balloons) != ["none"]:
            found = ", ".join(m or "?" for m in domain.balloons) or "none declared, so libvirt adds a virtio one"
            problems.append(f"needs exactly one <memballoon model='none'> (found: {found})")
        out += [Violation(vm.domain.urn, f"{vm.domain.name}: {p}") for p in problems]
    return out


def shared_cores(stack: Stack) -> list[Violation]:
    """No two control-plane VMs on one hypervisor share a pinned core."""
    owners: dict[tuple[str, int], str] = {}
    out = []
    for vm, domain in _vms_with_domains(stack):
        assert vm.domain is not None
        if vm.hypervisor is None:
            continue
        clash: dict[str, set[int]] = defaultdict(set)
        for core in _pinned_cores(domain):
            other = owners.setdefault((vm.hypervisor.urn, core), vm.component.name)
            if other != vm.component.name:
                clash[other].add(core)
        out += [Violation(vm.domain.urn, f"{vm.domain.name}: core(s) {fmt_cores(cores)} on {vm.hypervisor.name} are "
                                         f"also pinned by {other}") for other, cores in clash.items()]
    return out


def no_overcommit(stack: Stack) -> list[Violation]:
    """Per hypervisor: guest memory within memoryGiB - reservedMemoryGiB; vCPUs within the free cores."""
    memory: dict[str, int] = defaultdict(int)
    vcpus: dict[str, int] = defaultdict(int)
    names: dict[str, list[str]] = defaultdict(list)
    for domain in stack.of_type(DOMAIN):
        hv = stack.hypervisor_of(domain)
        if hv is not None:
            memory[hv.urn] += as_int(domain.props.get("memory")) or 0
            vcpus[hv.urn] += as_int(domain.props.get("vcpu")) or 0
            names[hv.urn].append(domain.name)
    out = []
    for hv in stack.of_type(HYPERVISOR):
        if not names[hv.urn]:
            continue
        total, reserved = as_int(hv.props.get("memoryGiB")), as_int(hv.props.get("reservedMemoryGiB")) or 0
        if total is not None and memory[hv.urn] > (total - reserved) * 1024:
            out.append(Violation(hv.urn, f"{hv.name}: domains {', '.join(names[hv.urn])} take {memory[hv.urn]} MiB, "
                                         f"more than the {(total - reserved) * 1024} MiB left after reservedMemoryGiB"))
        cpus = as_int(hv.props.get("cpus"))
        free = None if cpus is None else cpus - len(_reserved(hv.props) & set(range(cpus)))
        if free is not None and vcpus[hv.urn] > free:
            out.append(Violation(hv.urn, f"{hv.name}: domains {', '.join(names[hv.urn])} have {vcpus[hv.urn]} vCPUs "
                                         f"but only {free} cores are not reserved"))
    return out


def etcd_storage(stack: Stack) -> list[Violation]:
    """Each control-plane VM's etcd volume in its hypervisor's controlPlane pool, which holds only
    control-plane VM disks."""
    out = []
    for vm in control_plane_vms(stack):
        etcd = [v for v in stack.children(vm.component, VOLUME) if v.name.endswith("-etcd")]
        if not etcd:
            out.append(Violation(vm.component.urn, f"{vm.component.name}: no etcd volume (<node>-etcd)"))
        out += [Violation(v.urn, f"{v.name}: {p}") for v in etcd for p in _etcd_volume_problems(stack, vm, v)]
    out += _foreign_disks_in_control_plane_pools(stack)
    return out


def _control_plane_pools(hv: Resource | None) -> set[str]:
    pools = hv.props.get("pools") if hv is not None else None
    return {str(p.get("name")) for p in pools or [] if isinstance(p, Mapping) and p.get("role") == "controlPlane"}


def _etcd_volume_problems(stack: Stack, vm: Vm, volume: Resource) -> Iterator[str]:
    if vm.hypervisor is None:
        yield "its VM is not under a Hypervisor component"
        return
    provider = stack.get(volume.provider)
    on = stack.ancestor(provider, HYPERVISOR) if provider is not None else None
    if on is None or on.urn != vm.hypervisor.urn:
        via = provider.name if provider is not None else "the default provider"
        yield f"is created through {via}, not {vm.hypervisor.name}'s libvirt provider"
    pool = volume.props.get("pool")
    cp_pools = _control_plane_pools(vm.hypervisor)
    if known(pool) and pool not in cp_pools:
        wanted = ", ".join(sorted(cp_pools)) or "none declared"
        yield f"lives in pool {pool!r}, not in {vm.hypervisor.name}'s controlPlane pool ({wanted})"


def _foreign_disks_in_control_plane_pools(stack: Stack) -> Iterator[Violation]:
    for disk in stack.of_type(VOLUME) + stack.of_type(CLOUDINIT_DISK):
        hv = stack.hypervisor_of(disk)
        pool = disk.props.get("pool")
        if hv is None or not known(pool) or pool not in _control_plane_pools(hv):
            continue
        if stack.ancestor(disk, CONTROL_PLANE_VM) is None:
            yield Violation(disk.urn, f"{disk.name}: is not a control-plane VM disk but lives in {hv.name}'s "
                                      f"controlPlane pool {pool!r}")


def control_plane_network(stack: Stack) -> list[Violation]:
    """Each control-plane VM has a NIC on its hypervisor's controlPlane bridge."""
    out = []
    for vm in control_plane_vms(stack):
        if vm.domain is None or vm.hypervisor is None:
            continue
        bridge = dig(vm.hypervisor.props, "bridges", "controlPlane")
        if not bridge:
            out.append(Violation(vm.domain.urn, f"{vm.domain.name}: {vm.hypervisor.name} declares no controlPlane "
                                                f"bridge"))
        elif bridge not in _nic_bridges(stack, vm.domain):
            out.append(Violation(vm.domain.urn, f"{vm.domain.name}: no NIC on {vm.hypervisor.name}'s controlPlane "
                                                f"bridge {bridge}"))
    return out


def _nic_bridges(stack: Stack, domain: Resource) -> set[str]:
    """Bridges the domain's NICs attach to: `bridge` directly, or the bridge of the libvirt Network
    a `networkId` NIC names (found through the domain's dependencies: ids are not in the inputs)."""
    nics = [n for n in domain.props.get("networkInterfaces") or [] if isinstance(n, Mapping)]
    bridges = {str(n["bridge"]) for n in nics if n.get("bridge")}
    if any(n.get("networkId") for n in nics):
        deps = domain.property_dependencies.get("networkInterfaces") or domain.dependencies
        for dep in deps:
            net = stack.get(dep)
            if (net is not None and net.type == NETWORK and net.provider == domain.provider
                    and net.props.get("mode") == "bridge" and net.props.get("bridge")):
                bridges.add(str(net.props["bridge"]))
    return bridges


_VMS = Scope((DOMAIN,))
POLICIES: list[Policy] = [
    stack_policy("cp-vcpu-pinning", "Each vCPU of a control-plane VM is pinned (domain XSLT <vcpupin>) to one host "
                 "core of its own, outside the hypervisor's reservedCpus.", vcpu_pinning, MANDATORY, _VMS),
    stack_policy("cp-memory-locked", "Control-plane VM memory is locked (<memoryBacking><locked/>) with no balloon "
                 "(<memballoon model='none'>).", memory_locked, MANDATORY, _VMS),
    stack_policy("cp-dedicated-cores", "No two control-plane VMs on one hypervisor share a pinned core.",
                 shared_cores, MANDATORY, _VMS),
    stack_policy("cp-no-overcommit", "The domains on a hypervisor fit its memory less reservedMemoryGiB and its "
                 "cores less reservedCpus.", no_overcommit, MANDATORY, _VMS),
    stack_policy("etcd-storage", "Each control-plane VM's etcd volume lives in its hypervisor's controlPlane pool, "
                 "which holds no other disks.", etcd_storage, MANDATORY, Scope((VOLUME,))),
    stack_policy("cp-network", "Each control-plane VM has a NIC on its hypervisor's controlPlane bridge.",
                 control_plane_network, MANDATORY, _VMS),
]
