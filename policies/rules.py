"""hakube's control-plane isolation rules as pure functions of plain data.

Nothing here needs the Pulumi engine: a rule takes `Resource`s (type, name, inputs as plain
dicts, parent and dependencies by URN, the names of its secret properties) and returns
`Violation`s. `pack.py` wires these into CrossGuard policies; the dry run and the tests call them
through those policies, the way the engine does.

The rules read what the program really hands to hosts and libvirt: the domain XSLT (applied to
a domain shaped like the one terraform-provider-libvirt writes), the rendered haproxy.cfg and
keepalived.conf, the kubeadm and kubelet YAML and the static-pod patches. Resource names and
types are the contract in docs/RESOURCES.md.

This module must run inside the pack's own virtualenv (policies/requirements.txt), so it
imports nothing from hakube itself; the few helpers it shares in spirit with topology/ (a cpuset
parser) are re-stated here on purpose.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property, lru_cache
from typing import Any

import yaml
from lxml import etree

from .contract import (
    BOOTSTRAP_TOKEN,
    CERTIFICATE_KEY,
    CLOUDINIT_DISK,
    CLUSTER,
    COMMAND,
    CONTROL_PLANE_KEY,
    CONTROL_PLANE_KEYS,
    CONTROL_PLANE_TAINT_EFFECT,
    CONTROL_PLANE_VM,
    CPU_MANAGER_OPTIONS,
    CPUSET_PART,
    DOMAIN,
    ETCD_SNAPSHOTS,
    FILE_DROP,
    FILE_SET,
    HYPERVISOR,
    K8S_PROVIDER,
    KUBEADM_DEFAULT_BIND_PORT,
    KUBEADM_DIR,
    LB_HOST,
    LB_PAIR,
    MAX_CORE,
    NETWORK,
    NODE,
    SNAPSHOT_ENV_PATH,
    SNAPSHOT_TIMER_PATH,
    STATIC_PODS,
    SYSTEM_NAMESPACES,
    VOLUME,
    WORKLOADS,
)

KUBEADM_PREFIX = f"{KUBEADM_DIR}/"  # what the path of every kubeadm config starts with

# The engine's wire form of a secret (sdk/go/common/resource/properties.go); the dry run keeps it.
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
# Types that never hold a secret: checked first by the helpers below, before the slower Mapping (ABC) test.
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
# During `pulumi preview` a value computed from another resource's output arrives as one of
# these sentinels (pulumi_policy/proxy.py); rules treat it as "not known yet", never as a value.
UNKNOWNS = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58", "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
})


@dataclass(frozen=True)
class Resource:
    """One resource as a rule sees it. `parent`, `dependencies` and `provider` are URNs."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any] = field(default_factory=dict)
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    provider: str | None = None
    # Top-level properties that are Pulumi secrets (wrapped values or additionalSecretOutputs).
    secrets: frozenset[str] = frozenset()

    @cached_property
    def placed(self) -> tuple[Resource, ...]:
        """A FileSet's files as FileDrop-shaped resources (set_files), made once: every stack rule
        and scope reads them."""
        return tuple(set_files(self)) if self.type == FILE_SET else ()


@dataclass(frozen=True)
class Violation:
    urn: str
    message: str


# ---------------------------------------------------------------------------------------------
# Plain-data helpers


def is_secret(value: Any) -> bool:
    """A value in the engine's secret wire form, or a pulumi_policy.Secret (duck-typed)."""
    if type(value) in _PLAIN_SCALARS:
        return False
    if isinstance(value, Mapping):
        return value.get(_SIG_KEY) == _SECRET_SIG
    return type(value).__name__ == "Secret" and hasattr(value, "value")


def contains_secret(value: Any) -> bool:
    if type(value) in _PLAIN_SCALARS:
        return False
    if is_secret(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_secret(v) for v in value)
    return False


def reveal(value: Any) -> Any:
    """The value with every secret wrapper removed (rules read the plain text)."""
    if type(value) in _PLAIN_SCALARS:
        return value
    if is_secret(value):
        return reveal(value["value"] if isinstance(value, Mapping) else value.value)
    if isinstance(value, Mapping):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reveal(v) for v in value]
    return value


def known(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and value in UNKNOWNS)


def dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def as_int(value: Any) -> int | None:
    """Numbers arrive as floats from the engine and the mocks (4.0)."""
    if isinstance(value, bool) or not known(value):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


# The Linux cpuset list format as topology/cpuset.py accepts it (the pack cannot import topology/;
# tests/test_cpuset.py holds the two parsers to the same verdicts): ASCII digits, no reversed range,
# no core above MAX_CORE, no core named twice.
_CPUSET_PART = re.compile(CPUSET_PART)


def parse_cpuset(text: str) -> set[int]:
    """'0-3,8' -> {0, 1, 2, 3, 8}; ValueError on anything the kernel (and topology/) refuses."""
    cores: list[int] = []
    for part in str(text).split(","):
        match = _CPUSET_PART.fullmatch(part)
        if match is None:
            raise ValueError(f"bad cpuset part {part!r}")
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else start
        if end < start or end > MAX_CORE:
            raise ValueError(f"bad cpuset range {part!r}")
        cores += range(start, end + 1)
    if len(set(cores)) != len(cores):
        raise ValueError(f"cpuset {text!r} names a core twice")
    return set(cores)


def fmt_cores(cores: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(cores))


# libyaml's parser when PyYAML has it (its wheels do): the pure-Python one took a third of the
# policy time on 1,000 workers (bench/scale.py).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=4096)
def _parsed_yaml(text: str) -> tuple[Any, ...]:
    """Every document of `text`, parsed once however many rules read the same file; rules treat
    the result as read-only. Raises yaml.YAMLError."""
    return tuple(yaml.load_all(text, Loader=_YAML_LOADER))


def load_yaml_docs(text: Any) -> list[dict[str, Any]]:
    if not isinstance(text, str) or not known(text):
        return []
    try:
        return [d for d in _parsed_yaml(text) if isinstance(d, dict)]
    except yaml.YAMLError:
        return []


class Stack:
    """Index over a stack's resources: by URN, by type, children, ancestors."""

    def __init__(self, resources: Iterable[Resource]) -> None:
        listed = list(resources)
        self.by_urn = {r.urn: r for r in listed}
        # Each file of a FileSet is seen as a FileDrop (placed_files): rules read one file at a time.
        self.resources = placed_files(listed)
        self._children: dict[str, list[Resource]] = defaultdict(list)
        for r in self.resources:
            if r.parent:
                self._children[r.parent].append(r)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def get(self, urn: str | None) -> Resource | None:
        return self.by_urn.get(urn) if urn else None

    def children(self, r: Resource, type_: str | None = None) -> list[Resource]:
        return [c for c in self._children[r.urn] if type_ is None or c.type == type_]

    def ancestor(self, r: Resource, type_: str) -> Resource | None:
        seen = 0
        current = self.get(r.parent)
        while current is not None and seen < len(self.resources):
            if current.type == type_:
                return current
            current, seen = self.get(current.parent), seen + 1
        return None

    def hypervisor_of(self, r: Resource) -> Resource | None:
        """The Hypervisor component a libvirt resource lives on: its ancestor, else its provider's."""
        found = self.ancestor(r, HYPERVISOR)
        provider = self.get(r.provider)
        if found is None and provider is not None:
            found = self.ancestor(provider, HYPERVISOR)
        return found

    def cluster(self) -> Resource | None:
        clusters = self.of_type(CLUSTER)
        return clusters[0] if clusters else None

    def node_of(self, r: Resource) -> Resource | None:
        """The Kubernetes Node component a FileDrop belongs to: its ancestor, else by host name."""
        found = self.ancestor(r, NODE)
        if found is None:
            host = r.props.get("host")
            found = next((n for n in self.of_type(NODE) if n.name == host), None)
        return found


def set_files(file_set: Resource) -> list[Resource]:
    """A FileSet's files, each shaped like a FileDrop beside it: the set's URN (a violation names a
    real resource), its parent and host, and the file's own path, content and mode."""
    files = file_set.props.get("files")
    return [
        Resource(urn=file_set.urn, type=FILE_DROP, name=f"{file_set.name}[{entry.get('path')}]",
                 props={"host": file_set.props.get("host"), **entry}, parent=file_set.parent,
                 secrets=file_set.secrets)
        for entry in (files if isinstance(files, list) else []) if isinstance(entry, Mapping)
    ]


