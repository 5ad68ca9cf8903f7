"""The CrossGuard pack (policies/): every rule passes on the committed stacks and fails when one
real input is broken. Inputs come from a mocked run of the real program; policies are called as
the engine calls them: `policy.validate(StackValidationArgs | ResourceValidationArgs, report)`.

Rules whose resources the program does not create yet (kubeadm FileSets, `<node>-credentials`,
`<node>-join`, `kubeconfig`, in-cluster workloads) are covered twice: by tests on inputs built
the way those components will (kubeadm documents; the smoke Deployment from configs/addons.py),
and by graph tests that skip, naming what is pending, until the program creates them.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
    StackValidationPolicy,
)

from configs import addons, kubeadm
from dryrun import policy_check
from dryrun.mockrun import MockRun, Record
from policies import contract, pack, rules
from tests.mockgraph import cluster_copy, graph, stack_graph
from topology import load_cluster

REPO = Path(__file__).resolve().parent.parent
POLICY = {p.name: p for p in pack.POLICIES}
SECRET = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}

# -- calling policies the way the engine does ---------------------------------------------------


def stack_violations(name: str, run: MockRun, config: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(resource name, message) for every report_violation a stack policy makes on `run`."""
    resources = policy_check.policy_resources(run)
    names = {r.urn: r.name for r in resources}
    got: list[tuple[str, str]] = []

    def report_violation(message: str, urn: str | None = None) -> None:
        got.append((names.get(urn or "", ""), message))

    assert POLICY[name].validate(StackValidationArgs(resources, config), report_violation) is None
    return got


def resource_violations(name: str, run: MockRun, config: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    got: list[tuple[str, str]] = []
    for r in policy_check.policy_resources(run):
        def report_violation(message: str, urn: str | None = None, _name: str = r.name) -> None:
            got.append((_name, message))

        args = ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, r.provider, config)
        assert POLICY[name].validate(args, report_violation) is None
    return got


def check_resource(policy: str, type_: str, props: dict[str, Any], *, name: str = "x",
                   secret_outputs: tuple[str, ...] = (), config: dict[str, Any] | None = None) -> list[str]:
    """One resource through a resource policy, as Analyze would pass it."""
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), list(secret_outputs), None)
    got: list[str] = []
    args = ResourceValidationArgs(type_, props, f"urn:pulumi:dev::hakube::{type_}::{name}", name, opts, None, config)
    POLICY[policy].validate(args, lambda message, urn=None: got.append(message))
    return got


# -- real inputs, one thing broken --------------------------------------------------------------


def run_of(stack: str) -> MockRun:
    return copy.deepcopy(stack_graph(stack).run)


def rec(run: MockRun, name: str) -> Record:
    return next(r for r in run.records if r.name == name)


def replace_in(run: MockRun, name: str, old: str, new: str, *path: str) -> None:
    """Edit one text input (e.g. the domain's xml.xslt) of a recorded resource."""
    holder = rec(run, name).inputs
    for key in path[:-1]:
        holder = holder[key]
    assert old in holder[path[-1]], f"{old!r} not in {name}.{'.'.join(path)}"
    holder[path[-1]] = holder[path[-1]].replace(old, new)


def drop(run: MockRun, *names: str) -> None:
    """Remove resources and everything under them, as if the program had not created them."""
    gone = {r.urn for r in run.records if r.name in names}
    changed = True
    while changed:
        more = {r.urn for r in run.records if r.parent in gone} - gone
        changed, gone = bool(more), gone | more
    run.records = [r for r in run.records if r.urn not in gone]


def messages(found: list[tuple[str, str]]) -> str:
    return "\n".join(f"{r}: {m}" for r, m in found)


@pytest.fixture(scope="module")
def moved() -> MockRun:
    """dev with cp2 moved onto hv1 with a valid, disjoint pin set (a topology the loader accepts)."""
    cluster = cluster_copy("dev")
    cp2 = next(n for n in cluster["controlPlane"]["nodes"] if n["name"] == "cp2")
    cp2.update(hypervisor="hv1", pinnedCpus="6-9")
    return graph(cluster).run


