"""The hakube policies: rules.py's pure functions wired with names, descriptions and levels.

`POLICIES` holds the ResourceValidationPolicy/StackValidationPolicy objects; `__main__.py` only
puts them in a PolicyPack (which starts the gRPC server the CLI talks to), so tests and the dry
run call these objects directly, the way the engine does.

What a Python policy receives from the engine (pulumi 3.272, pulumi-policy 1.21): the engine
sends properties with secrets and unknowns kept (KeepSecrets, KeepUnknowns), but the Python SDK
deserializes them for Analyze/AnalyzeStack without `proxy_secrets`, so a secret arrives as its
plain value and a policy cannot see that it was secret; what it can see is
`opts.additional_secret_outputs`, so that is what the secret rule reads (a value still in the
wire form, e.g. built by hand in a test, counts too). A value still unknown during preview arrives
as a sentinel string behind a proxy that raises UnknownValueError when read; `_plain` reads
through that proxy (sentinels stay, rules.known() tells them apart).

Resource policies see a resource's inputs; stack policies see every resource's *outputs*, and a
component's outputs are what it passed to register_outputs: hakube components register their
inputs as outputs so the stack rules read the same facts under the engine as in the dry run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from . import rules

PACK_NAME = "hakube-isolation"
PACK_VERSION = "0.1.0"
# Per-stack pack config (`pulumi preview --policy-pack-config policies/config/<stack>.json`).
CONFIG_DIR = Path(__file__).resolve().parent / "config"

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

Policy = ResourceValidationPolicy | StackValidationPolicy


@dataclass(frozen=True)
class Scope:
    """What a policy inspects, so a report can tell "passed" from "nothing to check yet"."""

    types: tuple[str, ...]
    path_prefix: str = ""

    def count(self, resources: Iterable[rules.Resource]) -> int:
        """The resources in scope; a FileSet is when one of its files is (rules.placed_files)."""
        return len({r.urn for r in rules.placed_files(resources) if r.type in self.types
                    and str(r.props.get("path") or "").startswith(self.path_prefix)})


def _plain(value: Any) -> Any:
    """Dicts and lists out of pulumi_policy's proxies, read through their raw targets so an
    unknown value stays a sentinel (rules skip it) instead of aborting the whole policy."""
    if isinstance(value, str | bytes | int | float | None):  # before the slower Mapping (ABC) checks
        return value
    if isinstance(value, Mapping):
        target = value if isinstance(value, dict) else value["__target"]
        return {k: _plain(v) for k, v in target.items()}
    if isinstance(value, Sequence):
        target = value if isinstance(value, list | tuple) else value["__target"]
        return [_plain(v) for v in target]
    return value


def to_resource(type_: str, name: str, urn: str, props: Any, opts: PolicyResourceOptions | None, *,
                parent: str | None = None, dependencies: Sequence[str] = (),
                property_dependencies: Mapping[str, Sequence[str]] | None = None,
                provider: str | None = None) -> rules.Resource:
    revealed, secret = _once("props", props, lambda: _revealed(props))
    secret |= frozenset(getattr(opts, "additional_secret_outputs", None) or [])
    return rules.Resource(
        urn=urn, type=type_, name=name, props=revealed,
        parent=parent or (getattr(opts, "parent", None) or None),
        dependencies=tuple(dependencies),
        property_dependencies={k: tuple(v) for k, v in (property_dependencies or {}).items()},
        provider=provider, secrets=frozenset(secret),
    )


def _revealed(props: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """The props as plain data with secrets unwrapped, and the names of those that held one."""
    raw = _plain(props) or {}
    return rules.reveal(raw), frozenset(k for k, v in raw.items() if rules.contains_secret(v))


# URN -> the inputs the engine last handed a resource policy. The engine runs Analyze (resource
# policies, on inputs) for every resource before AnalyzeStack (stack policies, on outputs), in this one
# pack process. In a preview it knows no outputs for a resource whose provider is not configured yet
# (libvirt before its hypervisor is prepared, kubernetes before the cluster exists: their inputs are
# unknown) and hands stack policies an empty map for it, which a rule would read as "no xml.xslt",
# "no NIC", ...; a configured provider's preview echoes the inputs, as the dry run's mocks do, so a
# stack rule reads those instead.
_INPUTS: dict[str, Any] = {}


def _known_props(r: PolicyResource) -> Any:
    """The resource's outputs, or its inputs while the engine knows no outputs (see _INPUTS)."""
    if r.props is not None and not _plain(r.props):
        return _INPUTS.get(r.urn, r.props)
    return r.props


