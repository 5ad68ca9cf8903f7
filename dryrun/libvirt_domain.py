"""The domain XML terraform-provider-libvirt 0.8.1 hands libvirt for a control-plane VM, before and
after hakube's stylesheet (configs/vm.py domain_xslt): a model of the provider for the dry run
(`vms/<node>/domain.xml`) and the tests (virt-xml-validate, pinning, locked memory), not something a
deployment uses (there the provider builds it, and libvirt receives the stylesheet's output)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Literal

from configs.vm import (
    CPU_MODE,
    cloudinit_disk_name,
    control_plane_pool,
    domain_xslt,
    element,
    etcd_volume_name,
    memory_mib,
    os_volume_name,
    vm_host,
    vm_nics,
    xml_text,
)
from topology.model import Cluster, ControlPlaneNode, Pool

# What the provider writes as <os><type machine>: the hypervisor's canonical name for its default
# machine ("pc" resolved through the host's capabilities, getCanonicalMachineName in domain_def.go).
# This one is QEMU 7.2's; the dry run only needs a name of that shape.
SIMULATED_CANONICAL_MACHINE = "pc-i440fx-7.2"


def _volume_disk(devices: ET.Element, pool: Pool, volume: str, dev: str) -> None:
    disk = element(devices, "disk", type="volume", device="disk")
    element(disk, "driver", name="qemu", type="qcow2")
    element(disk, "source", pool=pool.name, volume=volume)
    element(disk, "target", dev=dev, bus="virtio")


def provider_domain_xml(cluster: Cluster, node: ControlPlaneNode,
                        source: Literal["bridge", "network"] = "bridge") -> str:
    """The domain XML terraform-provider-libvirt 0.8.1 hands to xsltproc for this VM.

    Its shape: newDomainDef's defaults (pae/acpi/apic, a spice display, the guest-agent channel,
    a virtio RNG), `type` kvm, memory in MiB, vcpu, cpu mode, `disk` entries vda, vdb, ... then the
    cloud-init ISO as an IDE cdrom (hdd), one interface per network_interfaces entry (virtio, the
    MAC upper-cased), and the serial console with no `type` attribute: setConsoles (domain.go) sets
    a chardev source only for a source_path, and libvirtxml writes `type` only from a source. No
    <memballoon>: libvirt adds a virtio one at define time when none is given, which is why the
    stylesheet always writes one. `arch` and `emulator` stay empty when not configured (the Create
    step resets them from the schema; libvirt fills them in); `machine` is the host's canonical name
    for its default (SIMULATED_CANONICAL_MACHINE). `source` mirrors network_interfaces[].bridge or
    .network_id.
    """
    hv = vm_host(cluster, node)
    pool = control_plane_pool(hv)
    domain = ET.Element("domain", type="kvm")
    element(domain, "name", node.name)
    element(domain, "description", f"hakube control-plane node {node.name} of cluster {cluster.name}")
    element(domain, "memory", str(memory_mib(node)), unit="MiB")
    element(domain, "vcpu", str(node.cpus))
    element(element(domain, "os"), "type", "hvm", machine=SIMULATED_CANONICAL_MACHINE)
    features = element(domain, "features")
    for feature in ("pae", "acpi", "apic"):
        element(features, feature)
    element(domain, "cpu", mode=CPU_MODE)
    devices = element(domain, "devices")
    _volume_disk(devices, pool, os_volume_name(node), "vda")
    _volume_disk(devices, pool, etcd_volume_name(node), "vdb")
    seed = element(devices, "disk", type="file", device="cdrom")
    element(seed, "driver", name="qemu", type="raw")
    element(seed, "source", file=f"{pool.path.rstrip('/')}/{cloudinit_disk_name(node)}")
    element(seed, "target", dev="hdd", bus="ide")
    element(seed, "serial", "cloudinit")
    for nic in vm_nics(cluster, node):
        interface = element(devices, "interface", type=source)
        element(interface, "mac", address=nic.mac.upper())
        element(interface, "source", **({"bridge": nic.bridge} if source == "bridge" else {"network": nic.network}))
        element(interface, "model", type="virtio")
    console = element(devices, "console")
    element(console, "target", type="serial", port="0")
    channel = element(devices, "channel", type="unix")
    element(channel, "target", type="virtio", name="org.qemu.guest_agent.0")
    element(devices, "graphics", type="spice", autoport="yes")
    rng = element(devices, "rng", model="virtio")
    element(rng, "backend", "/dev/urandom", model="random")
    return xml_text(domain)


def transformed_domain_xml(cluster: Cluster, node: ControlPlaneNode,
                           source: Literal["bridge", "network"] = "bridge") -> str:
    """The provider's domain XML after our stylesheet: what libvirt is asked to define."""
    from lxml import etree  # imported here: the program itself never transforms

    transform = etree.XSLT(etree.XML(domain_xslt(cluster, node).encode()))
    result = transform(etree.XML(provider_domain_xml(cluster, node, source).encode()))
    return bytes(result).decode()
