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

from policies.contract import PLAIN_TEXT_PROVIDER
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


def _archive_mirror(value: str) -> str:
    return _url(value, ("http", "https"), "an Ubuntu archive mirror URL")


class Packages(Strict):
    kubernetes_apt_source: StrictStr | None = Field(
        None, description="One-line apt source for kubelet/kubeadm/kubectl (the Kubernetes project's"
        " repository for your minor, or a mirror). Default: the hosts' configured apt sources."
    )
    ubuntu_mirror: Annotated[StrictStr, AfterValidator(_archive_mirror)] | None = Field(
        None, description="Ubuntu archive mirror (http://apt.site.example/ubuntu) that control-plane VMs' apt uses"
        " for the primary and security archives (cloud-init `apt`); containerd and the other Ubuntu packages come"
        " from there. Bare-metal hosts keep their own apt sources. Default: the cloud image's.",
    )


# --- sites without the internet: registry mirrors, an image repository, a proxy, local charts ----
# (configs/registries.py, configs/images.py, configs/proxy.py render them; README "Sites without the internet")
# A registry host as image references name it (docker.io, registry.site.example:5000): a lower-case DNS name
# or IPv4 address, optionally with a port.
_HOST_NAME = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
_REGISTRY_HOST = re.compile(rf"{_HOST_NAME}(:[0-9]{{1,5}})?")
ANY_REGISTRY = "*"  # the registries.mirrors key for every registry (containerd's _default namespace)
# An image repository prefix: a registry host and optional path components (OCI distribution names).
_REPOSITORY = re.compile(rf"{_HOST_NAME}(:[0-9]{{1,5}})?(/[a-z0-9]+([._-][a-z0-9]+)*)*")
# no_proxy entries: a host or domain (.example.com, *.example.com), optionally with a port.
_NO_PROXY_NAME = re.compile(r"(\*?\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                            r"[A-Za-z0-9])?)*\.?(:[0-9]{1,5})?")
# A Pulumi config key of this project (hakube:<key>) holding a secret.
_CONFIG_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# hakube's own keys: a registry password may not reuse one.
HAKUBE_KEYS = ("cluster", "sshPrivateKey", "etcdBackupSshKey", "vrrpPassword")
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def registry_host(value: str) -> str:
    """`value` when it is a registry host name (host[:port]); ValueError saying why not otherwise."""
    match = _REGISTRY_HOST.fullmatch(value)
    port = value.rpartition(":")[2] if ":" in value else "443"
    if not match or not 1 <= int(port) <= 65535 or len(value) > 253:
        raise ValueError(f"{value!r} is not a registry host name (lower-case host[:port], e.g. docker.io or"
                         " registry.site.example:5000)")
    return value


def _url(value: str, schemes: tuple[str, ...], what: str, *, path: bool = True) -> str:
    """`value` when it is a scheme://host[:port][/path] URL of one of `schemes`, with no user, query or fragment."""
    parts = urlsplit(value)
    shown = " or ".join(f"{s}://" for s in schemes)
    if parts.scheme not in schemes or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not {what} ({shown}host[:port]{'[/path]' if path else ''})")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{value!r} carries credentials; they would land in plain files (give them as secrets)")
    if parts.query or parts.fragment or (not path and parts.path not in ("", "/")):
        raise ValueError(f"{value!r} is not {what}: no {'path, ' if not path else ''}query or fragment")
    try:
        parts.port  # noqa: B018  (raises ValueError for a port out of range or not a number)
    except ValueError:
        raise ValueError(f"{value!r} has a bad port") from None
    registry_host(parts.netloc.lower())
    return value.rstrip("/")


def registry_endpoint(value: str) -> str:
    return _url(value, ("https", "http"), "a registry endpoint URL")


def _proxy_url(value: str) -> str:
    return _url(value, ("http", "https"), "a proxy URL", path=False)


def _chart_repository(value: str) -> str:
    return _url(value, ("https", "http", "oci"), "a Helm repository URL or OCI registry path")


def _manifest_source(value: str) -> str:
    if value.startswith("/") and not any(c.isspace() for c in value):
        return value
    return _url(value, ("https", "http"), "an http(s) URL or an absolute path of a manifest")


def _image_repository(value: str) -> str:
    text = value.rstrip("/")
    if not _REPOSITORY.fullmatch(text):
        raise ValueError(f"{value!r} is not an image repository (host[:port][/path], no scheme, e.g."
                         " registry.site.example:5000/k8s)")
    registry_host(text.split("/", 1)[0])
    return text


