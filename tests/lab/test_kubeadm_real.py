"""The real kubeadm (./scripts/tools) judges every kubeadm file the program renders, and builds the
control-plane static pods from them.

Validation: `kubeadm config validate --config F` (strict decoding of every document, kubeadm's own
field validation) on each stack's init.yaml, every upgrade.yaml (it accepts UpgradeConfiguration; `kubeadm
upgrade apply/plan/node` would need a live cluster) and every join.yaml once configs/scripts/kubeadm-join.sh
has put well-formed stand-ins for the secrets in, run for real with kubeadm's `join --config` call turned
into the validation of the file it was handed. Negative controls show the check fails on bad fields.

Static pods: lab/controlplane.py runs `kubeadm init phase certs all`, `kubeconfig all`, `etcd local` and
`control-plane all` for every control-plane node of every stack in a private mount namespace with no
network (joiners with the InitConfiguration kubeadm derives for a join, see there); the assertions read
kubeadm's own manifests and certificates.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from configs import apiserver, kubeadm
from configs.vm import ETCD_MOUNT
from dryrun.mockrun import REPO
from lab import controlplane
from lab.hostsim import ScratchHost
from lab.realtools import path_of
from tests.mockgraph import stack_hosts
from topology import Cluster, ControlPlaneNode, load_stack_file

STACKS = ("dev", "edge", "prod")
CLUSTERS = {stack: load_stack_file(REPO / f"Pulumi.{stack}.yaml") for stack in STACKS}
# The apiserver's own port: 6444 where HAProxy shares the node and holds 6443 (edge), else the VIP's port.
SECURE_PORT = {"dev": 6443, "edge": 6444, "prod": 6443}
# Stand-ins for what kubeadm-token.sh hands kubeadm-join.sh, in the shapes kubeadm checks.
STAND_INS = {"JOIN_TOKEN": "abcdef.0123456789abcdef", "CA_CERT_HASH": "sha256:" + "0123456789abcdef" * 4,
             "CERTIFICATE_KEY": "fedcba9876543210" * 4}
KUBEADM = pytest.mark.realtool("kubeadm")


def _kubeadm() -> str:
    return str(path_of("kubeadm"))


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_kubeadm(), "config", "validate", "--config", str(path)], capture_output=True, text=True,
                          timeout=30, check=False)


def _rendered(stack: str, node_path: str) -> dict[str, str]:
    """host -> content of `node_path` on every host of the stack that gets it."""
    suffix = "/" + node_path.lstrip("/")
    return {rel.split("/")[1]: text for rel, text in stack_hosts(stack).items()
            if rel.startswith("hosts/") and rel.endswith(suffix)}


def _kubernetes_nodes(cluster: Cluster) -> list[str]:
    return [node.name for node in [*cluster.control_plane.nodes, *cluster.workers]]


# ---------------------------------------------------------------------------------------------------
# kubeadm config validate


def test_stand_ins_have_the_shapes_the_program_hands_kubeadm() -> None:
    for key, (variable, shape) in kubeadm.JOIN_CREDENTIALS.items():
        assert shape.fullmatch(STAND_INS[variable]), key


@KUBEADM
@pytest.mark.parametrize("stack", STACKS)
def test_kubeadm_validates_every_init_and_upgrade_file(stack: str, tmp_path: Path) -> None:
    inits = _rendered(stack, kubeadm.INIT_CONFIG_PATH)
    upgrades = _rendered(stack, kubeadm.UPGRADE_CONFIG_PATH)
    cluster = CLUSTERS[stack]
    assert list(inits) == [cluster.first_control_plane.name]
    assert sorted(upgrades) == sorted(_kubernetes_nodes(cluster))
    rejected = {}
    for name, text in [*((f"{h} init.yaml", t) for h, t in inits.items()),
                       *((f"{h} upgrade.yaml", t) for h, t in upgrades.items())]:
        path = tmp_path / name.replace(" ", "-")
        path.write_text(text)
        result = _validate(path)
        if result.returncode != 0 or result.stdout.strip() != "ok":
            rejected[name] = (result.stdout + result.stderr).strip()
    assert rejected == {}


def _join_shim() -> str:
    """kubeadm-join.sh's `kubeadm join --config FILE` becomes the real validation of FILE."""
    return (f'[[ "$1 $2" == "join --config" && $# -eq 3 ]] || {{ echo "unexpected kubeadm $*" >&2; exit 2; }}\n'
            f'exec {shlex.quote(_kubeadm())} config validate --config "$3"')


