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

from configs import images
from policies.contract import (
    BASE_SYSTEM_NAMESPACES,
    CNI_SYSTEM_NAMESPACES,
    CONTROL_PLANE_KEYS,
    HAKUBE_NAMESPACE,
    METALLB_NAMESPACE,
)
from topology.model import Cluster


@dataclass(frozen=True)
class Chart:
    """A Helm chart pinned to one version, installed as `release` into `namespace`. `repo` is a chart
    repository URL, or an OCI registry path (oci://...) that holds the chart as `repo`/`name`."""

    repo: str
    name: str
    version: str
    namespace: str
    release: str


def chart_repository(cluster: Cluster, chart: Chart) -> str:
    """The chart's repository: charts.repository when the site has one (same names and versions), else upstream."""
    return cluster.charts.repository or chart.repo


def chart_source(cluster: Cluster, chart: Chart) -> dict[str, Any]:
    """Where Helm finds the chart, as helm.v3.Release and helm.v4.Chart take it."""
    repo = chart_repository(cluster, chart)
    if repo.startswith("oci://"):
        return {"chart": f"{repo}/{chart.name}"}
    return {"chart": chart.name, "repository_opts": {"repo": repo}}


def _merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, mappings key by key (as Helm merges values)."""
    out = dict(base)
    for key, value in extra.items():
        current = out.get(key)
        out[key] = _merged(current, value) if isinstance(current, Mapping) and isinstance(value, Mapping) else value
    return out


def chart_values(cluster: Cluster, chart: Chart, values: Mapping[str, Any]) -> dict[str, Any]:
    """A chart's values with its images pointed at images.repository (configs/images.py), where it allows."""
    return _merged(values, images.chart_image_values(cluster, chart.name, chart.version))


# Pinned versions: bump one line, run the tests, read the chart's upgrade notes. Each pin names where
# it was read (tags and files of the upstream repositories, checked 2026-12-03).
#
# Calico: tag v3.32.1 of projectcalico/calico. Its Makefile packages every chart with
# `--version $(GIT_VERSION)` into the repo named in release/internal/utils/utils.go (CalicoHelmRepoURL).
# From v3.32 the operator chart carries no CRDs: charts/tigera-operator/README.md installs the
# `crd.projectcalico.org.v1` chart first, with server-side apply (some CRDs are too big otherwise).
CALICO_VERSION = "v3.32.1"
CALICO_REPO = "https://docs.tigera.io/calico/charts"
CALICO_CRD_CHART = Chart(CALICO_REPO, "crd.projectcalico.org.v1", CALICO_VERSION, "tigera-operator", "calico-crds")
CNI_CHARTS: Mapping[str, Chart] = {
    # Calico through the Tigera operator; the operator creates calico-system itself.
    "calico": Chart(CALICO_REPO, "tigera-operator", CALICO_VERSION, "tigera-operator", "calico"),
    # Cilium 1.20.5: the current 1.20 patch per issue 14 (cilium/cilium is too large to fetch here).
    "cilium": Chart("https://helm.cilium.io/", "cilium", "1.20.5", "kube-system", "cilium"),
    # flannel: newest tag v0.28.9 of flannel-io/flannel (2026-08-07); chart/kube-flannel/Chart.yaml
    # there says version v0.28.9, README.md names the repo.
    "flannel": Chart("https://flannel-io.github.io/flannel/", "flannel", "v0.28.9", "kube-flannel", "flannel"),
}
# MetalLB: tag metallb-chart-0.16.1 of metallb/metallb (charts/metallb/Chart.yaml). 0.15.x fails on
# Kubernetes 1.36+: its ASN maximum breaks CRD validation (release notes 0.16.0, #3035; 0.16.1 #3054).
METALLB_CHART = Chart("https://metallb.github.io/metallb", "metallb", "0.16.1", METALLB_NAMESPACE, "metallb")
# Gateway API: tag v1.6.1 of kubernetes-sigs/gateway-api; hack/build-install-yaml.sh builds the
# release asset standard-install.yaml (the standard channel CRDs plus the safe-upgrade admission policy).
GATEWAY_API_VERSION = "v1.6.1"
GATEWAY_API_CRDS_URL = (
    f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API_VERSION}/standard-install.yaml"
)


