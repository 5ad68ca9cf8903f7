"""The declared topology of one hakube cluster (the `hakube:cluster` stack-config value).

Key names are the user's interface (CONFIG.md): camelCase in the stack file, snake_case here.
Every field documents its default next to its declaration; the README's configuration table is
generated from these descriptions (`python -m topology.docs`). Structural rules (types, ranges,
unknown keys) live here; rules that relate several fields live in `topology/rules.py`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic.alias_generators import to_camel

from topology.cpuset import CpusetError, parse_cpuset
from topology.versions import DEFAULT_VERSION, check_version, supported_minors

NODEPORT_RANGE = (30000, 32767)
CNI_CHOICES = ("calico", "cilium", "flannel")
# Base image of control-plane VMs: Ubuntu 26.04 LTS (resolute) server cloud image amd64, one dated
# serial. No digest is pinned for it: each hypervisor checks it against the publisher's SHA256SUMS,
# whose detached signature (SHA256SUMS.gpg) it verifies with gpgv against Ubuntu's cloud image signing
# key, pinned in configs/scripts/image-fetch.sh. cloud-images.ubuntu.com prunes dated folders after
# some months: move to a newer serial (or host a copy beside its SHA256SUMS files) when it is gone.
DEFAULT_VM_IMAGE_URL = (
    "https://cloud-images.ubuntu.com/releases/resolute/release-20260927/ubuntu-26.04-server-cloudimg-amd64.img"
)
DEFAULT_VM_IMAGE_RELEASE = "Ubuntu 26.04 LTS server cloud image amd64, serial release-20260927"
# "UEC Image Automatic Signing Key <cdimage@ubuntu.com>" (rsa4096, 2009-09-15), the key that signs
# cloud-images.ubuntu.com's SHA256SUMS: fingerprint as Canonical publishes it (ubuntu-cloud-docs,
# public-images-how-to/verify-image-checksum). The key itself is in image-fetch.sh.
UBUNTU_CLOUD_IMAGE_KEY_FINGERPRINT = "D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81"
# The publisher's checksum list beside each image; its detached signature is this name + ".gpg".
SIGNED_SUMS_NAME = "SHA256SUMS"

# These patterns are used with fullmatch: `$` alone also matches before a trailing newline.
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# Linux IFNAMSIZ is 16 including the NUL; no '/', whitespace or ':' (alias syntax).
_IFNAME = re.compile(r"^[A-Za-z0-9_.-][A-Za-z0-9_.@-]{0,14}$")
# What ssh, sudo and useradd all accept as a login: no whitespace, ':' or '@', no leading '-'.
_LOGIN = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Fetched on each hypervisor with curl (configs/scripts/image-fetch.sh).
_IMAGE_URL = re.compile(r"(https?|file)://[^\s]+")


def _alias(name: str) -> str:
    """snake_case -> the stack file's camelCase, keeping 'GiB' as users write it."""
    return to_camel(name).replace("Gib", "GiB")