def placed_files(resources: Iterable[Resource]) -> list[Resource]:
    """The resources with each FileSet followed by its files as FileDrop-shaped resources."""
    out = []
    for r in resources:
        out.append(r)
        out += r.placed
    return out


# ---------------------------------------------------------------------------------------------
# Control-plane VMs: the domain XSLT applied as libvirt would receive it


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
        transform = etree.XSLT(etree.XML(xslt.encode(), parser), access_control=etree.XSLTAccessControl.DENY_ALL)
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


def _vms_with_domains(resources: Sequence[Resource]) -> Iterator[tuple[Vm, DomainXml]]:
    for vm in control_plane_vms(Stack(resources)):
        if vm.domain is not None:
            yield vm, transformed_domain(vm.domain.props)


def vcpu_pinning(resources: Sequence[Resource]) -> list[Violation]:
    """Every vCPU of a control-plane VM pinned to exactly one host core of its own."""
    out = []
    for vm, domain in _vms_with_domains(resources):
        assert vm.domain is not None
        if domain.error:
            out.append(Violation(vm.domain.urn, f"{vm.domain.name}: {domain.error}"))
            continue
        out += [Violation(vm.domain.urn, f"{vm.domain.name}: {p}") for p in _pinning_problems(vm, domain)]
    return out


def memory_locked(resources: Sequence[Resource]) -> list[Violation]:
    """Control-plane VM memory locked (memoryBacking/locked) and no balloon (memballoon model none)."""
    out = []
    for vm, domain in _vms_with_domains(resources):
        assert vm.domain is not None
        problems = [domain.error] if domain.error else []
        if not domain.error and not domain.locked:
            problems.append("memory is not locked (no <memoryBacking><locked/>)")
        if not domain.error and list(domain.balloons) != ["none"]:
            found = ", ".join(m or "?" for m in domain.balloons) or "none declared, so libvirt adds a virtio one"
            problems.append(f"needs exactly one <memballoon model='none'> (found: {found})")
        out += [Violation(vm.domain.urn, f"{vm.domain.name}: {p}") for p in problems]
    return out


def shared_cores(resources: Sequence[Resource]) -> list[Violation]:
    """No two control-plane VMs on one hypervisor share a pinned core."""
    owners: dict[tuple[str, int], str] = {}
    out = []
    for vm, domain in _vms_with_domains(resources):
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


def no_overcommit(resources: Sequence[Resource]) -> list[Violation]:
    """Per hypervisor: guest memory within memoryGiB - reservedMemoryGiB; vCPUs within the free cores."""
    stack = Stack(resources)
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


def etcd_storage(resources: Sequence[Resource]) -> list[Violation]:
    """Each control-plane VM's etcd volume in its hypervisor's controlPlane pool, which holds only
    control-plane VM disks."""
    stack = Stack(resources)
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


def control_plane_network(resources: Sequence[Resource]) -> list[Violation]:
    """Each control-plane VM has a NIC on its hypervisor's controlPlane bridge."""
    stack = Stack(resources)
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


def _vms_per_hypervisor(stack: Stack) -> dict[str, list[str]]:
    placed: dict[str, list[str]] = defaultdict(list)
    for vm in control_plane_vms(stack):
        if vm.hypervisor is not None:
            placed[vm.hypervisor.name].append(vm.component.name)
    return placed


def spread(resources: Sequence[Resource]) -> list[Violation]:
    """With at least as many hypervisors as control-plane VMs, no two VMs share a hypervisor."""
    stack = Stack(resources)
    hypervisors, vms = stack.of_type(HYPERVISOR), control_plane_vms(stack)
    if len(hypervisors) < len(vms):
        return []
    return [Violation(_hv_urn(stack, hv), f"{hv}: hosts {', '.join(names)} although {len(hypervisors)} "
                                          f"hypervisors are declared for {len(vms)} control-plane VMs")
            for hv, names in _vms_per_hypervisor(stack).items() if len(names) > 1]


def spread_best_effort(resources: Sequence[Resource]) -> list[Violation]:
    """Fewer hypervisors than control-plane VMs: say where VMs share a host (one host loss costs more)."""
    stack = Stack(resources)
    hypervisors, vms = stack.of_type(HYPERVISOR), control_plane_vms(stack)
    if len(hypervisors) >= len(vms):
        return []
    return [Violation(_hv_urn(stack, hv), f"{hv}: hosts {', '.join(names)} (only {len(hypervisors)} hypervisors "
                                          f"for {len(vms)} control-plane VMs): losing it loses {len(names)} members")
            for hv, names in _vms_per_hypervisor(stack).items() if len(names) > 1]