def gateway_api_crds(cluster: Cluster) -> str:
    """Where the provider reads Gateway API's standard-install.yaml: charts.gatewayApiCrds, else the release asset."""
    return cluster.charts.gateway_api_crds or GATEWAY_API_CRDS_URL
# Envoy Gateway: v1.9.0, the newest 1.9 tag of envoyproxy/gateway (2026-08-15); its go.mod and
# site/content/en/news/releases/matrix.md pair it with Gateway API v1.6.1. tools/make/helm.mk pushes
# both charts to oci://docker.io/envoyproxy with the tag as version.
ENVOY_GATEWAY_VERSION = "v1.9.0"
ENVOY_GATEWAY_REGISTRY = "oci://docker.io/envoyproxy"
ENVOY_GATEWAY_NAMESPACE = "envoy-gateway-system"
ENVOY_GATEWAY_CRD_CHART = Chart(ENVOY_GATEWAY_REGISTRY, "gateway-crds-helm", ENVOY_GATEWAY_VERSION,
                                ENVOY_GATEWAY_NAMESPACE, "envoy-gateway-crds")
ENVOY_GATEWAY_CHART = Chart(ENVOY_GATEWAY_REGISTRY, "gateway-helm", ENVOY_GATEWAY_VERSION, ENVOY_GATEWAY_NAMESPACE,
                            "envoy-gateway")
# The unprivileged nginx build (uid 101, port 8080) passes the `restricted` Pod Security level.
SMOKE_IMAGE = "docker.io/nginxinc/nginx-unprivileged:1.28.0-alpine"
SMOKE_CONTAINER_PORT = 8080
# Fixed so users and the check know where to look; inside the default NodePort range.
SMOKE_NODE_PORT = 30080

SMOKE_NAMESPACE = "hakube-smoke"
SMOKE_NAME = "hakube-smoke"
# The control-plane keys, namespaces and system namespaces come from policies/contract.py, which
# the policy pack reads too; tests/policies/test_contract.py holds the CEL below to the pack's verdicts.
_KEYS_CEL = json.dumps(list(CONTROL_PLANE_KEYS))  # a JSON list of strings is a CEL list literal
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
        # manageCRDs (the operator's -manage-crds flag) off: the CRD chart is their one owner, so its
        # server-side apply and the operator never both write them.
        return {"installation": {"cni": {"type": "Calico"}, "calicoNetwork": {"ipPools": [pool]}},
                "manageCRDs": False}
    if cni == "cilium":
        operator = {"clusterPoolIPv4PodCIDRList": [pod_cidr], "clusterPoolIPv4MaskSize": NODE_POD_MASK}
        return {"ipam": {"mode": "cluster-pool", "operator": operator}, **cilium_gateway_values(cluster)}
    if cni == "flannel":
        return {"podCidr": pod_cidr}
    raise ValueError(f"unknown CNI {cni!r}")


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
    if cluster.addons.gateway.enabled:
        # No pods of its own (only the Gateway and, for Cilium, its Service and class parameters).
        out.append(Namespace(GATEWAY_NAMESPACE, "restricted"))
        if gateway_implementation(cluster) == "envoy":
            # Envoy Gateway's controller, certgen job and proxies all run with restricted-level contexts
            # (charts/gateway-helm values, internal/infrastructure/kubernetes/resource/resource.go).
            out.append(Namespace(ENVOY_GATEWAY_NAMESPACE, "restricted"))
    return out


def namespace_manifest(ns: Namespace) -> dict[str, Any]:
    return {"name": ns.name, "labels": {"app.kubernetes.io/managed-by": "hakube", **psa_labels(ns.level)}}