class Strict(BaseModel):
    """Base of every config object: unknown keys refused, camelCase keys, frozen values."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=_alias, populate_by_name=True, frozen=True
    )


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a DNS label (lower-case letters, digits and '-', 1-63 characters,"
            " starting and ending with a letter or digit)"
        )
    return value


def _ifname(value: str) -> str:
    if value in (".", "..") or not _IFNAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a Linux interface name (1-15 characters, no '/', ':' or spaces)")
    return value


def _cpuset(value: str) -> str:
    try:
        parse_cpuset(value)
    except CpusetError as err:
        raise ValueError(f"{value!r} is not a cpuset: {err}") from None
    return value


def _login(value: str) -> str:
    if not _LOGIN.fullmatch(value):
        raise ValueError(f"{value!r} is not a login name (1-32 characters, no spaces, ':' or '@', no leading '-')")
    return value


def _address(value: object) -> ipaddress.IPv4Address:
    # Addresses must be written as strings; 3232235521 is not an address here.
    if not isinstance(value, str):
        raise ValueError("must be a string such as 198.18.0.10")
    try:
        return ipaddress.IPv4Address(value)
    except ValueError as err:
        raise ValueError(f"not an IPv4 address: {err}") from None


def _network(value: object) -> ipaddress.IPv4Network:
    # Without a prefix length ipaddress reads "198.18.0.0" as a /32, which no host fits in.
    if not isinstance(value, str) or "/" not in value:
        raise ValueError("must be a string such as 198.18.0.0/24 (address/prefix length)")
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as err:
        raise ValueError(f"not an IPv4 network: {err}") from None


def _sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise ValueError(f"{value!r} is not a SHA-256 digest (64 lower-case hex digits)")
    return value


def _image_url(value: str) -> str:
    if not _IMAGE_URL.fullmatch(value):
        raise ValueError(f"{value!r} is not an http(s):// or file:// URL without spaces")
    return value


def address_range(text: str) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """First and last address of a pool entry: a CIDR (198.18.0.200/29) or a range (a.b.c.d-a.b.c.e)."""
    if "-" in text:
        first, _, last = text.partition("-")
        low, high = ipaddress.IPv4Address(first.strip()), ipaddress.IPv4Address(last.strip())
        if low > high:
            raise ValueError(f"{low} comes after {high}")
        return low, high
    if "/" not in text:
        raise ValueError("needs a prefix length (198.18.0.200/29) or a range (198.18.0.200-198.18.0.210)")
    net = ipaddress.IPv4Network(text)
    return net.network_address, net.broadcast_address


def _address_range(value: str) -> str:
    try:
        address_range(value)
    except ValueError as err:
        raise ValueError(f"{value!r} is not a CIDR or an address range: {err}") from None
    return value


DnsLabel = Annotated[StrictStr, AfterValidator(_dns_label)]
IfName = Annotated[StrictStr, AfterValidator(_ifname)]
Cpuset = Annotated[StrictStr, AfterValidator(_cpuset)]
Version = Annotated[StrictStr, AfterValidator(check_version)]
Address = Annotated[ipaddress.IPv4Address, BeforeValidator(_address)]
Network = Annotated[ipaddress.IPv4Network, BeforeValidator(_network)]
Login = Annotated[StrictStr, AfterValidator(_login)]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
NonEmpty = Annotated[StrictStr, Field(min_length=1)]
MemoryManager = Literal["none", "static"]


class Ssh(Strict):
    user: Login = Field(description="Login user on every host; needs passwordless sudo.")
    port: Port = Field(22, description="SSH port on every host. Default 22.")
    authorized_key: StrictStr | None = Field(
        None, description="Public half of hakube:sshPrivateKey, put into control-plane VMs by cloud-init."
        " Required when there are control-plane VMs."
    )


class NetworkConfig(Strict):
    node_cidr: Network = Field(description="The hosts' own network; every `address` lies in it.")
    control_plane_cidr: Network = Field(
        description="Control-plane traffic (apiserver, etcd) on its own NIC; every"
        " `controlPlaneAddress` lies in it."
    )
    pod_cidr: Network = Field(ipaddress.IPv4Network("10.244.0.0/16"),
                              description="Pod network handed to the CNI. Default 10.244.0.0/16.")
    service_cidr: Network = Field(ipaddress.IPv4Network("10.96.0.0/12"),
                                  description="Service ClusterIP range. Default 10.96.0.0/12.")
    dns_servers: list[Address] = Field(
        default_factory=list, description="Resolvers written into control-plane VMs' network-config (bare-metal"
        " hosts keep their own). Default none: the VMs then cannot resolve names, e.g. for apt.",
    )

    @property
    def default_gateway(self) -> ipaddress.IPv4Address:
        """The nodes network's router, by convention its first host address (198.18.0.1 in
        198.18.0.0/24): the default route in control-plane VMs' network-config."""
        return next(self.node_cidr.hosts())


class ApiEndpoint(Strict):
    vip: Address = Field(description="Virtual IP that keepalived moves between the LB nodes.")
    port: Port = Field(6443, description="Port clients use (the kubeconfig server). Default 6443.")


class Vrrp(Strict):
    router_id: StrictInt = Field(ge=1, le=255, description="VRRP virtual router id, unique on the L2 segment.")
    advert_interval_ms: StrictInt = Field(
        100, description="VRRPv3 advert interval in ms, a multiple of 10 from 10 to 40950. Default 100."
    )
    preempt: StrictBool = Field(
        False, description="Take the VIP back when a higher-priority node returns. Default false"
        " (no failback, so long-lived watches are not reset)."
    )


