"""The control-plane isolation ValidatingAdmissionPolicy: its CEL, evaluated with cel-python the way
the API server does (variables in order, then the validation), and its Python twin, held to the
same verdict and the same message on one table of cases and on random pod specs; the policy pack's
workload-isolation rule, held to the same admit/refuse verdicts."""

from __future__ import annotations

from typing import Any

import celpy
import pytest
from celpy import celtypes
from hypothesis import given, settings
from hypothesis import strategies as st

from configs import addons as cfg
from policies import _data, contract, workloads
from tests.mockgraph import stack_cluster
from tests.strategies import isolation_pod_specs
from topology import load_cluster

CP = contract.CONTROL_PLANE_KEY
MASTER = contract.CONTROL_PLANE_KEYS[1]
CALICO = load_cluster(stack_cluster("dev"))  # the dev stack runs calico
SYSTEM = cfg.system_namespaces(CALICO)
ENV = celpy.Environment()


def _compile(expression: str) -> Any:
    return ENV.program(ENV.compile(expression))


POLICY = cfg.isolation_policy_spec(CALICO)
VARIABLES = [(v["name"], _compile(v["expression"])) for v in POLICY["variables"]]
(VALIDATION,) = POLICY["validations"]
ADMIT = _compile(VALIDATION["expression"])
MESSAGE = _compile(VALIDATION["messageExpression"])


def _eval(program: Any, activation: dict[str, Any]) -> Any:
    result = program.evaluate(activation)
    if isinstance(result, celpy.CELEvalError):  # cel-python returns evaluation errors as values
        raise AssertionError(f"CEL evaluation error: {result!r}")
    return result


def cel_verdict(obj: dict[str, Any], namespace: str) -> str | None:
    """None when the policy admits `obj` in `namespace`, else its message."""
    activation = {"object": celpy.json_to_cel(obj), "request": celpy.json_to_cel({"namespace": namespace})}
    variables = celtypes.MapType({})
    for name, program in VARIABLES:
        value = _eval(program, {**activation, "variables": variables})
        variables = celtypes.MapType({**variables, celtypes.StringType(name): value})
    activation["variables"] = variables
    if _eval(ADMIT, activation):
        return None
    return str(_eval(MESSAGE, activation))


def pod(**spec: Any) -> dict[str, Any]:
    return {"kind": "Pod", "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


def workload(kind: str, **spec: Any) -> dict[str, Any]:
    return {"kind": kind, "spec": {"template": pod(**spec)}}


def required(*expressions: dict[str, Any]) -> dict[str, Any]:
    terms = [{"matchExpressions": list(expressions)}]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


def preferred(*expressions: dict[str, Any]) -> dict[str, Any]:
    prefs = [{"weight": 1, "preference": {"matchExpressions": list(expressions)}}]
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": prefs}}


TOLERATE_CP = [{"key": CP, "operator": "Exists", "effect": "NoSchedule"}]
TOLERATE_ALL = [{"key": "", "operator": "Exists"}]
TAINT = "tolerating the control-plane taint"
SELECT = "selecting control-plane nodes"

# (id, object, namespace, None if admitted else the reason in the refusal)
CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("plain-pod", pod(), "default", None),
    ("tolerates-cp-in-default", pod(tolerations=TOLERATE_CP), "default", TAINT),
    ("tolerates-cp-in-kube-system", pod(tolerations=TOLERATE_CP), "kube-system", None),
    ("tolerates-cp-in-hakube-system", pod(tolerations=TOLERATE_CP), "hakube-system", None),
    ("tolerates-cp-in-calico-system", pod(tolerations=TOLERATE_CP), "calico-system", None),
    ("tolerates-cp-in-kube-flannel-on-calico", pod(tolerations=TOLERATE_CP), "kube-flannel", TAINT),
    ("tolerates-cp-equal", pod(tolerations=[{"key": CP, "operator": "Equal", "value": "", "effect": "NoSchedule"}]),
     "apps", TAINT),
    ("tolerates-everything-empty-key", pod(tolerations=TOLERATE_ALL), "default", TAINT),
    ("tolerates-everything-no-key", pod(tolerations=[{"operator": "Exists"}]), "default", TAINT),
    ("tolerates-other-taint", pod(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]),
     "default", None),
    ("node-selector-cp", pod(nodeSelector={CP: ""}), "default", SELECT),
    ("node-selector-cp-in-kube-system", pod(nodeSelector={CP: ""}), "kube-system", None),
    ("node-selector-other", pod(nodeSelector={"zone": "a"}), "default", None),
    ("affinity-required-exists", pod(affinity=required({"key": CP, "operator": "Exists"})), "default", SELECT),
    ("affinity-required-in", pod(affinity=required({"key": CP, "operator": "In", "values": [""]})), "team", SELECT),
    ("affinity-preferred-exists", pod(affinity=preferred({"key": CP, "operator": "Exists"})), "default", SELECT),
    ("affinity-not-in", pod(affinity=required({"key": CP, "operator": "DoesNotExist"})), "default", None),
    ("affinity-other-key", pod(affinity=required({"key": "zone", "operator": "In", "values": ["a"]})),
     "default", None),
    ("affinity-pod-only", pod(affinity={"podAntiAffinity": {}}), "default", None),
    ("deployment-plain", workload("Deployment"), "default", None),
    ("deployment-tolerates-cp", workload("Deployment", tolerations=TOLERATE_CP), "default", TAINT),
    ("daemonset-tolerates-everything", workload("DaemonSet", tolerations=TOLERATE_ALL), "monitoring", TAINT),
    ("daemonset-tolerates-everything-in-tigera", workload("DaemonSet", tolerations=TOLERATE_ALL), "tigera-operator",
     None),
    ("statefulset-selects-cp", workload("StatefulSet", nodeSelector={CP: ""}), "default", SELECT),
    ("job-affinity-cp", workload("Job", affinity=required({"key": CP, "operator": "Exists"})), "default", SELECT),
    ("both-reports-taint", pod(tolerations=TOLERATE_CP, nodeSelector={CP: ""}), "default", TAINT),
    ("tolerates-legacy-master", pod(tolerations=[{"key": MASTER, "operator": "Exists"}]), "default", TAINT),
    ("node-selector-legacy-master", pod(nodeSelector={MASTER: ""}), "default", SELECT),
    ("affinity-legacy-master", pod(affinity=preferred({"key": MASTER, "operator": "Exists"})), "default", SELECT),
]


