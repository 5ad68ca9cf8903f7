"""kubeadm and kubelet configuration of every node, built as data and dumped with PyYAML.

What lands on a node (`node_files`), all placed before `kubeadm init`/`join` runs:
- `/etc/kubernetes/kubeadm/init.yaml` on the first control-plane node: InitConfiguration,
  ClusterConfiguration and the cluster-wide KubeletConfiguration (kubeadm stores the last two in
  the `kubeadm-config` and `kubelet-config` ConfigMaps that every later join and upgrade reads);
- `/etc/kubernetes/kubeadm/upgrade.yaml` on every node: the UpgradeConfiguration that
  configs/scripts/kubeadm-upgrade.sh hands `kubeadm upgrade apply/plan --config` (the first
  control-plane node) or `kubeadm upgrade node --config` (every other node): the target version
  and the patches directory, so an upgrade re-applies the node's patches (without them `kubeadm
  upgrade node` rewrites the kubelet configuration from the cluster-wide one, dropping the node's
  reserved CPUs, and the kubelet refuses to start against its CPU manager checkpoint);
- `/etc/kubernetes/kubeadm/join.yaml` on every other node: a JoinConfiguration whose secrets are
  placeholders (`"${JOIN_TOKEN}"`, `"${CA_CERT_HASH}"`, `"${CERTIFICATE_KEY}"`). The file holds no
  secret; configs/scripts/kubeadm-join.sh substitutes the values from its environment into a 0600
  file under /run that it deletes after the join, so a secret is never in a file we keep, in a
  Pulumi input that is not secret, or in any argv;
- `/etc/kubernetes/patches/`: kubeadm patches, applied by init, join and every upgrade. Per node
  the kubelet's `reservedSystemCPUs` (kubeletconfiguration target), and on control-plane nodes
  the four static pods with requests == limits, which puts them in the Guaranteed QoS class.

Every supported minor speaks kubeadm.k8s.io/v1beta4 (topology/versions.py): `extraArgs` and
`kubeletExtraArgs` are lists of {name, value}; timeouts, where one is set, go in its `timeouts` block.

Certificate keys are never rendered: `kubeadm init --upload-certs` makes its own, and each
control-plane join gets a fresh one from `kubeadm init phase upload-certs --upload-certs` on the
first node (configs/scripts/kubeadm-token.sh), as kubeadm deletes uploaded certs after two hours.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from configs import apiserver
from configs.containerd import CRI_SOCKET
from configs.images import kubeadm_image_fields
from configs.loadbalancer import backend_drain_s
from configs.remote import Script
from configs.vm import ETCD_MOUNT
from configs.yamltext import Quoted, dump
from policies.contract import (
    BOOTSTRAP_TOKEN,
    CA_CERT_HASH,
    CERTIFICATE_KEY,
    CONTROL_PLANE_KEY,
    CONTROL_PLANE_TAINT_EFFECT,
    CPU_MANAGER_OPTIONS,
    KUBEADM_DIR,
    PATCHES_DIR,
    STATIC_PODS,
)
from topology.model import Cluster, ControlPlaneNode, Worker
from topology.sizing import NODE_HEADROOM, STATIC_POD_SIZES, Size, static_pod_budget
from topology.sizing import node_capacity as node_capacity
from topology.sizing import total as _total
from topology.versions import KUBEADM_API_VERSION

Node = ControlPlaneNode | Worker

INIT_CONFIG_PATH = f"{KUBEADM_DIR}/init.yaml"
JOIN_CONFIG_PATH = f"{KUBEADM_DIR}/join.yaml"
UPGRADE_CONFIG_PATH = f"{KUBEADM_DIR}/upgrade.yaml"
# A stopping kube-apiserver (SIGTERM: an upgrade, a manifest change) fails /readyz at once but keeps
# serving this long, so HAProxy marks it down before its listener closes: no client request is reset
# (measured in tests/lab/test_failover_real_netns.py). kubeadm sets none; without it one request in ~100 failed.
APISERVER_SHUTDOWN_DELAY_S = math.ceil(backend_drain_s()) + 1
# Then the apiserver closes its watches itself (clients resume them through another apiserver) within
# this long. kubeadm sets none, and without it an open watch holds the stopping apiserver until its HTTP
# shutdown times out (--request-timeout, 60 s): past the kubelet's 30 s grace, so the kubelet SIGKILLs
# it on every upgrade (measured in tests/lab/test_failover_real_netns.py: a watch open, no exit within 40 s).
# Delay + this stay well inside the kubelet's grace.
APISERVER_WATCH_TERMINATION_GRACE_S = 10
# The kubelet's SIGTERM-to-SIGKILL time for a pod that names none (kubeadm's static pods name none).
KUBELET_DEFAULT_GRACE_S = 30
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"  # kubeadm's; configs/scripts/lib.sh admin_kubeconfig
# hakube's record of the node's kubelet configuration; kubelet-cpu-manager.sh applies its CPU
# manager fields to the file kubeadm owns (/var/lib/kubelet/config.yaml) once the node has joined.
KUBELET_RECORD_PATH = "/var/lib/kubelet/hakube-config.yaml"
# Run in the same step as the files are placed: a later change of the node's reserved CPUs or the
# cluster's CPU manager policy reaches a running kubelet; before the join, kubeadm writes the file.
APPLY_KUBELET_RECORD = Script("kubelet-cpu-manager.sh", {"KUBELET_RECORD": KUBELET_RECORD_PATH})
# Written by kubeadm at init/join from the kubelet-config ConfigMap plus the node's patch;
# configs/scripts/kubelet-cpu-manager.sh keeps its CPU manager fields in line afterwards.
KUBELET_CONFIG_PATH = "/var/lib/kubelet/config.yaml"
KUBELET_API_VERSION = "kubelet.config.k8s.io/v1beta1"
CONTROL_PLANE_TAINT = {"key": CONTROL_PLANE_KEY, "effect": CONTROL_PLANE_TAINT_EFFECT}
# kubeadm init creates a bootstrap token whatever the config says (24 h by default); hakube never
# uses it (each join gets a fresh one), so it expires soon.
INIT_TOKEN_TTL = "15m0s"
CLUSTER_DOMAIN = "cluster.local"
# The kubelet config's default reservation; every node's patch replaces it with its reservedCpus.
DEFAULT_RESERVED_CPUS = "0"
# Static CPU manager options (both GA by 1.35) on every node: full-pcpus-only gives a Guaranteed
# container whole physical cores (no sibling hyperthread shared with another pod), and
# strict-cpu-reservation keeps reservedSystemCPUs out of every pod's pool, Burstable and BestEffort
# included, not only out of the exclusive allocations.
CPU_MANAGER_POLICY_OPTIONS = dict.fromkeys(CPU_MANAGER_OPTIONS, "true")
# The kubelet's own hard eviction defaults (pkg/kubelet/eviction/defaults_linux.go), written out:
# the Memory Manager's reservedMemory must add up to exactly this memory.available threshold plus
# kubeReserved and systemReserved memory (none here), so the number is stated, not assumed.
EVICTION_HARD = {"memory.available": "100Mi", "nodefs.available": "10%", "nodefs.inodesFree": "5%",
                 "imagefs.available": "15%", "imagefs.inodesFree": "5%"}
STATIC_MEMORY_MANAGER = "Static"  # the kubelet's name for `memoryManager: static`
# The NUMA node the whole reservation sits on: every machine has a node 0, and the kubelet only
# checks the sum over nodes.
RESERVED_MEMORY_NUMA_NODE = 0

# Join secrets: environment variable of kubeadm-join.sh -> the placeholder written in join.yaml.
JOIN_SECRET_PLACEHOLDERS = {name: f"${{{name}}}" for name in ("JOIN_TOKEN", "CA_CERT_HASH", "CERTIFICATE_KEY")}
# What kubeadm-token.sh prints (one JSON line) -> kubeadm-join.sh's variable, with the value's shape.
JOIN_CREDENTIALS = {
    "token": ("JOIN_TOKEN", re.compile(BOOTSTRAP_TOKEN)),
    "caCertHash": ("CA_CERT_HASH", re.compile(CA_CERT_HASH)),
    "certificateKey": ("CERTIFICATE_KEY", re.compile(CERTIFICATE_KEY)),
}

STATIC_POD_COMPONENTS = STATIC_PODS  # kubeadm's patch targets, in rendering order
KUBELET_PATCH_NAME = "kubeletconfiguration+merge.yaml"


# Static pod sizes and the node budget live in topology/sizing.py: the topology rules refuse a node
# too small for them, so every stack file that loads renders.


def _args(args: dict[str, str]) -> list[dict[str, str]]:
    """Extra arguments as v1beta4 has them: a list of {name, value}."""
    return [{"name": name, "value": value} for name, value in args.items()]


def _head(kind: str) -> dict[str, Any]:
    return {"apiVersion": KUBEADM_API_VERSION, "kind": kind}


def _is_control_plane(cluster: Cluster, node: Node) -> bool:
    return any(cp.name == node.name for cp in cluster.control_plane.nodes)


def _taints(cluster: Cluster, node: Node) -> list[dict[str, str]]:
    # An explicit empty list: kubeadm taints a control-plane node when `taints` is absent (null).
    if _is_control_plane(cluster, node) and not cluster.control_plane.schedulable:
        return [dict(CONTROL_PLANE_TAINT)]
    return []


def _node_registration(cluster: Cluster, node: Node) -> dict[str, Any]:
    # node-ip is the address on the nodes network: workers and the CNI reach every node there
    # (workers have no leg on the control-plane network).
    return {
        "name": node.name,
        "criSocket": CRI_SOCKET,
        "taints": _taints(cluster, node),
        "kubeletExtraArgs": _args({"node-ip": str(node.address)}),
    }


def _api_endpoint(cluster: Cluster, node: ControlPlaneNode) -> dict[str, Any]:
    return {"advertiseAddress": str(node.control_plane_address), "bindPort": cluster.apiserver_port}


def _endpoint(cluster: Cluster) -> str:
    return f"{cluster.api_endpoint.vip}:{cluster.api_endpoint.port}"


def cert_sans(cluster: Cluster) -> list[str]:
    """The VIP, then every control-plane node's name and both addresses, each once."""
    sans = [str(cluster.api_endpoint.vip)]
    for cp in cluster.control_plane.nodes:
        sans += [cp.name, str(cp.address), str(cp.control_plane_address)]
    return list(dict.fromkeys(sans))


