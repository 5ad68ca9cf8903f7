"""Hypervisors and the control-plane VMs they host (pulumi-libvirt).

All libvirt use lives in this one module: pulumi-libvirt 0.5.4 (terraform-provider-libvirt 0.8.1)
is marked deprecated upstream, and a later move to another libvirt package should touch one file.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_libvirt as libvirt

from components.base import Component
from components.node import Node, apt_proxy
from components.step import Host, Step, run
from configs import proxy, vm
from configs.remote import Script
from topology import Cluster, ControlPlaneNode, Hypervisor
from topology.model import Pool

GIB = 1024**3
DEFAULT_OS_DISK_GIB = 40
DEFAULT_ETCD_DISK_GIB = 20


def libvirt_uri(cluster: Cluster, hv: Hypervisor) -> str:
    """qemu+ssh to the hypervisor as the cluster's SSH user.

    The libvirt provider opens its own SSH connection and cannot take the key from Pulumi
    config: it uses the ssh-agent (`ssh-add` the same key) or ~/.ssh, and known_hosts.
    """
    port = f":{cluster.ssh.port}" if cluster.ssh.port != 22 else ""
    return f"qemu+ssh://{cluster.ssh.user}@{hv.address}{port}/system"


class HypervisorHost(Component):
    """One libvirt/KVM host: prepared, with its pools, bridged networks and the base image."""

    def __init__(self, cluster: Cluster, hv: Hypervisor, host: Host, *, opts: pulumi.ResourceOptions) -> None:
        props = {
            "name": hv.name, "address": str(hv.address), "cpus": hv.cpus, "reservedCpus": hv.reserved_cpus,
            "memoryGiB": hv.memory_gib, "reservedMemoryGiB": hv.reserved_memory_gib,
            "pools": [p.model_dump(by_alias=True) for p in hv.pools],
            "bridges": hv.bridges.model_dump(by_alias=True),
        }
        super().__init__("Hypervisor", hv.name, props, opts)
        self.hv = hv
        apt = apt_proxy(hv.name, cluster, host, pulumi.ResourceOptions(parent=self))
        prepare = Script("hypervisor-prepare.sh", vm.hypervisor_prepare_env(hv, ssh_user=cluster.ssh.user))
        self.prepare = run(f"{hv.name}-prepare", host, Step(prepare),
                           pulumi.ResourceOptions(parent=self, depends_on=apt))
        # The provider connects to libvirtd as soon as it is configured, which the engine does only
        # once its inputs are known: a URI that waits for the prepare step keeps it from dialling a
        # host before hypervisor-prepare.sh has installed libvirt there, and keeps a first preview
        # (nothing prepared yet) from dialling the hypervisors at all.
        uri = self.prepare.stdout.apply(lambda _: libvirt_uri(cluster, hv))
        self.provider = libvirt.Provider(f"{hv.name}-libvirt", uri=uri,
                                         opts=pulumi.ResourceOptions(parent=self, depends_on=[self.prepare]))
        # Pools and networks are created only once the host has libvirt and its directories.
        on_host = pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[self.prepare])
        self.pools = {
            # `target.path`: the top-level `path` is deprecated in pulumi-libvirt 0.5.4.
            pool.name: libvirt.Pool(f"{hv.name}-pool-{pool.name}", name=pool.name, type="dir",
                                    target=libvirt.PoolTargetArgs(path=pool.path), opts=on_host)
            for pool in hv.pools
        }
        self.control_plane_pool = next((p for p in hv.pools if p.role == "controlPlane"), None)
        self.networks = {"nodes": self._bridge_network("nodes", hv.bridges.nodes, on_host)}
        if hv.bridges.control_plane:
            self.networks["controlPlane"] = self._bridge_network("controlPlane", hv.bridges.control_plane, on_host)
        self.base_image = self._base_image(cluster, host, self.control_plane_pool) if self.control_plane_pool else None
        self.finish()

    def _bridge_network(self, role: vm.NicRole, bridge: str, opts: pulumi.ResourceOptions) -> libvirt.Network:
        # The bridges already exist on the host (the operator's network); libvirt only attaches to them.
        return libvirt.Network(f"{self.hv.name}-net-{role.lower()}", name=vm.LIBVIRT_NETWORKS[role], mode="bridge",
                               bridge=bridge, autostart=True, opts=opts)

    def _base_image(self, cluster: Cluster, host: Host, pool: Pool) -> pulumi.Resource:
        return run(
            f"{self.hv.name}-base-image", host,
            Step(Script("image-fetch.sh", {**vm.image_fetch_env(cluster, pool), **proxy.command_environment(cluster)})),
            # The pool must exist in libvirt before a volume can be imported into it.
            pulumi.ResourceOptions(parent=self, depends_on=[self.pools[pool.name]]),
        )


class ControlPlaneVm(Component):
    """A control-plane VM with guaranteed resources, then the Kubernetes node inside it."""

    def __init__(self, cluster: Cluster, node: ControlPlaneNode, hypervisor: HypervisorHost, host: Host, *,
                 registry_passwords: Mapping[str, pulumi.Output[str]] | None = None) -> None:
        hv = hypervisor.hv
        artifacts = {
            f"vms/{node.name}/user-data": vm.user_data(cluster, node, cluster.ssh.authorized_key or ""),
            f"vms/{node.name}/meta-data": vm.meta_data(node),
            f"vms/{node.name}/network-config": vm.network_config(cluster, node),
            f"vms/{node.name}/domain.xsl": vm.domain_xslt(cluster, node),
        }
        props = {
            "name": node.name, "hypervisor": hv.name, "cpus": node.cpus, "pinnedCpus": node.pinned_cpus,
            "emulatorCpus": hv.reserved_cpus, "memoryGiB": node.memory_gib, "artifacts": artifacts,
        }
        super().__init__("ControlPlaneVm", f"{node.name}-vm", props,
                         pulumi.ResourceOptions(parent=hypervisor))
        pool = hypervisor.control_plane_pool
        if pool is None or hypervisor.base_image is None:  # topology/rules.py refuses such a stack first
            raise ValueError(f"{node.name}: hypervisor {hv.name} has no controlPlane pool for its disks")
        on_hv = pulumi.ResourceOptions(parent=self, provider=hypervisor.provider)
        pool_res = hypervisor.pools[pool.name]
        os_disk = libvirt.Volume(
            f"{node.name}-os", name=vm.os_volume_name(node), pool=pool_res.name, format="qcow2",
            base_volume_name=vm.base_volume_name(cluster), base_volume_pool=pool_res.name,
            size=(node.os_disk_gib or DEFAULT_OS_DISK_GIB) * GIB,
            # The backing image is imported by a command, not a libvirt resource: wait for it. A later
            # vmImage change (a new base volume) is for VMs created from then on: replacing the OS disk
            # of every running control-plane VM at once would take etcd's quorum with it.
            opts=pulumi.ResourceOptions.merge(on_hv, pulumi.ResourceOptions(
                depends_on=[hypervisor.base_image], ignore_changes=["baseVolumeName"])),
        )
        etcd_disk = libvirt.Volume(
            f"{node.name}-etcd", name=vm.etcd_volume_name(node), pool=pool_res.name, format="qcow2",
            size=(node.etcd_disk_gib or DEFAULT_ETCD_DISK_GIB) * GIB, opts=on_hv,
        )
        seed = libvirt.CloudInitDisk(
            f"{node.name}-cloudinit", name=vm.cloudinit_disk_name(node), pool=pool_res.name,
            user_data=artifacts[f"vms/{node.name}/user-data"], meta_data=artifacts[f"vms/{node.name}/meta-data"],
            network_config=artifacts[f"vms/{node.name}/network-config"], opts=on_hv,
        )
        nics = [libvirt.DomainNetworkInterfaceArgs(network_id=hypervisor.networks[nic.role].id, mac=nic.mac)
                for nic in vm.vm_nics(cluster, node)]
        self.domain = libvirt.Domain(
            f"{node.name}-domain", name=node.name, vcpu=node.cpus, memory=vm.memory_mib(node),
            cpu=libvirt.DomainCpuArgs(mode=vm.CPU_MODE),
            # Order matters: the etcd disk must be the second virtio disk (vm.ETCD_DEVICE, /dev/vdb).
            disks=[libvirt.DomainDiskArgs(volume_id=os_disk.id), libvirt.DomainDiskArgs(volume_id=etcd_disk.id)],
            network_interfaces=nics, cloudinit=seed.id, autostart=True, qemu_agent=False,
            consoles=[libvirt.DomainConsoleArgs(type=vm.CONSOLE_TYPE, target_port="0", target_type="serial")],
            xml=libvirt.DomainXmlArgs(xslt=artifacts[f"vms/{node.name}/domain.xsl"]),
            description=f"hakube control-plane node {node.name} of cluster {cluster.name}",
            opts=on_hv,
        )
        # Prerequisites need the VM booted with its addresses: they run after the domain exists.
        self.node = Node(node.name, cluster, host, "control-plane",
                         opts=pulumi.ResourceOptions(parent=self), after=[self.domain],
                         registry_passwords=registry_passwords)
        self.finish()