@pytest.fixture(scope="module")
def two_hypervisors() -> MockRun:
    """dev on two hypervisors: hv3 gone, cp3 on hv1 (6-9)."""
    cluster = cluster_copy("dev")
    cluster["hypervisors"] = [h for h in cluster["hypervisors"] if h["name"] != "hv3"]
    cp3 = next(n for n in cluster["controlPlane"]["nodes"] if n["name"] == "cp3")
    cp3.update(hypervisor="hv1", pinnedCpus="6-9")
    return graph(cluster).run


# -- the pack as a whole ------------------------------------------------------------------------

LEVELS = {
    "cp-vcpu-pinning": "mandatory", "cp-memory-locked": "mandatory", "cp-dedicated-cores": "mandatory",
    "cp-no-overcommit": "mandatory", "etcd-storage": "mandatory", "cp-network": "mandatory",
    "cp-spread": "mandatory", "cp-spread-best-effort": "advisory", "quorum": "mandatory",
    "lb-redundancy": "mandatory", "lb-vrrp-priorities": "mandatory", "lb-vip": "mandatory",
    "lb-stacked-ports": "mandatory", "cp-taint": "mandatory", "cp-static-pod-qos": "mandatory",
    "cp-cpu-manager": "advisory", "workload-isolation": "mandatory", "secrets": "mandatory",
    "etcd-offsite-snapshots": "mandatory",
}


def test_pack_names_every_rule_with_its_documented_level() -> None:
    assert {p.name: p.enforcement_level.value for p in pack.POLICIES} == LEVELS
    readme = (REPO / "README.md").read_text()
    for name, level in LEVELS.items():
        assert f"| `{name}` | {level} |" in readme, f"README's policy table lacks {name}"


def test_edge_config_lowers_quorum_workload_isolation_and_offsite_snapshots_only() -> None:
    edge = pack.stack_config("edge")
    lowered = {p.name for p in pack.POLICIES
               if pack.enforcement_level(p, edge) != pack.enforcement_level(p, pack.stack_config("dev"))}
    assert lowered == {"quorum", "workload-isolation", "etcd-offsite-snapshots"}
    assert all(pack.enforcement_level(POLICY[n], edge) == EnforcementLevel.ADVISORY for n in lowered)
    assert pack.enforcement_level(POLICY["quorum"], {"all": "disabled"}) == EnforcementLevel.DISABLED
    assert pack.enforcement_level(POLICY["quorum"], {"all": "advisory", "quorum": "mandatory"}) == pack.MANDATORY


@pytest.mark.parametrize("stack", ["dev", "edge", "prod"])
def test_committed_stacks_pass_every_rule(stack: str) -> None:
    run = run_of(stack)
    for policy in pack.POLICIES:
        check = stack_violations if isinstance(policy, StackValidationPolicy) else resource_violations
        assert check(policy.name, run) == [], policy.name


# -- control-plane VMs --------------------------------------------------------------------------


def test_pinning_fails_when_a_vcpu_loses_its_pin() -> None:
    run = run_of("dev")
    replace_in(run, "cp1-domain", '<vcpupin vcpu="3" cpuset="5" />', "", "xml", "xslt")
    found = stack_violations("cp-vcpu-pinning", run)
    assert {r for r, _ in found} == {"cp1-domain"} and "vCPU 3 has 0 <vcpupin>" in messages(found)
    assert "pins cores 2,3,4 but the VM declares pinnedCpus 2-5" in messages(found)


def test_pinning_fails_on_a_floating_vcpu_or_a_reserved_core() -> None:
    run = run_of("prod")
    replace_in(run, "cp2-domain", '<vcpupin vcpu="0" cpuset="2" />', '<vcpupin vcpu="0" cpuset="2-3" />',
               "xml", "xslt")
    replace_in(run, "cp3-domain", '<vcpupin vcpu="5" cpuset="7" />', '<vcpupin vcpu="5" cpuset="16" />',
               "xml", "xslt")
    text = messages(stack_violations("cp-vcpu-pinning", run))
    assert "cp2-domain: vCPU 0 floats over cores 2-3" in text
    assert "cp3-domain: pins core(s) 16 reserved for hv3's host OS" in text


