"""What hakube installs inside a new cluster, as plain data: pinned charts and their values,
namespaces with Pod Security Admission labels, the control-plane isolation admission policy (CEL,
with a Python twin that gives the same verdicts), and the nginx NodePort smoke test.

components/addons.py only wires these into pulumi-kubernetes resources.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from topology.model import Cluster


@dataclass(frozen=True)
class Chart:
    """A Helm chart pinned to one version, installed as `release` into `namespace`."""

    repo: str
    name: str
    version: str
    namespace: str
    release: str


# Pinned versions: bump one line, run the tests, read the chart's upgrade notes.
CNI_CHARTS: Mapping[str, Chart] = {
    # Calico through the Tigera operator; the operator creates calico-system itself.
    "calico": Chart("https://docs.tigera.io/calico/charts", "tigera-operator", "v3.30.3", "tigera-operator", "calico"),
    "cilium": Chart("https://helm.cilium.io/", "cilium", "1.17.6", "kube-system", "cilium"),
    "flannel": Chart("https://flannel-io.github.io/flannel/", "flannel", "v0.27.4", "kube-flannel", "flannel"),
}
METALLB_CHART = Chart("https://metallb.github.io/metallb", "metallb", "0.15.2", "metallb-system", "metallb")
INGRESS_CHART = Chart("https://kubernetes.github.io/ingress-nginx", "ingress-nginx", "4.12.3", "ingress-nginx",
                      "ingress-nginx")
# The unprivileged nginx build (uid 101, port 8080) passes the `restricted` Pod Security level.
SMOKE_IMAGE = "docker.io/nginxinc/nginx-unprivileged:1.28.0-alpine"
SMOKE_CONTAINER_PORT = 8080
# Fixed so users and the check know where to look; inside the default NodePort range.
SMOKE_NODE_PORT = 30080

HAKUBE_NAMESPACE = "hakube-system"
SMOKE_NAMESPACE = "hakube-smoke"
SMOKE_NAME = "hakube-smoke"
CONTROL_PLANE_KEY = "node-role.kubernetes.io/control-plane"
# Taint keys and node labels that mean "control plane"; `master` is the pre-1.24 name, still refused
# (as the policy pack does) so a manifest written for old clusters cannot slip through.
CONTROL_PLANE_KEYS = (CONTROL_PLANE_KEY, "node-role.kubernetes.io/master")
_KEYS_CEL = json.dumps(list(CONTROL_PLANE_KEYS))  # a JSON list of strings is a CEL list literal
BASE_SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", HAKUBE_NAMESPACE)
# Namespaces the CNI's own pods run in (they tolerate every taint, so they must be exempt).
CNI_SYSTEM_NAMESPACES: Mapping[str, tuple[str, ...]] = {
    "calico": ("tigera-operator", "calico-system", "calico-apiserver"),
    "cilium": ("kube-system",),
    "flannel": ("kube-flannel",),
}
# kube-controller-manager's default --node-cidr-mask-size: each node gets a /24 of the pod CIDR.
NODE_POD_MASK = 24


# --- CNI ---------------------------------------------------------------------------------------

def cni_chart(cluster: Cluster) -> Chart:
    return CNI_CHARTS[cluster.addons.cni]


def cni_values(cluster: Cluster) -> dict[str, Any]:
    """Helm values for the chosen CNI, carrying the pod CIDR in that chart's own shape."""
    pod_cidr = str(cluster.network.pod_cidr)
    cni = cluster.addons.cni
    if cni == "calico":
        pool = {"cidr": pod_cidr, "encapsulation": "VXLAN", "natOutgoing": "Enabled", "nodeSelector": "all()"}
        return {"installation": {"cni": {"type": "Calico"}, "calicoNetwork": {"ipPools": [pool]}}}
    if cni == "cilium":
        operator = {"clusterPoolIPv4PodCIDRList": [pod_cidr], "clusterPoolIPv4MaskSize": NODE_POD_MASK}
        return {"ipam": {"mode": "cluster-pool", "operator": operator}}
    if cni == "flannel":
        return {"podCidr": pod_cidr}
    raise ValueError(f"unknown CNI {cni!r}")