def _hv_urn(stack: Stack, name: str) -> str:
    return next(h.urn for h in stack.of_type(HYPERVISOR) if h.name == name)


def quorum(resources: Sequence[Resource]) -> list[Violation]:
    """An odd number, at least 3, of control-plane nodes (etcd members)."""
    stack = Stack(resources)
    cluster = stack.cluster()
    counted = [n.name for n in stack.of_type(NODE) if n.props.get("role") == "control-plane"]
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


# ---------------------------------------------------------------------------------------------
# Load balancer: the pair's props and the rendered keepalived.conf / haproxy.cfg


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


def lb_redundancy(resources: Sequence[Resource]) -> list[Violation]:
    """At least two LB nodes, on distinct hosts, each running HAProxy and keepalived."""
    stack = Stack(resources)
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


def lb_priorities(resources: Sequence[Resource]) -> list[Violation]:
    """The VRRP priorities in the rendered keepalived.conf files are distinct within a router id."""
    stack = Stack(resources)
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


def lb_vip(resources: Sequence[Resource]) -> list[Violation]:
    """The VIP is the pair's, the same in every keepalived.conf, and no host's own address."""
    stack = Stack(resources)
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


def kubeadm_drops(stack: Stack) -> list[Resource]:
    return [d for d in stack.of_type(FILE_DROP) if str(d.props.get("path") or "").startswith(KUBEADM_PREFIX)]


def _kubeadm_docs(stack: Stack, node: Resource) -> list[dict[str, Any]]:
    return [doc for d in kubeadm_drops(stack) if _same_node(stack, d, node)
            for doc in load_yaml_docs(d.props.get("content"))]


def _same_node(stack: Stack, drop: Resource, node: Resource) -> bool:
    owner = stack.node_of(drop)
    return owner is not None and owner.urn == node.urn


def apiserver_bind_port(docs: Sequence[Mapping[str, Any]]) -> int | None:
    """kube-apiserver's port from a node's kubeadm config, None when the node runs no apiserver."""
    for doc in docs:
        if doc.get("kind") == "InitConfiguration":
            return as_int(dig(doc, "localAPIEndpoint", "bindPort")) or KUBEADM_DEFAULT_BIND_PORT
        if doc.get("kind") == "JoinConfiguration" and doc.get("controlPlane") is not None:
            return as_int(dig(doc, "controlPlane", "localAPIEndpoint", "bindPort")) or KUBEADM_DEFAULT_BIND_PORT
    return None


def lb_stacked_ports(resources: Sequence[Resource]) -> list[Violation]:
    """On a host running both, HAProxy never binds kube-apiserver's port."""
    stack = Stack(resources)
    declared = {as_int(p.props.get("apiserverPort")) for p in stack.of_type(LB_PAIR)} - {None}
    nodes = {n.name: n for n in stack.of_type(NODE)}
    out = []
    for drop in _drops(stack, "haproxy.cfg"):
        node = nodes.get(str(drop.props.get("host")))
        if node is None or node.props.get("role") != "control-plane":
            continue
        port = apiserver_bind_port(_kubeadm_docs(stack, node))
        ports = {port} if port is not None else declared
        clash = sorted(haproxy_bind_ports(drop.props.get("content") or "") & ports)
        if clash:
            source = "its kubeadm config" if port is not None else "the pair's apiserverPort"
            out.append(Violation(drop.urn, f"{drop.name}: HAProxy binds port {clash[0]} on {node.name}, which is "
                                           f"kube-apiserver's bind port ({source})"))
    return out


# ---------------------------------------------------------------------------------------------
# kubeadm and kubelet on control-plane nodes


def _control_plane_nodes(stack: Stack) -> list[Resource]:
    return [n for n in stack.of_type(NODE) if n.props.get("role") == "control-plane"]


