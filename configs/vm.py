"""Control-plane VMs rendered from the topology: cloud-init seed files and the libvirt domain XSLT.

pulumi-libvirt 0.5.4 (terraform-provider-libvirt 0.8.1) builds a domain XML from its own schema,
then pipes it through `xsltproc` with our stylesheet (`xml.xslt`) before `virDomainDefineXML`.
The stylesheet adds what that schema cannot say: vCPU and emulator pinning, locked memory with
its hard limit, no balloon, host-passthrough CPU, and the console `type` the provider leaves out.
dryrun/libvirt_domain.py reproduces the shape the provider emits, so the dry run and tests can apply
the stylesheet and validate the result with `virt-xml-validate`.

Everything here is a pure function of the topology; the components only wire it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal

import yaml

from topology.cpuset import format_cpuset, parse_cpuset
from topology.model import Cluster, ControlPlaneNode, Hypervisor, Pool

NicRole = Literal["nodes", "controlPlane"]
# Order of the domain's NICs: the provider's network_interfaces[0] and [1].
NIC_ROLES: tuple[NicRole, ...] = ("nodes", "controlPlane")
# Guest names given by network-config `set-name`, so keepalived's `interface: eth0` default and
# humans find the same NIC on every VM whatever PCI slot it landed in.
GUEST_IFNAMES: dict[NicRole, str] = {"nodes": "eth0", "controlPlane": "eth1"}
# libvirt networks (bridge mode, bound to the host's existing bridges) for `source="network"`.
LIBVIRT_NETWORKS: dict[NicRole, str] = {"nodes": "hakube-nodes", "controlPlane": "hakube-controlplane"}
# QEMU's OUI: 0x52 has the locally-administered bit set and the multicast bit clear.
MAC_PREFIX = "52:54:00"

# The etcd disk is the domain's second virtio disk (the provider names disks vda, vdb, ... in
# `disks` order, and libvirt gives virtio disks PCI slots in that order). The cloud-init seed is an
# IDE cdrom (hdd), so it never takes a vd* name. cloud-init formats it only once (overwrite:false)
# and it is mounted by label, so a renamed device would not mount the wrong disk.
ETCD_DEVICE = "/dev/vdb"
ETCD_LABEL = "etcd"
ETCD_MOUNT = "/var/lib/etcd"
# systemd gives up on a missing etcd disk after this; there is deliberately no `nofail`: booting
# without it would let etcd start on the OS disk with an empty data dir.
ETCD_MOUNT_OPTIONS = "defaults,noatime,x-systemd.device-timeout=90s"

CPU_MODE = "host-passthrough"
# The serial console's character device. The provider writes `<console>` without a `type` (libvirtxml
# emits one only from a source path, DomainConsole.MarshalXML), which libvirt's schema refuses; the
# stylesheet sets it.
CONSOLE_TYPE = "pty"
KIB_PER_GIB = 1024 * 1024
# Locked memory needs a hard limit (libvirt otherwise lifts RLIMIT_MEMLOCK altogether). QEMU itself
# needs memory beyond the guest's RAM (device emulation, page tables, I/O buffers), and a hard limit
# that is too tight gets QEMU OOM-killed. 1 GiB on top is what libvirt itself allows for locked
# guest memory (qemuDomainGetMemLockLimitBytes: guest memory + 1 GiB). Budget it in the host's
# reservedMemoryGiB.
QEMU_OVERHEAD_KIB = 1 * KIB_PER_GIB

XSL_NS = "http://www.w3.org/1999/XSL/Transform"


class NotAVm(ValueError):
    """A control-plane node without a hypervisor (or without its VM fields) reached VM rendering."""


@dataclass(frozen=True)
class VmNic:
    """One NIC of a control-plane VM, as the domain and network-config both need it."""

    role: NicRole
    mac: str
    bridge: str
    network: str
    guest_ifname: str
    address: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address | None


def vm_host(cluster: Cluster, node: ControlPlaneNode) -> Hypervisor:
    if node.hypervisor is None or node.cpus is None or node.pinned_cpus is None or node.memory_gib is None:
        raise NotAVm(f"{node.name} is not a control-plane VM (needs hypervisor, cpus, pinnedCpus, memoryGiB)")
    return cluster.hypervisor(node.hypervisor)


def mac_address(node: ControlPlaneNode, role: NicRole) -> str:
    """A stable MAC for the VM's NIC: 52:54:00 + three bytes of sha256("<node>/<role>").

    The same name gives the same MAC on every run, so network-config can match on it and a
    re-created domain keeps its address in switches' and neighbours' tables.
    """
    digest = hashlib.sha256(f"{node.name}/{role}".encode()).digest()
    return ":".join([MAC_PREFIX, *(f"{byte:02x}" for byte in digest[:3])])


def default_gateway(cluster: Cluster) -> ipaddress.IPv4Address:
    """The nodes network's router: by convention its first host address (198.18.0.1 in 198.18.0.0/24).

    The control-plane network has no gateway: it is one L2 segment between control-plane nodes.
    """
    return cluster.network.default_gateway


def vm_nics(cluster: Cluster, node: ControlPlaneNode) -> tuple[VmNic, VmNic]:
    """The VM's two NICs in domain order: nodes network (with the default route), then control plane."""
    hv = vm_host(cluster, node)
    bridge_cp = hv.bridges.control_plane
    if bridge_cp is None:
        raise NotAVm(f"hypervisor {hv.name} has no controlPlane bridge for {node.name}")
    net = cluster.network
    gateway = default_gateway(cluster)
    if gateway == node.address:
        raise ValueError(f"{node.name}'s address {node.address} is the nodes network's gateway {gateway}")
    nodes = VmNic("nodes", mac_address(node, "nodes"), hv.bridges.nodes, LIBVIRT_NETWORKS["nodes"],
                  GUEST_IFNAMES["nodes"], ipaddress.IPv4Interface(f"{node.address}/{net.node_cidr.prefixlen}"),
                  gateway)
    control = VmNic("controlPlane", mac_address(node, "controlPlane"), bridge_cp, LIBVIRT_NETWORKS["controlPlane"],
                    GUEST_IFNAMES["controlPlane"],
                    ipaddress.IPv4Interface(f"{node.control_plane_address}/{net.control_plane_cidr.prefixlen}"), None)
    return nodes, control