def no_proxy_entry(value: str) -> str:
    """A no_proxy entry: a CIDR, an IP address, or a host or domain name (optionally with :port)."""
    if "/" in value:
        try:
            ipaddress.ip_network(value)
        except ValueError as err:
            raise ValueError(f"{value!r} is not a CIDR: {err}") from None
        return value
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _NO_PROXY_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a host name, domain (.example.com), IP address or CIDR")
    return value


def _pem(value: str) -> str:
    if PEM_CERTIFICATE not in value or "-----END CERTIFICATE-----" not in value:
        raise ValueError("is not a PEM certificate (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)")
    return value.strip() + "\n"


def _registry_user(value: str) -> str:
    # Sent as base64("user:password"): a ':' would end the user early.
    if not value or ":" in value or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a registry user name (no ':' or whitespace)")
    return value


def _secret_key(value: str) -> str:
    if not _CONFIG_KEY.fullmatch(value) or value in HAKUBE_KEYS:
        raise ValueError(f"{value!r} is not a free hakube config key name for a secret (letters, digits, '_', '-';"
                         f" not one of {', '.join(HAKUBE_KEYS)})")
    return value


class RegistryEndpoint(Strict):
    ca: Annotated[StrictStr, AfterValidator(_pem)] | None = Field(
        None, description="PEM CA certificate(s) the endpoint's TLS certificate chains to, as text; each node gets it"
        " beside the hosts.toml that names the endpoint. Default: the nodes' system trust store.",
    )
    username: Annotated[StrictStr, AfterValidator(_registry_user)] | None = Field(
        None, description="User containerd logs in to the endpoint as; the password is the Pulumi secret"
        " hakube:<passwordSecret>. Default: no login.",
    )
    password_secret: Annotated[StrictStr, AfterValidator(_secret_key)] = Field(
        "registryPassword", description="Name of the secret config key holding the password (`pulumi config set"
        " --secret hakube:registryPassword`). Default registryPassword.",
    )


class Registries(Strict):
    mirrors: dict[StrictStr, list[Annotated[StrictStr, AfterValidator(registry_endpoint)]]] = Field(
        default_factory=dict, description="Registry host (docker.io, registry.k8s.io, quay.io, ghcr.io, ... or \"*\""
        " for every registry) -> endpoints tried in order (https://registry.site.example:5000), written as"
        " containerd's /etc/containerd/certs.d/<host>/hosts.toml on every node. Default none.",
    )
    skip_fallback: StrictBool = Field(
        False, description="Never pull from the upstream registry: the last endpoint of each host becomes its"
        " server. Default false (upstream after every endpoint failed).",
    )
    endpoints: dict[StrictStr, RegistryEndpoint] = Field(
        default_factory=dict, description="Per-endpoint settings, by the endpoint URL used in mirrors. Default none.",
    )


class Images(Strict):
    repository: Annotated[StrictStr, AfterValidator(_image_repository)] | None = Field(
        None, description="Registry (and path) every image is pulled from instead of its upstream registry, each"
        " under its upstream path: kubeadm's imageRepository (control plane, etcd, CoreDNS, kube-proxy), the pause"
        " image, and each chart's image values. Set it before the first deployment. Default: upstream registries.",
    )


class Proxy(Strict):
    http: Annotated[StrictStr, AfterValidator(_proxy_url)] | None = Field(
        None, description="HTTP_PROXY for containerd, the kubelet and apt on every node (http://proxy:3128)."
        " Default none.",
    )
    https: Annotated[StrictStr, AfterValidator(_proxy_url)] | None = Field(
        None, description="HTTPS_PROXY for containerd, the kubelet and apt on every node. Default none.",
    )
    no_proxy: list[Annotated[StrictStr, AfterValidator(no_proxy_entry)]] = Field(
        default_factory=list, description="Added to the generated NO_PROXY (every control-plane and LB address, the"
        " VIP, the node, control-plane, pod and service CIDRs, localhost, 127.0.0.1, .svc, .cluster.local):"
        " hosts, domains (.site.example), IP addresses or CIDRs. Default none.",
    )

    @property
    def enabled(self) -> bool:
        return self.http is not None or self.https is not None