def _registration(docs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for doc in docs:
        if doc.get("kind") in ("InitConfiguration", "JoinConfiguration"):
            return doc
    return None


def control_plane_taint(resources: Sequence[Resource]) -> list[Violation]:
    """Control-plane nodes register with the NoSchedule control-plane taint, unless the Cluster
    says they are schedulable (edge). kubeadm applies that taint when `taints` is omitted."""
    stack = Stack(resources)
    cluster = stack.cluster()
    if cluster is not None and cluster.props.get("schedulableControlPlane") is True:
        return []
    out = []
    for node, docs in _nodes_with_kubeadm(stack):
        reg = _registration(docs)
        if reg is None:
            out.append(Violation(node.urn, f"{node.name}: {_no_registration(docs)}"))
            continue
        taints = dig(reg, "nodeRegistration", "taints")
        if taints is None:
            continue
        if not any(isinstance(t, Mapping) and t.get("key") == CONTROL_PLANE_KEY
                   and t.get("effect") == CONTROL_PLANE_TAINT_EFFECT
                   for t in taints):
            out.append(Violation(node.urn, f"{node.name}: nodeRegistration.taints lacks {CONTROL_PLANE_KEY}:"
                                           f"{CONTROL_PLANE_TAINT_EFFECT}, so workloads may land on it"))
    return out


def _no_registration(docs: Sequence[Mapping[str, Any]]) -> str:
    return "its kubeadm config has no Init/JoinConfiguration" if docs else "no kubeadm config is dropped on it"


def _nodes_with_kubeadm(stack: Stack) -> Iterator[tuple[Resource, list[dict[str, Any]]]]:
    """Control-plane nodes and their kubeadm documents; once any node has a kubeadm config, a
    control-plane node without one is reported with an empty list."""
    if not kubeadm_drops(stack):
        return
    for node in _control_plane_nodes(stack):
        yield node, _kubeadm_docs(stack, node)


def parse_quantity(text: Any) -> Fraction | None:
    """A Kubernetes quantity ('250m', '1', '512Mi', '1G') as an exact number, None if malformed."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)", str(text).strip())
    suffixes = {"": 1, "m": Fraction(1, 1000), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
                "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
    if match is None or match.group(2) not in suffixes:
        return None
    return Fraction(match.group(1)) * suffixes[match.group(2)]


def patch_target(path: str) -> str | None:
    """kubeadm's patch file name `target[suffix][+patchtype].extension` -> the target."""
    stem = path.rsplit("/", 1)[-1].split("+", 1)[0].rsplit(".", 1)[0]
    return next((t for t in STATIC_PODS if re.fullmatch(re.escape(t) + r"[0-9]*", stem)), None)


def _patched_resources(content: str, target: str) -> Mapping[str, Any] | None:
    """The `resources` a patch gives the target's container (strategic/merge YAML or a JSON patch)."""
    try:
        docs = list(_parsed_yaml(content)) if known(content) else []
    except yaml.YAMLError:
        return None  # reported as "sets no resources"
    for doc in docs:
        if isinstance(doc, Mapping):
            for container in dig(doc, "spec", "containers") or []:
                if isinstance(container, Mapping) and container.get("name") in (target, None):
                    return container.get("resources")
        if isinstance(doc, list):  # RFC 6902 JSON patch
            for op in doc:
                if isinstance(op, Mapping) and str(op.get("path", "")).endswith("/resources"):
                    return op.get("value")
    return None


def _qos_problems(resources: Any) -> Iterator[str]:
    if not isinstance(resources, Mapping):
        yield "sets no resources for the container"
        return
    for kind in ("cpu", "memory"):
        request, limit = dig(resources, "requests", kind), dig(resources, "limits", kind)
        if request is None or limit is None:
            yield f"needs both requests.{kind} and limits.{kind}"
        elif parse_quantity(request) is None or parse_quantity(request) != parse_quantity(limit):
            yield f"requests.{kind} {request} != limits.{kind} {limit}"


def static_pod_qos(resources: Sequence[Resource]) -> list[Violation]:
    """Every control-plane static pod patched into the Guaranteed QoS class (requests == limits)."""
    return list(_static_pod_violations(Stack(resources)))


def _static_pod_violations(stack: Stack) -> Iterator[Violation]:
    for node, docs in _nodes_with_kubeadm(stack):
        reg = _registration(docs)
        if reg is None:
            yield Violation(node.urn, f"{node.name}: {_no_registration(docs)}")
            continue
        directory = str(dig(reg, "patches", "directory") or "")
        if not directory:
            yield Violation(node.urn, f"{node.name}: its kubeadm config sets no patches.directory, so no "
                                      f"static-pod patch applies")
            continue
        patches = {t: d for d in stack.of_type(FILE_DROP) if _same_node(stack, d, node)
                   and str(d.props.get("path") or "").startswith(directory.rstrip("/") + "/")
                   and (t := patch_target(str(d.props.get("path"))))}
        for target in STATIC_PODS:
            drop = patches.get(target)
            if drop is None:
                yield Violation(node.urn, f"{node.name}: no {target} patch in {directory}")
                continue
            res = _patched_resources(str(drop.props.get("content") or ""), target)
            for problem in _qos_problems(res):
                yield Violation(drop.urn, f"{drop.name}: {target} {problem} (not Guaranteed QoS)")


def cpu_manager(resources: Sequence[Resource]) -> list[Violation]:
    """Control-plane kubelets run the static CPU manager with reserved CPUs, full-pcpus-only (the
    Guaranteed control-plane pods get whole physical cores) and strict-cpu-reservation (the
    reserved CPUs stay out of every pod's pool)."""
    stack = Stack(resources)
    out = []
    for node in _control_plane_nodes(stack):
        configs = [doc for d in stack.of_type(FILE_DROP) if _same_node(stack, d, node)
                   for doc in load_yaml_docs(d.props.get("content")) if doc.get("kind") == "KubeletConfiguration"]
        if not configs:
            if kubeadm_drops(stack):
                out.append(Violation(node.urn, f"{node.name}: no KubeletConfiguration is dropped"))
            continue
        for config in configs:
            if config.get("cpuManagerPolicy") != "static":
                out.append(Violation(node.urn, f"{node.name}: cpuManagerPolicy is "
                                               f"{config.get('cpuManagerPolicy') or 'none'}, not static"))
            elif not (config.get("reservedSystemCPUs") or dig(config, "kubeReserved", "cpu")
                      or dig(config, "systemReserved", "cpu")):
                out.append(Violation(node.urn, f"{node.name}: the static CPU manager needs reserved CPUs"))
            else:
                options = config.get("cpuManagerPolicyOptions") or {}
                out += [Violation(node.urn, f"{node.name}: cpuManagerPolicyOptions lacks {option}: \"true\"")
                        for option in CPU_MANAGER_OPTIONS if str(options.get(option)).lower() != "true"]
    return out


# ---------------------------------------------------------------------------------------------
# Resource rules: workloads and secrets


def workload_isolation(resource: Resource, system_namespaces: Iterable[str] = SYSTEM_NAMESPACES) -> list[str]:
    """A workload outside the system namespaces neither tolerates the control-plane taint nor
    selects control-plane nodes (nodeSelector or required/preferred node affinity)."""
    path = WORKLOADS.get(resource.type)
    if path is None:
        return []
    namespace = dig(resource.props, "metadata", "namespace") or "default"
    if namespace in set(system_namespaces):
        return []
    spec = dig(resource.props, *path)
    if not isinstance(spec, Mapping):
        return []
    where = f"{resource.name} (namespace {namespace})"
    problems = [f"{where} tolerates {t.get('key') or 'every taint'} ({t.get('operator') or 'Equal'})"
                for t in spec.get("tolerations") or [] if isinstance(t, Mapping) and _tolerates_control_plane(t)]
    selector = spec.get("nodeSelector") or {}
    problems += [f"{where} selects {key} nodes via nodeSelector" for key in CONTROL_PLANE_KEYS if key in selector]
    problems += [f"{where} selects control-plane nodes via nodeAffinity ({key} {op})"
                 for key, op in _affinity_selections(dig(spec, "affinity", "nodeAffinity"))]
    return problems


def _tolerates_control_plane(toleration: Mapping[str, Any]) -> bool:
    # Any effect counts, as in the in-cluster admission policy (configs/addons.py), so a workload
    # the preview passes is one the cluster admits.
    key, operator = toleration.get("key"), toleration.get("operator") or "Equal"
    return (not key and operator == "Exists") or key in CONTROL_PLANE_KEYS


def _affinity_selections(affinity: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(affinity, Mapping):
        return
    terms = list(dig(affinity, "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms") or [])
    terms += [p.get("preference") for p in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []
              if isinstance(p, Mapping)]
    for term in terms:
        for expr in (term or {}).get("matchExpressions") or []:
            if isinstance(expr, Mapping) and expr.get("key") in CONTROL_PLANE_KEYS \
                    and expr.get("operator") in ("In", "Exists"):
                yield str(expr["key"]), str(expr["operator"])


# A kubeadm bootstrap token ([a-z0-9]{6}.[a-z0-9]{16}) and a certificate key (64 hex digits).
_TOKEN = re.compile(rf"\b{BOOTSTRAP_TOKEN}\b")
_CERT_KEY = re.compile(rf"\b{CERTIFICATE_KEY}\b")
# `NAME=value` on a command line whose name says it is a credential; `$VAR` expansions are fine.
_SECRET_ASSIGNMENT = re.compile(r"\b([A-Z0-9_]*(?:TOKEN|CERT(?:IFICATE)?_KEY|PASSWORD|PRIVATE_KEY))="
                                r"(?!['\"]?\$)(['\"]?)([^\s'\"]+)")
# What every _SECRET_ASSIGNMENT match contains: checked first, since most commands hold none and a
# substring test is ~15x faster than the regex over a command's few KB of script.
_SECRET_NAME_ENDINGS = ("TOKEN=", "CERT_KEY=", "CERTIFICATE_KEY=", "PASSWORD=", "PRIVATE_KEY=")


def secret_assignments(text: str) -> list[tuple[str, str, str]]:
    """(name, quote, value) of each credential-named `NAME=value` in `text` (_SECRET_ASSIGNMENT)."""
    return _SECRET_ASSIGNMENT.findall(text) if any(e in text for e in _SECRET_NAME_ENDINGS) else []


def has_bootstrap_token(text: str) -> bool:
    """_TOKEN.search(text), tried only where a token's dot could be (~8x faster on a script)."""
    dot = text.find(".")
    while dot != -1:
        if dot >= 6 and _TOKEN.match(text, dot - 6):
            return True
        dot = text.find(".", dot + 1)
    return False


# Commands whose stdout carries a credential (the join token and keys, the admin kubeconfig).
_SECRET_STDOUT = re.compile(r".*-credentials|kubeconfig|.*-kubeconfig")
# The join credentials; the key that copies etcd snapshots off the nodes (components/etcd.py).
_SECRET_STDIN = re.compile(r".*-join|.*-etcd-backup-key")


def _stdin_secret_kind(name: str) -> str:
    return "the backup SSH key" if name.endswith("-etcd-backup-key") else "token and certificate key"


# Fields of kubeadm configs that carry credentials when they are filled in.
_KUBEADM_SECRET_FIELDS = (("certificateKey",), ("discovery", "bootstrapToken", "token"),
                          ("discovery", "tlsBootstrapToken"), ("controlPlane", "certificateKey"))


def secrets(resource: Resource) -> list[str]:
    """SSH keys, tokens, certificate keys and kubeconfigs are Pulumi secrets, never plain inputs."""
    problems: list[str] = []
    name, props = resource.name, resource.props
    if resource.type == COMMAND:
        if props.get("connection") is not None and "connection" not in resource.secrets:
            problems.append(f"{name}: connection (SSH private key) is not secret")
        if _SECRET_STDOUT.fullmatch(name):
            problems += _secret_output(resource, "stdout")
        if _SECRET_STDIN.fullmatch(name) and "stdin" not in resource.secrets:
            problems.append(f"{name}: stdin ({_stdin_secret_kind(name)}) is not secret")
        create = str(props.get("create") or "")
        problems += [f"{name}: create passes {var} on the command line (argv is visible to every local user)"
                     for var, _quote, _value in secret_assignments(create)]
        if has_bootstrap_token(create):
            problems.append(f"{name}: create carries a bootstrap token on the command line")
        if "stdin" not in resource.secrets and has_bootstrap_token(str(props.get("stdin") or "")):
            problems.append(f"{name}: stdin holds a bootstrap token but is not secret")
    if resource.type == K8S_PROVIDER and props.get("kubeconfig") and "kubeconfig" not in resource.secrets:
        problems.append(f"{name}: kubeconfig is not secret")
    if resource.type == FILE_DROP and "content" not in resource.secrets:
        problems += [f"{name}: {p}" for p in _kubeadm_credentials(props)]
    if resource.type == FILE_SET and "files" not in resource.secrets:
        problems += [f"{name}: {p}" for f in resource.placed for p in _kubeadm_credentials(f.props)]
    return problems


def _secret_output(resource: Resource, prop: str) -> list[str]:
    problems = []
    if prop not in resource.secrets:
        problems.append(f"{resource.name}: {prop} is not secret (set additional_secret_outputs=[{prop!r}]: "
                        f"Output.secret in the program does not encrypt it in the state)")
    logging = resource.props.get("logging")
    if logging in (None, "stdout", "stdoutAndStderr"):
        problems.append(f"{resource.name}: logging {logging or 'stdoutAndStderr (default)'} prints the {prop} "
                        f"secret to the update log")
    return problems


def _kubeadm_credentials(props: Mapping[str, Any]) -> Iterator[str]:
    path = str(props.get("path") or "")
    if not path.startswith(KUBEADM_PREFIX):
        return
    for doc in load_yaml_docs(props.get("content")):
        for field_path in _KUBEADM_SECRET_FIELDS:
            value = dig(doc, *field_path)
            if isinstance(value, str) and (_TOKEN.fullmatch(value) or _CERT_KEY.fullmatch(value)):
                yield f"{path} carries {'.'.join(field_path)} in plain text"
        for token in doc.get("bootstrapTokens") or []:
            if isinstance(token, Mapping) and token.get("token"):
                yield f"{path} carries bootstrapTokens[].token in plain text"



# ---------------------------------------------------------------------------------------------
# etcd snapshots (components/etcd.py, configs/etcd.py): taken on every control-plane node and
# copied off it. Restated from configs/etcd.py (this module imports nothing from hakube).



def environment_file(text: Any) -> dict[str, str]:
    """NAME="value" lines of a systemd EnvironmentFile (as configs/systemd.py writes them)."""
    env = {}
    for line in str(text or "").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            env[name.strip()] = value
    return env


def _snapshot_files(stack: Stack, node: Resource) -> dict[str, Resource]:
    wanted = (SNAPSHOT_TIMER_PATH, SNAPSHOT_ENV_PATH)
    return {str(d.props.get("path")): d for d in stack.of_type(FILE_DROP)
            if d.props.get("path") in wanted and stack.node_of(d) is node}


def offsite_snapshots(resources: Sequence[Resource]) -> list[Violation]:
    """Scheduled etcd snapshots on every control-plane node, each copied to a backup target off the
    node: a snapshot on the disk of the member it protects is lost with that member."""
    stack = Stack(resources)
    nodes = sorted(_control_plane_nodes(stack), key=lambda n: n.name)
    if not nodes:
        return []
    declared = stack.of_type(ETCD_SNAPSHOTS)
    cluster = stack.cluster()
    where = declared[0] if declared else cluster
    urn, name = (where.urn, where.name) if where is not None else ("", "cluster")
    props = declared[0].props if declared else {}
    if not declared:
        return [Violation(urn, f"{name}: no etcd snapshots are declared (etcd.snapshots)")]
    if props.get("enabled") is False:
        return [Violation(urn, f"{name}: etcd.snapshots.enabled is false: no snapshot to restore etcd from")]
    if not props.get("target"):
        return [Violation(urn, f"{name}: etcd.snapshots.target is not set: snapshots stay on the control-plane "
                               "nodes they protect; name a backup host reached over SSH")]
    out = []
    for node in nodes:
        files = _snapshot_files(stack, node)
        if SNAPSHOT_TIMER_PATH not in files:
            out.append(Violation(node.urn, f"{node.name}: no etcd snapshot timer ({SNAPSHOT_TIMER_PATH})"))
        env_file = files.get(SNAPSHOT_ENV_PATH)
        env = environment_file(reveal(env_file.props.get("content"))) if env_file is not None else {}
        if not env.get("TARGET_ADDRESS"):
            out.append(Violation(node.urn, f"{node.name}: its snapshots are not copied off the node "
                                           f"(no TARGET_ADDRESS in {SNAPSHOT_ENV_PATH})"))
    return out

StackRule = Callable[[Sequence[Resource]], list[Violation]]