def cni_pod_cidr(cni: str, values: Mapping[str, Any]) -> str:
    """Read the pod CIDR back out of a chart's values (what tests and reviewers check)."""
    if cni == "calico":
        return values["installation"]["calicoNetwork"]["ipPools"][0]["cidr"]
    if cni == "cilium":
        return values["ipam"]["operator"]["clusterPoolIPv4PodCIDRList"][0]
    return values["podCidr"]


# --- namespaces and Pod Security Admission -----------------------------------------------------

@dataclass(frozen=True)
class Namespace:
    name: str
    level: str  # Pod Security level enforced: privileged | baseline | restricted
    create: bool = True  # False: the namespace exists already; hakube only labels it


def psa_labels(level: str) -> dict[str, str]:
    """Enforce `level`; warn and audit at `restricted` so users see what would not pass it."""
    # "latest": the policy definitions of the running apiserver, so they follow each upgrade the
    # way a label pinned to the cluster's minor would, without an upgrade rewriting every namespace.
    version = "latest"
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": version,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": version,
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": version,
    }


def namespaces(cluster: Cluster) -> list[Namespace]:
    """Namespaces hakube creates or labels, in the order they are needed."""
    out = [Namespace(HAKUBE_NAMESPACE, "restricted"), Namespace("default", "baseline", create=False)]
    cni_ns = cni_chart(cluster).namespace
    if cni_ns not in BASE_SYSTEM_NAMESPACES:
        out.append(Namespace(cni_ns, "privileged"))  # host networking and NET_ADMIN
    if cluster.addons.smoke_test:
        out.append(Namespace(SMOKE_NAMESPACE, "restricted"))
    if cluster.addons.metallb.enabled:
        out.append(Namespace(METALLB_CHART.namespace, "privileged"))  # the speaker sends ARP from the host
    if cluster.addons.ingress:
        out.append(Namespace(INGRESS_CHART.namespace, "baseline"))
    return out


def namespace_manifest(ns: Namespace) -> dict[str, Any]:
    return {"name": ns.name, "labels": {"app.kubernetes.io/managed-by": "hakube", **psa_labels(ns.level)}}


# --- control-plane isolation: ValidatingAdmissionPolicy and its Python twin ---------------------

ISOLATION_POLICY_NAME = "hakube-control-plane-isolation"
# admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy is GA (on by default) from 1.30.
ADMISSION_POLICY_FROM_MINOR = 30

# The CEL sticks to what both Kubernetes and cel-python evaluate: has(), exists(), map(), `in`,
# ternaries, list concatenation (no optional `?.` syntax). `object` is dyn at admission time, so
# the kind switch below type-checks only as warnings in the policy's status, never as errors.
SPEC_EXPRESSION = "object.kind == 'Pod' ? object.spec : object.spec.template.spec"
NODE_AFFINITY_EXPRESSION = (
    "has(variables.spec.affinity) && has(variables.spec.affinity.nodeAffinity)"
    " ? variables.spec.affinity.nodeAffinity : {}"
)
# Required terms and preferred terms' preferences: both are node selector terms.
NODE_TERMS_EXPRESSION = (
    "(has(variables.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution)"
    " ? variables.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms : [])"
    " + (has(variables.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution)"
    " ? variables.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution.map(p, p.preference) : [])"
)
# A toleration naming the taint's key, or an empty key with Exists (which tolerates every taint).
TOLERATES_EXPRESSION = (
    "has(variables.spec.tolerations) && variables.spec.tolerations.exists(t,"
    f" (has(t.key) && t.key in {_KEYS_CEL})"
    " || ((!has(t.key) || t.key == '') && has(t.operator) && t.operator == 'Exists'))"
)
# nodeSelector on the role label, or an In/Exists affinity expression on it (NotIn/DoesNotExist keep
# pods away from control-plane nodes and are fine).
SELECTS_EXPRESSION = (
    f"(has(variables.spec.nodeSelector) && {_KEYS_CEL}.exists(k, k in variables.spec.nodeSelector))"
    " || variables.nodeTerms.exists(term, has(term.matchExpressions) && term.matchExpressions.exists(e,"
    f" e.key in {_KEYS_CEL} && e.operator in ['In', 'Exists']))"
)
ADMIT_EXPRESSION = "variables.systemNamespace || !(variables.toleratesControlPlane || variables.selectsControlPlane)"
MESSAGE_EXPRESSION = (
    "'hakube control-plane isolation: ' + (variables.toleratesControlPlane"
    " ? 'tolerating the control-plane taint' : 'selecting control-plane nodes')"
    " + ' is reserved for system namespaces, not ' + request.namespace"
)
ISOLATION_REASONS = {
    "toleratesControlPlane": "tolerating the control-plane taint",
    "selectsControlPlane": "selecting control-plane nodes",
}
# Workloads whose pod template is checked too, so a bad Deployment fails at apply time rather than
# as silently missing pods; pods are checked whatever created them.
ISOLATION_RESOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("pods",)),
    ("apps", ("deployments", "daemonsets", "statefulsets", "replicasets")),
    ("batch", ("jobs",)),
)


