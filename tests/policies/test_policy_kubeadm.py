"""The kubeadm and kubelet rules (policies/kubeadm.py) on the program's kubeadm configs and
static-pod patches, edited the way a broken program would place them."""

from __future__ import annotations

import pytest
import yaml

from configs import kubeadm
from policies import contract
from tests.policy_helpers import (
    KUBELET,
    graph_has,
    guaranteed_patch,
    kubeadm_config_path,
    messages,
    patch_path,
    placed,
    rec,
    resource_violations,
    set_entry,
    stack_violations,
    unplace,
    with_kubeadm,
)


@pytest.mark.parametrize("stack", ["dev", "edge"])
def test_kubeadm_rules_pass_on_complete_control_plane_configs(stack: str) -> None:
    run = with_kubeadm(stack)
    for name in ("cp-taint", "cp-static-pod-qos", "cp-cpu-manager", "lb-stacked-ports"):
        assert stack_violations(name, run) == [], name


def test_control_plane_must_keep_the_noschedule_taint() -> None:
    run = with_kubeadm("dev", edit=lambda node, doc: node == "cp2" and doc["nodeRegistration"].update(taints=[]))
    assert [r for r, _ in stack_violations("cp-taint", run)] == ["cp2"]
    explicit = [{"key": contract.CONTROL_PLANE_KEY, "effect": contract.CONTROL_PLANE_TAINT_EFFECT}]
    run = with_kubeadm("dev", edit=lambda node, doc: doc["nodeRegistration"].update(taints=explicit))
    assert stack_violations("cp-taint", run) == []


def test_schedulable_edge_control_plane_may_drop_the_taint() -> None:
    run = with_kubeadm("edge", edit=lambda node, doc: doc["nodeRegistration"].update(taints=[]))
    assert rec(run, "edge").inputs["schedulableControlPlane"] is True
    assert stack_violations("cp-taint", run) == []
    rec(run, "edge").inputs["schedulableControlPlane"] = False
    assert len(stack_violations("cp-taint", run)) == 3


def test_static_pods_need_requests_equal_to_limits() -> None:
    def burstable(node: str, target: str) -> str:
        return guaranteed_patch(target, cpu="500m", limit_cpu="1") if (node, target) == ("cp3", "etcd") \
            else guaranteed_patch(target, cpu="1000m", limit_cpu="1")  # 1000m == 1: still Guaranteed

    found = stack_violations("cp-static-pod-qos", with_kubeadm("dev", patch=burstable))
    entry = set_entry("cp3", patch_path("etcd"))
    assert found == [("cp3-kubeadm-files", f"{entry}: etcd requests.cpu 500m != limits.cpu 1 (not Guaranteed QoS)")]


def test_static_pod_patches_must_exist_and_be_applied() -> None:
    run = with_kubeadm("dev", edit=lambda node, doc: node == "cp1" and doc.pop("patches"))
    unplace(run, "cp2", patch_path("kube-scheduler"))
    for path in (kubeadm_config_path(run, "cp3"), kubeadm.UPGRADE_CONFIG_PATH):  # none of its kubeadm files
        unplace(run, "cp3", path)
    text = messages(stack_violations("cp-static-pod-qos", run))
    assert "cp1: its kubeadm config sets no patches.directory" in text
    assert "cp2: no kube-scheduler patch in /etc/kubernetes/patches" in text
    assert "cp3: no kubeadm config is dropped on it" in text


def test_cpu_manager_is_advised_on_control_plane_kubelets() -> None:
    run = with_kubeadm("dev")
    placed(run, "cp1", "/var/lib/kubelet/hakube-config.yaml")["content"] = yaml.safe_dump(
        {**KUBELET, "cpuManagerPolicy": "none"})
    assert stack_violations("cp-cpu-manager", run) == [("cp1", "cp1: cpuManagerPolicy is none, not static")]


def test_cpu_manager_options_are_advised_on_control_plane_kubelets() -> None:
    run = with_kubeadm("dev")
    assert stack_violations("cp-cpu-manager", run) == []  # what hakube renders has them
    placed(run, "cp2", "/var/lib/kubelet/hakube-config.yaml")["content"] = yaml.safe_dump(
        {**KUBELET, "cpuManagerPolicyOptions": {"full-pcpus-only": "true", "strict-cpu-reservation": "false"}})
    assert stack_violations("cp-cpu-manager", run) == [
        ("cp2", 'cp2: cpuManagerPolicyOptions lacks strict-cpu-reservation: "true"')]


def test_stacked_ports_read_the_apiserver_port_from_kubeadm() -> None:
    run = with_kubeadm("edge", edit=lambda node, doc: node == "edge3" and doc["controlPlane"]["localAPIEndpoint"]
                       .update(bindPort=6443))
    found = stack_violations("lb-stacked-ports", run)
    assert found == [("edge3-haproxy", "edge3-haproxy: HAProxy binds port 6443 on edge3, which is kube-apiserver's "
                                       "bind port (its kubeadm config)")]


def test_program_kubeadm_configs_pass_and_fail_when_untainted() -> None:
    run = graph_has("dev", lambda r: str(r.inputs.get("path", "")).startswith(contract.KUBEADM_DIR),
                    "kubeadm config file")
    for name in ("cp-taint", "cp-static-pod-qos", "cp-cpu-manager", "secrets"):
        assert (stack_violations if name != "secrets" else resource_violations)(name, run) == [], name
    config = placed(run, "cp2", kubeadm_config_path(run, "cp2"))  # a control-plane node's join config
    docs = list(yaml.safe_load_all(config["content"]))
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") in ("InitConfiguration", "JoinConfiguration"):
            doc.setdefault("nodeRegistration", {})["taints"] = []
    config["content"] = yaml.safe_dump_all(docs)
    assert stack_violations("cp-taint", run)