def cluster_dns(cluster: Cluster) -> str:
    """CoreDNS's Service address, as kubeadm picks it: the tenth address of the service range."""
    return str(cluster.network.service_cidr.network_address + 10)


def _cpu_manager_options() -> dict[str, str]:
    return {name: Quoted(value) for name, value in CPU_MANAGER_POLICY_OPTIONS.items()}


def _kubelet_base(cluster: Cluster, reserved_cpus: str) -> dict[str, Any]:
    # What kubeadm would default, written out so that kubeadm's file and ours agree field by field.
    return {
        "apiVersion": KUBELET_API_VERSION,
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "containerRuntimeEndpoint": CRI_SOCKET,
        # static: Guaranteed pods with whole CPUs get exclusive cores. The policy refuses to start
        # without a CPU reservation; reservedSystemCPUs is one (and is excluded from exclusive use).
        "cpuManagerPolicy": "static",
        "cpuManagerPolicyOptions": _cpu_manager_options(),
        "cpuManagerReconcilePeriod": "10s",
        "reservedSystemCPUs": Quoted(reserved_cpus),
        "evictionHard": {name: Quoted(value) for name, value in EVICTION_HARD.items()},
        "staticPodPath": "/etc/kubernetes/manifests",
        "clusterDNS": [cluster_dns(cluster)],
        "clusterDomain": CLUSTER_DOMAIN,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
        },
        "authorization": {"mode": "Webhook"},
        "rotateCertificates": True,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
    }


