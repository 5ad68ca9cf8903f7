"""The Addons component under Pulumi mocks, built inside a small program of its own (a fake last
control-plane join, a kubeconfig, a fake SSH host): provider, order, CNI values, smoke test."""

from __future__ import annotations

import copy
import json
import shlex
from functools import cache
from typing import Any

import pulumi
import pytest

from components.addons import Addons, SmokeTarget
from components.step import connect
from configs import addons as cfg
from dryrun.mockrun import MockRun, Record, is_secret, run_function
from dryrun.plan import resource_table, waves
from tests.chart_values import cni_pod_cidr
from tests.mockgraph import stack_cluster
from topology import TopologyError, load_cluster
from topology.model import NODEPORT_RANGE

KUBECONFIG = "apiVersion: v1\nkind: Config\nusers: [{name: admin, user: {token: not-a-real-token}}]\n"
JOIN = "cp3-join"
POOL = ["198.18.0.200/29"]


def _program(data: dict[str, Any]) -> None:
    cluster = load_cluster(data)
    # Stands for the last control-plane join: everything in the cluster must wait for it.
    join = pulumi.CustomResource("test:index:Join", JOIN, {})
    workers = [pulumi.CustomResource("test:index:Join", f"{w.name}-join", {}) for w in cluster.workers]
    host = connect("cp1", "198.18.0.21", "ops", 22, pulumi.Output.secret("throwaway key"))
    # A plain (non-secret) Output on purpose: the component itself must keep it secret.
    joins = {w.name: j for w, j in zip(cluster.workers, workers, strict=True)}
    targets = [SmokeTarget(n.name, str(n.address), joins.get(n.name))
               for n in [*cluster.control_plane.nodes, *cluster.workers]]
    addons = Addons(cluster, pulumi.Output.from_input(KUBECONFIG), [join], host, targets)
    if addons.smoke_test is not None:
        pulumi.export("smokeTest", addons.smoke_test)


@cache
def _run(addons_json: str = "{}", version: str = "") -> MockRun:
    data = copy.deepcopy(stack_cluster("dev"))
    data["addons"] = {**data["addons"], **json.loads(addons_json)}
    if version:
        data["kubernetesVersion"] = version
    return run_function(lambda: _program(data), "dev")


def run(version: str = "", **addons: Any) -> MockRun:
    return _run(json.dumps(addons, sort_keys=True), version)


def by_name(r: MockRun) -> dict[str, Record]:
    return {rec.name: rec for rec in r.records}


def urn(r: MockRun, name: str) -> str:
    return by_name(r)[name].urn


def in_cluster(r: MockRun) -> list[Record]:
    return [rec for rec in r.records if rec.type.startswith("kubernetes:")]


def waits_for(r: MockRun, name: str) -> set[str]:
    """Names a resource waits for, directly or through dependencies and its provider, transitively."""
    records, names = by_name(r), {rec.urn: rec.name for rec in r.records}
    seen: set[str] = set()
    todo = [name]
    while todo:
        rec = records[todo.pop()]
        direct = {names[d] for d in rec.dependencies if d in names} | ({rec.provider} if rec.provider else set())
        for dep in direct - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


METALLB = {"enabled": True, "addresses": POOL}
GATEWAY = {"enabled": True}
EVERYTHING = {"metallb": METALLB, "gateway": GATEWAY}


@pytest.mark.parametrize("addons", [{}, EVERYTHING], ids=["default", "everything"])
def test_every_in_cluster_resource_uses_the_kubeconfig_provider_after_the_control_plane(addons: dict) -> None:
    r = run(**addons)
    provider = by_name(r)["k8s"]
    assert provider.type == "pulumi:providers:kubernetes"
    assert provider.dependencies == [urn(r, JOIN)]
    resources = in_cluster(r)
    assert len(resources) >= 6
    for rec in resources:
        assert rec.provider == "k8s", rec.name
        assert JOIN in waits_for(r, rec.name), rec.name
    # The one out-of-cluster step, the check over SSH, waits for the control plane as well.
    assert JOIN in waits_for(r, "w1-smoke-check")


