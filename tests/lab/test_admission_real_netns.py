"""Real admission: hakube's plain-object add-ons applied by the real pulumi-kubernetes provider
(lab/k8sprovider.py, over its gRPC protocol) to a real kube-apiserver built by kubeadm (lab/realcplab.py,
the one-node variant), then pods judged by that apiserver: the ValidatingAdmissionPolicy's own CEL and
Pod Security admission on the namespaces' labels. No kubelet or scheduler runs: an admitted pod stays
Pending. Pods need their namespace's `default` ServiceAccount, which kube-controller-manager would
create; the test creates it in its stead."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from configs import addons as cfg
from lab import k8sprovider
from lab.procs import wait_until
from lab.realcplab import REAL_TOOLS, Running, real_control_plane, stack_cluster
from lab.realtools import path_of
from policies import contract

pytestmark = [pytest.mark.root, pytest.mark.realtool(*REAL_TOOLS, "pulumi-resource-kubernetes"),
              pytest.mark.tool("curl")]

CLUSTER = stack_cluster("dev")
PROGRAM = Path(k8sprovider.__file__).resolve()
TOLERATE_CP = [{"key": contract.CONTROL_PLANE_KEY, "operator": "Exists", "effect": "NoSchedule"}]


@pytest.fixture(scope="module")
def applied() -> Iterator[tuple[Running, list[dict[str, Any]]]]:
    with real_control_plane("dev", nodes=1) as running:
        resources = k8sprovider.plain_addons(CLUSTER)
        result = running.lab.run(running.first, sys.executable, str(PROGRAM),
                                 str(path_of("pulumi-resource-kubernetes")), str(running.kubeconfig),
                                 stdin=json.dumps(resources), timeout=180)
        outcomes = json.loads(result.stdout)
        for namespace in (cfg.SMOKE_NAMESPACE, "kube-system"):  # kube-controller-manager's serviceaccount controller
            running.kubectl("create", "serviceaccount", "default", "-n", namespace, check=False)
        # The admission plugin learns of a new policy and binding through its informers, a moment after
        # they are created: wait (bounded) until the policy judges pods, before any test asks it.
        probe = _pod("policy-probe", cfg.SMOKE_NAMESPACE, tolerations=TOLERATE_CP)
        wait_until(lambda: cfg.ISOLATION_POLICY_NAME in _create(running, probe, dry_run=True)[1], 30,
                   "the isolation policy to be in force", step=0.5)
        yield running, outcomes


def _pod(name: str, namespace: str, **extra: Any) -> dict[str, Any]:
    """The smoke test's own pod template (restricted-compliant), plus `extra` spec fields."""
    spec = copy.deepcopy(cfg.smoke_deployment(CLUSTER)["spec"]["template"]["spec"])
    spec.update(extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _create(running: Running, pod: dict[str, Any], dry_run: bool = False) -> tuple[bool, str]:
    args = ["create", "-f", "-", "-o", "name", *(["--dry-run=server"] if dry_run else [])]
    result = running.kubectl(*args, stdin=json.dumps(pod), check=False)
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def test_the_provider_creates_every_plain_addon(applied: tuple[Running, list[dict[str, Any]]]) -> None:
    _, outcomes = applied
    assert [(o["type"], o["name"]) for o in outcomes] == [(t, n) for t, n, _ in k8sprovider.plain_addons(CLUSTER)]
    assert [o for o in outcomes if o["failures"] or o["error"] or not o["id"]] == []


def test_namespaces_carry_their_pod_security_labels(applied: tuple[Running, list[dict[str, Any]]]) -> None:
    running, _ = applied
    for ns in cfg.namespaces(CLUSTER):
        labels = json.loads(running.kubectl("get", "namespace", ns.name, "-o", "json").stdout)["metadata"]["labels"]
        assert cfg.psa_labels(ns.level).items() <= labels.items(), ns.name


def test_the_apiserver_refuses_a_pod_tolerating_the_control_plane_taint(
        applied: tuple[Running, list[dict[str, Any]]]) -> None:
    running, _ = applied
    ok, out = _create(running, _pod("tolerates", cfg.SMOKE_NAMESPACE, tolerations=TOLERATE_CP), dry_run=True)
    assert not ok
    assert f'ValidatingAdmissionPolicy \'{cfg.ISOLATION_POLICY_NAME}\'' in out
    assert f"hakube control-plane isolation: {cfg.ISOLATION_REASONS['toleratesControlPlane']}" in out, out


def test_the_apiserver_refuses_a_pod_selecting_control_plane_nodes(
        applied: tuple[Running, list[dict[str, Any]]]) -> None:
    running, _ = applied
    ok, out = _create(running, _pod("selects", cfg.SMOKE_NAMESPACE, nodeSelector={contract.CONTROL_PLANE_KEY: ""}))
    assert not ok and cfg.ISOLATION_REASONS["selectsControlPlane"] in out, out


def test_a_compliant_pod_is_admitted_and_stays_pending(applied: tuple[Running, list[dict[str, Any]]]) -> None:
    running, _ = applied
    pod = _pod("compliant", cfg.SMOKE_NAMESPACE)
    assert _create(running, pod, dry_run=True) == (True, "pod/compliant")
    assert _create(running, pod) == (True, "pod/compliant")
    status = json.loads(running.kubectl("get", "pod", "compliant", "-n", cfg.SMOKE_NAMESPACE, "-o", "json").stdout)
    assert status["status"]["phase"] == "Pending" and "nodeName" not in status["spec"]


def test_a_system_namespace_may_tolerate_the_control_plane(applied: tuple[Running, list[dict[str, Any]]]) -> None:
    running, _ = applied
    assert "kube-system" in cfg.system_namespaces(CLUSTER)
    assert _create(running, _pod("tolerates", "kube-system", tolerations=TOLERATE_CP), dry_run=True)[0]


def test_pod_security_refuses_a_privileged_pod_in_a_restricted_namespace(
        applied: tuple[Running, list[dict[str, Any]]]) -> None:
    running, _ = applied
    pod = _pod("privileged", cfg.SMOKE_NAMESPACE)
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    ok, out = _create(running, pod, dry_run=True)
    assert not ok and 'violates PodSecurity "restricted:latest"' in out, out
