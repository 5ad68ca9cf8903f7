"""Workloads: none outside the system namespaces tolerates the control-plane taint or selects
control-plane nodes (the in-cluster admission policy, configs/addons.py, refuses the same)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema

from ._data import Resource, dig
from ._engine import MANDATORY, Policy, Scope, resource_policy
from .contract import BASE_SYSTEM_NAMESPACES, CONTROL_PLANE_KEYS, SYSTEM_NAMESPACES, WORKLOADS


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


def _workloads(resource: Resource, config: Mapping[str, Any]) -> list[str]:
    extra = [str(n) for n in config.get("extraSystemNamespaces") or []]
    return workload_isolation(resource, SYSTEM_NAMESPACES | set(extra))


POLICIES: list[Policy] = [
    resource_policy("workload-isolation", "No workload outside the system namespaces tolerates the control-plane "
                    "taint or selects control-plane nodes.", _workloads, MANDATORY,
                    Scope(tuple(WORKLOADS)),
                    PolicyConfigSchema({"extraSystemNamespaces": {
                        "type": "array", "items": {"type": "string"},
                        "description": "Namespaces allowed on control-plane nodes besides "
                                       f"{', '.join(BASE_SYSTEM_NAMESPACES)} and the CNIs'."}})),
]