@KUBEADM
@pytest.mark.tool("bash")
@pytest.mark.parametrize("stack", STACKS)
def test_kubeadm_validates_every_join_file_as_kubeadm_join_sh_fills_it(stack: str, tmp_path: Path) -> None:
    cluster = CLUSTERS[stack]
    joins = _rendered(stack, kubeadm.JOIN_CONFIG_PATH)
    control_plane = {node.name for node in cluster.control_plane.nodes}
    assert sorted(joins) == sorted(set(_kubernetes_nodes(cluster)) - {cluster.first_control_plane.name})
    rejected = {}
    for host_name, text in joins.items():
        host = ScratchHost(tmp_path / host_name)
        host.shim("kubeadm", _join_shim())
        config = host.root / kubeadm.JOIN_CONFIG_PATH.lstrip("/")
        config.parent.mkdir(parents=True)
        config.write_text(text)
        is_cp = host_name in control_plane
        env = {"JOIN_TOKEN": STAND_INS["JOIN_TOKEN"], "CA_CERT_HASH": STAND_INS["CA_CERT_HASH"]}
        if is_cp:
            env |= {"CONTROL_PLANE": "true", "CERTIFICATE_KEY": STAND_INS["CERTIFICATE_KEY"]}
        result = host.run("kubeadm-join.sh", env=env)
        assert [call[1:3] for call in host.calls("kubeadm")] == [["join", "--config"]], host_name
        # kubeadm's "ok" reaches stderr through the script's redaction.
        if result.returncode != 0 or "\nok\n" not in f"\n{result.stderr}":
            rejected[host_name] = result.stderr.strip()
    assert rejected == {}


def _mutated(docs: list[dict[str, Any]], kind: str, change: Any) -> list[dict[str, Any]]:
    docs = copy.deepcopy(docs)
    change(next(doc for doc in docs if doc["kind"] == kind))
    return docs


def _join_filled(text: str) -> str:
    for name, placeholder in kubeadm.JOIN_SECRET_PLACEHOLDERS.items():
        text = text.replace(placeholder, STAND_INS[name])
    return text


# (file on a dev node, document kind, change, what kubeadm says): each must turn "ok" into a refusal.
NEGATIVE = {
    "unknown-cluster-field": ("cp1", kubeadm.INIT_CONFIG_PATH, "ClusterConfiguration",
                              lambda d: d["apiServer"].update(bindPort=6443), 'unknown field "apiServer.bindPort"'),
    "unknown-kubelet-field": ("cp1", kubeadm.INIT_CONFIG_PATH, "KubeletConfiguration",
                              lambda d: d.update(reservedCPUs="0"), 'unknown field "reservedCPUs"'),
    "v1beta3-extra-args": ("cp1", kubeadm.INIT_CONFIG_PATH, "InitConfiguration",
                           lambda d: d["nodeRegistration"].update(kubeletExtraArgs={"node-ip": "198.18.0.21"}),
                           "cannot unmarshal object"),
    "bad-advertise-address": ("cp2", kubeadm.JOIN_CONFIG_PATH, "JoinConfiguration",
                              lambda d: d["controlPlane"]["localAPIEndpoint"].update(advertiseAddress="cp2"),
                              "must be ipv4 or ipv6 address"),
    "short-certificate-key": ("cp2", kubeadm.JOIN_CONFIG_PATH, "JoinConfiguration",
                              lambda d: d["controlPlane"].update(certificateKey="ab"), "invalid certificate key size"),
    "relative-upgrade-patches": ("w1", kubeadm.UPGRADE_CONFIG_PATH, "UpgradeConfiguration",
                                 lambda d: d["node"]["patches"].update(directory="patches"), "path is not absolute"),
    "unknown-upgrade-field": ("cp1", kubeadm.UPGRADE_CONFIG_PATH, "UpgradeConfiguration",
                              lambda d: d["apply"].update(patchesDir="/etc/kubernetes/patches"),
                              'unknown field "apply.patchesDir"'),
}