def test_kubeconfig_reaches_the_provider_only_as_a_secret() -> None:
    r = run()
    kubeconfig = by_name(r)["k8s"].inputs["kubeconfig"]
    assert is_secret(kubeconfig)
    assert pulumi.runtime.rpc.unwrap_rpc_secret(kubeconfig) == KUBECONFIG
    others = json.dumps([rec.inputs for rec in r.records if rec.name != "k8s"], default=str)
    assert "not-a-real-token" not in others


def test_names_unique_and_prefixed() -> None:
    r = run(**EVERYTHING)
    names = [rec.name for rec in r.records]
    assert len(names) == len(set(names))
    ours = {n for n in names if not n.endswith(("-join", "-smoke-check"))} - {"addons", "k8s"}
    assert all(name.startswith("addon-") for name in ours), ours
    (component,) = [rec for rec in r.records if rec.type == "hakube:index:Addons"]
    assert all(rec.parent == component.urn for rec in r.records if rec.name in ours | {"k8s"})


@pytest.mark.parametrize("cni", ["calico", "cilium", "flannel"])
def test_cni_release_is_pinned_and_carries_the_pod_cidr(cni: str) -> None:
    r = run(cni=cni)
    release = by_name(r)["addon-cni"]
    chart = cfg.CNI_CHARTS[cni]
    assert release.type == "kubernetes:helm.sh/v3:Release"
    assert (release.inputs["chart"], release.inputs["version"], release.inputs["repositoryOpts"]["repo"]) == (
        chart.name, chart.version, chart.repo)
    assert release.inputs["namespace"] == chart.namespace and release.inputs["name"] == chart.release
    pod_cidr = str(load_cluster(stack_cluster("dev")).network.pod_cidr)
    assert cni_pod_cidr(cni, release.inputs["values"]) == pod_cidr


@pytest.mark.parametrize("cni", ["calico", "cilium", "flannel"])
def test_cni_values_follow_a_changed_pod_cidr(cni: str) -> None:
    data = copy.deepcopy(stack_cluster("dev"))
    data["network"]["podCidr"] = "10.32.0.0/16"
    data["addons"] = {"cni": cni}
    values = cfg.cni_values(load_cluster(data))
    assert cni_pod_cidr(cni, values) == "10.32.0.0/16"
    assert "10.32.0.0/16" in json.dumps(values)
    assert "10.244." not in json.dumps(values)


def test_chart_versions_pinned_exactly() -> None:
    for chart in [*cfg.CNI_CHARTS.values(), cfg.CALICO_CRD_CHART, cfg.METALLB_CHART, cfg.ENVOY_GATEWAY_CHART,
                  cfg.ENVOY_GATEWAY_CRD_CHART]:
        assert chart.version.lstrip("v").count(".") == 2 and "*" not in chart.version and "^" not in chart.version
    assert ":latest" not in cfg.SMOKE_IMAGE and cfg.SMOKE_IMAGE.rsplit(":", 1)[1][0].isdigit()


@pytest.mark.parametrize("replicas", [1, 2])
def test_smoke_replicas_follow_config(replicas: int) -> None:
    r = run(smokeTestReplicas=replicas)
    deployment = by_name(r)["addon-smoke-deployment"]
    assert deployment.inputs["spec"]["replicas"] == replicas
    assert f"REPLICAS={replicas}" in by_name(r)["w1-smoke-check"].inputs["create"]


def test_scaling_reruns_the_check() -> None:
    one, two = by_name(run(smokeTestReplicas=1)), by_name(run(smokeTestReplicas=2))
    assert one["w1-smoke-check"].inputs["triggers"] != two["w1-smoke-check"].inputs["triggers"]