# --- control-plane isolation: ValidatingAdmissionPolicy and its Python twin ---------------------

ISOLATION_POLICY_NAME = "hakube-control-plane-isolation"
# admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy is GA (on by default) from 1.30, so on
# every supported minor (topology/versions.py).

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
    spec: Mapping[str, Any] = obj["spec"] if obj.get("kind") == "Pod" else obj["spec"]["template"]["spec"]
    return spec


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
        "image": images.mirrored(SMOKE_IMAGE, cluster.images.repository),
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
    """One JSON summary of the checks' JSON lines (the `smokeTest` stack output): the per-node
    NodePort probes, and the probes through the Gateway when there is one."""
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs if out.strip()]
    summary: dict[str, Any] = {
        "ok": len(results) == len(outputs) and all(r.get("ok") for r in results),
        "nodes": [node for result in results for node in result.get("nodes", [])],
    }
    gateways = [result["gateway"] for result in results if "gateway" in result]
    if gateways:  # one address, or the NodePort through every node's check
        targets = [target for gateway in gateways for target in gateway["targets"]]
        summary["gateway"] = {**gateways[0], "targets": targets}
    return json.dumps(summary)


def _deployment_env(cluster: Cluster) -> dict[str, str]:
    """What smoke-check.sh waits for before it probes: the smoke Deployment's ready replicas."""
    return {"NAMESPACE": SMOKE_NAMESPACE, "DEPLOYMENT": SMOKE_NAME, "REPLICAS": str(cluster.addons.smoke_test_replicas)}


def smoke_check_env(cluster: Cluster, nodes: list[str]) -> dict[str, str]:
    """A node check: the smoke NodePort through `nodes` and, for a NodePort Gateway, the Gateway too."""
    gateway = gateway_probe_env(cluster) if gateway_probed_per_node(cluster) else {}
    return {"NODE_ADDRESSES": " ".join(nodes), "NODE_PORT": str(SMOKE_NODE_PORT), **_deployment_env(cluster),
            **gateway}


# --- optional: MetalLB -------------------------------------------------------------------------

METALLB_POOL = "hakube-l2"


def metallb_values() -> dict[str, Any]:
    # L2 (ARP) only: no frr-k8s BGP backend, which 0.16 otherwise installs by default (values.yaml frrk8s).
    return {"frrk8s": {"enabled": False}}


def metallb_pool(cluster: Cluster) -> tuple[dict[str, Any], dict[str, Any]]:
    """Specs of the IPAddressPool and the L2Advertisement announcing it."""
    pool = {"addresses": list(cluster.addons.metallb.addresses)}
    return pool, {"ipAddressPools": [METALLB_POOL]}


# --- optional: Gateway API ---------------------------------------------------------------------

GATEWAY_NAMESPACE = "hakube-gateway"
GATEWAY_NAME = "hakube"
GATEWAY_CLASS = "hakube"
GATEWAY_LISTENER = "http"
GATEWAY_PORT = 80
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API = f"{GATEWAY_API_GROUP}/v1"


@dataclass(frozen=True)
class GatewayImplementation:
    """What differs between the Gateway controllers hakube installs."""

    controller_name: str  # GatewayClass spec.controllerName
    parameters_api: str  # the kind the GatewayClass's parametersRef names: its apiVersion ...
    parameters_kind: str  # ... and kind
    parameters_namespace: str
    # Where the controller puts the Gateway's Service, and the labels it gives it.
    service_namespace: str
    service_labels: Mapping[str, str]


