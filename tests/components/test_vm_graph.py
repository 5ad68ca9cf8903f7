"""Hypervisors and control-plane VMs in the mocked resource graph (issue 4's wiring)."""

from __future__ import annotations

import pytest

from tests.mockgraph import Graph, cluster_copy, graph, stack_graph

VM_TYPES = ("libvirt:index/volume:Volume", "libvirt:index/cloudInitDisk:CloudInitDisk", "libvirt:index/domain:Domain")


def _vm_resources(g: Graph, node: str) -> dict[str, dict]:
    return {row["name"]: row for row in g.children(f"{node}-vm")}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_vm_is_parented_to_its_hypervisor_and_uses_its_provider(stack: str) -> None:
    g = stack_graph(stack)
    cluster = cluster_copy(stack)
    for node in cluster["controlPlane"]["nodes"]:
        hv = node["hypervisor"]
        vm = g.by_name[f"{node['name']}-vm"]
        assert vm["type"] == "hakube:index:ControlPlaneVm" and vm["parent"] == hv
        assert g.by_name[hv]["type"] == "hakube:index:Hypervisor"
        children = _vm_resources(g, node["name"])
        assert {f"{node['name']}-{part}" for part in ("os", "etcd", "cloudinit", "domain")} <= set(children)
        for row in children.values():
            if row["type"] in VM_TYPES:
                assert row["provider"] == f"{hv}-libvirt", row["name"]


def test_domain_depends_on_pool_network_and_volumes() -> None:
    g = stack_graph("dev")
    domain = g.by_name["cp2-domain"]
    assert {"cp2-os", "cp2-etcd", "cp2-cloudinit", "hv2-net-nodes", "hv2-net-controlplane"} <= set(
        domain["dependencies"])
    for volume in ("cp2-os", "cp2-etcd", "cp2-cloudinit"):
        assert "hv2-pool-cp-nvme" in g.by_name[volume]["dependencies"]
    assert "hv2-base-image" in g.by_name["cp2-os"]["dependencies"]
    assert "hv2-prepare" in g.by_name["hv2-pool-cp-nvme"]["dependencies"]


def test_os_and_etcd_volumes_live_in_the_control_plane_pool() -> None:
    g = stack_graph("dev")
    for node in ("cp1", "cp2", "cp3"):
        for part in ("os", "etcd"):
            assert g.by_name[f"{node}-{part}"]["inputs"]["pool"] == "cp-nvme"
    assert g.by_name["cp1-etcd"]["inputs"]["size"] == 20 * 1024**3


def test_domain_has_two_nics_pins_and_guaranteed_memory() -> None:
    g = stack_graph("dev")
    domain = g.by_name["cp1-domain"]["inputs"]
    assert domain["vcpu"] == 4 and domain["memory"] == 8 * 1024
    assert domain["cpu"] == {"mode": "host-passthrough"}
    assert len(domain["networkInterfaces"]) == 2
    xslt = domain["xml"]["xslt"]
    assert xslt.count("vcpupin") >= 4 and "memballoon" in xslt and "locked" in xslt


def test_prerequisites_in_a_vm_wait_for_the_domain() -> None:
    g = stack_graph("dev")
    prereqs = g.by_name["cp1-prereqs"]
    assert prereqs["parent"] == "cp1" and g.by_name["cp1"]["parent"] == "cp1-vm"
    assert "cp1-domain" in prereqs["dependencies"]


def _inputs_by_name(g: Graph) -> dict[str, dict]:
    return {row["name"]: row["inputs"] for row in g.table}


def test_changing_one_vms_cpus_changes_only_that_vm() -> None:
    base = _inputs_by_name(stack_graph("prod"))
    changed = cluster_copy("prod")
    changed["controlPlane"]["nodes"][1].update(cpus=4, pinnedCpus="2-5")
    after = _inputs_by_name(graph(changed, "prod"))
    differing = {name for name in base if base[name] != after.get(name)}
    assert differing and all(name.startswith("cp2") for name in differing), differing


def test_adding_a_worker_changes_no_vm_resource() -> None:
    base = stack_graph("dev")
    changed = cluster_copy("dev")
    changed["workers"].append({"name": "w4", "address": "198.18.0.44", "reservedCpus": "0"})
    after = _inputs_by_name(graph(changed, "dev"))
    for row in base.table:
        if row["type"].startswith("libvirt:") or row["type"].startswith("pulumi:providers:libvirt"):
            assert after[row["name"]] == row["inputs"], row["name"]


def test_edge_registers_no_libvirt_resource() -> None:
    g = stack_graph("edge")
    assert not [row for row in g.table if "libvirt" in row["type"]]


def test_pools_give_their_directory_as_target_path_not_the_deprecated_path() -> None:
    g = stack_graph("dev")
    pools = g.of_type("libvirt:index/pool:Pool")
    assert pools
    paths = {p["name"]: p["path"] for p in cluster_copy("dev")["hypervisors"][0]["pools"]}
    for row in pools:
        assert "path" not in row["inputs"], row["name"]
    hv1 = {row["name"]: row["inputs"]["target"] for row in pools if row["parent"] == "hv1"}
    assert hv1 == {f"hv1-pool-{name}": {"path": path} for name, path in paths.items()}


def test_a_new_base_image_leaves_running_vms_os_disks_alone() -> None:
    """Only the hypervisors' fetch step changes; the OS volumes ignore their new base volume name."""
    base = stack_graph("dev")
    changed = cluster_copy("dev")
    changed["vmImage"] = {"url": "https://mirror.invalid/images/ubuntu-26.04-server-cloudimg-amd64.img"}
    after = graph(changed, "dev")
    for node in ("cp1", "cp2", "cp3"):
        os_disk = after.record(f"{node}-os")
        assert os_disk.ignore_changes == ["baseVolumeName"]
        assert after.by_name[f"{node}-os"]["inputs"]["baseVolumeName"] != base.by_name[f"{node}-os"]["inputs"][
            "baseVolumeName"]
    before, now = _inputs_by_name(base), _inputs_by_name(after)
    differing = {name for name in before if before[name] != now.get(name)}
    assert {f"hv{i}-base-image" for i in (1, 2, 3)} <= differing
    assert differing <= {f"hv{i}-base-image" for i in (1, 2, 3)} | {f"cp{i}-os" for i in (1, 2, 3)} | {"dev"}, differing