def reserved_memory_mib(config: dict[str, Any]) -> int:
    """What the kubelet's Node Allocatable reserves of memory under `config`: kubeReserved +
    systemReserved + the hard eviction threshold memory.available, in MiB (pkg/kubelet/cm
    GetNodeAllocatableReservation). The Static Memory Manager refuses to start unless its
    reservedMemory adds up to exactly this."""
    quantities = [(config.get(key) or {}).get("memory") for key in ("kubeReserved", "systemReserved")]
    quantities.append((config.get("evictionHard") or {}).get("memory.available"))
    return sum(_mebibytes(q) for q in quantities if q is not None)


def _mebibytes(quantity: str) -> int:
    if not quantity.endswith("Mi") or not quantity[:-2].isdigit():
        raise ValueError(f"{quantity!r}: hakube writes memory quantities in Mi")
    return int(quantity[:-2])


def _node_kubelet_fields(cluster: Cluster, node: Node) -> dict[str, Any]:
    """What the node's kubeletconfiguration patch sets: its reserved CPUs, the CPU manager options
    and, with `memoryManager: static`, the Static Memory Manager and the reservation it needs.

    The options are in the cluster-wide document too; the patch repeats them because `kubeadm
    upgrade` rewrites the kubelet file from the kubelet-config ConfigMap plus the patches, and the
    ConfigMap of a cluster made before them has none: without the patch an upgrade would drop them.
    """
    fields: dict[str, Any] = {"reservedSystemCPUs": Quoted(node.reserved_cpus),
                              "cpuManagerPolicyOptions": _cpu_manager_options()}
    if node.memory_manager == "static":
        reserved = reserved_memory_mib(_kubelet_base(cluster, node.reserved_cpus))
        fields["memoryManagerPolicy"] = STATIC_MEMORY_MANAGER
        # Keys in the order kubeadm writes them (sorted), so kubelet-cpu-manager.sh compares like with like.
        fields["reservedMemory"] = [{"limits": {"memory": f"{reserved}Mi"}, "numaNode": RESERVED_MEMORY_NUMA_NODE}]
    return fields