GATEWAY_IMPLEMENTATIONS: Mapping[str, GatewayImplementation] = {
    # charts/gateway-helm values (config.envoyGateway.gateway.controllerName); the EnvoyProxy kind
    # (api/v1alpha1/envoyproxy_types.go); proxies' Services live in the controller's namespace, labelled
    # as internal/gatewayapi/translator.go names it.
    "envoy": GatewayImplementation(
        "gateway.envoyproxy.io/gatewayclass-controller", "gateway.envoyproxy.io/v1alpha1", "EnvoyProxy",
        ENVOY_GATEWAY_NAMESPACE, ENVOY_GATEWAY_NAMESPACE,
        {"gateway.envoyproxy.io/owning-gateway-name": GATEWAY_NAME,
         "gateway.envoyproxy.io/owning-gateway-namespace": GATEWAY_NAMESPACE}),
    # Cilium's controller name, CiliumGatewayClassConfig and the label on its cilium-gateway-<name>
    # Service in the Gateway's namespace, as Cilium's Gateway API documentation and examples use them.
    "cilium": GatewayImplementation(
        "io.cilium/gateway-controller", "cilium.io/v2alpha1", "CiliumGatewayClassConfig",
        GATEWAY_NAMESPACE, GATEWAY_NAMESPACE, {"io.cilium.gateway/owning-gateway": GATEWAY_NAME}),
}


def gateway_implementation(cluster: Cluster) -> str | None:
    """Which controller serves the Gateway: Cilium's own when it is the CNI, else Envoy Gateway."""
    if not cluster.addons.gateway.enabled:
        return None
    return "cilium" if cluster.addons.cni == "cilium" else "envoy"


def _implementation(cluster: Cluster) -> GatewayImplementation:
    name = gateway_implementation(cluster)
    if name is None:
        raise ValueError("addons.gateway is not enabled")
    return GATEWAY_IMPLEMENTATIONS[name]


def gateway_service_type(cluster: Cluster) -> str:
    # Without MetalLB a LoadBalancer Service would stay <pending> forever: use NodePorts instead.
    return "LoadBalancer" if cluster.addons.metallb.enabled else "NodePort"


def cilium_gateway_values(cluster: Cluster) -> dict[str, Any]:
    """Cilium's Gateway controller; it needs Cilium's NodePort datapath (or kube-proxy replacement)."""
    if gateway_implementation(cluster) != "cilium":
        return {}
    return {"gatewayAPI": {"enabled": True}, "nodePort": {"enabled": True}}


def envoy_gateway_values() -> dict[str, Any]:
    # The chart's bundled CRDs are the experimental channel in a crds/ directory Helm never upgrades:
    # hakube installs Gateway API's standard channel and Envoy Gateway's CRDs itself, first.
    return {"crds": {"enabled": False}}


def envoy_gateway_crd_values() -> dict[str, Any]:
    """gateway-crds-helm: Envoy Gateway's own CRDs only; Gateway API's come from their release."""
    return {"crds": {"gatewayAPI": {"enabled": False}, "envoyGateway": {"enabled": True}}}


def gateway_parameters(cluster: Cluster) -> dict[str, Any]:
    """The GatewayClass's parameters object: the Service type, and Cluster traffic policy so every
    node forwards to a proxy (Envoy Gateway defaults to Local, which only nodes running one answer)."""
    impl = _implementation(cluster)
    service = {"type": gateway_service_type(cluster), "externalTrafficPolicy": "Cluster"}
    if impl.parameters_kind == "EnvoyProxy":
        spec: dict[str, Any] = {"provider": {"type": "Kubernetes", "kubernetes": {"envoyService": service}}}
    else:
        spec = {"service": service}
    return {"apiVersion": impl.parameters_api, "kind": impl.parameters_kind,
            "metadata": {"name": GATEWAY_CLASS, "namespace": impl.parameters_namespace}, "spec": spec}


def gateway_class(cluster: Cluster) -> dict[str, Any]:
    impl = _implementation(cluster)
    parameters = gateway_parameters(cluster)
    ref = {"group": parameters["apiVersion"].split("/")[0], "kind": parameters["kind"],
           "name": parameters["metadata"]["name"], "namespace": parameters["metadata"]["namespace"]}
    return {"apiVersion": GATEWAY_API, "kind": "GatewayClass", "metadata": {"name": GATEWAY_CLASS},
            "spec": {"controllerName": impl.controller_name, "parametersRef": ref}}


