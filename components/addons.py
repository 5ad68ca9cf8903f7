"""In-cluster add-ons through pulumi-kubernetes: CNI, guard rails, the smoke test, and optionally
MetalLB and a Gateway (Gateway API). Every decision lives in configs/addons.py; this file only wires.

CRDs that charts cannot install through a Helm release (too big for its release Secret, or in a
crds/ directory Helm never upgrades) are applied by the provider itself, server-side, as their
upstreams instruct (`helm template | kubectl apply --server-side`): helm.v4.Chart for a chart,
yaml.v2.ConfigFile for a release manifest. helm.v3.Release has no server-side apply option."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.base import Component
from components.step import Host, Step, digest, run
from configs import addons as cfg
from configs.remote import Script
from topology import Cluster


@dataclass(frozen=True)
class SmokeTarget:
    """A node the smoke test reaches the NodePort through."""

    name: str
    address: str
    joined: pulumi.Resource | None = None
    parent: pulumi.Resource | None = None


class Addons(Component):
    """What a new cluster needs before anyone uses it, installed once the control plane is whole."""

    def __init__(
        self,
        cluster: Cluster,
        kubeconfig: pulumi.Input[str],
        after: Sequence[pulumi.Resource],
        check_host: Host,
        targets: Sequence[SmokeTarget],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`after`: the last control-plane join (the provider waits for it). `targets`: every node
        the smoke test must reach, each with its join and the component its check belongs to."""
        chart = cfg.cni_chart(cluster)
        super().__init__("Addons", "addons", {
            "cni": cluster.addons.cni, "cniChartVersion": chart.version, "smokeTest": cluster.addons.smoke_test,
            "smokeTestReplicas": cluster.addons.smoke_test_replicas,
            "metallb": cluster.addons.metallb.enabled, "gateway": cfg.gateway_implementation(cluster) or "none",
        }, opts)
        self.cluster = cluster
        # Without depends_on the provider could reach for the API before the last control-plane
        # join, while etcd membership is still changing; every in-cluster resource uses it.
        self.provider = k8s.Provider(
            "k8s", kubeconfig=pulumi.Output.secret(kubeconfig),
            # additional_secret_outputs: keeps it encrypted in state, and is how the policy pack sees it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after), additional_secret_outputs=["kubeconfig"]),
        )
        self.namespaces = {ns.name: self._namespace(ns) for ns in cfg.namespaces(cluster)}
        self.guard_rails = self._isolation_policy()
        # Cilium's operator looks for the Gateway API CRDs once, at start: they go first.
        self.gateway_api_crds = self._gateway_api_crds() if cluster.addons.gateway.enabled else None
        # Nodes turn Ready only once the CNI runs: anything with pods waits for this release.
        self.cni = self._cni(chart)
        self.load_balancer = self._metallb() if cluster.addons.metallb.enabled else None
        self.gateway = self._gateway() if cluster.addons.gateway.enabled else None
        self.smoke_test: pulumi.Output[str] | None = None
        if cluster.addons.smoke_test:
            self.smoke_test = self._smoke_test(check_host, targets)
        self.finish(**({"smokeTest": self.smoke_test} if self.smoke_test is not None else {}))

    def _opts(self, *after: pulumi.Resource | None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[a for a in after if a])

    def _namespace(self, ns: cfg.Namespace) -> pulumi.CustomResource:
        meta = cfg.namespace_manifest(ns)
        if ns.create:
            return k8s.core.v1.Namespace(f"addon-ns-{ns.name}", metadata=meta, opts=self._opts())
        # An existing namespace (default): server-side apply adds hakube's labels, keeps the rest.
        return k8s.core.v1.NamespacePatch(f"addon-ns-{ns.name}", metadata=meta, opts=self._opts())

    def _isolation_policy(self) -> pulumi.CustomResource:
        policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            "addon-isolation-policy", metadata={"name": cfg.ISOLATION_POLICY_NAME},
            spec=cfg.isolation_policy_spec(self.cluster), opts=self._opts(),
        )
        # A binding to a policy that does not exist yet is accepted but enforces nothing.
        return k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            "addon-isolation-binding", metadata={"name": cfg.ISOLATION_POLICY_NAME},
            spec=cfg.isolation_binding_spec(), opts=self._opts(policy),
        )

    def _release(self, name: str, chart: cfg.Chart, values: dict[str, Any],
                 after: Sequence[pulumi.Resource | None] = ()) -> k8s.helm.v3.Release:
        # helm.v3.Release keeps chart, version and values as visible inputs (policies, mocks, plan).
        return k8s.helm.v3.Release(
            name, name=chart.release, version=chart.version, **cfg.chart_source(self.cluster, chart),
            namespace=chart.namespace, create_namespace=False,
            values=cfg.chart_values(self.cluster, chart, values),
            opts=self._opts(self.namespaces.get(chart.namespace), *after),
        )

    def _crd_chart(self, name: str, chart: cfg.Chart, values: dict[str, Any]) -> pulumi.Resource:
        # The provider renders the chart and applies each CRD server-side (no Helm release Secret,
        # whose 1 MiB these CRDs would exceed); waiting on it waits for every CRD it applies.
        return k8s.helm.v4.Chart(
            name, name=chart.release, version=chart.version, **cfg.chart_source(self.cluster, chart),
            namespace=chart.namespace, values=cfg.chart_values(self.cluster, chart, values),
            opts=self._opts(self.namespaces.get(chart.namespace)),
        )

    def _cni(self, chart: cfg.Chart) -> k8s.helm.v3.Release:
        before: list[pulumi.Resource | None] = [self.gateway_api_crds if self.cluster.addons.cni == "cilium" else None]
        if self.cluster.addons.cni == "calico":
            # The operator chart's Installation is an operator.tigera.io object: its CRD comes first.
            before.append(self._crd_chart("addon-calico-crds", cfg.CALICO_CRD_CHART, {}))
        return self._release("addon-cni", chart, cfg.cni_values(self.cluster), after=before)

    def _smoke_test(self, check_host: Host, targets: Sequence[SmokeTarget]) -> pulumi.Output[str]:
        deployment_manifest, service_manifest = cfg.smoke_deployment(self.cluster), cfg.smoke_service()
        namespace = self.namespaces[cfg.SMOKE_NAMESPACE]
        # Pods need the CNI to start, and are created after the isolation policy so they also prove
        # it admits an ordinary workload; without the workers' joins, replicas could stay Pending
        # (control-plane nodes are tainted) and the check would probe nodes that are not there yet.
        deployment = k8s.apps.v1.Deployment(
            "addon-smoke-deployment", metadata=deployment_manifest["metadata"], spec=deployment_manifest["spec"],
            opts=self._opts(namespace, self.cni, self.guard_rails, *(t.joined for t in targets if t.joined)),
        )
        service = k8s.core.v1.Service(
            "addon-smoke-service", metadata=service_manifest["metadata"], spec=service_manifest["spec"],
            opts=self._opts(namespace),
        )
        # The Deployment and Service (and the route through the Gateway) must exist, and be ready:
        # pulumi-kubernetes waits for the rollout, before a check, or it would probe what nobody serves yet.
        checked: list[pulumi.Resource] = [deployment, service]
        # Re-check whenever what is checked changes (scaling 1 -> 2 included).
        trigger: tuple[str, ...] = (digest(repr(deployment_manifest), repr(service_manifest)),)
        gateway_check: pulumi.Output[str] | None = None
        if self.gateway is not None:
            route_manifest = cfg.smoke_route()
            checked.append(self._custom("addon-smoke-route", route_manifest, self.gateway, service))
            trigger = (digest(repr(deployment_manifest), repr(service_manifest), repr(route_manifest)),)
            if not cfg.gateway_probed_per_node(self.cluster):
                gateway_check = run(
                    "addon-gateway-smoke-check", check_host,
                    Step(Script("smoke-check.sh", cfg.gateway_check_env(self.cluster)), triggers=trigger),
                    pulumi.ResourceOptions(parent=self, depends_on=checked),
                ).stdout
        # One check per node, parented to it: adding a node adds its check and changes no other.
        results = []
        for target in targets:
            joined = [target.joined] if target.joined else []
            check = run(
                f"{target.name}-smoke-check", check_host,
                Step(Script("smoke-check.sh", cfg.smoke_check_env(self.cluster, [f"{target.name}={target.address}"])),
                     triggers=trigger),
                pulumi.ResourceOptions(parent=target.parent or self, depends_on=[*checked, *joined]),
            )
            results.append(check.stdout)
        if gateway_check is not None:
            results.append(gateway_check)
        return pulumi.Output.all(*results).apply(cfg.smoke_summary)

    def _metallb(self) -> pulumi.CustomResource:
        release = self._release("addon-metallb", cfg.METALLB_CHART, cfg.metallb_values(), after=[self.cni])
        pool, advertisement = cfg.metallb_pool(self.cluster)
        # The pool's kinds are CRDs the chart installs: without depends_on they could not be created.
        pool_resource = k8s.apiextensions.CustomResource(
            "addon-metallb-pool", api_version="metallb.io/v1beta1", kind="IPAddressPool",
            metadata={"name": cfg.METALLB_POOL, "namespace": cfg.METALLB_CHART.namespace}, spec=pool,
            opts=self._opts(release),
        )
        return k8s.apiextensions.CustomResource(
            "addon-metallb-l2", api_version="metallb.io/v1beta1", kind="L2Advertisement",
            metadata={"name": cfg.METALLB_POOL, "namespace": cfg.METALLB_CHART.namespace}, spec=advertisement,
            opts=self._opts(release, pool_resource),
        )

    # --- Gateway API ---------------------------------------------------------------------------

    def _gateway_api_crds(self) -> pulumi.Resource:
        # The release's own manifest, applied server-side by the provider as the project instructs.
        return k8s.yaml.v2.ConfigFile("addon-gateway-api-crds", file=cfg.gateway_api_crds(self.cluster),
                                      opts=self._opts())

    def _custom(self, name: str, manifest: dict[str, Any], *after: pulumi.Resource | None) -> pulumi.CustomResource:
        namespace = self.namespaces.get(manifest["metadata"].get("namespace", ""))
        return k8s.apiextensions.CustomResource(
            name, api_version=manifest["apiVersion"], kind=manifest["kind"], metadata=manifest["metadata"],
            spec=manifest["spec"], opts=self._opts(namespace, *after),
        )

    def _gateway_controller(self) -> tuple[pulumi.Resource, pulumi.Resource]:
        """(the controller serving the GatewayClass, what makes its parameters' kind exist)."""
        if cfg.gateway_implementation(self.cluster) == "cilium":
            return self.cni, self.cni  # Cilium's release: its gateway controller and its CRDs
        crds = self._crd_chart("addon-envoy-gateway-crds", cfg.ENVOY_GATEWAY_CRD_CHART,
                               cfg.envoy_gateway_crd_values())
        controller = self._release("addon-envoy-gateway", cfg.ENVOY_GATEWAY_CHART, cfg.envoy_gateway_values(),
                                   after=[self.cni, self.gateway_api_crds, crds])
        return controller, crds

    def _gateway(self) -> pulumi.CustomResource:
        controller, parameter_kinds = self._gateway_controller()
        parameters = self._custom("addon-gateway-parameters", cfg.gateway_parameters(self.cluster), parameter_kinds)
        gateway_class = self._custom("addon-gatewayclass", cfg.gateway_class(self.cluster),
                                     self.gateway_api_crds, controller, parameters)
        # With MetalLB, the Gateway's LoadBalancer Service gets its address from the pool.
        return self._custom("addon-gateway", cfg.gateway(), gateway_class, self.load_balancer)