def kubelet_config(cluster: Cluster, node: Node) -> str:
    """The node's KubeletConfiguration: the cluster-wide one with the node's patch applied.

    kubeadm writes the equivalent to /var/lib/kubelet/config.yaml at init/join (ConfigMap + the
    node's patch), adding what it detects on the host (resolvConf under systemd-resolved).
    """
    return dump({**_kubelet_base(cluster, node.reserved_cpus), **_node_kubelet_fields(cluster, node)})


def kubelet_patch(cluster: Cluster, node: Node) -> str:
    """The node's kubeletconfiguration patch (JSON merge): _node_kubelet_fields."""
    return dump(_node_kubelet_fields(cluster, node))


def init_config(cluster: Cluster, node: ControlPlaneNode | None = None) -> str:
    """kubeadm init's configuration for `node`, by default the first control-plane node (no secrets in it)."""
    first = node or cluster.first_control_plane
    init = {
        **_head("InitConfiguration"),
        "bootstrapTokens": [{
            "groups": ["system:bootstrappers:kubeadm:default-node-token"],
            "usages": ["signing", "authentication"],
            "ttl": INIT_TOKEN_TTL,
            "description": "kubeadm init's own token; hakube joins use fresh ones",
        }],
        "nodeRegistration": _node_registration(cluster, first),
        "localAPIEndpoint": _api_endpoint(cluster, first),
        "patches": {"directory": PATCHES_DIR},
    }
    network = cluster.network
    config = {
        **_head("ClusterConfiguration"),
        "clusterName": cluster.name,
        "kubernetesVersion": f"v{cluster.kubernetes_version}",
        "controlPlaneEndpoint": _endpoint(cluster),
        "networking": {
            "podSubnet": str(network.pod_cidr),
            "serviceSubnet": str(network.service_cidr),
            "dnsDomain": CLUSTER_DOMAIN,
        },
        "apiServer": {
            "certSANs": cert_sans(cluster),
            "extraArgs": _args({"shutdown-delay-duration": f"{APISERVER_SHUTDOWN_DELAY_S}s",
                                "shutdown-watch-termination-grace-period": f"{APISERVER_WATCH_TERMINATION_GRACE_S}s",
                                **apiserver.extra_args(cluster)}),
            # Encryption at rest and the audit log (configs/apiserver.py).
            "extraVolumes": apiserver.extra_volumes(cluster),
        },
        # On VMs this is the mount point of the dedicated etcd disk (configs/vm.py).
        "etcd": {"local": {"dataDir": ETCD_MOUNT}},
        # images.repository: imageRepository (and CoreDNS's), as the pause image containerd pins.
        **kubeadm_image_fields(cluster),
    }
    return dump(init, config, _kubelet_base(cluster, DEFAULT_RESERVED_CPUS))