def from_policy_resource(r: PolicyResource) -> rules.Resource:
    return to_resource(
        r.resource_type, r.name, r.urn, _known_props(r), r.opts,
        parent=r.parent.urn if r.parent is not None else None,
        dependencies=[d.urn for d in r.dependencies],
        property_dependencies={k: [d.urn for d in v] for k, v in (r.property_dependencies or {}).items()},
        provider=r.provider.urn if r.provider is not None else None,
    )


def from_args(args: ResourceValidationArgs) -> rules.Resource:
    return to_resource(args.resource_type, args.name, args.urn, args.props, args.opts,
                       provider=args.provider.urn if args.provider is not None else None)


# Conversions shared between policies while `shared_conversions()` is active: id(object) -> (the
# object, kept alive so its id is not reused, and its conversion). None: convert on every call.
_SHARED: dict[tuple[str, int], tuple[Any, Any]] | None = None


@contextmanager
def shared_conversions() -> Iterator[None]:
    """Within this block every stack-policy resource list and every resource policy's props object
    is converted once, and that conversion is shared by every policy handed the same object.

    The dry run evaluates all policies over one set of PolicyResources, so without this it converted
    the whole stack again for each of the 16 stack policies; within it, a resource's props are
    converted once for the stack and the resource policies alike. The engine's policy server builds fresh
    objects for every policy call and never enters this block: there each call converts, as before.
    Rules must treat what they get as read-only (rules.Resource is frozen; its props are shared).
    """
    global _SHARED
    outer, _SHARED = _SHARED, {}
    try:
        yield
    finally:
        _SHARED = outer


def _once(kind: str, key: Any, convert: Callable[[], Any]) -> Any:
    if _SHARED is None:
        return convert()
    hit = _SHARED.get((kind, id(key)))
    if hit is None or hit[0] is not key:
        hit = _SHARED[(kind, id(key))] = (key, convert())
    return hit[1]


def stack_resources(resources: Sequence[PolicyResource]) -> list[rules.Resource]:
    """What a stack rule checks: every resource of `StackValidationArgs.resources`, converted."""
    return list(_once("stack", resources, lambda: [from_policy_resource(r) for r in resources]))


def _args_resource(args: ResourceValidationArgs) -> rules.Resource:
    if args.props is None:
        return from_args(args)
    return _once(f"props {args.urn}", args.props, lambda: from_args(args))


def stack_policy(name: str, description: str, check: rules.StackRule, level: EnforcementLevel,
                 scope: Scope) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for violation in check(stack_resources(args.resources)):
            report(violation.message, violation.urn or None)

    policy = StackValidationPolicy(name=name, description=description, validate=validate, enforcement_level=level)
    SCOPES[name] = scope
    return policy


def resource_policy(name: str, description: str, check: Callable[[rules.Resource, Mapping[str, Any]], list[str]],
                    level: EnforcementLevel, scope: Scope,
                    config_schema: PolicyConfigSchema | None = None) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        _INPUTS[args.urn] = args.props
        for message in check(_args_resource(args), args.get_config() or {}):
            report(message, args.urn)

    policy = ResourceValidationPolicy(name=name, description=description, validate=validate,
                                      enforcement_level=level, config_schema=config_schema)
    SCOPES[name] = scope
    return policy


def _workloads(resource: rules.Resource, config: Mapping[str, Any]) -> list[str]:
    extra = [str(n) for n in config.get("extraSystemNamespaces") or []]
    return rules.workload_isolation(resource, rules.SYSTEM_NAMESPACES | set(extra))


SCOPES: dict[str, Scope] = {}
_VMS = Scope((rules.DOMAIN,))
_LB = Scope((rules.LB_PAIR, rules.LB_HOST))
_KUBEADM = Scope((rules.FILE_DROP,), rules.KUBEADM_PREFIX)

