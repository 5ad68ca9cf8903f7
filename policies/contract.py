"""Facts the policy pack and the program share: one home for each, imported by both.

A leaf module (standard library only): the pack runs in its own virtualenv with nothing of hakube
installed, so it can import this and nothing else of the program. The program, labs and tests
import it as `policies.contract`; the pack's modules as `.contract` (policies/__main__.py loads the
directory as the package `policies`). Copies that cannot import it (the bash scripts' regexes, the
lab's stand-in tools that run with `python -I`) are held to these values by tests/policies/test_contract.py.
"""

from __future__ import annotations

from collections.abc import Mapping

# -- resource types (docs/RESOURCES.md) ---------------------------------------------------------

COMPONENT_TYPE_PREFIX = "hakube:index:"  # components/base.py: every hakube ComponentResource


def component_type(kind: str) -> str:
    """The Pulumi type of hakube's `kind` component (`Node` -> hakube:index:Node)."""
    return f"{COMPONENT_TYPE_PREFIX}{kind}"


CLUSTER = component_type("Cluster")
NODE = component_type("Node")
HYPERVISOR = component_type("Hypervisor")
CONTROL_PLANE_VM = component_type("ControlPlaneVm")
LB_PAIR = component_type("LoadBalancerPair")
LB_HOST = component_type("LoadBalancerHost")
FILE_DROP = component_type("FileDrop")
FILE_SET = component_type("FileSet")
ETCD_SNAPSHOTS = component_type("EtcdSnapshots")
APISERVER_FILES = component_type("ApiserverFiles")
DOMAIN = "libvirt:index/domain:Domain"
VOLUME = "libvirt:index/volume:Volume"
CLOUDINIT_DISK = "libvirt:index/cloudInitDisk:CloudInitDisk"
NETWORK = "libvirt:index/network:Network"
COMMAND = "command:remote:Command"
K8S_PROVIDER = "pulumi:providers:kubernetes"

# Pod-template paths of the workload kinds the isolation rule reads.
WORKLOADS: Mapping[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

# -- control-plane isolation --------------------------------------------------------------------

CONTROL_PLANE_KEY = "node-role.kubernetes.io/control-plane"
# Taint keys and node labels that mean "control plane"; `master` is the pre-1.24 name, still refused
# so a manifest written for old clusters cannot slip through.
CONTROL_PLANE_KEYS = (CONTROL_PLANE_KEY, "node-role.kubernetes.io/master")
CONTROL_PLANE_TAINT_EFFECT = "NoSchedule"

HAKUBE_NAMESPACE = "hakube-system"
# Kubernetes' own namespaces and hakube's: their pods may run on control-plane nodes.
BASE_SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", HAKUBE_NAMESPACE)
# Namespaces the CNI's own pods run in (they tolerate every taint, so they must be exempt).
CNI_SYSTEM_NAMESPACES: Mapping[str, tuple[str, ...]] = {
    "calico": ("tigera-operator", "calico-system", "calico-apiserver"),
    "cilium": ("kube-system",),
    "flannel": ("kube-flannel",),
}
METALLB_NAMESPACE = "metallb-system"  # the speaker tolerates the control-plane taint
# Every namespace any hakube cluster exempts: the pack checks a stack without knowing its CNI, the
# in-cluster admission policy exempts its own cluster's subset (configs.addons.system_namespaces).
SYSTEM_NAMESPACES = frozenset(
    {*BASE_SYSTEM_NAMESPACES, *(ns for names in CNI_SYSTEM_NAMESPACES.values() for ns in names), METALLB_NAMESPACE})

# -- cpusets (topology/cpuset.py parses them for the program, the pack's _data.py for itself) ---

CPUSET_PART = r"([0-9]{1,12})(?:-([0-9]{1,12}))?"  # ASCII digits only (int() takes others too)
# Linux's NR_CPUS tops out at 8192; the cap also keeps "0-99999999999" from eating memory.
MAX_CORE = 8191

# -- kubeadm and the kubelet --------------------------------------------------------------------

KUBEADM_DIR = "/etc/kubernetes/kubeadm"  # every kubeadm config hakube places lives here
PATCHES_DIR = "/etc/kubernetes/patches"  # kubeadm `patches.directory`
# kubeadm's patch targets for the control-plane static pods, in the order hakube renders them.
STATIC_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
KUBEADM_DEFAULT_BIND_PORT = 6443
# Static CPU manager options every control-plane kubelet sets (GA from 1.33 and 1.35).
CPU_MANAGER_OPTIONS = ("full-pcpus-only", "strict-cpu-reservation")

# The shapes of kubeadm's credentials (regular expressions, unanchored): a bootstrap token, the
# CA certificate's public-key hash and the certificate key that encrypts uploaded certificates.
BOOTSTRAP_TOKEN = r"[a-z0-9]{6}\.[a-z0-9]{16}"
CA_CERT_HASH = r"sha256:[a-f0-9]{64}"
CERTIFICATE_KEY = r"[a-f0-9]{64}"

# -- etcd snapshots (configs/etcd.py) -----------------------------------------------------------

SNAPSHOT_UNIT = "hakube-etcd-snapshot"
SNAPSHOT_TIMER_PATH = f"/etc/systemd/system/{SNAPSHOT_UNIT}.timer"
SNAPSHOT_ENV_PATH = "/etc/hakube/etcd-snapshot.env"
# kube-apiserver's encryption configuration (configs/apiserver.py), the flag that names it, and the
# provider that stores plain text; the encryption-at-rest rule reads them.
APISERVER_CONFIG_DIR = "/etc/kubernetes/hakube"
ENCRYPTION_CONFIG_PATH = f"{APISERVER_CONFIG_DIR}/encryption-config.yaml"
ENCRYPTION_FLAG = "encryption-provider-config"
PLAIN_TEXT_PROVIDER = "identity"