@KUBEADM
@pytest.mark.parametrize("case", sorted(NEGATIVE))
def test_kubeadm_validate_refuses_a_bad_field_in_each_kind(case: str, tmp_path: Path) -> None:
    host, node_path, kind, change, message = NEGATIVE[case]
    text = _join_filled(_rendered("dev", node_path)[host])
    docs = list(yaml.safe_load_all(text))
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(text)
    bad.write_text(yaml.safe_dump_all(_mutated(docs, kind, change), sort_keys=False))
    assert _validate(good).returncode == 0
    refused = _validate(bad)
    assert refused.returncode != 0 and message in refused.stderr, refused.stderr


@KUBEADM
def test_kubeadm_refuses_the_join_file_before_its_secrets_are_filled(tmp_path: Path) -> None:
    path = tmp_path / "join.yaml"
    path.write_text(_rendered("dev", kubeadm.JOIN_CONFIG_PATH)["cp2"])
    result = _validate(path)
    assert result.returncode != 0 and "the bootstrap token is invalid" in result.stderr


# ---------------------------------------------------------------------------------------------------
# The joiner's InitConfiguration equivalent (no kubeadm needed)


def test_a_joiner_runs_the_cluster_documents_with_its_own_registration_endpoint_and_patches() -> None:
    tree = stack_hosts("edge")
    path, text = controlplane.node_config(tree, "edge2")
    assert path == controlplane.JOINER_INIT_PATH
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(text)}
    init = {doc["kind"]: doc for doc in yaml.safe_load_all(controlplane.cluster_init_config(tree))}
    join = yaml.safe_load(controlplane.node_files(tree, "edge2")[kubeadm.JOIN_CONFIG_PATH])
    assert docs["ClusterConfiguration"] == init["ClusterConfiguration"]
    assert docs["KubeletConfiguration"] == init["KubeletConfiguration"]
    assert docs["InitConfiguration"]["nodeRegistration"]["name"] == "edge2"
    assert docs["InitConfiguration"]["localAPIEndpoint"] == join["controlPlane"]["localAPIEndpoint"]
    assert docs["InitConfiguration"]["patches"] == join["patches"]
    assert "bootstrapTokens" not in docs["InitConfiguration"]
    assert controlplane.node_config(tree, "edge1") == (kubeadm.INIT_CONFIG_PATH,
                                                       tree["hosts/edge1" + kubeadm.INIT_CONFIG_PATH])