def test_pinning_fails_when_the_xslt_does_not_apply() -> None:
    run = run_of("dev")
    replace_in(run, "cp2-domain", "</xsl:stylesheet>", "", "xml", "xslt")
    assert "xml.xslt does not apply" in messages(stack_violations("cp-vcpu-pinning", run))


def test_memory_must_be_locked_without_a_balloon() -> None:
    run = run_of("dev")
    replace_in(run, "cp1-domain", "<locked />", "", "xml", "xslt")
    replace_in(run, "cp2-domain", '<memballoon model="none" />', "", "xml", "xslt")
    found = dict(stack_violations("cp-memory-locked", run))
    assert set(found) == {"cp1-domain", "cp2-domain"}
    assert "memory is not locked" in found["cp1-domain"]
    assert "libvirt adds a virtio one" in found["cp2-domain"]


def test_two_vms_on_one_hypervisor_need_disjoint_cores(moved: MockRun) -> None:
    assert stack_violations("cp-dedicated-cores", moved) == []
    run = copy.deepcopy(moved)
    for vcpu, (old, new) in enumerate([("6", "4"), ("7", "5")]):
        replace_in(run, "cp2-domain", f'<vcpupin vcpu="{vcpu}" cpuset="{old}" />',
                   f'<vcpupin vcpu="{vcpu}" cpuset="{new}" />', "xml", "xslt")
    found = stack_violations("cp-dedicated-cores", run)
    assert found == [("cp2-domain", "cp2-domain: core(s) 4,5 on hv1 are also pinned by cp1-vm")]


def test_domains_must_fit_the_hypervisor(moved: MockRun) -> None:
    assert stack_violations("cp-no-overcommit", moved) == []
    run = copy.deepcopy(moved)
    rec(run, "cp2-domain").inputs["memory"] = 49 * 1024.0  # 8 + 49 GiB > 64 - 8 GiB
    rec(run, "cp1-domain").inputs["vcpu"] = 11.0  # 11 + 4 vCPUs > 16 - 2 free cores
    text = messages(stack_violations("cp-no-overcommit", run))
    assert "take 58368 MiB, more than the 57344 MiB" in text and "15 vCPUs but only 14 cores" in text


def test_etcd_volume_must_live_in_the_control_plane_pool() -> None:
    run = run_of("dev")
    rec(run, "cp1-etcd").inputs["pool"] = "general"
    rec(run, "cp2-etcd").provider = "hv3-libvirt"
    text = messages(stack_violations("etcd-storage", run))
    assert "cp1-etcd: lives in pool 'general', not in hv1's controlPlane pool (cp-nvme)" in text
    assert "cp2-etcd: is created through hv3-libvirt, not hv2's libvirt provider" in text


def test_control_plane_pool_holds_only_control_plane_disks() -> None:
    run = run_of("dev")
    rec(run, "cp3-cloudinit").parent = rec(run, "hv3").urn  # a disk that belongs to no control-plane VM
    assert "cp3-cloudinit: is not a control-plane VM disk" in messages(stack_violations("etcd-storage", run))
    drop(run, "cp1-etcd")
    assert "cp1-vm: no etcd volume" in messages(stack_violations("etcd-storage", run))


def test_each_vm_needs_a_nic_on_the_control_plane_bridge() -> None:
    run = run_of("dev")
    domain = rec(run, "cp1-domain")
    net = rec(run, "hv1-net-controlplane").urn
    # What the program would record without the second NIC: neither the NIC nor its dependency.
    domain.inputs["networkInterfaces"] = domain.inputs["networkInterfaces"][:1]
    domain.dependencies = [d for d in domain.dependencies if d != net]
    domain.property_dependencies = {k: [u for u in v if u != net] for k, v in domain.property_dependencies.items()}
    rec(run, "hv2").inputs["bridges"]["controlPlane"] = "br-other"
    text = messages(stack_violations("cp-network", run))
    assert "cp1-domain: no NIC on hv1's controlPlane bridge br-cp" in text
    assert "cp2-domain: no NIC on hv2's controlPlane bridge br-other" in text
    assert "cp3" not in text