class LbNode(Strict):
    name: DnsLabel = Field(description="Host name. In stacked placement, a control-plane node's name.")
    address: Address | None = Field(
        None, description="Host address in nodeCidr. Required for external placement; in stacked"
        " placement it defaults to the control-plane node's address."
    )
    interface: IfName = Field("eth0", description="Interface carrying the VIP. Default eth0.")
    priority: StrictInt = Field(
        ge=1, le=254, description="VRRP priority, distinct per node: the order of preference for the VIP."
        " keepalived.conf gets 254, 253, ... in that order (a shorter VRRPv3 skew time: faster takeover)."
    )


class LoadBalancer(Strict):
    placement: Literal["external", "stacked"] = Field(
        "external", description="external: two dedicated LB nodes; stacked: on the control-plane"
        " nodes (HAProxy on the endpoint port, kube-apiserver on apiserverPort). Default external."
    )
    vrrp: Vrrp
    nodes: list[LbNode] = Field(description="The nodes that run keepalived and HAProxy.")


class Pool(Strict):
    name: DnsLabel
    path: NonEmpty = Field(description="Directory of the libvirt dir pool (its own device for controlPlane).")
    role: Literal["controlPlane", "general"] = Field(
        "general", description="controlPlane pools hold only control-plane VM disks (OS and etcd)."
    )


class Bridges(Strict):
    nodes: IfName = Field(description="Existing host bridge on the nodes network.")
    control_plane: IfName | None = Field(None, description="Existing host bridge for control-plane traffic.")


class Hypervisor(Strict):
    name: DnsLabel
    address: Address
    cpus: StrictInt = Field(ge=1, le=4096, description="Host cores (logical CPUs), numbered 0..cpus-1.")
    reserved_cpus: Cpuset = Field(description="Cores kept for the host OS and VM emulator threads; never pinned.")
    memory_gib: StrictInt = Field(ge=1, description="Host memory in GiB.")
    reserved_memory_gib: StrictInt = Field(4, ge=0, description="Memory kept for the host. Default 4.")
    pools: list[Pool] = Field(description="libvirt storage pools; one with role controlPlane.")
    bridges: Bridges


class ControlPlaneNode(Strict):
    name: DnsLabel
    hypervisor: DnsLabel | None = Field(None, description="Hypervisor hosting this VM; absent = bare metal.")
    address: Address = Field(description="Address in nodeCidr (first NIC).")
    control_plane_address: Address = Field(description="Address in controlPlaneCidr (second NIC).")
    cpus: StrictInt | None = Field(
        None, ge=1, le=512, description="A VM's vCPUs (required for a VM), or a bare-metal node's logical CPUs."
        " Bare metal default: 4, which sizes etcd and kube-apiserver below a whole core; declare the real number.",
    )
    pinned_cpus: Cpuset | None = Field(None, description="VM only: host cores, one per vCPU.")
    memory_gib: StrictInt | None = Field(
        None, ge=1, description="A VM's memory in GiB, locked (required for a VM), or a bare-metal node's memory."
        " Bare metal default: 8.",
    )
    os_disk_gib: StrictInt | None = Field(None, ge=10, description="VM only: OS disk in GiB. Default 40.")
    etcd_disk_gib: StrictInt | None = Field(None, ge=1, description="VM only: etcd disk in GiB. Default 20.")
    reserved_cpus: Cpuset = Field("0", description="Cores the kubelet reserves for the system. Default 0.")
    memory_manager: MemoryManager = Field(
        "none", description="The kubelet's Memory Manager policy: static gives Guaranteed pods memory from as few"
        " NUMA nodes as possible (reservedMemory computed from the eviction threshold). Default none."
    )

    @property
    def is_vm(self) -> bool:
        return self.hypervisor is not None


class ControlPlane(Strict):
    nodes: list[ControlPlaneNode] = Field(description="Control-plane nodes; the first runs `kubeadm init`.")
    apiserver_port: Port | None = Field(
        None, description="kube-apiserver bind port. Default 6444 when stacked, else the endpoint port."
    )
    schedulable: StrictBool = Field(
        False, description="Edge profile only: leave control-plane nodes untainted for workloads."
    )


