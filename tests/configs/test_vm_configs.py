"""Control-plane VM files checked by the real validators, and hypervisor-prepare.sh run for real.

Every control-plane VM of the dev and prod stacks: `cloud-init schema` accepts its user-data;
its network-config goes through cloud-init's own v2 parser and networkd renderer (`cloud-init
devel net-convert`: cloud-init 22.4's `schema` command has no network-config mode); the domain
XML the provider would emit, after our XSLT (lxml, and xsltproc as the provider runs it), passes
`virt-xml-validate`, and says what "guaranteed resources" means.
"""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import pytest
import yaml
from lxml import etree

from configs import vm
from dryrun import libvirt_domain
from dryrun.mockrun import REPO
from lab.hostsim import ScratchHost
from tests.mockgraph import cluster_copy
from topology import Cluster, ControlPlaneNode, load_cluster, load_stack_file
from topology.cpuset import parse_cpuset

STACKS = {name: load_stack_file(REPO / f"Pulumi.{name}.yaml") for name in ("dev", "prod")}
VMS = [(stack, node) for stack, cluster in STACKS.items() for node in cluster.control_plane.nodes if node.is_vm]
VM_IDS = [f"{stack}-{node.name}" for stack, node in VMS]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _user_data(cluster: Cluster, node: ControlPlaneNode) -> str:
    return vm.user_data(cluster, node, cluster.ssh.authorized_key or "")


def test_the_stacks_have_vms_to_check() -> None:
    assert {stack for stack, _ in VMS} == {"dev", "prod"} and len(VMS) == 6


# ---------------------------------------------------------------------------------------------
# cloud-init