def system_namespaces(cluster: Cluster) -> tuple[str, ...]:
    """Namespaces where tolerating or selecting control-plane nodes is allowed."""
    extra = list(CNI_SYSTEM_NAMESPACES[cluster.addons.cni])
    if cluster.addons.metallb.enabled:
        extra.append(METALLB_CHART.namespace)  # the speaker tolerates the control-plane taint
    return tuple(dict.fromkeys([*BASE_SYSTEM_NAMESPACES, *extra]))


def isolation_variables(system: Collection[str]) -> list[dict[str, str]]:
    """The policy's variables, in evaluation order (each may use the ones before it)."""
    return [
        {"name": "spec", "expression": SPEC_EXPRESSION},
        {"name": "nodeAffinity", "expression": NODE_AFFINITY_EXPRESSION},
        {"name": "nodeTerms", "expression": NODE_TERMS_EXPRESSION},
        {"name": "systemNamespace", "expression": f"request.namespace in {json.dumps(sorted(system))}"},
        {"name": "toleratesControlPlane", "expression": TOLERATES_EXPRESSION},
        {"name": "selectsControlPlane", "expression": SELECTS_EXPRESSION},
    ]


def admission_policy_enabled(cluster: Cluster) -> bool:
    return cluster.minor >= ADMISSION_POLICY_FROM_MINOR


def isolation_policy_spec(cluster: Cluster) -> dict[str, Any]:
    rules = [
        {"apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": list(res)}
        for group, res in ISOLATION_RESOURCES
    ]
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": rules},
        "variables": isolation_variables(system_namespaces(cluster)),
        "validations": [{"expression": ADMIT_EXPRESSION, "messageExpression": MESSAGE_EXPRESSION,
                         "message": "hakube control-plane isolation: refused", "reason": "Forbidden"}],
    }


def isolation_binding_spec() -> dict[str, Any]:
    return {"policyName": ISOLATION_POLICY_NAME, "validationActions": ["Deny"]}