def join_config(cluster: Cluster, node: Node, control_plane: bool) -> str:
    """kubeadm join's configuration for `node`, with placeholders where the secrets go."""
    if control_plane and not isinstance(node, ControlPlaneNode):
        raise ValueError(f"{node.name} is a worker; it cannot join as a control-plane node")
    secret = {name: Quoted(text) for name, text in JOIN_SECRET_PLACEHOLDERS.items()}
    join: dict[str, Any] = {
        **_head("JoinConfiguration"),
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": _endpoint(cluster),
                "token": secret["JOIN_TOKEN"],
                # The CA is pinned by its public key hash; never skip the check.
                "caCertHashes": [secret["CA_CERT_HASH"]],
                "unsafeSkipCAVerification": False,
            },
        },
        "nodeRegistration": _node_registration(cluster, node),
        "patches": {"directory": PATCHES_DIR},
    }
    if control_plane:
        assert isinstance(node, ControlPlaneNode)
        join["controlPlane"] = {
            "localAPIEndpoint": _api_endpoint(cluster, node),
            "certificateKey": secret["CERTIFICATE_KEY"],
        }
    return dump(join)


def upgrade_config(cluster: Cluster, node: Node) -> str:
    """The UpgradeConfiguration `kubeadm upgrade` reads on `node` (configs/scripts/kubeadm-upgrade.sh).

    Control-plane nodes carry `apply` and `plan` (the first one runs them; any may become the first
    when it is removed) and `node`; workers only `node`. Certificate renewal and the etcd upgrade are
    kubeadm's defaults, written out because hakube's certificate checks count on the renewal.
    """
    patches = {"directory": PATCHES_DIR}
    config: dict[str, Any] = {**_head("UpgradeConfiguration")}
    if _is_control_plane(cluster, node):
        target = f"v{cluster.kubernetes_version}"
        config["apply"] = {"kubernetesVersion": target, "certificateRenewal": True, "etcdUpgrade": True,
                           "patches": patches}
        config["plan"] = {"kubernetesVersion": target}
    config["node"] = {"certificateRenewal": True, "etcdUpgrade": True, "patches": dict(patches)}
    return dump(config)


def static_pod_sizes(node: ControlPlaneNode) -> tuple[str, dict[str, Size]]:
    """The largest tier of STATIC_POD_SIZES that fits the node's budget."""
    budget = static_pod_budget(node)
    for tier, sizes in STATIC_POD_SIZES:
        if _total(sizes).fits(budget):
            return tier, sizes
    smallest = _total(STATIC_POD_SIZES[-1][1])
    raise ValueError(
        f"{node.name}: the control-plane static pods need at least {smallest.cpu_milli}m CPU and"
        f" {smallest.memory_mib} MiB beyond reservedCpus and the node's headroom ({NODE_HEADROOM.cpu_milli}m,"
        f" {NODE_HEADROOM.memory_mib} MiB); the node leaves {budget.cpu_milli}m and {budget.memory_mib} MiB"
    )