def memory_mib(node: ControlPlaneNode) -> int:
    """The Domain's `memory` input (the provider takes MiB)."""
    if node.memory_gib is None:
        raise NotAVm(f"{node.name} has no memoryGiB")
    return node.memory_gib * 1024


def hard_limit_kib(node: ControlPlaneNode) -> int:
    return memory_mib(node) * 1024 + QEMU_OVERHEAD_KIB


def control_plane_pool(hv: Hypervisor) -> Pool:
    return next(p for p in hv.pools if p.role == "controlPlane")


def os_volume_name(node: ControlPlaneNode) -> str:
    return f"{node.name}-os.qcow2"


def etcd_volume_name(node: ControlPlaneNode) -> str:
    return f"{node.name}-etcd.qcow2"


def cloudinit_disk_name(node: ControlPlaneNode) -> str:
    return f"{node.name}-cloudinit.iso"


def _yaml(data: object) -> str:
    # width: an ssh public key must stay on one line.
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=4096)


# ---------------------------------------------------------------------------------------------
# cloud-init (NoCloud seed: user-data, meta-data, network-config)


def user_data(cluster: Cluster, node: ControlPlaneNode, ssh_public_key: str) -> str:
    """#cloud-config: the login user, the etcd disk formatted and mounted, no upgrades at boot."""
    vm_host(cluster, node)
    key = ssh_public_key.strip()
    if not key or "\n" in key:
        raise ValueError(f"{node.name}: the SSH public key must be one non-empty line (ssh.authorizedKey)")
    config = {
        "hostname": node.name,
        "preserve_hostname": False,
        "manage_etc_hosts": True,
        "users": [{
            "name": cluster.ssh.user,
            "shell": "/bin/bash",
            "lock_passwd": True,
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "ssh_authorized_keys": [key],
        }],
        "ssh_pwauth": False,
        "disable_root": True,
        # Packages are pinned by node-prereqs.sh; an unattended upgrade at boot would race it.
        "package_update": False,
        "package_upgrade": False,
        "package_reboot_if_required": False,
        # One GPT partition over the whole etcd disk, formatted once: overwrite:false skips a disk
        # that already has a partition table, and partition:auto skips an existing "etcd" ext4.
        "disk_setup": {ETCD_DEVICE: {"table_type": "gpt", "layout": True, "overwrite": False}},
        "fs_setup": [{"label": ETCD_LABEL, "filesystem": "ext4", "device": ETCD_DEVICE,
                      "partition": "auto", "overwrite": False}],
        "mounts": [[f"LABEL={ETCD_LABEL}", ETCD_MOUNT, "ext4", ETCD_MOUNT_OPTIONS, "0", "2"]],
        # etcd wants its data dir private (it warns otherwise); the fresh fs root is 0755.
        "runcmd": [["chmod", "0700", ETCD_MOUNT]],
    }
    mirror = cluster.packages.ubuntu_mirror
    if mirror is not None:
        # A site's archive mirror for both archives (cloud-init cc_apt_configure), where containerd comes from.
        archive = [{"arches": ["default"], "uri": mirror}]
        config["apt"] = {"primary": archive, "security": [dict(entry) for entry in archive]}
    return "#cloud-config\n" + _yaml(config)