class Charts(Strict):
    repository: Annotated[StrictStr, AfterValidator(_chart_repository)] | None = Field(
        None, description="Helm repository URL (https://charts.site.example) or OCI registry path"
        " (oci://registry.site.example/charts) holding every pinned chart under its own name and version, used"
        " instead of the upstream repositories. Default: upstream.",
    )
    gateway_api_crds: Annotated[StrictStr, AfterValidator(_manifest_source)] | None = Field(
        None, description="URL or absolute path (on the machine running Pulumi) of Gateway API's standard-install.yaml"
        " of the pinned release, for addons.gateway. Default: the release asset on github.com.",
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


# --- etcd snapshots (configs/etcd.py renders the timer; configs/etcd_recovery.py plans restores) ---
# A systemd time span ("12h", "1h 30min"): the timer then runs that long after the previous run.
_TIME_SPAN = re.compile(r"[1-9][0-9]{0,5}(s|min|h|d|w)( [1-9][0-9]{0,5}(s|min|h|d|w))*")
_TIME_SPAN_SECONDS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 604800}
MIN_SNAPSHOT_INTERVAL_S = 300  # a snapshot copies the whole keyspace: not more often than every 5 min
_CALENDAR_SHORTHANDS = frozenset({"minutely", "hourly", "daily", "weekly", "monthly", "yearly", "annually",
                                  "quarterly", "semiannually"})
_WEEKDAYS = r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*"
# systemd.time(7) calendar events: [weekdays] [date] [time] [UTC], e.g. "*-*-* 00/12:00:00", "Mon *-*-* 03:00".
_CALENDAR = re.compile(
    rf"({_WEEKDAYS}([,.]{{1,2}}{_WEEKDAYS})* )?"
    r"([0-9*][0-9*,./~-]*-[0-9*,./~-]+)?( ?[0-9*][0-9*,./]*:[0-9*,./:]+)?( UTC)?"
)
DEFAULT_SNAPSHOT_SCHEDULE = "*-*-* 00/12:00:00"  # every 12 h, at 00:00 and 12:00 (RKE2's and k3s' default)
# Remote directories go into a shell command on the target: a plain absolute path only.
_REMOTE_DIR = re.compile(r"/[A-Za-z0-9._/-]*")
_HOST_KEY = re.compile(r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}")


def time_span_seconds(value: str) -> int | None:
    """Seconds of a systemd time span as `schedule` accepts it ("12h", "1h 30min"), else None."""
    if not _TIME_SPAN.fullmatch(value):
        return None
    return sum(int(part.rstrip("sminhdw")) * _TIME_SPAN_SECONDS[part.lstrip("0123456789")] for part in value.split())


def _schedule(value: str) -> str:
    seconds = time_span_seconds(value)
    if seconds is not None:
        if seconds < MIN_SNAPSHOT_INTERVAL_S:
            raise ValueError(f"{value!r} is shorter than the shortest snapshot interval, 5min")
        return value
    if value in _CALENDAR_SHORTHANDS or (value.strip() == value and value and _CALENDAR.fullmatch(value)):
        return value
    raise ValueError(f"{value!r} is neither a systemd calendar event (e.g. '*-*-* 00/12:00:00', 'daily',"
                     " 'Mon *-*-* 03:00') nor an interval (e.g. '12h', '1h 30min')")


def _remote_dir(value: str) -> str:
    if not _REMOTE_DIR.fullmatch(value) or ".." in value.split("/") or value.rstrip("/") == "":
        raise ValueError(f"{value!r} is not an absolute directory of letters, digits, '.', '_', '-' and '/'"
                         " (no '..', not /)")
    return value.rstrip("/")


def _host_key(value: str) -> str:
    key = " ".join(value.split()[:2])  # a trailing comment is dropped
    if not _HOST_KEY.fullmatch(key):
        raise ValueError("is not an SSH public host key ('ssh-ed25519 AAAA...', as in"
                         " /etc/ssh/ssh_host_ed25519_key.pub)")
    return key


class BackupTarget(Strict):
    name: DnsLabel = Field(description="Host name of the backup target (e.g. a hypervisor), for messages and"
                           " file names; must not be a control-plane node.")
    address: Address | None = Field(
        None, description="Address the control-plane nodes reach its SSH server at. Default: the address of the"
        " hypervisor, worker or LB node of that name; required for any other host.",
    )
    port: Port = Field(22, description="SSH port of the target. Default 22.")
    user: Login = Field(description="Login on the target that owns `directory`; it authorizes the public half of"
                        " hakube:etcdBackupSshKey (a key of its own, not hakube:sshPrivateKey).")
    directory: Annotated[StrictStr, AfterValidator(_remote_dir)] = Field(
        description="Directory on the target; snapshots go to <directory>/<cluster>/<node>/ (created 0700)."
    )
    keep: StrictInt = Field(14, ge=1, le=1000, description="Snapshots kept on the target per control-plane node,"
                            " newest first. Default 14 (a week of the default schedule).")
    host_key: Annotated[StrictStr, AfterValidator(_host_key)] | None = Field(
        None, description="The target's SSH host public key, pinned in the nodes' known_hosts. Default: trust the"
        " key seen on the first copy (accept-new).",
    )