def _quantity(size: Size) -> dict[str, str]:
    cpu = f"{size.cpu_milli // 1000}" if size.cpu_milli % 1000 == 0 else f"{size.cpu_milli}m"
    return {"cpu": Quoted(cpu), "memory": f"{size.memory_mib}Mi"}


def static_pod_patches(cluster: Cluster, node: ControlPlaneNode) -> dict[str, str]:
    """kubeadm patch file name -> strategic-merge patch giving the component requests == limits."""
    if not _is_control_plane(cluster, node):
        raise ValueError(f"{node.name} is not a control-plane node of {cluster.name}")
    _, sizes = static_pod_sizes(node)
    patches = {}
    for component in STATIC_POD_COMPONENTS:
        resources = _quantity(sizes[component])
        container = {"name": component, "resources": {"requests": resources, "limits": dict(resources)}}
        patches[f"{component}+strategic.yaml"] = dump({"spec": {"containers": [container]}})
    return patches


def node_patches(cluster: Cluster, node: Node) -> dict[str, str]:
    """Every patch file of the node's /etc/kubernetes/patches: the kubelet's, plus the static pods'."""
    patches = {KUBELET_PATCH_NAME: kubelet_patch(cluster, node)}
    if isinstance(node, ControlPlaneNode):
        patches.update(static_pod_patches(cluster, node))
    return patches


def node_files(cluster: Cluster, node: Node, runs_init: bool | None = None) -> dict[str, str]:
    """Absolute path on the node -> content, for every file placed before kubeadm init or join.

    `runs_init`: whether the node runs (ran) `kubeadm init`; by default the first control-plane node
    does (topology/bootstrap.py says which one did once the cluster exists).
    """
    if node.name == cluster.first_control_plane.name if runs_init is None else runs_init:
        assert isinstance(node, ControlPlaneNode)
        files = {INIT_CONFIG_PATH: init_config(cluster, node)}
    else:
        files = {JOIN_CONFIG_PATH: join_config(cluster, node, control_plane=isinstance(node, ControlPlaneNode))}
    files[UPGRADE_CONFIG_PATH] = upgrade_config(cluster, node)
    files.update({f"{PATCHES_DIR}/{name}": text for name, text in node_patches(cluster, node).items()})
    return files


def _flag(value: bool) -> str:
    return "true" if value else "false"


def token_env(node: str, control_plane: bool) -> dict[str, str]:
    """kubeadm-token.sh's environment on the admin node: credentials for `node`'s join."""
    return {"CONTROL_PLANE": _flag(control_plane), "NODE_NAME": node}


def join_env(control_plane: bool) -> dict[str, str]:
    """kubeadm-join.sh's (and its node-reset.sh's) plain environment; the credentials come as secrets."""
    return {"CONTROL_PLANE": _flag(control_plane)}


def membership_env(node: str) -> dict[str, str]:
    """node-registered.sh's (and the removal scripts') environment on the admin node."""
    return {"NODE_NAME": node, "MEMBER_NAME": node}


def join_credentials(stdout: str, control_plane: bool) -> dict[str, str]:
    """kubeadm-token.sh's JSON line -> kubeadm-join.sh's secret environment.

    Errors never quote the values: this runs on secrets.
    """
    try:
        data = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise ValueError("kubeadm-token.sh printed no JSON line") from None
    wanted = [key for key in JOIN_CREDENTIALS if control_plane or key != "certificateKey"]
    env = {}
    for key in wanted:
        name, shape = JOIN_CREDENTIALS[key]
        value = data.get(key)
        if not isinstance(value, str) or not shape.fullmatch(value):
            raise ValueError(f"kubeadm-token.sh's {key} is missing or malformed")
        env[name] = value
    return env