class Worker(Strict):
    name: DnsLabel
    address: Address
    reserved_cpus: Cpuset = Field("0", description="Cores the kubelet reserves for the system. Default 0.")
    memory_manager: MemoryManager = Field(
        "none", description="The kubelet's Memory Manager policy: static gives Guaranteed pods memory from as few"
        " NUMA nodes as possible (reservedMemory computed from the eviction threshold). Default none."
    )
    labels: dict[StrictStr, StrictStr] = Field(default_factory=dict, description="Node labels.")


class MetalLb(Strict):
    enabled: StrictBool = Field(False, description="Install MetalLB, announcing Service addresses over L2 (ARP)."
                                " Default false.")
    addresses: list[Annotated[StrictStr, AfterValidator(_address_range)]] = Field(
        default_factory=list, description="The L2 address pool: CIDRs (198.18.0.200/29) or ranges"
        " (198.18.0.200-198.18.0.210) inside nodeCidr, clear of every host and the VIP. Required when enabled.",
    )


class GatewayAddon(Strict):
    enabled: StrictBool = Field(
        False, description="Install Gateway API (standard channel CRDs) and a Gateway for HTTP on port 80 that"
        " HTTPRoutes in any namespace attach to: Envoy Gateway, or Cilium's own Gateway when addons.cni is cilium."
        " Its Service is a LoadBalancer when MetalLB is on, else a NodePort. Default false.",
    )


INGRESS_RETIRED = "ingress-nginx is retired (March 2026, no further fixes); use addons.gateway"


def _ingress_retired(value: object) -> object:
    raise ValueError(INGRESS_RETIRED)


class Addons(Strict):
    enabled: StrictBool = Field(
        True, description="Install the in-cluster add-ons below through the Kubernetes provider. false: hakube"
        " stops at the kubeadm cluster and its admin kubeconfig (no CNI: the nodes stay NotReady until you install"
        " one, e.g. with GitOps); every other add-on key must then stay off. Default true.",
    )
    cni: Literal["calico", "cilium", "flannel"] = Field("calico", description="CNI (pinned chart). Default calico.")
    smoke_test: StrictBool = Field(True, description="Deploy the nginx NodePort smoke test (and, with addons.gateway,"
                                   " its HTTPRoute). Default true.")
    smoke_test_replicas: StrictInt = Field(1, ge=1, le=100, description="Smoke-test replicas. Default 1.")
    metallb: MetalLb = Field(
        default_factory=MetalLb, description="MetalLB (pinned chart) for LoadBalancer Services. Default off."
    )
    gateway: GatewayAddon = Field(
        default_factory=GatewayAddon, description="Gateway API and a Gateway (pinned charts). Default off."
    )
    # Kept only so that a stack still setting it is refused at its own path with the reason and the way on.
    ingress: Annotated[object, AfterValidator(_ingress_retired)] = Field(
        None, deprecated=INGRESS_RETIRED, repr=False, exclude=True,
        description="Removed: ingress-nginx was retired in March 2026; a stack that sets this key is refused. Use"
        " `addons.gateway`.",
    )


class Packages(Strict):
    kubernetes_apt_source: StrictStr | None = Field(
        None, description="One-line apt source for kubelet/kubeadm/kubectl (the Kubernetes project's"
        " repository for your minor, or a mirror). Default: the hosts' configured apt sources."
    )


class Upgrade(Strict):
    worker_parallelism: StrictInt = Field(
        1, ge=1, le=100, description="Workers upgraded (cordoned, drained, upgraded, uncordoned) at the same time"
        " when kubernetesVersion changes; control-plane nodes always go one at a time. Default 1.",
    )


class Certificates(Strict):
    renew_before_days: StrictInt = Field(
        30, ge=1, le=180, description="Renew a control-plane node's kubeadm certificates (`kubeadm certs renew all`"
        " and a static-pod restart, one node at a time) when the first of them expires within this many days;"
        " checked at most every renewBeforeDays/2 days, on a `pulumi up`. Default 30.",
    )


