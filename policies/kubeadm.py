"""kubeadm and the kubelet on control-plane nodes: the NoSchedule taint, Guaranteed static pods,
the static CPU manager."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any

import yaml

from ._data import KUBEADM_PREFIX, Resource, Stack, Violation, _parsed_yaml, as_int, dig, known, load_yaml_docs
from ._engine import ADVISORY, MANDATORY, Policy, Scope, stack_policy
from .contract import (
    CONTROL_PLANE_KEY,
    CONTROL_PLANE_TAINT_EFFECT,
    CPU_MANAGER_OPTIONS,
    FILE_DROP,
    KUBEADM_DEFAULT_BIND_PORT,
    STATIC_PODS,
)


def apiserver_bind_port(docs: Sequence[Mapping[str, Any]]) -> int | None:
    """kube-apiserver's port from a node's kubeadm config, None when the node runs no apiserver."""
    for doc in docs:
        if doc.get("kind") == "InitConfiguration":
            return as_int(dig(doc, "localAPIEndpoint", "bindPort")) or KUBEADM_DEFAULT_BIND_PORT
        if doc.get("kind") == "JoinConfiguration" and doc.get("controlPlane") is not None:
            return as_int(dig(doc, "controlPlane", "localAPIEndpoint", "bindPort")) or KUBEADM_DEFAULT_BIND_PORT
    return None


def _registration(docs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for doc in docs:
        if doc.get("kind") in ("InitConfiguration", "JoinConfiguration"):
            return doc
    return None


def control_plane_taint(stack: Stack) -> list[Violation]:
    """Control-plane nodes register with the NoSchedule control-plane taint, unless the Cluster
    says they are schedulable (edge). kubeadm applies that taint when `taints` is omitted."""
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
    if not stack.kubeadm_drops:
        return
    for node in stack.control_plane_nodes:
        yield node, stack.kubeadm_docs(node)


_QUANTITY_SUFFIXES: dict[str, int | Fraction] = {
    "": 1, "m": Fraction(1, 1000), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def parse_quantity(text: Any) -> Fraction | None:
    """A Kubernetes quantity ('250m', '1', '512Mi', '1G') as an exact number, None if malformed."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)", str(text).strip())
    if match is None or match.group(2) not in _QUANTITY_SUFFIXES:
        return None
    return Fraction(match.group(1)) * _QUANTITY_SUFFIXES[match.group(2)]


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


def static_pod_qos(stack: Stack) -> list[Violation]:
    """Every control-plane static pod patched into the Guaranteed QoS class (requests == limits)."""
    return list(_static_pod_violations(stack))


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
        patches = {t: d for d in stack.files_on(node)
                   if str(d.props.get("path") or "").startswith(directory.rstrip("/") + "/")
                   and (t := patch_target(str(d.props.get("path"))))}
        for target in STATIC_PODS:
            drop = patches.get(target)
            if drop is None:
                yield Violation(node.urn, f"{node.name}: no {target} patch in {directory}")
                continue
            res = _patched_resources(str(drop.props.get("content") or ""), target)
            for problem in _qos_problems(res):
                yield Violation(drop.urn, f"{drop.name}: {target} {problem} (not Guaranteed QoS)")


def cpu_manager(stack: Stack) -> list[Violation]:
    """Control-plane kubelets run the static CPU manager with reserved CPUs, full-pcpus-only (the
    Guaranteed control-plane pods get whole physical cores) and strict-cpu-reservation (the
    reserved CPUs stay out of every pod's pool)."""
    out = []
    for node in stack.control_plane_nodes:
        configs = [doc for d in stack.files_on(node)
                   for doc in load_yaml_docs(d.props.get("content")) if doc.get("kind") == "KubeletConfiguration"]
        if not configs:
            if stack.kubeadm_drops:
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


_KUBEADM = Scope((FILE_DROP,), KUBEADM_PREFIX)
POLICIES: list[Policy] = [
    stack_policy("cp-taint", f"Control-plane nodes register with {CONTROL_PLANE_KEY}:{CONTROL_PLANE_TAINT_EFFECT} "
                 "(unless the Cluster makes them schedulable, edge).", control_plane_taint, MANDATORY, _KUBEADM),
    stack_policy("cp-static-pod-qos", "Each control-plane static pod (etcd, kube-apiserver, kube-controller-manager, "
                 "kube-scheduler) is patched to Guaranteed QoS: requests == limits.", static_pod_qos,
                 MANDATORY, _KUBEADM),
    stack_policy("cp-cpu-manager", "Control-plane kubelets run the static CPU manager with reserved CPUs, "
                 "full-pcpus-only and strict-cpu-reservation.",
                 cpu_manager, ADVISORY, _KUBEADM),
]