@pytest.mark.parametrize(("obj", "namespace", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cel_and_python_twin_agree(obj: dict[str, Any], namespace: str, reason: str | None) -> None:
    expected = None if reason is None else (
        f"hakube control-plane isolation: {reason} is reserved for system namespaces, not {namespace}")
    assert cel_verdict(obj, namespace) == expected
    assert cfg.pod_violates_isolation(cfg.pod_spec_of(obj), namespace, SYSTEM) == expected


def test_twin_defaults_to_the_base_system_namespaces() -> None:
    assert cfg.pod_violates_isolation(pod(tolerations=TOLERATE_CP)["spec"], "kube-system") is None
    assert cfg.pod_violates_isolation(pod(tolerations=TOLERATE_CP)["spec"], "calico-system") is not None


@pytest.mark.parametrize(("cni", "own"), [("calico", "calico-system"), ("cilium", "kube-system"),
                                          ("flannel", "kube-flannel")])
def test_system_namespaces_follow_the_cni(cni: str, own: str) -> None:
    data = stack_cluster("dev") | {"addons": {"cni": cni}}
    system = cfg.system_namespaces(load_cluster(data))
    assert own in system
    assert set(contract.BASE_SYSTEM_NAMESPACES) <= set(system)
    others = {ns for other, names in contract.CNI_SYSTEM_NAMESPACES.items() if other != cni for ns in names}
    assert not (others - set(contract.BASE_SYSTEM_NAMESPACES)) & set(system)
    spec = cfg.isolation_policy_spec(load_cluster(data))
    namespace_variable = next(v for v in spec["variables"] if v["name"] == "systemNamespace")
    assert f'"{own}"' in namespace_variable["expression"]


def test_metallb_namespace_exempt_only_when_enabled() -> None:
    on = stack_cluster("dev") | {"addons": {"metallb": {"enabled": True, "addresses": ["198.18.0.200/29"]}}}
    assert "metallb-system" in cfg.system_namespaces(load_cluster(on))
    assert "metallb-system" not in SYSTEM


def test_policy_matches_pods_and_workloads_on_create_and_update() -> None:
    rules = POLICY["matchConstraints"]["resourceRules"]
    covered = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert {("", "pods"), ("apps", "deployments"), ("apps", "daemonsets"), ("apps", "statefulsets"),
            ("batch", "jobs")} <= covered
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in rules)
    assert POLICY["failurePolicy"] == "Fail"
    assert cfg.isolation_binding_spec() == {"policyName": cfg.ISOLATION_POLICY_NAME, "validationActions": ["Deny"]}


def test_variables_only_use_earlier_variables() -> None:
    # The API server evaluates `variables.x` lazily, but a forward reference would be a bug here.
    names = [v["name"] for v in POLICY["variables"]]
    for i, v in enumerate(POLICY["variables"]):
        for later in names[i:]:
            assert f"variables.{later}" not in v["expression"], (v["name"], later)


def pack_refuses(obj: dict[str, Any], namespace: str) -> bool:
    """The pack's workload-isolation rule on `obj` as a resource in `namespace` (the cluster's exemptions)."""
    type_ = {"Pod": "kubernetes:core/v1:Pod", "Deployment": "kubernetes:apps/v1:Deployment"}[obj["kind"]]
    resource = _data.Resource(urn=f"urn:x::{type_}::w", type=type_, name="w",
                              props={"metadata": {"namespace": namespace}, "spec": obj["spec"]})
    return bool(workloads.workload_isolation(resource, SYSTEM))


@pytest.mark.parametrize(("obj", "namespace", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_pack_refuses_what_the_policy_refuses(obj: dict[str, Any], namespace: str, reason: str | None) -> None:
    if obj["kind"] in ("Pod", "Deployment"):
        assert pack_refuses(obj, namespace) == (reason is not None)


@settings(max_examples=200, deadline=None)
@given(isolation_pod_specs(), st.sampled_from([*SYSTEM, "default", "apps", "kube-flannel", "metallb-system"]),
       st.booleans())
def test_cel_twin_and_pack_agree_on_random_pod_specs(spec: dict[str, Any], namespace: str, as_pod: bool) -> None:
    obj = {"kind": "Pod", "spec": spec} if as_pod else {"kind": "Deployment", "spec": {"template": {"spec": spec}}}
    verdict = cel_verdict(obj, namespace)
    assert cfg.pod_violates_isolation(spec, namespace, SYSTEM) == verdict
    assert pack_refuses(obj, namespace) == (verdict is not None)