def gateway() -> dict[str, Any]:
    """One HTTP listener that HTTPRoutes from any namespace may attach to."""
    listener = {"name": GATEWAY_LISTENER, "protocol": "HTTP", "port": GATEWAY_PORT,
                "allowedRoutes": {"namespaces": {"from": "All"}}}
    return {"apiVersion": GATEWAY_API, "kind": "Gateway",
            "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
            "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": [listener]}}


def smoke_route() -> dict[str, Any]:
    """Every path on the Gateway's listener to the smoke Service."""
    parent = {"group": GATEWAY_API_GROUP, "kind": "Gateway", "name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE,
              "sectionName": GATEWAY_LISTENER}
    backend = {"name": SMOKE_NAME, "port": smoke_service()["spec"]["ports"][0]["port"]}
    return {"apiVersion": GATEWAY_API, "kind": "HTTPRoute",
            "metadata": {"name": SMOKE_NAME, "namespace": SMOKE_NAMESPACE, "labels": SMOKE_LABELS},
            "spec": {"parentRefs": [parent],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [backend]}]}}


def gateway_probe_env(cluster: Cluster) -> dict[str, str]:
    """smoke-check.sh's Gateway probe: at the Gateway's own address when it is a LoadBalancer, else
    through each checked node at the NodePort of its Service, found by the labels its controller
    gives it."""
    env = {"GATEWAY": f"{GATEWAY_NAMESPACE}/{GATEWAY_NAME}", "GATEWAY_PORT": str(GATEWAY_PORT)}
    if gateway_service_type(cluster) == "LoadBalancer":
        return env
    impl = _implementation(cluster)
    selector = ",".join(f"{key}={value}" for key, value in impl.service_labels.items())
    return {**env, "GATEWAY_SERVICE_NAMESPACE": impl.service_namespace, "GATEWAY_SERVICE_SELECTOR": selector}


def gateway_probed_per_node(cluster: Cluster) -> bool:
    """A NodePort Gateway is probed by each node's own check (adding a node changes no other check);
    a LoadBalancer's single address by one check of its own."""
    return cluster.addons.gateway.enabled and gateway_service_type(cluster) == "NodePort"


def gateway_check_env(cluster: Cluster) -> dict[str, str]:
    """The check of a LoadBalancer Gateway's own address."""
    return {**_deployment_env(cluster), **gateway_probe_env(cluster)}


# --- what a site mirrors ------------------------------------------------------------------------

def installed_charts(cluster: Cluster) -> list[Chart]:
    """Every chart the stack installs, in install order."""
    charts = [CALICO_CRD_CHART] if cluster.addons.cni == "calico" else []
    charts.append(cni_chart(cluster))
    if cluster.addons.metallb.enabled:
        charts.append(METALLB_CHART)
    if gateway_implementation(cluster) == "envoy":
        charts += [ENVOY_GATEWAY_CRD_CHART, ENVOY_GATEWAY_CHART]
    return charts


def cluster_images(cluster: Cluster) -> list[tuple[str, str]]:
    """(what the cluster pulls, its upstream name) for every image: kubeadm's, the charts', the smoke test's."""
    upstream = images.kubeadm_images(cluster)
    for chart in installed_charts(cluster):
        upstream += images.chart_images(chart.name, chart.version)
    if cluster.addons.smoke_test:
        upstream.append(SMOKE_IMAGE)
    return [(images.mirrored(name, cluster.images.repository), name) for name in dict.fromkeys(upstream)]


def unlisted_images(cluster: Cluster) -> list[str]:
    """What cluster_images cannot name, chart by chart, with how to get it."""
    return [f"{chart.name} {chart.version}: {images.CHART_IMAGES[chart.name].unlisted}"
            for chart in installed_charts(cluster) if images.CHART_IMAGES[chart.name].unlisted]