def test_spread_is_mandatory_with_enough_hypervisors(moved: MockRun) -> None:
    assert stack_violations("cp-spread", run_of("dev")) == []
    found = stack_violations("cp-spread", moved)
    assert found == [("hv1", "hv1: hosts cp1-vm, cp2-vm although 3 hypervisors are declared for 3 control-plane "
                             "VMs")]
    assert stack_violations("cp-spread-best-effort", moved) == []


def test_spread_is_advisory_with_too_few_hypervisors(two_hypervisors: MockRun) -> None:
    assert stack_violations("cp-spread", two_hypervisors) == []
    found = stack_violations("cp-spread-best-effort", two_hypervisors)
    assert [r for r, _ in found] == ["hv1"] and "losing it loses 2 members" in found[0][1]
    assert stack_violations("cp-spread-best-effort", run_of("dev")) == []


@pytest.mark.parametrize(("count", "fails"), [(1, True), (2, True), (3, False), (4, True), (5, False)])
def test_quorum_needs_an_odd_count_of_at_least_three(count: int, fails: bool) -> None:
    run = run_of("prod")
    rec(run, "prod").inputs["controlPlaneCount"] = float(count)
    assert bool(stack_violations("quorum", run)) == fails


def test_quorum_counts_control_plane_nodes_without_the_declared_count() -> None:
    run = run_of("edge")
    del rec(run, "edge").inputs["controlPlaneCount"]
    assert stack_violations("quorum", run) == []
    drop(run, "edge3")
    assert "2 control-plane node(s)" in messages(stack_violations("quorum", run))


def test_edge_reports_a_quorum_violation_as_advisory() -> None:
    run = run_of("edge")
    rec(run, "edge").inputs["controlPlaneCount"] = 2.0
    verdicts = {v.name: v for v in policy_check.evaluate(run, "edge")}
    assert verdicts["quorum"].status == "advisory" and verdicts["quorum"].violations
    dev_like = {v.name: v for v in policy_check.evaluate(run, "prod")}
    assert dev_like["quorum"].status == "mandatory"


# -- load balancer ------------------------------------------------------------------------------


def test_lb_needs_two_nodes_on_distinct_hosts() -> None:
    run = run_of("dev")
    rec(run, "lb2-lb").inputs["address"] = rec(run, "lb1-lb").inputs["address"]
    assert "LB nodes share address 198.18.0.11" in messages(stack_violations("lb-redundancy", run))
    drop(run, "lb2-lb")
    assert "api-lb: 1 LB node(s); a VIP needs two" in messages(stack_violations("lb-redundancy", run))


def test_each_lb_node_runs_haproxy_and_keepalived() -> None:
    run = run_of("edge")
    drop(run, "edge3-haproxy")
    assert stack_violations("lb-redundancy", run) == [("edge3-lb", "edge3-lb: no haproxy.cfg dropped on this LB "
                                                                    "node")]


def test_vrrp_priorities_are_distinct() -> None:
    run = run_of("edge")
    first = rules.keepalived_facts(rec(run, "edge1-keepalived").inputs["content"])["priority"]
    third = rules.keepalived_facts(rec(run, "edge3-keepalived").inputs["content"])["priority"]
    replace_in(run, "edge3-keepalived", f"\n    priority {third}\n", f"\n    priority {first}\n", "content")
    found = stack_violations("lb-vrrp-priorities", run)
    assert [r for r, _ in found] == ["edge3-keepalived"] and "equals edge1-keepalived's" in found[0][1]