class VmImage(Strict):
    url: Annotated[StrictStr, AfterValidator(_image_url)] = Field(
        DEFAULT_VM_IMAGE_URL, description="Base cloud image of control-plane VMs, fetched by each hypervisor"
        f" (http, https or file URL). Default: {DEFAULT_VM_IMAGE_RELEASE}.",
    )
    sha256: Annotated[StrictStr, AfterValidator(_sha256)] | None = Field(
        None, description="SHA-256 of that image, a digest you can cite: a download that differs is refused and"
        " no SHA256SUMS is fetched. Default none: each hypervisor fetches SHA256SUMS and SHA256SUMS.gpg from the"
        " image's directory, verifies the signature with gpgv against Ubuntu's cloud image signing key pinned in"
        f" hakube (UEC Image Automatic Signing Key, {UBUNTU_CLOUD_IMAGE_KEY_FINGERPRINT}), and refuses an image"
        " whose digest differs from the signed line for its file name (or that has no such line).",
    )

    @property
    def file_name(self) -> str:
        """The image's name in its directory: the name SHA256SUMS lists it under."""
        return urlsplit(self.url).path.rsplit("/", 1)[-1]

    @property
    def sums_url(self) -> str:
        """The publisher's SHA256SUMS beside the image (its signature: this URL + ".gpg")."""
        return self.url.rsplit("/", 1)[0] + "/" + SIGNED_SUMS_NAME

    @model_validator(mode="after")
    def _signed_sums_need_a_file_name(self) -> VmImage:
        # Without a digest the image is looked up by name in the SHA256SUMS beside it.
        parts = urlsplit(self.url)
        if self.sha256 is None and (parts.query or parts.fragment or not self.file_name):
            raise ValueError(f"{self.url} does not end in a file name to look up in the SHA256SUMS beside it;"
                             " give the image's own URL, or set vmImage.sha256")
        return self


class Cluster(Strict):
    name: DnsLabel = Field(description="Cluster name (a DNS label).")
    profile: Literal["standard", "edge"] = Field(
        "standard", description="edge: 2-3 nodes with every role; relaxes quorum to advisory."
    )
    kubernetes_version: Version = Field(
        DEFAULT_VERSION, description=f"Full x.y.z Kubernetes version of a supported minor ({supported_minors()})."
        f" Default {DEFAULT_VERSION}, the newest known patch of the newest minor."
    )
    ssh: Ssh
    network: NetworkConfig
    api_endpoint: ApiEndpoint
    load_balancer: LoadBalancer
    hypervisors: list[Hypervisor] = Field(default_factory=list, description="libvirt/KVM hosts.")
    control_plane: ControlPlane
    workers: list[Worker] = Field(default_factory=list, description="Bare-metal worker nodes.")
    addons: Addons = Field(default_factory=Addons)
    packages: Packages = Field(default_factory=Packages)
    vm_image: VmImage = Field(
        default_factory=VmImage, description="Base image of control-plane VMs and how each hypervisor checks it:"
        " the publisher's signed SHA256SUMS by default, or a SHA-256 you give."
    )
    upgrade: Upgrade = Field(default_factory=Upgrade, description="How a kubernetesVersion change is rolled out.")
    certificates: Certificates = Field(
        default_factory=Certificates, description="Control-plane certificate checks and renewal."
    )

    # Derived facts, so every consumer answers these questions the same way.
    @property
    def apiserver_port(self) -> int:
        if self.control_plane.apiserver_port is not None:
            return self.control_plane.apiserver_port
        return 6444 if self.load_balancer.placement == "stacked" else self.api_endpoint.port

    @property
    def minor(self) -> int:
        return int(self.kubernetes_version.split(".")[1])

    @property
    def first_control_plane(self) -> ControlPlaneNode:
        return self.control_plane.nodes[0]

    def hypervisor(self, name: str) -> Hypervisor:
        return next(h for h in self.hypervisors if h.name == name)

    def lb_address(self, node: LbNode) -> ipaddress.IPv4Address:
        """An LB node's address; stacked nodes borrow their control-plane node's."""
        if node.address is not None:
            return node.address
        return next(cp.address for cp in self.control_plane.nodes if cp.name == node.name)

    def bare_metal_nodes(self) -> list[ControlPlaneNode | Worker]:
        """Kubernetes nodes reached directly over SSH (not VMs): prerequisites run on them."""
        return [cp for cp in self.control_plane.nodes if not cp.is_vm] + list(self.workers)