def pod_spec_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec inside a Pod or a workload's template (SPEC_EXPRESSION's twin)."""
    return obj["spec"] if obj.get("kind") == "Pod" else obj["spec"]["template"]["spec"]


def _tolerates_control_plane(spec: Mapping[str, Any]) -> bool:
    return any(
        t.get("key") in CONTROL_PLANE_KEYS or (not t.get("key") and t.get("operator") == "Exists")
        for t in spec.get("tolerations") or []
    )


def _selects_control_plane(spec: Mapping[str, Any]) -> bool:
    if any(key in (spec.get("nodeSelector") or {}) for key in CONTROL_PLANE_KEYS):
        return True
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = list(required.get("nodeSelectorTerms") or [])
    terms += [p["preference"] for p in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
    return any(
        e.get("key") in CONTROL_PLANE_KEYS and e.get("operator") in ("In", "Exists")
        for term in terms for e in term.get("matchExpressions") or []
    )


def pod_violates_isolation(pod_spec: Mapping[str, Any], namespace: str,
                           system: Collection[str] = BASE_SYSTEM_NAMESPACES) -> str | None:
    """Python twin of the admission policy: why a pod spec is refused in `namespace`, or None.

    The policy pack and tests use it; test_admission_policy.py holds both to the same verdicts.
    """
    if namespace in system:
        return None
    if _tolerates_control_plane(pod_spec):
        reason = ISOLATION_REASONS["toleratesControlPlane"]
    elif _selects_control_plane(pod_spec):
        reason = ISOLATION_REASONS["selectsControlPlane"]
    else:
        return None
    return f"hakube control-plane isolation: {reason} is reserved for system namespaces, not {namespace}"


# --- smoke test --------------------------------------------------------------------------------

SMOKE_LABELS = {"app.kubernetes.io/name": SMOKE_NAME, "app.kubernetes.io/managed-by": "hakube"}


def smoke_deployment(cluster: Cluster) -> dict[str, Any]:
    """nginx with `addons.smokeTestReplicas` replicas, spread over nodes, passing PSA `restricted`."""
    container = {
        "name": "nginx",
        "image": SMOKE_IMAGE,
        "ports": [{"name": "http", "containerPort": SMOKE_CONTAINER_PORT}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod = {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 101, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        # Spread replicas so scaling 1 -> 2 puts the second pod on another node when it can.
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                       "whenUnsatisfiable": "ScheduleAnyway",
                                       "labelSelector": {"matchLabels": SMOKE_LABELS}}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": SMOKE_NAME, "namespace": SMOKE_NAMESPACE, "labels": SMOKE_LABELS},
        "spec": {
            "replicas": cluster.addons.smoke_test_replicas,
            "selector": {"matchLabels": SMOKE_LABELS},
            "template": {"metadata": {"labels": SMOKE_LABELS}, "spec": pod},
        },
    }


def smoke_service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SMOKE_NAME, "namespace": SMOKE_NAMESPACE, "labels": SMOKE_LABELS},
        "spec": {
            "type": "NodePort",
            # Cluster: every node forwards to a pod anywhere, which is what the check proves.
            "externalTrafficPolicy": "Cluster",
            "selector": SMOKE_LABELS,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": SMOKE_NODE_PORT}],
        },
    }


def smoke_summary(outputs: list[str]) -> str:
    """One JSON summary of the per-node checks' JSON lines (the `smokeTest` stack output)."""
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs if out.strip()]
    nodes = [node for result in results for node in result.get("nodes", [])]
    return json.dumps({"ok": len(results) == len(outputs) and all(r.get("ok") for r in results), "nodes": nodes})


def smoke_check_env(cluster: Cluster, nodes: list[str]) -> dict[str, str]:
    return {
        "NODE_ADDRESSES": " ".join(nodes),
        "NODE_PORT": str(SMOKE_NODE_PORT),
        "NAMESPACE": SMOKE_NAMESPACE,
        "DEPLOYMENT": SMOKE_NAME,
        "REPLICAS": str(cluster.addons.smoke_test_replicas),
    }


# --- optional: MetalLB and ingress-nginx --------------------------------------------------------

METALLB_POOL = "hakube-l2"


def metallb_pool(cluster: Cluster) -> tuple[dict[str, Any], dict[str, Any]]:
    """Specs of the IPAddressPool and the L2Advertisement announcing it."""
    pool = {"addresses": list(cluster.addons.metallb.addresses)}
    return pool, {"ipAddressPools": [METALLB_POOL]}


def ingress_values(cluster: Cluster) -> dict[str, Any]:
    # Without MetalLB a LoadBalancer Service would stay <pending> forever: use NodePorts instead.
    service_type = "LoadBalancer" if cluster.addons.metallb.enabled else "NodePort"
    return {"controller": {"service": {"type": service_type}, "ingressClassResource": {"default": True}}}