class EtcdSnapshots(Strict):
    enabled: StrictBool = Field(True, description="Scheduled snapshots on every control-plane node, and one before"
                                " each control-plane upgrade and control-plane node removal. Default true.")
    schedule: Annotated[StrictStr, AfterValidator(_schedule)] = Field(
        DEFAULT_SNAPSHOT_SCHEDULE, description="systemd OnCalendar event ('*-*-* 00/12:00:00', 'daily') or an"
        " interval between runs ('12h', '1h 30min', at least 5min). Default every 12 h, at 00:00 and 12:00.",
    )
    keep: StrictInt = Field(5, ge=1, le=1000, description="Snapshots kept on each node, newest first. Default 5.")
    target: BackupTarget | None = Field(
        None, description="Host every snapshot is copied to over SSH (off the node). Default none: snapshots stay"
        " on the nodes (a policy violation: advisory on edge, mandatory elsewhere).",
    )


class Etcd(Strict):
    snapshots: EtcdSnapshots = Field(default_factory=EtcdSnapshots, description="etcd snapshots and their"
                                     " off-node copies (restore: ./scripts/restore-etcd).")


# --- secrets at rest and the audit log (configs/apiserver.py renders both) ---
# The provider name that stores data in plain text: kube-apiserver's `identity`. Listed first, it is
# the write provider (encryption being turned off); it is always readable as the last provider.
IDENTITY = PLAIN_TEXT_PROVIDER
MAX_ENCRYPTION_KEYS = 4


def _key_names(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("names a key twice; each name is one key (its value is never reused)")
    if value[1:].count(IDENTITY):
        raise ValueError(f"'{IDENTITY}' may only come first (it is always readable as the last provider)")
    return value


class Encryption(Strict):
    enabled: StrictBool = Field(True, description="Secrets encrypted at rest in etcd (kube-apiserver's"
                                " EncryptionConfiguration, provider secretbox) on every control-plane node."
                                " Default true.")
    keys: Annotated[list[DnsLabel], Field(min_length=1, max_length=MAX_ENCRYPTION_KEYS),
                    AfterValidator(_key_names)] = Field(
        default_factory=lambda: ["key1"], description="Key names, the write key first; the others stay readable."
        " Each value is hakube:encryptionKeys.<name> (a Pulumi secret, base64 of 32 bytes) or, when that is"
        f" unset, generated once on the first control-plane node. '{IDENTITY}' first writes plain text. A"
        " rotation is three `pulumi up`s: add the new key last, move it first (every Secret is rewritten),"
        " drop the old one. Default [key1].",
    )


# Audit log files: kube-apiserver's own rotation (--audit-log-maxsize/-maxbackup/-maxage).
_LOG_PATH = re.compile(r"/var/log/[A-Za-z0-9._/-]+\.log")


def _log_path(value: str) -> str:
    if not _LOG_PATH.fullmatch(value) or ".." in value.split("/"):
        raise ValueError(f"{value!r} is not a .log file under /var/log/ (letters, digits, '.', '_', '-', '/')")
    return value


class Audit(Strict):
    enabled: StrictBool = Field(True, description="kube-apiserver's audit log on every control-plane node:"
                                " Metadata for every request except health and discovery endpoints (none);"
                                " never a request or response body. Default true.")
    path: Annotated[StrictStr, AfterValidator(_log_path)] = Field(
        "/var/log/kubernetes/audit/audit.log", description="Audit log file on each control-plane node (under"
        " /var/log/). Default /var/log/kubernetes/audit/audit.log.",
    )
    max_size_mb: StrictInt = Field(100, ge=1, le=10000, description="Size (MB) at which the log is rotated."
                                   " Default 100.")
    max_backups: StrictInt = Field(10, ge=1, le=1000, description="Rotated files kept. Default 10.")
    max_age_days: StrictInt = Field(30, ge=1, le=3650, description="Days a rotated file is kept. Default 30.")


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
    etcd: Etcd = Field(default_factory=Etcd, description="etcd data safety: snapshots, off-node copies.")
    encryption: Encryption = Field(default_factory=Encryption, description="Secrets encrypted at rest, and key"
                                   " rotation.")
    audit: Audit = Field(default_factory=Audit, description="kube-apiserver's audit log.")
    registries: Registries = Field(default_factory=Registries, description="Registry mirrors for containerd.")
    images: Images = Field(default_factory=Images, description="Where the cluster's images come from.")
    proxy: Proxy = Field(default_factory=Proxy, description="An HTTP proxy for containerd, the kubelet and apt.")
    charts: Charts = Field(default_factory=Charts, description="Where the pinned charts and manifests come from.")

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
