"""kubeadm init/join configs, kubelet configs and static-pod patches of every committed stack.

kubeadm itself is no Debian package, so the files are checked structurally: parsed back, every key
looked up in the fields kubeadm's v1beta4 types declare, and the values asserted against
the topology. The patches are applied (strategic merge by container name, as kubeadm does) to the
resource stanza kubeadm's own manifests carry, and the result must be in the Guaranteed QoS class.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from configs import kubeadm
from configs.loadbalancer import backend_drain_s
from dryrun.mockrun import REPO
from policies import contract
from tests.mockgraph import stack_graph
from topology import Cluster, ControlPlaneNode, load_stack_file
from topology.cpuset import parse_cpuset

STACKS = {name: load_stack_file(REPO / f"Pulumi.{name}.yaml") for name in ("dev", "edge", "prod")}
CP_NODES = [(stack, node) for stack, cluster in STACKS.items() for node in cluster.control_plane.nodes]
CP_IDS = [f"{stack}-{node.name}" for stack, node in CP_NODES]

# Fields of the kubeadm types hakube writes: the json tags of cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go
# (and bootstraptoken/v1) at v1.37.2, identical at v1.35.4 and v1.36.3, keyed by the document kind or
# by the field that holds each type (`apply`, `node`, `plan` of an UpgradeConfiguration); a typo, or a
# field v1beta4 dropped (apiServer.timeoutForControlPlane, discovery.timeout), fails the lookup.
KNOWN_FIELDS = {
    "InitConfiguration": {"apiVersion", "kind", "bootstrapTokens", "dryRun", "nodeRegistration", "localAPIEndpoint",
                          "certificateKey", "skipPhases", "patches", "timeouts"},
    "ClusterConfiguration": {"apiVersion", "kind", "etcd", "networking", "kubernetesVersion", "controlPlaneEndpoint",
                             "apiServer", "controllerManager", "scheduler", "dns", "proxy", "certificatesDir",
                             "imageRepository", "featureGates", "clusterName", "encryptionAlgorithm",
                             "certificateValidityPeriod", "caCertificateValidityPeriod"},
    "JoinConfiguration": {"apiVersion", "kind", "dryRun", "nodeRegistration", "caCertPath", "discovery", "controlPlane",
                          "skipPhases", "patches", "timeouts"},
    "UpgradeConfiguration": {"apiVersion", "kind", "apply", "diff", "node", "plan", "timeouts"},
    "apply": {"kubernetesVersion", "allowExperimentalUpgrades", "allowRCUpgrades", "certificateRenewal", "dryRun",
              "etcdUpgrade", "forceUpgrade", "ignorePreflightErrors", "patches", "printConfig", "skipPhases",
              "imagePullPolicy", "imagePullSerial"},
    "node": {"certificateRenewal", "dryRun", "etcdUpgrade", "ignorePreflightErrors", "skipPhases", "patches",
             "imagePullPolicy", "imagePullSerial"},
    "plan": {"kubernetesVersion", "allowExperimentalUpgrades", "allowRCUpgrades", "dryRun", "etcdUpgrade",
             "ignorePreflightErrors", "printConfig"},
    "timeouts": {"controlPlaneComponentHealthCheck", "kubeletHealthCheck", "kubernetesAPICall", "etcdAPICall",
                 "tlsBootstrap", "discovery", "upgradeManifests"},
    "nodeRegistration": {"name", "criSocket", "taints", "kubeletExtraArgs", "ignorePreflightErrors",
                         "imagePullPolicy", "imagePullSerial"},
    "kubeletExtraArgs": {"name", "value"},
    "bootstrapTokens": {"token", "description", "ttl", "expires", "usages", "groups"},
    "localAPIEndpoint": {"advertiseAddress", "bindPort"},
    "patches": {"directory"},
    "networking": {"serviceSubnet", "podSubnet", "dnsDomain"},
    "etcd": {"local", "external"},
    "local": {"imageRepository", "imageTag", "dataDir", "extraArgs", "extraEnvs", "serverCertSANs", "peerCertSANs"},
    "apiServer": {"extraArgs", "extraVolumes", "extraEnvs", "certSANs"},
    "discovery": {"bootstrapToken", "file", "tlsBootstrapToken"},
    "bootstrapToken": {"token", "apiServerEndpoint", "caCertHashes", "unsafeSkipCAVerification"},
    "controlPlane": {"localAPIEndpoint", "certificateKey"},
    "taints": {"key", "value", "effect", "timeAdded"},
}
TOKEN_LIKE = re.compile(f"{contract.BOOTSTRAP_TOKEN}|{contract.CERTIFICATE_KEY}")


def _docs(text: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text)}


def _unknown_fields(section: str, value: Any) -> list[str]:
    """Keys below `section` that the kubeadm type does not declare."""
    if isinstance(value, list):
        return [bad for item in value for bad in _unknown_fields(section, item)]
    if not isinstance(value, dict) or section not in KNOWN_FIELDS:
        return []
    bad = [f"{section}.{key}" for key in value if key not in KNOWN_FIELDS[section]]
    return bad + [b for key, sub in value.items() for b in _unknown_fields(key, sub)]


def _with(cluster: Cluster, **changes: Any) -> Cluster:
    return cluster.model_copy(update=changes)


def _with_version(cluster: Cluster, version: str) -> Cluster:
    return _with(cluster, kubernetes_version=version)


def _cp_join(cluster: Cluster, index: int) -> dict[str, Any]:
    return yaml.safe_load(kubeadm.join_config(cluster, cluster.control_plane.nodes[index], control_plane=True))


# ---------------------------------------------------------------------------------------------
# init and join configuration


@pytest.mark.parametrize("stack", STACKS)
def test_every_field_is_one_kubeadm_declares(stack: str) -> None:
    cluster = STACKS[stack]
    nodes = [*cluster.control_plane.nodes, *cluster.workers]
    texts = [kubeadm.init_config(cluster)] + [
        kubeadm.join_config(cluster, node, control_plane=isinstance(node, ControlPlaneNode)) for node in nodes[1:]
    ] + [kubeadm.upgrade_config(cluster, node) for node in nodes]
    kinds = set()
    for text in texts:
        for kind, doc in _docs(text).items():
            kinds.add(kind)
            if kind != "KubeletConfiguration":
                assert doc["apiVersion"] == "kubeadm.k8s.io/v1beta4", kind
                assert _unknown_fields(kind, doc) == [], kind
    assert kinds == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration", "JoinConfiguration",
                     "UpgradeConfiguration"}


def test_the_field_check_catches_what_v1beta4_dropped() -> None:
    dropped = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "JoinConfiguration",
               "discovery": {"timeout": "5m0s", "bootstrapToken": {"token": "x"}}}
    assert _unknown_fields("JoinConfiguration", dropped) == ["discovery.timeout"]
    cluster = {"kind": "ClusterConfiguration", "apiServer": {"timeoutForControlPlane": "4m0s"}}
    assert _unknown_fields("ClusterConfiguration", cluster) == ["apiServer.timeoutForControlPlane"]


@pytest.mark.parametrize(("stack", "endpoint", "bind_port"), [
    ("dev", "198.18.0.100:6443", 6443),  # external LB pair: the apiserver owns the endpoint port
    ("edge", "198.18.4.100:6443", 6444),  # stacked: HAProxy has 6443 on the same nodes
])
def test_endpoint_and_apiserver_bind_port(stack: str, endpoint: str, bind_port: int) -> None:
    cluster = STACKS[stack]
    docs = _docs(kubeadm.init_config(cluster))
    assert docs["ClusterConfiguration"]["controlPlaneEndpoint"] == endpoint
    first = cluster.first_control_plane
    assert docs["InitConfiguration"]["localAPIEndpoint"] == {
        "advertiseAddress": str(first.control_plane_address), "bindPort": bind_port}
    for index, node in enumerate(cluster.control_plane.nodes[1:], start=1):
        join = _cp_join(cluster, index)
        assert join["controlPlane"]["localAPIEndpoint"] == {
            "advertiseAddress": str(node.control_plane_address), "bindPort": bind_port}
        assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == endpoint


def test_cluster_configuration_of_dev() -> None:
    cluster = STACKS["dev"]
    config = _docs(kubeadm.init_config(cluster))["ClusterConfiguration"]
    assert config["kubernetesVersion"] == "v1.37.2"
    assert config["clusterName"] == "dev"
    assert config["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/12",
                                     "dnsDomain": "cluster.local"}
    assert config["etcd"] == {"local": {"dataDir": "/var/lib/etcd"}}
    sans = config["apiServer"]["certSANs"]
    assert sans[0] == "198.18.0.100"
    for name, addr, cp_addr in (("cp1", 21, 21), ("cp2", 22, 22), ("cp3", 23, 23)):
        assert {name, f"198.18.0.{addr}", f"198.18.1.{cp_addr}"} <= set(sans)
    assert len(sans) == len(set(sans)) == 10
    assert "198.18.0.41" not in sans  # workers are no apiserver


def test_a_stopping_apiserver_keeps_serving_until_haproxy_has_marked_it_down() -> None:
    for cluster in STACKS.values():
        args = _docs(kubeadm.init_config(cluster))["ClusterConfiguration"]["apiServer"]["extraArgs"]
        (delay,) = [a["value"] for a in args if a["name"] == "shutdown-delay-duration"]
        assert delay == "5s" and int(delay[:-1]) > backend_drain_s() == 3.5
        # Then it closes its watches itself, well inside the kubelet's 30 s grace before its SIGKILL.
        (watches,) = [a["value"] for a in args if a["name"] == "shutdown-watch-termination-grace-period"]
        assert watches == "10s" and int(delay[:-1]) + int(watches[:-1]) < kubeadm.KUBELET_DEFAULT_GRACE_S


@pytest.mark.parametrize("version", ["1.35.9", "1.36.5", "1.37.2"])
def test_every_supported_minor_speaks_v1beta4_with_list_shaped_args(version: str) -> None:
    cluster = _with_version(STACKS["dev"], version)
    docs = _docs(kubeadm.init_config(cluster))
    api = "kubeadm.k8s.io/v1beta4"
    assert docs["InitConfiguration"]["apiVersion"] == docs["ClusterConfiguration"]["apiVersion"] == api
    assert docs["InitConfiguration"]["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "198.18.0.21"}]
    assert docs["ClusterConfiguration"]["kubernetesVersion"] == f"v{version}"
    worker = yaml.safe_load(kubeadm.join_config(cluster, cluster.workers[0], control_plane=False))
    assert worker["apiVersion"] == api
    node_ip = {"name": "node-ip", "value": str(cluster.workers[0].address)}
    assert worker["nodeRegistration"]["kubeletExtraArgs"] == [node_ip]
    assert _unknown_fields("InitConfiguration", docs["InitConfiguration"]) == []


def test_upgrade_configuration_of_control_plane_nodes_and_workers() -> None:
    cluster = _with_version(STACKS["dev"], "1.37.2")
    patches = {"directory": "/etc/kubernetes/patches"}
    for node in cluster.control_plane.nodes:
        config = yaml.safe_load(kubeadm.upgrade_config(cluster, node))
        assert (config["apiVersion"], config["kind"]) == ("kubeadm.k8s.io/v1beta4", "UpgradeConfiguration")
        assert config["apply"] == {"kubernetesVersion": "v1.37.2", "certificateRenewal": True, "etcdUpgrade": True,
                                   "patches": patches}
        assert config["plan"] == {"kubernetesVersion": "v1.37.2"}
        assert config["node"] == {"certificateRenewal": True, "etcdUpgrade": True, "patches": patches}
    worker = yaml.safe_load(kubeadm.upgrade_config(cluster, cluster.workers[0]))
    # `kubeadm upgrade node` on a worker rewrites its kubelet configuration: the patches keep its own fields.
    assert set(worker) == {"apiVersion", "kind", "node"} and worker["node"]["patches"] == patches
    assert "v1.36.5" in kubeadm.upgrade_config(_with_version(cluster, "1.36.5"), cluster.control_plane.nodes[1])


def test_node_registration_of_every_node() -> None:
    cluster = STACKS["dev"]
    init = _docs(kubeadm.init_config(cluster))["InitConfiguration"]
    assert init["nodeRegistration"]["name"] == "cp1"
    assert init["nodeRegistration"]["criSocket"] == "unix:///var/run/containerd/containerd.sock"
    assert init["patches"] == {"directory": "/etc/kubernetes/patches"}
    for worker in cluster.workers:
        join = yaml.safe_load(kubeadm.join_config(cluster, worker, control_plane=False))
        assert join["nodeRegistration"]["name"] == worker.name
        assert join["nodeRegistration"]["kubeletExtraArgs"] == [{"name": "node-ip", "value": str(worker.address)}]
        assert join["patches"] == {"directory": "/etc/kubernetes/patches"}
        assert "controlPlane" not in join


def test_control_plane_taint_in_dev_and_none_on_a_schedulable_edge() -> None:
    taint = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    dev = STACKS["dev"]
    assert _docs(kubeadm.init_config(dev))["InitConfiguration"]["nodeRegistration"]["taints"] == taint
    assert _cp_join(dev, 1)["nodeRegistration"]["taints"] == taint
    worker = yaml.safe_load(kubeadm.join_config(dev, dev.workers[0], control_plane=False))
    assert worker["nodeRegistration"]["taints"] == []

    edge = STACKS["edge"]
    assert edge.control_plane.schedulable
    # An explicit empty list: kubeadm would add the taint for a missing (null) one.
    assert _docs(kubeadm.init_config(edge))["InitConfiguration"]["nodeRegistration"]["taints"] == []
    assert _cp_join(edge, 2)["nodeRegistration"]["taints"] == []

    tainted_edge = _with(edge, control_plane=edge.control_plane.model_copy(update={"schedulable": False}))
    assert _docs(kubeadm.init_config(tainted_edge))["InitConfiguration"]["nodeRegistration"]["taints"] == taint


def test_join_configs_carry_placeholders_never_secrets() -> None:
    cluster = STACKS["dev"]
    worker = yaml.safe_load(kubeadm.join_config(cluster, cluster.workers[0], control_plane=False))
    token = worker["discovery"]["bootstrapToken"]
    assert token["token"] == "${JOIN_TOKEN}"
    assert token["caCertHashes"] == ["${CA_CERT_HASH}"]
    assert token["unsafeSkipCAVerification"] is False
    assert _cp_join(cluster, 1)["controlPlane"]["certificateKey"] == "${CERTIFICATE_KEY}"
    every_file = [text for stack in STACKS.values() for node in [*stack.control_plane.nodes, *stack.workers]
                  for text in kubeadm.node_files(stack, node).values()]
    assert not [text for text in every_file if TOKEN_LIKE.search(text)]
    assert not any("certificateKey" in text for text in (kubeadm.init_config(s) for s in STACKS.values()))


def test_a_worker_cannot_join_as_control_plane() -> None:
    cluster = STACKS["dev"]
    with pytest.raises(ValueError, match="w1 is a worker"):
        kubeadm.join_config(cluster, cluster.workers[0], control_plane=True)


def test_init_token_expires_soon() -> None:
    init = _docs(kubeadm.init_config(STACKS["prod"]))["InitConfiguration"]
    (token,) = init["bootstrapTokens"]
    assert "token" not in token  # kubeadm generates it; hakube never uses it
    assert token["ttl"] == "15m0s"


# ---------------------------------------------------------------------------------------------
# kubelet


@pytest.mark.parametrize("stack", STACKS)
def test_kubelet_configuration(stack: str) -> None:
    cluster = STACKS[stack]
    cluster_wide = _docs(kubeadm.init_config(cluster))["KubeletConfiguration"]
    for node in [*cluster.control_plane.nodes, *cluster.workers]:
        config = yaml.safe_load(kubeadm.kubelet_config(cluster, node))
        assert config["apiVersion"] == "kubelet.config.k8s.io/v1beta1"
        assert config["cgroupDriver"] == "systemd"
        assert config["cpuManagerPolicy"] == "static"
        # Whole physical cores for Guaranteed pods; the reserved CPUs out of every pod's pool.
        assert config["cpuManagerPolicyOptions"] == {"full-pcpus-only": "true", "strict-cpu-reservation": "true"}
        assert config["reservedSystemCPUs"] == node.reserved_cpus  # a string, also for "0"
        assert "memoryManagerPolicy" not in config and "reservedMemory" not in config  # default: None
        assert parse_cpuset(config["reservedSystemCPUs"])  # the static policy needs a reservation
        assert config["clusterDNS"] == ["10.96.0.10"]
        assert config["authentication"]["anonymous"] == {"enabled": False}
        assert config["authorization"] == {"mode": "Webhook"}
        # The cluster-wide document plus the node's patch is the node's configuration.
        patch = yaml.safe_load(kubeadm.node_patches(cluster, node)[kubeadm.KUBELET_PATCH_NAME])
        assert {**cluster_wide, **patch} == config
        # kubeadm upgrade rebuilds the kubelet file from the ConfigMap and the patches: what must
        # survive an upgrade of a cluster whose ConfigMap predates it is in the patch.
        assert patch["cpuManagerPolicyOptions"] == config["cpuManagerPolicyOptions"]


@pytest.mark.parametrize("index", [0, 1])
def test_a_static_memory_manager_reserves_exactly_what_node_allocatable_does(index: int) -> None:
    dev = STACKS["dev"]
    node = [dev.control_plane.nodes[0], dev.workers[0]][index].model_copy(update={"memory_manager": "static"})
    config = yaml.safe_load(kubeadm.kubelet_config(dev, node))
    patch = yaml.safe_load(kubeadm.node_patches(dev, node)[kubeadm.KUBELET_PATCH_NAME])
    assert patch["memoryManagerPolicy"] == config["memoryManagerPolicy"] == "Static"
    # The kubelet's rule: reservedMemory sums to kubeReserved + systemReserved + evictionHard memory.available.
    reserved = [config.get(k, {}).get("memory", "0Mi") for k in ("kubeReserved", "systemReserved")]
    expected = sum(_mib(q) for q in [config["evictionHard"]["memory.available"], *reserved])
    wanted = [{"limits": {"memory": f"{expected}Mi"}, "numaNode": 0}]
    assert patch["reservedMemory"] == config["reservedMemory"] == wanted
    assert expected == 100
    # Other nodes keep the default policy: the setting is per node.
    assert "memoryManagerPolicy" not in yaml.safe_load(kubeadm.kubelet_config(dev, dev.workers[1]))


def test_reserved_memory_adds_every_reservation() -> None:
    config = {"kubeReserved": {"memory": "512Mi"}, "systemReserved": {"memory": "256Mi"},
              "evictionHard": {"memory.available": "100Mi"}}
    assert kubeadm.reserved_memory_mib(config) == 868
    with pytest.raises(ValueError, match="in Mi"):
        kubeadm.reserved_memory_mib({"evictionHard": {"memory.available": "5%"}})


def test_edge_nodes_reserve_two_cpus() -> None:
    edge = STACKS["edge"]
    assert {yaml.safe_load(kubeadm.kubelet_config(edge, n))["reservedSystemCPUs"]
            for n in edge.control_plane.nodes} == {"0-1"}


# ---------------------------------------------------------------------------------------------
# static pod patches

# The resources of kubeadm's own static pod manifests (cmd/kubeadm/app/phases/controlplane, etcd).
KUBEADM_DEFAULT_RESOURCES = {
    "kube-apiserver": {"requests": {"cpu": "250m"}},
    "kube-controller-manager": {"requests": {"cpu": "200m"}},
    "kube-scheduler": {"requests": {"cpu": "100m"}},
    "etcd": {"requests": {"cpu": "100m", "memory": "100Mi"}},
}


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge, enough for pods: maps merge, `containers` merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in patch.items()}}
    if isinstance(base, list) and isinstance(patch, list) and all("name" in c for c in base + patch):
        merged = {c["name"]: c for c in base}
        for c in patch:
            merged[c["name"]] = _merge(merged.get(c["name"]), c)
        return list(merged.values())
    return patch


def _qos_class(pod: dict[str, Any]) -> str:
    """Kubernetes' rule (pkg/apis/core/helper/qos): Guaranteed when every container has cpu and
    memory limits and its requests equal them."""
    containers = pod["spec"]["containers"]
    if all(set(c["resources"].get("limits", {})) >= {"cpu", "memory"}
           and c["resources"].get("requests", c["resources"]["limits"]) == c["resources"]["limits"]
           for c in containers):
        return "Guaranteed"
    return "Burstable"


def _millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(quantity) * 1000


def _mib(quantity: str) -> int:
    assert quantity.endswith("Mi"), quantity
    return int(quantity[:-2])


@pytest.mark.parametrize(("stack", "node"), CP_NODES, ids=CP_IDS)
def test_patches_make_every_static_pod_guaranteed(stack: str, node: ControlPlaneNode) -> None:
    patches = kubeadm.static_pod_patches(STACKS[stack], node)
    assert sorted(patches) == sorted(f"{c}+strategic.yaml" for c in kubeadm.STATIC_POD_COMPONENTS)
    for component, default in KUBEADM_DEFAULT_RESOURCES.items():
        manifest = {"spec": {"containers": [{"name": component, "image": "x", "resources": default}]}}
        assert _qos_class(manifest) == "Burstable"
        patched = _merge(manifest, yaml.safe_load(patches[f"{component}+strategic.yaml"]))
        (container,) = patched["spec"]["containers"]
        assert container["image"] == "x"  # merged into kubeadm's container, not a second one
        assert container["resources"]["requests"] == container["resources"]["limits"]
        assert _qos_class(patched) == "Guaranteed", component


@pytest.mark.parametrize(("stack", "node"), CP_NODES, ids=CP_IDS)
def test_static_pods_fit_the_node(stack: str, node: ControlPlaneNode) -> None:
    cpus, memory_gib = kubeadm.node_capacity(node)
    resources = [yaml.safe_load(text)["spec"]["containers"][0]["resources"]["limits"]
                 for text in kubeadm.static_pod_patches(STACKS[stack], node).values()]
    cpu = sum(_millicores(r["cpu"]) for r in resources)
    memory = sum(_mib(r["memory"]) for r in resources)
    usable_cpu = (cpus - len(parse_cpuset(node.reserved_cpus))) * 1000
    # Room stays for DaemonSets and the OS on top of the four pods.
    assert cpu + kubeadm.NODE_HEADROOM.cpu_milli <= usable_cpu
    assert memory + kubeadm.NODE_HEADROOM.memory_mib <= memory_gib * 1024
    # The apiserver and etcd always get whole cores when there are enough for them.
    apiserver = yaml.safe_load(kubeadm.static_pod_patches(STACKS[stack], node)["kube-apiserver+strategic.yaml"])
    if usable_cpu >= 3000:
        assert _millicores(apiserver["spec"]["containers"][0]["resources"]["limits"]["cpu"]) % 1000 == 0


def test_tiers_by_node_size() -> None:
    dev, edge, prod = STACKS["dev"], STACKS["edge"], STACKS["prod"]
    assert kubeadm.static_pod_sizes(dev.control_plane.nodes[0])[0] == "small"  # 4 vCPUs, 1 reserved
    assert kubeadm.static_pod_sizes(prod.control_plane.nodes[0])[0] == "medium"  # 6 vCPUs, 1 reserved
    assert kubeadm.static_pod_sizes(edge.control_plane.nodes[0])[0] == "medium"  # 8 CPUs declared, 2 reserved
    undeclared = edge.control_plane.nodes[0].model_copy(update={"cpus": None, "memory_gib": None})
    assert kubeadm.static_pod_sizes(undeclared)[0] == "minimal"  # assumed 4 CPUs, 2 reserved
    big = dev.control_plane.nodes[0].model_copy(update={"cpus": 12, "memory_gib": 32})
    tier, sizes = kubeadm.static_pod_sizes(big)
    assert tier == "large" and all(s.cpu_milli % 1000 == 0 for s in sizes.values())
    tiny = dev.control_plane.nodes[0].model_copy(update={"cpus": 2})
    with pytest.raises(ValueError, match="cp1: the control-plane static pods need at least 1300m"):
        kubeadm.static_pod_sizes(tiny)


def test_every_tier_sizes_every_component_and_shrinks() -> None:
    totals = []
    for _, sizes in kubeadm.STATIC_POD_SIZES:
        assert set(sizes) == set(kubeadm.STATIC_POD_COMPONENTS)
        totals.append((sum(s.cpu_milli for s in sizes.values()), sum(s.memory_mib for s in sizes.values())))
    assert totals == sorted(totals, reverse=True) and len(set(totals)) == len(totals)


def test_static_pod_patches_refuse_a_worker() -> None:
    dev = STACKS["dev"]
    stranger = dev.control_plane.nodes[0].model_copy(update={"name": "cp9"})
    with pytest.raises(ValueError, match="cp9 is not a control-plane node"):
        kubeadm.static_pod_patches(dev, stranger)


# ---------------------------------------------------------------------------------------------
# what each node receives


def test_node_files() -> None:
    dev = STACKS["dev"]
    patch_dir = "/etc/kubernetes/patches/"
    first = kubeadm.node_files(dev, dev.control_plane.nodes[0])
    assert set(first) == {kubeadm.INIT_CONFIG_PATH, kubeadm.UPGRADE_CONFIG_PATH, *(patch_dir + name for name in (
        "kubeletconfiguration+merge.yaml", "kube-apiserver+strategic.yaml", "kube-controller-manager+strategic.yaml",
        "kube-scheduler+strategic.yaml", "etcd+strategic.yaml"))}
    second = kubeadm.node_files(dev, dev.control_plane.nodes[1])
    assert kubeadm.JOIN_CONFIG_PATH in second and kubeadm.INIT_CONFIG_PATH not in second
    assert "controlPlane" in yaml.safe_load(second[kubeadm.JOIN_CONFIG_PATH])
    worker = kubeadm.node_files(dev, dev.workers[0])
    assert set(worker) == {kubeadm.JOIN_CONFIG_PATH, kubeadm.UPGRADE_CONFIG_PATH,
                           patch_dir + "kubeletconfiguration+merge.yaml"}


def test_adding_a_worker_changes_no_other_nodes_files() -> None:
    dev = STACKS["dev"]
    more = _with(dev, workers=[*dev.workers, dev.workers[0].model_copy(update={"name": "w4"})])
    for node in [*dev.control_plane.nodes, *dev.workers]:
        assert kubeadm.node_files(more, node) == kubeadm.node_files(dev, node), node.name


# ---------------------------------------------------------------------------------------------
# join credentials

TOKEN = "abcdef.0123456789abcdef"
HASH = "sha256:" + "a1" * 32
KEY = "0f" * 32


def test_join_credentials_become_the_join_scripts_environment() -> None:
    line = f'{{"token":"{TOKEN}","caCertHash":"{HASH}","certificateKey":"{KEY}"}}\n'
    assert kubeadm.join_credentials(line, control_plane=True) == {
        "JOIN_TOKEN": TOKEN, "CA_CERT_HASH": HASH, "CERTIFICATE_KEY": KEY}
    assert kubeadm.join_credentials(line, control_plane=False) == {"JOIN_TOKEN": TOKEN, "CA_CERT_HASH": HASH}
    assert set(kubeadm.JOIN_SECRET_PLACEHOLDERS) == {"JOIN_TOKEN", "CA_CERT_HASH", "CERTIFICATE_KEY"}


@pytest.mark.parametrize("line", [
    "", "not json", f'{{"token":"{TOKEN}"}}', f'{{"token":"{TOKEN}x","caCertHash":"{HASH}"}}',
    f'{{"token":"{TOKEN}","caCertHash":"{HASH[7:]}"}}',
])
def test_malformed_join_credentials_are_refused_without_echoing_them(line: str) -> None:
    with pytest.raises(ValueError) as err:
        kubeadm.join_credentials(line, control_plane=False)
    assert TOKEN not in str(err.value) and HASH[7:] not in str(err.value)


def test_a_control_plane_join_needs_a_certificate_key() -> None:
    with pytest.raises(ValueError, match="certificateKey is missing"):
        kubeadm.join_credentials(f'{{"token":"{TOKEN}","caCertHash":"{HASH}"}}', control_plane=True)


def test_edge_stack_gives_etcd_and_the_apiserver_whole_cpus() -> None:
    """The edge nodes declare 8 CPUs / 32 GiB: the patches the dry run places on each node ask for
    whole CPUs (exclusive cores from the static CPU manager) for etcd and kube-apiserver."""
    edge = STACKS["edge"]
    assert all(not n.is_vm and n.cpus == 8 and n.memory_gib == 32 for n in edge.control_plane.nodes)
    g = stack_graph("edge")
    for node in edge.control_plane.nodes:
        files = {f["path"]: f["content"] for f in g.by_name[f"{node.name}-kubeadm-files"]["inputs"]["files"]}
        for component in ("etcd", "kube-apiserver"):
            patch = yaml.safe_load(files[f"/etc/kubernetes/patches/{component}+strategic.yaml"])
            resources = patch["spec"]["containers"][0]["resources"]
            cpu = _millicores(resources["requests"]["cpu"])
            assert cpu >= 1000 and cpu % 1000 == 0, (node.name, component, resources)
            assert resources["limits"] == resources["requests"]