def test_smoke_test_wiring_and_output() -> None:
    r = run()
    records = by_name(r)
    deployment, service = records["addon-smoke-deployment"], records["addon-smoke-service"]
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == cfg.SMOKE_IMAGE
    assert set(container["resources"]) == {"requests", "limits"}
    (port,) = service.inputs["spec"]["ports"]
    assert service.inputs["spec"]["type"] == "NodePort"
    assert port["nodePort"] == cfg.SMOKE_NODE_PORT
    assert NODEPORT_RANGE[0] <= cfg.SMOKE_NODE_PORT <= NODEPORT_RANGE[1]
    # Pods start only with the CNI, and after the isolation policy is bound.
    assert {"addon-cni", "addon-isolation-binding", "addon-ns-hakube-smoke"} <= waits_for(r, deployment.name)
    workers = {"w1-join", "w2-join", "w3-join"}
    assert workers <= waits_for(r, deployment.name)
    checks = {name: rec for name, rec in records.items() if name.endswith("-smoke-check")}
    assert set(checks) == {f"{n}-smoke-check" for n in ("cp1", "cp2", "cp3", "w1", "w2", "w3")}
    check = records["w2-smoke-check"]
    assert check.type == "command:remote:Command"
    assert {"addon-smoke-deployment", "addon-smoke-service", "w2-join"} <= waits_for(r, check.name)
    assert "w1-join" not in waits_for(r, check.name) - waits_for(r, deployment.name)
    # The provider (and so the CNI) waits for the control plane only, not for the workers.
    assert waits_for(r, "addon-cni") & workers == set()
    assert "NODE_ADDRESSES=w2=198.18.0.42 " in check.inputs["create"]
    assert f"NODE_PORT={cfg.SMOKE_NODE_PORT}" in check.inputs["create"]
    assert is_secret(check.inputs["connection"])
    assert json.loads(r.outputs["smokeTest"])["ok"] is True


def test_smoke_test_off_leaves_no_trace() -> None:
    r = run(smokeTest=False)
    names = set(by_name(r))
    assert not {n for n in names if "smoke" in n}
    assert "smokeTest" not in r.outputs