def test_vip_is_no_host_address() -> None:
    run = run_of("dev")
    rec(run, "api-lb").inputs["vip"] = "198.18.0.41"
    replace_in(run, "lb2-keepalived", "198.18.0.100/32", "198.18.0.31/32", "content")
    text = messages(stack_violations("lb-vip", run))
    assert "api-lb: VIP 198.18.0.41 is the address of w1" in text
    assert "lb2-keepalived: VIP 198.18.0.31 is the address of hv1" in text
    assert "lb1-keepalived: VIP 198.18.0.100 is not the pair's (198.18.0.41)" in text


def test_stacked_haproxy_never_binds_the_apiserver_port() -> None:
    run = run_of("edge")
    assert stack_violations("lb-stacked-ports", run) == []
    replace_in(run, "edge2-haproxy", "bind 198.18.4.100:6443", "bind 198.18.4.100:6444", "content")
    found = stack_violations("lb-stacked-ports", run)
    assert found == [("edge2-haproxy", "edge2-haproxy: HAProxy binds port 6444 on edge2, which is kube-apiserver's "
                                       "bind port (its kubeadm config)")]


def test_external_lb_nodes_run_no_apiserver() -> None:
    run = run_of("dev")
    replace_in(run, "lb1-haproxy", "bind 198.18.0.100:6443", "bind :6443", "content")
    assert stack_violations("lb-stacked-ports", run) == []  # lb1 is no control-plane node


# -- kubeadm and kubelet (inputs as the kubeadm component will drop them) -----------------------


def kubeadm_doc(kind: str, *, bind_port: int | None = None, taints: list[dict[str, str]] | None = None,
                patches: str | None = "/etc/kubernetes/patches") -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": kind,
                           "nodeRegistration": {"criSocket": "unix:///run/containerd/containerd.sock"}}
    endpoint = {"advertiseAddress": "198.18.5.21", **({"bindPort": bind_port} if bind_port else {})}
    if kind == "InitConfiguration":
        doc["localAPIEndpoint"] = endpoint
    else:
        doc["controlPlane"] = {"localAPIEndpoint": endpoint}
        doc["discovery"] = {"bootstrapToken": {"apiServerEndpoint": "198.18.4.100:6443"}}
    if taints is not None:
        doc["nodeRegistration"]["taints"] = taints
    if patches:
        doc["patches"] = {"directory": patches}
    return doc


def guaranteed_patch(target: str, cpu: str = "1", memory: str = "1Gi", limit_cpu: str | None = None) -> str:
    resources = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": limit_cpu or cpu, "memory": memory}}
    return yaml.safe_dump({"spec": {"containers": [{"name": target, "resources": resources}]}})


KUBELET = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
           "cpuManagerPolicy": "static", "reservedSystemCPUs": "0-1",
           "cpuManagerPolicyOptions": {"full-pcpus-only": "true", "strict-cpu-reservation": "true"}}


def add_drop(run: MockRun, node: str, suffix: str, path: str, content: str) -> None:
    """A FileDrop under `node`, shaped like components/remote.FileDrop's inputs."""
    parent = rec(run, node)
    urn = parent.urn.rsplit("::", 1)[0] + f"$hakube:index:FileDrop::{node}-{suffix}"
    run.records.append(Record(urn=urn, type="hakube:index:FileDrop", name=f"{node}-{suffix}", custom=False,
                              parent=parent.urn, dependencies=[], provider=None,
                              inputs={"host": node, "path": path, "content": content, "mode": "0644"}))


def placed(run: MockRun, node: str, path: str) -> dict[str, Any]:
    """The recorded inputs that hold file `path` on `node`: a FileDrop's, or its FileSet's entry (a
    dict with "content" either way, edited in place by the tests)."""
    for r in run.records:
        if r.type == rules.FILE_DROP and r.inputs.get("host") == node and r.inputs.get("path") == path:
            return r.inputs
        if r.type == rules.FILE_SET and r.inputs.get("host") == node:
            found = [entry for entry in r.inputs["files"] if entry["path"] == path]
            if found:
                return found[0]
    raise KeyError(f"no {path} on {node}")