POLICIES: list[Policy] = [
    stack_policy("cp-vcpu-pinning", "Each vCPU of a control-plane VM is pinned (domain XSLT <vcpupin>) to one host "
                 "core of its own, outside the hypervisor's reservedCpus.", rules.vcpu_pinning, MANDATORY, _VMS),
    stack_policy("cp-memory-locked", "Control-plane VM memory is locked (<memoryBacking><locked/>) with no balloon "
                 "(<memballoon model='none'>).", rules.memory_locked, MANDATORY, _VMS),
    stack_policy("cp-dedicated-cores", "No two control-plane VMs on one hypervisor share a pinned core.",
                 rules.shared_cores, MANDATORY, _VMS),
    stack_policy("cp-no-overcommit", "The domains on a hypervisor fit its memory less reservedMemoryGiB and its "
                 "cores less reservedCpus.", rules.no_overcommit, MANDATORY, _VMS),
    stack_policy("etcd-storage", "Each control-plane VM's etcd volume lives in its hypervisor's controlPlane pool, "
                 "which holds no other disks.", rules.etcd_storage, MANDATORY, Scope((rules.VOLUME,))),
    stack_policy("cp-network", "Each control-plane VM has a NIC on its hypervisor's controlPlane bridge.",
                 rules.control_plane_network, MANDATORY, _VMS),
    stack_policy("cp-spread", "With at least as many hypervisors as control-plane VMs, no two VMs share one.",
                 rules.spread, MANDATORY, Scope((rules.CONTROL_PLANE_VM,))),
    stack_policy("cp-spread-best-effort", "With fewer hypervisors than control-plane VMs, report the hosts whose "
                 "loss takes several etcd members.", rules.spread_best_effort, ADVISORY,
                 Scope((rules.CONTROL_PLANE_VM,))),
    stack_policy("quorum", "An odd number, at least 3, of control-plane nodes (etcd quorum).", rules.quorum,
                 MANDATORY, Scope((rules.CLUSTER,))),
    stack_policy("lb-redundancy", "At least two LB nodes on distinct hosts, each with HAProxy and keepalived.",
                 rules.lb_redundancy, MANDATORY, _LB),
    stack_policy("lb-vrrp-priorities", "The keepalived.conf files give each LB node a distinct VRRP priority.",
                 rules.lb_priorities, MANDATORY, _LB),
    stack_policy("lb-vip", "The VIP is the pair's in every keepalived.conf and no host's own address.",
                 rules.lb_vip, MANDATORY, _LB),
    stack_policy("lb-stacked-ports", "On a node running both, HAProxy never binds kube-apiserver's bind port.",
                 rules.lb_stacked_ports, MANDATORY, _LB),
    stack_policy("cp-taint", "Control-plane nodes register with node-role.kubernetes.io/control-plane:NoSchedule "
                 "(unless the Cluster makes them schedulable, edge).", rules.control_plane_taint, MANDATORY,
                 _KUBEADM),
    stack_policy("cp-static-pod-qos", "Each control-plane static pod (etcd, kube-apiserver, kube-controller-manager, "
                 "kube-scheduler) is patched to Guaranteed QoS: requests == limits.", rules.static_pod_qos,
                 MANDATORY, _KUBEADM),
    stack_policy("cp-cpu-manager", "Control-plane kubelets run the static CPU manager with reserved CPUs, "
                 "full-pcpus-only and strict-cpu-reservation.",
                 rules.cpu_manager, ADVISORY, _KUBEADM),
    stack_policy("etcd-offsite-snapshots", "Every control-plane node takes scheduled etcd snapshots and copies them "
                 "to a backup target off the node (etcd.snapshots.target); advisory on edge.",
                 rules.offsite_snapshots, MANDATORY, Scope((rules.ETCD_SNAPSHOTS, rules.NODE))),
    resource_policy("workload-isolation", "No workload outside the system namespaces tolerates the control-plane "
                    "taint or selects control-plane nodes.", _workloads, MANDATORY,
                    Scope(tuple(rules.WORKLOADS)),
                    PolicyConfigSchema({"extraSystemNamespaces": {
                        "type": "array", "items": {"type": "string"},
                        "description": "Namespaces allowed on control-plane nodes besides kube-system, "
                                       "kube-public, kube-node-lease, hakube-system and the CNIs'."}})),
    resource_policy("secrets", "SSH keys, bootstrap tokens, certificate keys and kubeconfigs are Pulumi secrets, "
                    "never plain inputs, argv or logs.", lambda r, _config: rules.secrets(r), MANDATORY,
                    Scope((rules.COMMAND, rules.K8S_PROVIDER, rules.FILE_DROP, rules.FILE_SET))),
]


def stack_config(stack: str) -> dict[str, Any]:
    """The pack config a stack is previewed with (policies/config/<stack>.json, else none)."""
    path = CONFIG_DIR / f"{stack}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _level(value: Any) -> EnforcementLevel | None:
    raw = value.get("enforcementLevel") if isinstance(value, Mapping) else value
    return EnforcementLevel(raw) if raw else None


def enforcement_level(policy: Policy, config: Mapping[str, Any]) -> EnforcementLevel:
    """As the engine resolves it: the policy's own entry, then `all`, then the policy's level."""
    return (_level(config.get(policy.name)) or _level(config.get("all")) or policy.enforcement_level
            or MANDATORY)


def policy_config(policy: Policy, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The properties (all but enforcementLevel) that `args.get_config()` returns for this policy."""
    entry = config.get(policy.name)
    if not isinstance(entry, Mapping):
        return None
    return {k: v for k, v in entry.items() if k != "enforcementLevel"} or None