def test_guard_rails_namespaces_and_policy() -> None:
    r = run()
    records = by_name(r)
    hakube = records["addon-ns-hakube-system"]
    assert hakube.type == "kubernetes:core/v1:Namespace"
    assert hakube.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    default = records["addon-ns-default"]
    assert default.type == "kubernetes:core/v1:NamespacePatch"
    assert default.inputs["metadata"]["name"] == "default"
    assert default.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert records["addon-ns-tigera-operator"].inputs["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "privileged"
    assert records["addon-ns-hakube-smoke"].inputs["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"
    policy, binding = records["addon-isolation-policy"], records["addon-isolation-binding"]
    assert policy.type == "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
    assert binding.type == "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
    cluster = load_cluster(stack_cluster("dev"))
    assert policy.inputs["spec"] == cfg.isolation_policy_spec(cluster)
    assert binding.inputs["spec"]["policyName"] == policy.inputs["metadata"]["name"]
    assert "addon-isolation-policy" in waits_for(r, binding.name)
    assert "addon-ns-tigera-operator" in waits_for(r, "addon-cni")


def test_smoke_workload_passes_its_own_isolation_policy() -> None:
    cluster = load_cluster(stack_cluster("dev"))
    manifest = cfg.smoke_deployment(cluster)
    assert cfg.pod_violates_isolation(cfg.pod_spec_of(manifest), cfg.SMOKE_NAMESPACE,
                                      cfg.system_namespaces(cluster)) is None


def test_the_oldest_supported_minor_gets_the_policy_too() -> None:
    # ValidatingAdmissionPolicy v1 is GA from 1.30: every minor hakube accepts (1.35 on) installs it.
    r = run(version="1.35.9")
    names = set(by_name(r))
    assert {"addon-isolation-policy", "addon-isolation-binding"} <= names
    assert "addon-cni" in names and "addon-smoke-deployment" in names


def test_metallb_and_gateway_off_by_default() -> None:
    data = copy.deepcopy(stack_cluster("dev"))
    data["addons"] = {"cni": "calico"}
    cluster = load_cluster(data)
    assert not cluster.addons.metallb.enabled and not cluster.addons.gateway.enabled
    names = set(by_name(run(metallb={"enabled": False}, gateway={"enabled": False})))
    assert not {n for n in names if "metallb" in n or "gateway" in n or "route" in n}


def test_metallb_pool_when_enabled() -> None:
    r = run(metallb=METALLB)
    records = by_name(r)
    release = records["addon-metallb"]
    assert (release.inputs["chart"], release.inputs["version"]) == (cfg.METALLB_CHART.name, cfg.METALLB_CHART.version)
    assert release.inputs["values"]["frrk8s"]["enabled"] is False  # L2 only: no BGP daemons
    pool, l2 = records["addon-metallb-pool"], records["addon-metallb-l2"]
    assert pool.type == "kubernetes:metallb.io/v1beta1:IPAddressPool"
    assert pool.inputs["spec"]["addresses"] == POOL
    assert l2.type == "kubernetes:metallb.io/v1beta1:L2Advertisement"
    assert l2.inputs["spec"]["ipAddressPools"] == [pool.inputs["metadata"]["name"]]
    # The pool's kinds are the chart's CRDs.
    assert "addon-metallb" in waits_for(r, pool.name) and "addon-metallb" in waits_for(r, l2.name)
    assert {"addon-cni"} <= waits_for(r, release.name)
    assert "metallb-system" in json.dumps(records["addon-isolation-policy"].inputs["spec"]["variables"])


def test_plan_steps_put_every_add_on_after_the_control_plane() -> None:
    r = run(**EVERYTHING)
    steps = waves(resource_table(r))
    step_of = {row["name"]: i for i, step in enumerate(steps) for row in step}
    for rec in [*in_cluster(r), by_name(r)["w1-smoke-check"]]:
        assert step_of[rec.name] > step_of[JOIN], rec.name
    assert step_of["w1-smoke-check"] > step_of["addon-smoke-deployment"] > step_of["addon-cni"]


def _steps(r: MockRun) -> dict[str, int]:
    return {row["name"]: i for i, step in enumerate(waves(resource_table(r))) for row in step}


def _env(command: str) -> dict[str, str]:
    """The NAME=value words of a step's command line, before `bash -c`."""
    words = shlex.split(command.split(" bash -c ", 1)[0])
    return dict(word.split("=", 1) for word in words if "=" in word)


# --- Calico: the CRD chart first -------------------------------------------------------------

def test_calico_crd_chart_is_applied_before_the_operator() -> None:
    r = run(cni="calico")
    records = by_name(r)
    crds, operator = records["addon-calico-crds"], records["addon-cni"]
    # helm.v4.Chart: the provider renders it and applies every CRD itself, server-side.
    assert crds.type == "kubernetes:helm.sh/v4:Chart" and crds.remote and crds.provider == "k8s"
    assert (crds.inputs["chart"], crds.inputs["version"], crds.inputs["repositoryOpts"]["repo"]) == (
        "crd.projectcalico.org.v1", "v3.32.1", "https://docs.tigera.io/calico/charts")
    assert (operator.inputs["chart"], operator.inputs["version"]) == ("tigera-operator", "v3.32.1")
    assert crds.urn in operator.dependencies
    assert operator.inputs["values"]["manageCRDs"] is False  # one owner for the CRDs: the CRD chart
    steps = _steps(r)
    assert steps["addon-calico-crds"] < steps["addon-cni"] < steps["addon-smoke-deployment"]


@pytest.mark.parametrize("cni", ["cilium", "flannel"])
def test_only_calico_has_a_crd_chart(cni: str) -> None:
    records = by_name(run(cni=cni))
    assert "addon-calico-crds" not in records
    assert "manageCRDs" not in records["addon-cni"].inputs["values"]


# --- Gateway API -------------------------------------------------------------------------------

def test_gateway_api_crds_come_from_the_standard_release_manifest() -> None:
    crds = by_name(run(gateway=GATEWAY))["addon-gateway-api-crds"]
    assert crds.type == "kubernetes:yaml/v2:ConfigFile" and crds.remote and crds.provider == "k8s"
    assert crds.inputs["file"] == (
        "https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.6.1/standard-install.yaml")


def test_envoy_gateway_installs_its_crds_then_itself_then_class_gateway_and_route() -> None:
    r = run(gateway=GATEWAY)
    records = by_name(r)
    crd_chart, controller = records["addon-envoy-gateway-crds"], records["addon-envoy-gateway"]
    assert crd_chart.type == "kubernetes:helm.sh/v4:Chart"
    assert (crd_chart.inputs["chart"], crd_chart.inputs["version"]) == (
        "oci://docker.io/envoyproxy/gateway-crds-helm", "v1.9.0")
    assert crd_chart.inputs["values"]["crds"] == {"gatewayAPI": {"enabled": False}, "envoyGateway": {"enabled": True}}
    assert controller.type == "kubernetes:helm.sh/v3:Release"
    assert (controller.inputs["chart"], controller.inputs["version"]) == (
        "oci://docker.io/envoyproxy/gateway-helm", "v1.9.0")
    assert "repositoryOpts" not in controller.inputs  # an OCI reference names its registry itself
    assert controller.inputs["values"]["crds"]["enabled"] is False
    assert controller.inputs["namespace"] == "envoy-gateway-system"
    assert {"addon-gateway-api-crds", "addon-envoy-gateway-crds", "addon-cni"} <= waits_for(r, controller.name)

    parameters, gateway_class = records["addon-gateway-parameters"], records["addon-gatewayclass"]
    assert parameters.type == "kubernetes:gateway.envoyproxy.io/v1alpha1:EnvoyProxy"
    assert parameters.inputs["metadata"] == {"name": "hakube", "namespace": "envoy-gateway-system"}
    assert parameters.inputs["spec"]["provider"]["kubernetes"]["envoyService"] == {
        "type": "NodePort", "externalTrafficPolicy": "Cluster"}
    assert gateway_class.type == "kubernetes:gateway.networking.k8s.io/v1:GatewayClass"
    assert gateway_class.inputs["spec"] == {
        "controllerName": "gateway.envoyproxy.io/gatewayclass-controller",
        "parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "name": "hakube",
                          "namespace": "envoy-gateway-system"}}
    assert {"addon-envoy-gateway", "addon-gateway-parameters"} <= waits_for(r, gateway_class.name)

    gateway, route = records["addon-gateway"], records["addon-smoke-route"]
    assert gateway.type == "kubernetes:gateway.networking.k8s.io/v1:Gateway"
    assert gateway.inputs["metadata"] == {"name": "hakube", "namespace": "hakube-gateway"}
    (listener,) = gateway.inputs["spec"]["listeners"]
    assert gateway.inputs["spec"]["gatewayClassName"] == gateway_class.inputs["metadata"]["name"]
    assert (listener["protocol"], listener["port"], listener["allowedRoutes"]["namespaces"]["from"]) == (
        "HTTP", 80, "All")
    assert route.type == "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute"
    assert route.inputs["metadata"]["namespace"] == cfg.SMOKE_NAMESPACE
    (parent,) = route.inputs["spec"]["parentRefs"]
    assert (parent["name"], parent["namespace"], parent["sectionName"]) == ("hakube", "hakube-gateway", "http")
    (rule,) = route.inputs["spec"]["rules"]
    service = records["addon-smoke-service"].inputs
    assert rule["backendRefs"] == [{"name": service["metadata"]["name"], "port": service["spec"]["ports"][0]["port"]}]
    assert {"addon-gateway", "addon-smoke-service"} <= waits_for(r, route.name)
    labels = records["addon-ns-envoy-gateway-system"].inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    steps = _steps(r)
    assert (steps["addon-gateway-api-crds"] < steps["addon-envoy-gateway"] < steps["addon-gatewayclass"]
            < steps["addon-gateway"] < steps["addon-smoke-route"] < steps["w1-smoke-check"])


def test_without_metallb_each_node_check_also_goes_through_the_gateways_node_port() -> None:
    r = run(gateway=GATEWAY)
    records = by_name(r)
    assert "addon-gateway-smoke-check" not in records  # the node checks do it: a new node changes no other
    check = records["w2-smoke-check"]
    env = _env(check.inputs["create"])
    assert env["GATEWAY"] == "hakube-gateway/hakube" and env["GATEWAY_PORT"] == "80"
    assert env["GATEWAY_SERVICE_NAMESPACE"] == "envoy-gateway-system"
    assert env["GATEWAY_SERVICE_SELECTOR"] == (
        "gateway.envoyproxy.io/owning-gateway-name=hakube,gateway.envoyproxy.io/owning-gateway-namespace=hakube-gateway")
    assert env["NODE_ADDRESSES"] == "w2=198.18.0.42" and env["NODE_PORT"] == str(cfg.SMOKE_NODE_PORT)
    assert {"addon-smoke-route", "addon-smoke-deployment", "w2-join"} <= waits_for(r, check.name)
    # The route is part of what is checked: changing it re-runs the checks.
    without = by_name(run(gateway={"enabled": False}))["w2-smoke-check"]
    assert check.inputs["triggers"] != without.inputs["triggers"]
    assert "GATEWAY" not in _env(without.inputs["create"])


def test_with_metallb_the_gateway_is_a_load_balancer_and_one_check_uses_its_address() -> None:
    r = run(gateway=GATEWAY, metallb=METALLB)
    records = by_name(r)
    service = records["addon-gateway-parameters"].inputs["spec"]["provider"]["kubernetes"]["envoyService"]
    assert service["type"] == "LoadBalancer"
    # The address comes from the pool: the Gateway (and so its Service) waits for it to be announced.
    assert {"addon-metallb-pool", "addon-metallb-l2"} <= waits_for(r, "addon-gateway")
    check = records["addon-gateway-smoke-check"]
    assert check.type == "command:remote:Command" and is_secret(check.inputs["connection"])
    assert check.parent == records["addons"].urn
    env = _env(check.inputs["create"])
    assert env["GATEWAY"] == "hakube-gateway/hakube" and env["GATEWAY_PORT"] == "80"
    assert env["DEPLOYMENT"] == cfg.SMOKE_NAME
    assert not {"NODE_ADDRESSES", "NODE_PORT", "GATEWAY_SERVICE_SELECTOR"} & set(env)
    assert {"addon-smoke-route", "addon-smoke-deployment", "addon-gateway"} <= waits_for(r, check.name)
    assert "GATEWAY" not in _env(records["w1-smoke-check"].inputs["create"])
    assert _steps(r)["addon-gateway-smoke-check"] > _steps(r)["addon-smoke-route"]


@pytest.mark.parametrize("metallb", [False, True], ids=["nodeport", "loadbalancer"])
def test_cilium_serves_the_gateway_itself(metallb: bool) -> None:
    r = run(cni="cilium", gateway=GATEWAY, **({"metallb": METALLB} if metallb else {}))
    records = by_name(r)
    assert not {n for n in records if "envoy" in n}
    values = records["addon-cni"].inputs["values"]
    assert values["gatewayAPI"] == {"enabled": True} and values["nodePort"] == {"enabled": True}
    # Cilium's operator decides at start whether to run its Gateway controller: CRDs first.
    assert "addon-gateway-api-crds" in waits_for(r, "addon-cni")
    parameters = records["addon-gateway-parameters"]
    assert parameters.type == "kubernetes:cilium.io/v2alpha1:CiliumGatewayClassConfig"
    assert parameters.inputs["metadata"]["namespace"] == "hakube-gateway"
    assert parameters.inputs["spec"]["service"]["type"] == ("LoadBalancer" if metallb else "NodePort")
    spec = records["addon-gatewayclass"].inputs["spec"]
    assert spec["controllerName"] == "io.cilium/gateway-controller"
    assert spec["parametersRef"]["kind"] == "CiliumGatewayClassConfig"
    assert {"addon-cni", "addon-gateway-parameters"} <= waits_for(r, "addon-gatewayclass")
    if metallb:
        assert "GATEWAY_SERVICE_SELECTOR" not in _env(records["addon-gateway-smoke-check"].inputs["create"])
    else:
        env = _env(records["w1-smoke-check"].inputs["create"])
        assert (env["GATEWAY_SERVICE_NAMESPACE"], env["GATEWAY_SERVICE_SELECTOR"]) == (
            "hakube-gateway", "io.cilium.gateway/owning-gateway=hakube")


def test_cilium_without_gateway_keeps_its_plain_values() -> None:
    values = by_name(run(cni="cilium", gateway={"enabled": False}))["addon-cni"].inputs["values"]
    assert "gatewayAPI" not in values and "nodePort" not in values


def test_gateway_without_smoke_test_has_no_route_or_check() -> None:
    names = set(by_name(run(gateway=GATEWAY, metallb=METALLB, smokeTest=False)))
    assert {"addon-gateway", "addon-gatewayclass", "addon-gateway-api-crds"} <= names
    assert not {n for n in names if "smoke" in n}


def test_smoke_summary_carries_the_gateway_probe() -> None:
    def node(name: str) -> str:
        return json.dumps({"ok": True, "nodePort": 30080, "nodes": [{"name": name, "status": 200}],
                           "gateway": {"name": "hakube-gateway/hakube", "port": 31080,
                                       "targets": [{"name": name, "status": 200}]}})

    summary = json.loads(cfg.smoke_summary([node("w1"), node("w2")]))
    assert summary["ok"] is True and [n["name"] for n in summary["nodes"]] == ["w1", "w2"]
    assert summary["gateway"]["port"] == 31080
    assert [t["name"] for t in summary["gateway"]["targets"]] == ["w1", "w2"]
    assert json.loads(cfg.smoke_summary([node("w1"), ""]))["ok"] is False  # a check that printed nothing
    assert "gateway" not in json.loads(cfg.smoke_summary([json.dumps({"ok": True, "nodes": []})]))


# --- addons.ingress is gone --------------------------------------------------------------------

@pytest.mark.parametrize("value", [True, False, {"enabled": True}])
def test_ingress_is_refused_by_path_with_the_way_on(value: object) -> None:
    data = copy.deepcopy(stack_cluster("dev"))
    data["addons"]["ingress"] = value
    with pytest.raises(TopologyError) as refused:
        load_cluster(data)
    assert refused.value.lines == [
        "hakube:cluster.addons.ingress: ingress-nginx is retired (March 2026, no further fixes); use addons.gateway"]


def test_addons_off_leaves_out_the_provider_and_everything_in_the_cluster() -> None:
    """addons.enabled false: hakube stops at the kubeadm cluster and its kubeconfig (the SSH lab runs so)."""
    from tests.mockgraph import cluster_copy, graph

    cluster = cluster_copy("edge")
    cluster["addons"] = {"enabled": False}
    off = graph(cluster, "edge")
    on = graph(cluster_copy("edge"), "edge")
    left_out = {row["name"] for row in on.table} - {row["name"] for row in off.table}
    assert {row["name"] for row in off.table} < {row["name"] for row in on.table}
    assert not [row for row in off.table if row["type"].startswith(("kubernetes:", "pulumi:providers:kubernetes"))]
    assert left_out == {"addons", "k8s", *(r["name"] for r in on.table if r["type"].startswith("kubernetes:")),
                        *(f"{n}-smoke-check" for n in ("edge1", "edge2", "edge3"))}
    assert "kubeconfig" in off.run.outputs and "smokeTest" not in off.run.outputs
    assert "admin-kubeconfig" in off.by_name


@pytest.mark.parametrize("asked", [{"smokeTest": True}, {"gateway": {"enabled": True}},
                                   {"metallb": {"enabled": True, "addresses": ["198.18.4.200/29"]}}])
def test_an_add_on_asked_for_with_the_add_ons_off_is_refused_at_its_path(asked: dict[str, Any]) -> None:
    data = copy.deepcopy(stack_cluster("edge"))
    data["addons"] = {"enabled": False, **asked}
    with pytest.raises(TopologyError) as err:
        load_cluster(data)
    key = next(iter(asked))
    path = f"hakube:cluster.addons.{key}" + ("" if key == "smokeTest" else ".enabled")
    assert [line for line in err.value.lines if line.startswith(path)] == [
        f"{path}: is on, but addons.enabled is false: nothing in the cluster is installed"]