def test_the_scratch_builder_refuses_an_output_under_a_directory_it_overlays(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must lie outside"):
        controlplane.build(stack_hosts("edge"), "edge1", Path("/etc/hakube-scratch"), tmp_path / "kubeadm")


@pytest.mark.tool("shellcheck")
def test_the_phase_script_is_shellcheck_clean() -> None:
    result = subprocess.run(["shellcheck", str(controlplane.SCRIPT)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout


@KUBEADM
def test_kubeadm_validates_a_joiners_init_configuration_equivalent(tmp_path: Path) -> None:
    for stack in STACKS:
        for node in CLUSTERS[stack].control_plane.nodes[1:]:
            path = tmp_path / f"{stack}-{node.name}.yaml"
            path.write_text(controlplane.node_config(stack_hosts(stack), node.name)[1])
            result = _validate(path)
            assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------------------
# kubeadm builds the static pods


MACHINE_PATHS = ("/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd")


def _machine_state() -> dict[str, Any]:
    """Existence, mode, mtime and listing of the machine's own kubeadm directories."""
    state: dict[str, Any] = {}
    for path in MACHINE_PATHS:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            state[path] = None
            continue
        listing = sorted(os.listdir(path)) if os.path.isdir(path) else []
        state[path] = (st.st_mode, st.st_mtime_ns, listing)
    return state


@pytest.fixture(scope="module", params=STACKS)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """(stack, {node name: ScratchControlPlane}) for every control-plane node, plus the machine's state
    before and after under "_machine"."""
    stack = request.param
    cluster = CLUSTERS[stack]
    before = _machine_state()
    nodes = controlplane.build_all(stack_hosts(stack), [n.name for n in cluster.control_plane.nodes],
                                   tmp_path_factory.mktemp(f"cp-{stack}"), path_of("kubeadm"))
    print(f"\n{stack}: " + "; ".join(f"{name} {b.phase_seconds}" for name, b in nodes.items()))
    return stack, {"nodes": nodes, "_machine": (before, _machine_state())}


def _nodes(built: tuple[str, dict[str, Any]]) -> list[tuple[Cluster, ControlPlaneNode, Any]]:
    stack, data = built
    cluster = CLUSTERS[stack]
    return [(cluster, node, data["nodes"][node.name]) for node in cluster.control_plane.nodes]


def _flags(pod: dict[str, Any]) -> dict[str, str]:
    command = pod["spec"]["containers"][0]["command"]
    return dict(arg.removeprefix("--").split("=", 1) for arg in command[1:])


def _cpu_milli(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


MEBIBYTES = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}


def _memory_mib(quantity: str) -> float:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)", quantity)
    assert match, f"unexpected memory quantity {quantity!r}"
    return int(match[1]) * MEBIBYTES[match[2]]


@pytest.mark.root
@KUBEADM
def test_kubeadm_static_pods_are_guaranteed_at_the_sizing_tier(built: tuple[str, dict[str, Any]]) -> None:
    for _cluster, node, made in _nodes(built):
        _, sizes = kubeadm.static_pod_sizes(node)
        for component in kubeadm.STATIC_POD_COMPONENTS:
            container = next(c for c in made.pod(component)["spec"]["containers"] if c["name"] == component)
            resources = container["resources"]
            where = f"{node.name} {component}"
            assert resources["requests"] == resources["limits"], where  # Guaranteed QoS
            assert set(resources["requests"]) == {"cpu", "memory"}, where
            cpu, memory = resources["requests"]["cpu"], resources["requests"]["memory"]
            assert (_cpu_milli(cpu), _memory_mib(memory)) == (sizes[component].cpu_milli,
                                                               sizes[component].memory_mib), where
            if sizes[component].cpu_milli % 1000 == 0:  # the tier promises whole cores
                assert re.fullmatch(r"[1-9]\d*", str(cpu)), f"{where}: {cpu!r} is not a whole CPU count"
        # Every committed stack's tier gives etcd and the apiserver whole cores (edge: 8 CPUs / 32 GiB).
        assert all(sizes[c].cpu_milli % 1000 == 0 for c in ("etcd", "kube-apiserver")), node.name


@pytest.mark.root
@KUBEADM
def test_kubeadm_apiserver_binds_its_port_and_advertises_on_the_control_plane_network(
        built: tuple[str, dict[str, Any]]) -> None:
    stack = built[0]
    for cluster, node, made in _nodes(built):
        pod = made.pod("kube-apiserver")
        flags = _flags(pod)
        assert int(flags["secure-port"]) == SECURE_PORT[stack] == cluster.apiserver_port, node.name
        assert flags["shutdown-delay-duration"] == f"{kubeadm.APISERVER_SHUTDOWN_DELAY_S}s", node.name
        assert flags["shutdown-watch-termination-grace-period"] == f"{kubeadm.APISERVER_WATCH_TERMINATION_GRACE_S}s"
        assert "terminationGracePeriodSeconds" not in pod["spec"]  # so the kubelet's default applies
        assert [p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]] == [SECURE_PORT[stack]]
        advertised = ipaddress.ip_address(flags["advertise-address"])
        assert advertised == node.control_plane_address, node.name
        assert advertised in cluster.network.control_plane_cidr
        annotation = pod["metadata"]["annotations"]["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"]
        assert annotation == f"{node.control_plane_address}:{SECURE_PORT[stack]}"


@pytest.mark.root
@KUBEADM
def test_kubeadm_apiserver_reads_hakubes_encryption_and_audit_files(built: tuple[str, dict[str, Any]]) -> None:
    for cluster, node, made in _nodes(built):
        pod = made.pod("kube-apiserver")
        flags = _flags(pod)
        assert {name: flags.get(name) for name in apiserver.extra_args(cluster)} == apiserver.extra_args(cluster)
        mounts = {m["mountPath"]: m.get("readOnly", False) for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert mounts[apiserver.CONFIG_DIR] is True and mounts["/var/log/kubernetes/audit"] is False, node.name
        # apiserver-restart.sh's check reads kubeadm's manifest text line by line: one flag a line.
        text = made.host_path("/etc/kubernetes/manifests/kube-apiserver.yaml").read_text().splitlines()
        for flag in apiserver.restart_env(cluster)["REQUIRED_FLAGS"].split():
            assert f"    - --{flag}" in text, (node.name, flag)


def _subject_alt_names(cert: Path) -> set[str]:
    out = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(cert)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    names = out.split("\n", 1)[1]
    return {name.strip().replace("IP Address:", "IP:") for name in names.split(",")}


@pytest.mark.root
@KUBEADM
@pytest.mark.tool("openssl")
def test_kubeadm_apiserver_certificate_names_the_vip(built: tuple[str, dict[str, Any]]) -> None:
    for cluster, node, made in _nodes(built):
        sans = _subject_alt_names(made.pki / "apiserver.crt")
        assert f"IP:{cluster.api_endpoint.vip}" in sans, node.name
        assert f"IP:{node.control_plane_address}" in sans and f"DNS:{node.name}" in sans
        wanted = {f"IP:{s}" if _is_ip(s) else f"DNS:{s}" for s in kubeadm.cert_sans(cluster)}
        assert wanted <= sans, sorted(wanted - sans)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@pytest.mark.root
@KUBEADM
@pytest.mark.tool("openssl")
def test_joiners_certificates_are_signed_by_the_first_nodes_ca(built: tuple[str, dict[str, Any]]) -> None:
    nodes = _nodes(built)
    first = nodes[0][2]
    for _cluster, node, made in nodes[1:]:
        assert (made.pki / "ca.crt").read_bytes() == (first.pki / "ca.crt").read_bytes()
        assert (made.pki / "apiserver.crt").read_bytes() != (first.pki / "apiserver.crt").read_bytes()
        for ca, cert in (("ca.crt", "apiserver.crt"), ("etcd/ca.crt", "etcd/peer.crt")):
            verified = subprocess.run(["openssl", "verify", "-CAfile", str(first.pki / ca), str(made.pki / cert)],
                                      capture_output=True, text=True, timeout=30, check=False)
            assert verified.returncode == 0, f"{node.name} {cert}: {verified.stdout}{verified.stderr}"


@pytest.mark.root
@KUBEADM
def test_kubeadm_etcd_listens_and_advertises_on_the_control_plane_address(built: tuple[str, dict[str, Any]]) -> None:
    for _cluster, node, made in _nodes(built):
        flags = _flags(made.pod("etcd"))
        address = node.control_plane_address
        assert flags["listen-client-urls"].split(",") == ["https://127.0.0.1:2379", f"https://{address}:2379"]
        assert flags["advertise-client-urls"] == f"https://{address}:2379"
        assert flags["listen-peer-urls"] == flags["initial-advertise-peer-urls"] == f"https://{address}:2380"
        assert flags["name"] == node.name and flags["data-dir"] == ETCD_MOUNT


@pytest.mark.root
@KUBEADM
def test_kubeadm_writes_only_its_directory_and_etcds_data_dir(built: tuple[str, dict[str, Any]]) -> None:
    for _cluster, node, made in _nodes(built):
        # `etcd local` creates the data directory; nothing reaches /var/lib/kubelet or /run.
        assert made.outside_writes == (ETCD_MOUNT,), node.name
        assert set(made.kubeconfigs) == {p.name for p in made.kubernetes_dir.glob("*.conf")}
        assert all(path.is_file() for path in made.manifests.values())
    before, after = built[1]["_machine"]
    assert before == after  # the machine's own /etc/kubernetes, /var/lib/kubelet and /var/lib/etcd