def unplace(run: MockRun, node: str, path: str) -> None:
    """As if the program placed no `path` on `node`."""
    holder = placed(run, node, path)
    for r in run.records:
        if r.type == rules.FILE_SET and holder in r.inputs["files"]:
            r.inputs["files"].remove(holder)
    run.records = [r for r in run.records if r.inputs is not holder]


def kubeadm_config_path(run: MockRun, node: str) -> str:
    init = any(r.name == "kubeadm-init" and r.parent and r.parent.endswith(f"::{node}") for r in run.records)
    return kubeadm.INIT_CONFIG_PATH if init else kubeadm.JOIN_CONFIG_PATH


def patch_path(target: str) -> str:
    return f"/etc/kubernetes/patches/{target}+strategic.yaml"


def set_entry(node: str, path: str) -> str:
    """How a rule names one file of a node's kubeadm FileSet (rules.set_files)."""
    return f"{node}-kubeadm-files[{path}]"


def with_kubeadm(stack: str, edit: Callable[[str, dict[str, Any]], None] = lambda node, doc: None,
                 patch: Callable[[str, str], str] | None = None) -> MockRun:
    """The stack's run with each control-plane node's real kubeadm config (Init/JoinConfiguration
    document) passed through `edit`, and its static-pod patches replaced by `patch` when given."""
    run = run_of(stack)
    for node in [n["name"] for n in cluster_copy(stack)["controlPlane"]["nodes"]]:
        config = placed(run, node, kubeadm_config_path(run, node))
        docs = list(yaml.safe_load_all(config["content"]))
        for doc in docs:
            if doc.get("kind") in ("InitConfiguration", "JoinConfiguration"):
                edit(node, doc)
        config["content"] = yaml.safe_dump_all(docs)
        for target in rules.STATIC_PODS if patch else ():
            placed(run, node, patch_path(target))["content"] = patch(node, target)
    return run


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


def graph_has(stack: str, predicate: Callable[[Record], bool], what: str) -> MockRun:
    run = run_of(stack)
    if not any(predicate(r) for r in run.records):
        pytest.skip(f"pending: the program creates no {what} yet (components/kubeadm.py, components/addons.py)")
    return run