@pytest.mark.tool("cloud-init")
@pytest.mark.parametrize(("stack", "node"), VMS, ids=VM_IDS)
def test_cloud_init_schema_accepts_user_data(stack: str, node: ControlPlaneNode, tmp_path: Path) -> None:
    path = tmp_path / "user-data"
    path.write_text(_user_data(STACKS[stack], node))
    result = _run("cloud-init", "schema", "--config-file", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


@pytest.mark.tool("cloud-init")
def test_an_ubuntu_mirror_is_cloud_init_s_apt_primary_and_security_archive(tmp_path: Path) -> None:
    data = cluster_copy("dev")
    data["packages"] = {"ubuntuMirror": "http://apt.site.example/ubuntu"}
    cluster = load_cluster(data)
    text = _user_data(cluster, cluster.control_plane.nodes[0])
    archive = [{"arches": ["default"], "uri": "http://apt.site.example/ubuntu"}]
    assert yaml.safe_load(text)["apt"] == {"primary": archive, "security": archive}
    path = tmp_path / "user-data"
    path.write_text(text)
    result = _run("cloud-init", "schema", "--config-file", str(path))
    assert result.returncode == 0 and "Valid cloud-config" in result.stdout, result.stdout + result.stderr
    assert "apt" not in yaml.safe_load(_user_data(STACKS["dev"], STACKS["dev"].control_plane.nodes[0]))


@pytest.mark.tool("cloud-init")
def test_cloud_init_schema_rejects_a_broken_user_data(tmp_path: Path) -> None:
    """The validator really runs: an etcd disk with a partition table type it does not know."""
    cluster = STACKS["dev"]
    text = _user_data(cluster, cluster.control_plane.nodes[0]).replace("table_type: gpt", "table_type: zfs")
    path = tmp_path / "user-data"
    path.write_text(text)
    result = _run("cloud-init", "schema", "--config-file", str(path))
    assert result.returncode != 0
    assert "table_type" in result.stdout + result.stderr


@pytest.mark.parametrize(("stack", "node"), VMS, ids=VM_IDS)
def test_user_data_content(stack: str, node: ControlPlaneNode) -> None:
    cluster = STACKS[stack]
    text = _user_data(cluster, node)
    assert text.startswith("#cloud-config\n")
    data = yaml.safe_load(text)
    assert data["hostname"] == node.name
    (user,) = data["users"]
    assert user["name"] == cluster.ssh.user
    assert user["ssh_authorized_keys"] == [cluster.ssh.authorized_key]
    assert user["sudo"] == "ALL=(ALL) NOPASSWD:ALL" and user["lock_passwd"] is True
    assert data["package_update"] is False and data["package_upgrade"] is False
    assert data["disk_setup"] == {"/dev/vdb": {"table_type": "gpt", "layout": True, "overwrite": False}}
    (fs,) = data["fs_setup"]
    assert fs["device"] == "/dev/vdb" and fs["filesystem"] == "ext4" and fs["overwrite"] is False
    assert fs["partition"] != "none", "partition: none reformats on every run"
    (mount,) = data["mounts"]
    assert mount[:3] == [f"LABEL={fs['label']}", "/var/lib/etcd", "ext4"]
    assert "nofail" not in mount[3]


@pytest.mark.parametrize("key", ["", "  ", "ssh-ed25519 AAAA a\nssh-ed25519 BBBB b"])
def test_user_data_refuses_a_missing_or_multi_line_key(key: str) -> None:
    cluster = STACKS["dev"]
    with pytest.raises(ValueError, match="public key"):
        vm.user_data(cluster, cluster.control_plane.nodes[0], key)


def test_meta_data() -> None:
    node = STACKS["dev"].control_plane.nodes[1]
    assert yaml.safe_load(vm.meta_data(node)) == {"instance-id": node.name, "local-hostname": node.name}


def _net_convert(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "network-config"
    source.write_text(text)
    return _run("cloud-init", "devel", "net-convert", "--network-data", str(source), "--kind", "yaml",
                "--directory", str(tmp_path / "out"), "--distro", "ubuntu", "--output-kind", "networkd")


def _rendered_networkd(tmp_path: Path) -> dict[str, configparser.ConfigParser]:
    units = {}
    for path in sorted((tmp_path / "out/etc/systemd/network").glob("*.network")):
        parser = configparser.ConfigParser(strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(path.read_text())
        units[parser["Match"]["Name"]] = parser
    return units


@pytest.mark.tool("cloud-init")
@pytest.mark.parametrize(("stack", "node"), VMS, ids=VM_IDS)
def test_cloud_init_parses_and_renders_network_config(stack: str, node: ControlPlaneNode, tmp_path: Path) -> None:
    """cloud-init's v2 parser (network_state) and networkd renderer: both NICs static, by MAC."""
    cluster = STACKS[stack]
    result = _net_convert(vm.network_config(cluster, node), tmp_path)
    assert result.returncode == 0, result.stderr
    units = _rendered_networkd(tmp_path)
    nodes_nic, cp_nic = vm.vm_nics(cluster, node)
    assert set(units) == {"eth0", "eth1"}
    eth0, eth1 = units["eth0"], units["eth1"]
    assert eth0["Match"]["MACAddress"] == nodes_nic.mac
    assert eth0["Address"]["Address"] == f"{node.address}/{cluster.network.node_cidr.prefixlen}"
    assert eth0["Route"]["Gateway"] == str(next(cluster.network.node_cidr.hosts()))
    assert eth0["Network"]["DHCP"] == "no"
    assert eth1["Match"]["MACAddress"] == cp_nic.mac
    assert eth1["Address"]["Address"] == f"{node.control_plane_address}/{cluster.network.control_plane_cidr.prefixlen}"
    assert not eth1.has_section("Route"), "the control-plane NIC carries no default route"


@pytest.mark.tool("cloud-init")
def test_dns_servers_reach_the_nodes_nic_only(tmp_path: Path) -> None:
    data = STACKS["dev"].model_dump(by_alias=True, mode="json")
    data["network"]["dnsServers"] = ["198.18.0.53", "198.18.0.54"]
    cluster = Cluster.model_validate(data)
    assert _net_convert(vm.network_config(cluster, cluster.control_plane.nodes[0]), tmp_path).returncode == 0
    units = _rendered_networkd(tmp_path)
    assert units["eth0"]["Network"]["DNS"].split() == ["198.18.0.53", "198.18.0.54"]
    assert "DNS" not in units["eth1"]["Network"]
    assert "nameservers" not in vm.network_config(STACKS["dev"], STACKS["dev"].control_plane.nodes[0])


@pytest.mark.tool("cloud-init")
def test_cloud_init_network_parser_rejects_a_bad_address(tmp_path: Path) -> None:
    """The parser really runs: an impossible address is an error, not a silently dropped line."""
    cluster = STACKS["dev"]
    text = vm.network_config(cluster, cluster.control_plane.nodes[0]).replace("198.18.1.21/24", "198.18.1.321/24")
    result = _net_convert(text, tmp_path)
    assert result.returncode != 0
    assert "198.18.1.321" in result.stderr


# ---------------------------------------------------------------------------------------------
# libvirt domain XML


def _tree(text: str) -> etree._Element:
    return etree.fromstring(text.encode())


def _validate(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "domain.xml"
    path.write_text(text)
    return _run("virt-xml-validate", str(path), "domain")


@pytest.mark.tool("virt-xml-validate", "xmllint")
@pytest.mark.parametrize(("stack", "node"), VMS, ids=VM_IDS)
def test_transformed_domain_passes_virt_xml_validate(stack: str, node: ControlPlaneNode, tmp_path: Path) -> None:
    result = _validate(libvirt_domain.transformed_domain_xml(STACKS[stack], node), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_provider_shape_is_what_terraform_provider_libvirt_0_8_1_writes() -> None:
    """A console without `type` (libvirtxml writes one only from a source path) and the host's
    canonical machine name rather than the "pc" alias."""
    cluster = STACKS["dev"]
    provider = _tree(libvirt_domain.provider_domain_xml(cluster, cluster.control_plane.nodes[0]))
    (console,) = provider.findall("devices/console")
    assert "type" not in console.attrib and console.find("source") is None
    assert console.find("target").attrib == {"type": "serial", "port": "0"}
    machine = provider.find("os/type").get("machine")
    assert machine == libvirt_domain.SIMULATED_CANONICAL_MACHINE and machine.startswith("pc-i440fx-")


@pytest.mark.tool("virt-xml-validate", "xmllint")
def test_provider_shape_fails_validation_only_for_its_console_and_ours_validates(tmp_path: Path) -> None:
    cluster = STACKS["dev"]
    node = cluster.control_plane.nodes[0]
    provider = libvirt_domain.provider_domain_xml(cluster, node)
    refused = _validate(provider, tmp_path)
    assert refused.returncode != 0 and "fails to validate" in refused.stderr
    with_type = provider.replace("<console>", f'<console type="{vm.CONSOLE_TYPE}">', 1)
    assert with_type != provider
    assert _validate(with_type, tmp_path).returncode == 0, "the console type is the provider shape's only defect"
    for source in ("bridge", "network"):
        result = _validate(libvirt_domain.transformed_domain_xml(cluster, node, source=source), tmp_path)
        assert result.returncode == 0, result.stderr
    domain = _tree(libvirt_domain.transformed_domain_xml(cluster, node, source="network"))
    interfaces = domain.findall("devices/interface")
    assert [i.find("source").get("network") for i in interfaces] == ["hakube-nodes", "hakube-controlplane"]


@pytest.mark.tool("virt-xml-validate", "xmllint")
def test_virt_xml_validate_rejects_a_bad_cpuset(tmp_path: Path) -> None:
    """The validator really runs: a vcpupin onto a cpuset libvirt cannot parse is refused."""
    cluster = STACKS["dev"]
    text = libvirt_domain.transformed_domain_xml(cluster, cluster.control_plane.nodes[0])
    bad = text.replace('cpuset="3"', 'cpuset="3-x"', 1)
    assert bad != text
    result = _validate(bad, tmp_path)
    assert result.returncode != 0
    assert "fails to validate" in result.stderr


@pytest.mark.tool("xsltproc")
@pytest.mark.parametrize(("stack", "node"), VMS, ids=VM_IDS)
def test_xsltproc_as_the_provider_runs_it_gives_the_same_document(
        stack: str, node: ControlPlaneNode, tmp_path: Path) -> None:
    cluster = STACKS[stack]
    (tmp_path / "domain.xsl").write_text(vm.domain_xslt(cluster, node))
    (tmp_path / "provider.xml").write_text(libvirt_domain.provider_domain_xml(cluster, node))
    # The flags terraform-provider-libvirt 0.8.1 passes (libvirt/utils_xslt.go).
    result = _run("xsltproc", "--nomkdir", "--nonet", "--nowrite",
                  str(tmp_path / "domain.xsl"), str(tmp_path / "provider.xml"))
    assert result.returncode == 0, result.stderr
    expected = etree.tostring(_tree(libvirt_domain.transformed_domain_xml(cluster, node)), method="c14n")
    assert etree.tostring(_tree(result.stdout), method="c14n") == expected


@pytest.mark.parametrize(("stack", "node"), VMS, ids=VM_IDS)
def test_domain_guarantees_its_resources(stack: str, node: ControlPlaneNode) -> None:
    cluster = STACKS[stack]
    hv = cluster.hypervisor(node.hypervisor or "")
    domain = _tree(libvirt_domain.transformed_domain_xml(cluster, node))
    assert domain.findtext("vcpu") == str(node.cpus)
    pins = domain.findall("cputune/vcpupin")
    assert [(int(p.get("vcpu")), p.get("cpuset")) for p in pins] == [
        (i, str(core)) for i, core in enumerate(parse_cpuset(node.pinned_cpus or ""))]
    (emulator,) = domain.findall("cputune/emulatorpin")
    assert parse_cpuset(emulator.get("cpuset")) == parse_cpuset(hv.reserved_cpus)
    assert domain.find("memoryBacking/locked") is not None
    memory_kib = int(domain.findtext("memory")) * {"MiB": 1024, "KiB": 1}[domain.find("memory").get("unit")]
    assert memory_kib == (node.memory_gib or 0) * 1024 * 1024
    (limit,) = domain.findall("memtune/hard_limit")
    assert limit.get("unit") == "KiB" and int(limit.text) >= memory_kib + 1024 * 1024
    balloons = domain.findall("devices/memballoon")
    assert [b.get("model") for b in balloons] == ["none"]
    (cpu,) = domain.findall("cpu")
    assert cpu.get("mode") == "host-passthrough"


@pytest.mark.parametrize(("stack", "node"), VMS, ids=VM_IDS)
def test_domain_nics_are_the_ones_network_config_matches(stack: str, node: ControlPlaneNode) -> None:
    cluster = STACKS[stack]
    hv = cluster.hypervisor(node.hypervisor or "")
    interfaces = _tree(libvirt_domain.transformed_domain_xml(cluster, node)).findall("devices/interface")
    assert [i.find("source").get("bridge") for i in interfaces] == [hv.bridges.nodes, hv.bridges.control_plane]
    ethernets = yaml.safe_load(vm.network_config(cluster, node))["ethernets"]
    matched = [ethernets[name]["match"]["macaddress"] for name in ("eth0", "eth1")]
    assert [i.find("mac").get("address").lower() for i in interfaces] == matched


def _with_libvirt_defaults(text: str) -> str:
    """The provider XML plus what libvirt or a later provider may add: balloon, cpu, cputune."""
    domain = _tree(text)
    etree.SubElement(domain.find("devices"), "memballoon", model="virtio")
    etree.SubElement(domain, "cputune").append(etree.Element("vcpupin", vcpu="0", cpuset="9"))
    etree.SubElement(domain, "memoryBacking").append(etree.Element("hugepages"))
    return etree.tostring(domain).decode()


def test_xslt_replaces_existing_balloon_cpu_and_tuning() -> None:
    cluster = STACKS["prod"]
    node = cluster.control_plane.nodes[2]
    transform = etree.XSLT(_tree(vm.domain_xslt(cluster, node)))
    domain = transform(_tree(_with_libvirt_defaults(libvirt_domain.provider_domain_xml(cluster, node)))).getroot()
    assert [b.get("model") for b in domain.findall("devices/memballoon")] == ["none"]
    assert len(domain.findall("cputune")) == 1 and len(domain.findall("cputune/vcpupin")) == node.cpus
    assert "9" not in [p.get("cpuset") for p in domain.findall("cputune/vcpupin")]
    assert domain.find("memoryBacking/hugepages") is None and domain.find("memoryBacking/locked") is not None
    assert [c.get("mode") for c in domain.findall("cpu")] == ["host-passthrough"]


def test_xslt_types_an_untyped_console_and_keeps_a_typed_one() -> None:
    cluster = STACKS["dev"]
    node = cluster.control_plane.nodes[0]
    (console,) = _tree(libvirt_domain.transformed_domain_xml(cluster, node)).findall("devices/console")
    assert console.get("type") == vm.CONSOLE_TYPE
    assert console.find("target").attrib == {"type": "serial", "port": "0"}
    typed = libvirt_domain.provider_domain_xml(cluster, node).replace("<console>", '<console type="tcp">', 1)
    transform = etree.XSLT(_tree(vm.domain_xslt(cluster, node)))
    assert [c.get("type") for c in transform(_tree(typed)).getroot().findall("devices/console")] == ["tcp"]


def test_volume_disks_bypass_the_host_page_cache_and_the_seed_is_untouched() -> None:
    cluster = STACKS["dev"]
    domain = _tree(libvirt_domain.transformed_domain_xml(cluster, cluster.control_plane.nodes[0]))
    disks = domain.findall("devices/disk")
    assert [(d.get("device"), d.find("target").get("dev")) for d in disks] == [
        ("disk", "vda"), ("disk", vm.ETCD_DEVICE.removeprefix("/dev/")), ("cdrom", "hdd")]
    assert [(d.find("driver").get("cache"), d.find("driver").get("io")) for d in disks] == [
        ("none", "native"), ("none", "native"), (None, None)]


def test_xslt_is_a_pure_function_of_its_own_node() -> None:
    """Same input, same bytes (the provider replaces the domain on any change); other VMs unaffected."""
    cluster = STACKS["dev"]
    before = {n.name: vm.domain_xslt(cluster, n) for n in cluster.control_plane.nodes}
    assert before == {n.name: vm.domain_xslt(cluster, n) for n in cluster.control_plane.nodes}
    data = cluster.model_dump(by_alias=True, mode="json")
    data["controlPlane"]["nodes"][1].update(cpus=2, pinnedCpus="2-3")
    changed = Cluster.model_validate(data)
    after = {n.name: vm.domain_xslt(changed, n) for n in changed.control_plane.nodes}
    assert [name for name in before if before[name] != after[name]] == ["cp2"]


def test_hard_limit_is_memory_plus_qemu_overhead() -> None:
    node = STACKS["prod"].control_plane.nodes[0]
    assert vm.hard_limit_kib(node) == (node.memory_gib or 0) * 1024 * 1024 + vm.QEMU_OVERHEAD_KIB
    assert vm.QEMU_OVERHEAD_KIB == 1024 * 1024


def test_macs_are_stable_local_unicast_and_distinct_within_a_cluster() -> None:
    for cluster in STACKS.values():
        vms = [n for n in cluster.control_plane.nodes if n.is_vm]
        macs = [vm.mac_address(node, role) for node in vms for role in vm.NIC_ROLES]
        assert macs == [vm.mac_address(node, role) for node in vms for role in vm.NIC_ROLES]
        assert len(set(macs)) == 2 * len(vms)
        for mac in macs:
            octets = [int(part, 16) for part in mac.split(":")]
            assert mac.startswith("52:54:00:") and len(octets) == 6 and mac == mac.lower()
            assert octets[0] & 0b10 and not octets[0] & 0b01  # locally administered, unicast


def test_bare_metal_control_plane_nodes_are_not_rendered_as_vms() -> None:
    edge = load_stack_file(REPO / "Pulumi.edge.yaml")
    node = edge.control_plane.nodes[0]
    assert not node.is_vm
    for render in (vm.domain_xslt, vm.network_config, libvirt_domain.provider_domain_xml):
        with pytest.raises(vm.NotAVm):
            render(edge, node)


# ---------------------------------------------------------------------------------------------
# hypervisor-prepare.sh against a scratch root

PREPARE = "hypervisor-prepare.sh"
MUTATING = {"apt-get", "usermod"}
MUTATING_SYSTEMCTL = {"set-property", "daemon-reload", "enable", "start", "restart"}
SYSTEMCTL = r"""
state=STATE
case "$1" in
  show) cat "$state/cpus-${@: -1}" 2>/dev/null || true ;;
  # Stored as systemd prints a cpuset: ranges separated by spaces.
  set-property) value="${4#AllowedCPUs=}"; printf '%s' "${value//,/ }" > "$state/cpus-$3" ;;
  is-enabled) [[ -f "$state/enabled-${@: -1}" ]] ;;
  is-active) [[ -f "$state/active-${@: -1}" ]] ;;
  enable) touch "$state/enabled-${@: -1}" ;;
  start) touch "$state/active-${@: -1}" ;;
esac
"""


def _fake_hypervisor(tmp_path: Path) -> ScratchHost:
    host = ScratchHost(tmp_path / "host")
    state = tmp_path / "state"
    state.mkdir()
    host.shim("dpkg-query", f'[[ -f "{state}/pkg-${{@: -1}}" ]] && printf installed || exit 1')
    host.shim("apt-get", f'[[ "$1" == install ]] || exit 0; for a in "$@"; do [[ "$a" == -* || "$a" == install ]]'
                         f' || touch "{state}/pkg-$a"; done')
    host.shim("systemctl", SYSTEMCTL.replace("STATE", str(state)))
    host.shim("id", f'printf "%s" "$2"; [[ -f "{state}/in-libvirt" ]] && printf " libvirt"; echo')
    host.shim("usermod", f'touch "{state}/in-libvirt"')
    (host.root / "sys/fs/cgroup").mkdir(parents=True)
    (host.root / "sys/fs/cgroup/cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (host.root / "dev").mkdir()
    (host.root / "dev/kvm").touch()
    return host


def _prepare_env(reserved: str = "0-1") -> dict[str, str]:
    cluster = STACKS["dev"]
    env = vm.hypervisor_prepare_env(cluster.hypervisors[0], ssh_user=cluster.ssh.user)
    env["RESERVED_CPUS"] = reserved
    return env


def _mutations(host: ScratchHost) -> list[list[str]]:
    return [c for c in host.calls() if c[0] in MUTATING or (c[0] == "systemctl" and c[1] in MUTATING_SYSTEMCTL)]


def test_prepare_env_comes_from_the_topology() -> None:
    cluster = STACKS["dev"]
    env = vm.hypervisor_prepare_env(cluster.hypervisors[0], ssh_user="ops")
    assert env == {"RESERVED_CPUS": "0-1", "POOL_PATHS": "/var/lib/hakube/cp\n/var/lib/libvirt/images",
                   "LIBVIRT_USER": "ops"}


@pytest.mark.tool("bash")
def test_first_run_prepares_the_hypervisor(tmp_path: Path) -> None:
    host = _fake_hypervisor(tmp_path)
    result = host.run(PREPARE, env=_prepare_env())
    assert result.returncode == 0, result.stderr
    (install,) = [c for c in host.calls("apt-get") if c[1] == "install"]
    assert {"qemu-system-x86", "libvirt-daemon-system"} <= set(install)
    files = host.tree()
    for unit, section in (("system.slice", "Slice"), ("user.slice", "Slice"), ("init.scope", "Scope")):
        dropin = files[f"etc/systemd/system/{unit}.d/50-hakube-allowed-cpus.conf"]
        assert f"[{section}]\nAllowedCPUs=0-1" in dropin
        assert ["systemctl", "set-property", "--runtime", unit, "AllowedCPUs=0-1"] in host.calls()
    assert ["systemctl", "daemon-reload"] in host.calls()
    for path in ("var/lib/hakube/cp", "var/lib/libvirt/images"):
        assert (host.root / path).is_dir()
        assert (host.root / path).stat().st_mode & 0o777 == 0o711
    assert ["usermod", "-a", "-G", "libvirt", "ops"] in host.calls()
    assert ["systemctl", "enable", "libvirtd"] in host.calls() and ["systemctl", "start", "libvirtd"] in host.calls()


@pytest.mark.tool("bash")
def test_machine_slice_is_never_confined(tmp_path: Path) -> None:
    """VMs run in machine.slice: confining it to the reserved cores would break every vcpupin."""
    host = _fake_hypervisor(tmp_path)
    assert host.run(PREPARE, env=_prepare_env()).returncode == 0
    assert not [path for path in host.tree() if "machine" in path]
    assert not [c for c in host.calls("systemctl") if any("machine" in arg for arg in c)]


@pytest.mark.tool("bash")
def test_second_run_changes_nothing(tmp_path: Path) -> None:
    host = _fake_hypervisor(tmp_path)
    assert host.run(PREPARE, env=_prepare_env("0-1,16")).returncode == 0
    before = host.tree()
    host.clear_calls()
    second = host.run(PREPARE, env=_prepare_env("0-1,16"))
    assert second.returncode == 0, second.stderr
    assert host.tree() == before
    assert _mutations(host) == [], "systemd's '0-1 16' must read as the same cpuset as '0-1,16'"
    assert "wrote" not in second.stdout and "installed" not in second.stdout


@pytest.mark.tool("bash")
def test_runtime_drift_is_repaired_without_rewriting_files(tmp_path: Path) -> None:
    host = _fake_hypervisor(tmp_path)
    assert host.run(PREPARE, env=_prepare_env()).returncode == 0
    (tmp_path / "state/cpus-user.slice").write_text("")  # e.g. someone ran set-property by hand
    before = host.tree()
    host.clear_calls()
    assert host.run(PREPARE, env=_prepare_env()).returncode == 0
    assert host.tree() == before
    assert _mutations(host) == [["systemctl", "set-property", "--runtime", "user.slice", "AllowedCPUs=0-1"]]


@pytest.mark.tool("bash")
def test_new_reserved_cores_rewrite_the_dropins(tmp_path: Path) -> None:
    host = _fake_hypervisor(tmp_path)
    assert host.run(PREPARE, env=_prepare_env()).returncode == 0
    host.clear_calls()
    assert host.run(PREPARE, env=_prepare_env("0-3")).returncode == 0
    assert "AllowedCPUs=0-3" in host.tree()["etc/systemd/system/system.slice.d/50-hakube-allowed-cpus.conf"]
    assert ["systemctl", "daemon-reload"] in host.calls()
    assert not host.calls("apt-get")


@pytest.mark.tool("bash")
@pytest.mark.parametrize(("change", "message"), [
    ("no-kvm", "no /dev/kvm"),
    ("cgroup-v1", "no cgroup v2 cpuset controller"),
    ("bad-cpuset", "is not a cpuset"),
    ("relative-pool", "is not absolute"),
])
def test_refuses_a_host_it_cannot_prepare(tmp_path: Path, change: str, message: str) -> None:
    host = _fake_hypervisor(tmp_path)
    env = _prepare_env("0-1; reboot" if change == "bad-cpuset" else "0-1")
    if change == "no-kvm":
        (host.root / "dev/kvm").unlink()
    if change == "cgroup-v1":
        (host.root / "sys/fs/cgroup/cgroup.controllers").unlink()
    if change == "relative-pool":
        env["POOL_PATHS"] = "var/lib/pool"
    result = host.run(PREPARE, env=env)
    assert result.returncode == 1
    assert message in result.stderr


@pytest.mark.tool("bash")
def test_reserved_cpus_is_required(tmp_path: Path) -> None:
    result = _fake_hypervisor(tmp_path).run(PREPARE, env={"POOL_PATHS": "/srv/pool"})
    assert result.returncode != 0 and "RESERVED_CPUS is required" in result.stderr