def meta_data(node: ControlPlaneNode) -> str:
    # A stable instance-id: a re-created domain on the same OS disk does not re-run first-boot steps.
    return _yaml({"instance-id": node.name, "local-hostname": node.name})


def network_config(cluster: Cluster, node: ControlPlaneNode) -> str:
    """network-config v2: static addresses on both NICs, matched by MAC and renamed eth0/eth1."""
    ethernets = {}
    for nic in vm_nics(cluster, node):
        entry: dict[str, object] = {
            "match": {"macaddress": nic.mac},
            "set-name": nic.guest_ifname,
            "dhcp4": False,
            "addresses": [str(nic.address)],
        }
        if nic.gateway is not None:
            # `to: 0.0.0.0/0`, not `to: default`: cloud-init before 23.x cannot parse "default".
            entry["routes"] = [{"to": "0.0.0.0/0", "via": str(nic.gateway)}]
            if cluster.network.dns_servers:
                entry["nameservers"] = {"addresses": [str(a) for a in cluster.network.dns_servers]}
        ethernets[nic.guest_ifname] = entry
    return _yaml({"version": 2, "ethernets": ethernets})


# ---------------------------------------------------------------------------------------------
# libvirt domain: the XSLT and the provider's XML it is applied to


def _xsl(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, f"{{{XSL_NS}}}{tag}", attrs)