def test_program_kubeadm_configs_pass_and_fail_when_untainted() -> None:
    run = graph_has("dev", lambda r: str(r.inputs.get("path", "")).startswith(rules.KUBEADM_DIR),
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


@pytest.mark.parametrize(("suffix", "prop"), [("-credentials", "stdout"), ("-join", "stdin"), ("kubeconfig", "stdout")])
def test_program_credential_commands_are_secret(suffix: str, prop: str) -> None:
    run = graph_has("dev", lambda r: r.type == rules.COMMAND and r.name.endswith(suffix), f"*{suffix} Command")
    assert resource_violations("secrets", run) == []
    record = next(r for r in run.records if r.type == rules.COMMAND and r.name.endswith(suffix))
    record.additional_secret_outputs = [p for p in record.additional_secret_outputs if p != prop]
    assert any(f"{record.name}: {prop}" in m for _, m in resource_violations("secrets", run))


# -- workloads ----------------------------------------------------------------------------------

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
    run = graph_has("dev", lambda r: r.type in rules.WORKLOADS, "Kubernetes workload")
    assert resource_violations("workload-isolation", run) == []
    workload = next(r for r in run.records if r.type in rules.WORKLOADS)
    spec = workload.inputs["spec"]["template"]["spec"] if "template" in workload.inputs["spec"] else \
        workload.inputs["spec"]
    spec["tolerations"] = CONTROL_PLANE_SPECS["toleration"]["tolerations"]
    assert resource_violations("workload-isolation", run)


# -- secrets ------------------------------------------------------------------------------------


def test_ssh_connection_must_be_secret() -> None:
    run = run_of("dev")
    record = rec(run, "w1-prereqs")
    assert rules.is_secret(record.inputs["connection"]) and "connection" in record.additional_secret_outputs
    # As under the engine, the policy sees plain text: only additionalSecretOutputs says "secret".
    record.additional_secret_outputs = []
    assert resource_violations("secrets", run) == [("w1-prereqs", "w1-prereqs: connection (SSH private key) is "
                                                                  "not secret")]


def test_credentials_never_ride_on_the_command_line() -> None:
    run = run_of("edge")
    record = rec(run, "edge1-prereqs")
    record.inputs["create"] = "sudo -n env JOIN_TOKEN=abcdef.0123456789abcdef " + record.inputs["create"]
    assert [m for _, m in resource_violations("secrets", run)] == [
        "edge1-prereqs: create passes JOIN_TOKEN on the command line (argv is visible to every local user)",
        "edge1-prereqs: create carries a bootstrap token on the command line"]
    record.inputs["create"] = record.inputs["create"].replace("JOIN_TOKEN=abcdef.0123456789abcdef",
                                                              'JOIN_TOKEN="$(cat)" TOKEN_TTL=2h')
    assert resource_violations("secrets", run) == []
    record.inputs["create"] += " --token abcdef.0123456789abcdef"
    assert [m for _, m in resource_violations("secrets", run)] == [
        "edge1-prereqs: create carries a bootstrap token on the command line"]


def command_props() -> dict[str, Any]:
    """A real Command's inputs (w1-prereqs), its output kept out of the update log."""
    props = copy.deepcopy(rec(run_of("dev"), "w1-prereqs").inputs)
    props["logging"] = "stderr"
    return props


@pytest.mark.parametrize(("name", "prop"), [("cp1-credentials", "stdout"), ("kubeconfig", "stdout"),
                                            ("cp2-join", "stdin")])
def test_credential_commands_mark_their_secret_output(name: str, prop: str) -> None:
    props = command_props()
    if prop == "stdin":
        props["stdin"] = {**SECRET, "value": "TOKEN=abcdef.0123456789abcdef\n"}
    assert check_resource("secrets", rules.COMMAND, props, name=name, secret_outputs=("connection", prop)) == []
    found = check_resource("secrets", rules.COMMAND, {**props, prop: rules.reveal(props.get(prop))}, name=name,
                           secret_outputs=("connection",))
    assert found and all(f": {prop}" in m for m in found)


def test_credential_stdout_must_not_be_logged() -> None:
    props = {**command_props(), "logging": "stdoutAndStderr"}
    found = check_resource("secrets", rules.COMMAND, props, name="cp1-credentials",
                           secret_outputs=("connection", "stdout"))
    assert len(found) == 1 and "prints the stdout secret" in found[0]


def test_kubeadm_config_files_carry_no_plain_credentials() -> None:
    doc = kubeadm_doc("JoinConfiguration")
    props = {"host": "cp2", "path": "/etc/kubernetes/kubeadm/join.yaml", "content": yaml.safe_dump(doc)}
    assert check_resource("secrets", rules.FILE_DROP, props) == []
    doc["discovery"]["bootstrapToken"]["token"] = "abcdef.0123456789abcdef"
    doc["controlPlane"]["certificateKey"] = "0" * 64
    found = check_resource("secrets", rules.FILE_DROP, {**props, "content": yaml.safe_dump(doc)})
    assert len(found) == 2 and all("in plain text" in m for m in found)


def test_kubernetes_provider_kubeconfig_must_be_secret() -> None:
    kubeconfig = "apiVersion: v1\nkind: Config\n"
    assert check_resource("secrets", rules.K8S_PROVIDER, {"kubeconfig": {**SECRET, "value": kubeconfig}}) == []
    assert check_resource("secrets", rules.K8S_PROVIDER, {"kubeconfig": kubeconfig}, secret_outputs=("kubeconfig",)) \
        == []
    assert check_resource("secrets", rules.K8S_PROVIDER, {"kubeconfig": kubeconfig}) == ["x: kubeconfig is not secret"]


# -- the pack as the CLI runs it, over gRPC ------------------------------------------------------


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    """policies/__main__.py started the way the CLI starts a Python pack; yields a gRPC stub."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
                            cwd=REPO / "policies", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip() if proc.stdout else ""
        assert port.isdigit(), f"pack did not start: {port!r} {proc.stderr.read() if proc.stderr else ''}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _struct(value: dict[str, Any]) -> Any:
    from google.protobuf import json_format, struct_pb2

    return json_format.ParseDict(json.loads(json.dumps(value)), struct_pb2.Struct())


def _analyzer_resource(proto: Any, run: MockRun, record: Record, secret_outputs: list[str] | None = None) -> Any:
    """An AnalyzerResource as the engine marshals it (secrets in their wire form, KeepSecrets)."""
    provider = next((r for r in run.records if r.name == record.provider), None) if record.provider else None
    return proto.AnalyzerResource(
        urn=record.urn, type=record.type, name=record.name, properties=_struct(record.inputs),
        options=proto.AnalyzerResourceOptions(
            additionalSecretOutputs=record.additional_secret_outputs if secret_outputs is None else secret_outputs),
        provider=proto.AnalyzerProviderResource(type=provider.type, urn=provider.urn, name=provider.name,
                                                properties=_struct(provider.inputs)) if provider else None,
        parent=record.parent or "", dependencies=record.dependencies,
        propertyDependencies={k: proto.AnalyzerPropertyDependencies(urns=v)
                              for k, v in record.property_dependencies.items()},
    )


def test_the_cli_pack_lists_every_policy(analyzer: Any) -> None:
    from google.protobuf import empty_pb2

    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == pack.PACK_NAME and info.supportsConfig
    levels = {0: "advisory", 1: "mandatory"}
    assert {p.name: levels[p.enforcementLevel] for p in info.policies} == LEVELS


def test_the_cli_pack_refuses_two_vms_on_one_hypervisor(analyzer: Any, moved: MockRun) -> None:
    from pulumi.runtime.proto import analyzer_pb2 as proto

    started = time.monotonic()
    response = analyzer.AnalyzeStack(proto.AnalyzeStackRequest(
        resources=[_analyzer_resource(proto, moved, r) for r in moved.records]))
    found = [(d.policyName, d.enforcementLevel) for d in response.diagnostics]
    assert found == [("cp-spread", proto.MANDATORY)], [d.message for d in response.diagnostics]
    assert time.monotonic() - started < 10


def test_the_engine_strips_secrets_before_a_python_policy_sees_them(analyzer: Any) -> None:
    """Why the secret rule also reads additionalSecretOutputs: a wrapped secret reaches a Python
    policy as plain text, indistinguishable from a value that never was secret."""
    from pulumi.runtime.proto import analyzer_pb2 as proto

    run = run_of("dev")
    record = rec(run, "w1-prereqs")
    assert rules.is_secret(record.inputs["connection"])

    def analyze(secret_outputs: list[str]) -> list[str]:
        r = _analyzer_resource(proto, run, record, secret_outputs)
        response = analyzer.Analyze(proto.AnalyzeRequest(urn=r.urn, type=r.type, name=r.name,
                                                          properties=r.properties, options=r.options))
        return [d.message for d in response.diagnostics if d.policyName == "secrets"]

    assert analyze(["connection"]) == []
    assert any("connection (SSH private key) is not secret" in m for m in analyze([]))


# -- the secrets rule's fast paths are its regexes, only faster -----------------------------------

_SCRIPTISH = st.text(alphabet="abcz019._=$'\" \nTOKENCRTIFICA_KYPSWD-", max_size=80)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_SCRIPTISH, st.sampled_from(["JOIN_TOKEN=", "abcdef.0123456789abcdef", "CERT_KEY='",
                                                       "PASSWORD=$", " x9.", "PRIVATE_KEY=k"])), max_size=8))
def test_secret_scans_find_what_the_plain_regexes_find(parts: list[str]) -> None:
    text = "".join(parts)
    assert rules.has_bootstrap_token(text) == bool(rules._TOKEN.search(text))
    assert rules.secret_assignments(text) == rules._SECRET_ASSIGNMENT.findall(text)
