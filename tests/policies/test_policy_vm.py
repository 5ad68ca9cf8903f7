"""The control-plane VM rules (policies/vm.py) on real inputs with one thing broken."""

from __future__ import annotations

import copy

import pytest

from dryrun.mockrun import MockRun
from tests.policy_helpers import (
    drop,
    messages,
    moved_run,
    rec,
    replace_in,
    run_of,
    stack_violations,
)


@pytest.fixture(scope="module")
def moved() -> MockRun:
    return moved_run()


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
