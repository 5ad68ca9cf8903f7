"""Control-plane isolation of workloads (policies/workloads.py): the smoke Deployment from
configs/addons.py and the program's own workloads, with a toleration or selector added."""

from __future__ import annotations

from typing import Any

import pytest

from configs import addons
from policies import contract
from tests.mockgraph import cluster_copy
from tests.policy_helpers import (
    check_resource,
    graph_has,
    resource_violations,
)
from topology import load_cluster

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def smoke_props(**spec_changes: Any) -> dict[str, Any]:
    """The smoke-test Deployment's inputs (configs/addons.py renders them; the component passes them)."""
    manifest = addons.smoke_deployment(load_cluster(cluster_copy("dev")))
    manifest["spec"]["template"]["spec"].update(spec_changes)
    return {"metadata": manifest["metadata"], "spec": manifest["spec"]}


CONTROL_PLANE_SPECS = {
    "toleration": {"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                    "effect": "NoSchedule"}]},
    "tolerate-everything": {"tolerations": [{"operator": "Exists"}]},
    "node-selector": {"nodeSelector": {"node-role.kubernetes.io/control-plane": ""}},
    "affinity": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane",
                                                     "operator": "Exists"}]}]}}}},
    "preferred-affinity": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane",
                                                           "operator": "In", "values": [""]}]}}]}}},
}


def test_smoke_deployment_passes_workload_isolation() -> None:
    assert check_resource("workload-isolation", DEPLOYMENT, smoke_props()) == []


@pytest.mark.parametrize("case", sorted(CONTROL_PLANE_SPECS))
def test_workloads_may_not_reach_control_plane_nodes(case: str) -> None:
    props = smoke_props(**CONTROL_PLANE_SPECS[case])
    found = check_resource("workload-isolation", DEPLOYMENT, props)
    assert len(found) == 1 and "namespace hakube-smoke" in found[0]
    # The in-cluster admission policy's Python twin refuses exactly the same pod specs.
    assert addons.pod_violates_isolation(props["spec"]["template"]["spec"], "hakube-smoke") is not None
    props["metadata"]["namespace"] = "kube-system"
    assert check_resource("workload-isolation", DEPLOYMENT, props) == []
    assert check_resource("workload-isolation", DEPLOYMENT, {**props, "metadata": {"namespace": "ops"}},
                          config={"extraSystemNamespaces": ["ops"]}) == []


def test_cronjob_and_pod_templates_are_read() -> None:
    spec = {"containers": [{"name": "c", "image": "busybox"}], **CONTROL_PLANE_SPECS["toleration"]}
    cronjob = {"metadata": {"name": "c", "namespace": "default"},
               "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}}
    assert check_resource("workload-isolation", "kubernetes:batch/v1:CronJob", cronjob)
    assert check_resource("workload-isolation", "kubernetes:core/v1:Pod", {"metadata": {}, "spec": spec})


def test_program_workloads_pass_and_fail_with_a_toleration() -> None:
    run = graph_has("dev", lambda r: r.type in contract.WORKLOADS, "Kubernetes workload")
    assert resource_violations("workload-isolation", run) == []
    workload = next(r for r in run.records if r.type in contract.WORKLOADS)
    spec = workload.inputs["spec"]["template"]["spec"] if "template" in workload.inputs["spec"] else \
        workload.inputs["spec"]
    spec["tolerations"] = CONTROL_PLANE_SPECS["toleration"]["tolerations"]
    assert resource_violations("workload-isolation", run)