def element(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    child = ET.SubElement(parent, tag, attrs)
    child.text = text
    return child


def _copy_then(stylesheet: ET.Element, match: str) -> ET.Element:
    """A template that copies the matched element with its content; append literal children to it."""
    copy = _xsl(_xsl(stylesheet, "template", match=match), "copy")
    _xsl(copy, "apply-templates", select="@*|node()")
    return copy


def xml_text(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def domain_xslt(cluster: Cluster, node: ControlPlaneNode) -> str:
    """XSLT 1.0 (identity transform) that pins, locks and trims the provider's domain XML."""
    hv = vm_host(cluster, node)
    cores = parse_cpuset(node.pinned_cpus or "")
    if len(cores) != node.cpus:
        raise ValueError(f"{node.name}: pinnedCpus {node.pinned_cpus} names {len(cores)} cores for {node.cpus} vCPUs")
    ET.register_namespace("xsl", XSL_NS)
    sheet = ET.Element(f"{{{XSL_NS}}}stylesheet", {"version": "1.0"})
    _xsl(sheet, "output", method="xml", indent="yes", encoding="UTF-8")
    _xsl(sheet, "strip-space", elements="*")
    _copy_then(sheet, "@*|node()")  # identity: everything not matched below passes unchanged
    # Drop whatever the provider (or a later provider version) says about what we own, so the
    # elements below are the only ones: libvirt refuses duplicates, and would add a virtio
    # balloon by default if <devices> had none.
    _xsl(sheet, "template",
         match="/domain/cputune|/domain/memoryBacking|/domain/memtune|/domain/cpu|/domain/devices/memballoon")

    domain = _copy_then(sheet, "/domain")
    cputune = element(domain, "cputune")
    for vcpu, core in enumerate(cores):
        element(cputune, "vcpupin", vcpu=str(vcpu), cpuset=str(core))
    # QEMU's emulator and I/O threads run on the host's reserved cores, never on a pinned vCPU's.
    element(cputune, "emulatorpin", cpuset=format_cpuset(parse_cpuset(hv.reserved_cpus)))
    element(element(domain, "memoryBacking"), "locked")
    element(element(domain, "memtune"), "hard_limit", str(hard_limit_kib(node)), unit="KiB")
    element(domain, "cpu", mode=CPU_MODE)

    element(_copy_then(sheet, "/domain/devices"), "memballoon", model="none")

    # A console without a type (what the provider writes) becomes a pty; one with a type is kept.
    console = _xsl(_xsl(sheet, "template", match="/domain/devices/console[not(@type)]"), "copy")
    _xsl(console, "attribute", name="type").text = CONSOLE_TYPE
    _xsl(console, "apply-templates", select="@*|node()")

    # Our volume disks (OS, etcd) bypass the host page cache: etcd's fsync then means the device
    # has the data, and VM I/O never competes with the host for page cache.
    driver = _xsl(_xsl(sheet, "template", match="/domain/devices/disk[@type='volume']/driver"), "copy")
    _xsl(driver, "apply-templates", select="@*")
    _xsl(driver, "attribute", name="cache").text = "none"
    _xsl(driver, "attribute", name="io").text = "native"
    _xsl(driver, "apply-templates", select="node()")
    return xml_text(sheet)


# ---------------------------------------------------------------------------------------------
# image-fetch.sh: the base image every control-plane VM's OS disk is a copy-on-write layer over


def base_volume_name(cluster: Cluster) -> str:
    """The base image's volume in the controlPlane pool, named after what identifies the image.

    With vmImage.sha256, its digest; with the signed SHA256SUMS, the URL (a dated serial's content
    never changes). Any other image gets another volume, so a running VM's backing file stays.
    """
    image = cluster.vm_image
    identity = image.sha256 or hashlib.sha256(image.url.encode()).hexdigest()
    return f"hakube-base-{identity[:12]}.qcow2"


def image_fetch_env(cluster: Cluster, pool: Pool) -> dict[str, str]:
    """Environment for configs/scripts/image-fetch.sh: the image, how it is checked, where it goes."""
    image = cluster.vm_image
    env = {"IMAGE_URL": image.url, "POOL": pool.name, "POOL_PATH": pool.path, "VOLUME": base_volume_name(cluster)}
    if image.sha256 is not None:
        env["IMAGE_SHA256"] = image.sha256
    else:
        env.update(IMAGE_SUMS_URL=image.sums_url, IMAGE_NAME=image.file_name)
    return env


# ---------------------------------------------------------------------------------------------
# hypervisor-prepare.sh


def hypervisor_prepare_env(hv: Hypervisor, ssh_user: str | None = None) -> dict[str, str]:
    """Environment for configs/scripts/hypervisor-prepare.sh on `hv`.

    ssh_user (cluster.ssh.user) joins the `libvirt` group so qemu+ssh://user@host/system can reach
    the system libvirtd socket without root.
    """
    env = {
        "RESERVED_CPUS": format_cpuset(parse_cpuset(hv.reserved_cpus)),  # as systemd prints it back
        "POOL_PATHS": "\n".join(pool.path for pool in hv.pools),
    }
    if ssh_user:
        env["LIBVIRT_USER"] = ssh_user
    return env
