"""Property tests: every file a generated valid topology renders passes its daemon's real checker.

A topology that loads must render: `cluster_models()` (tests/strategies.py) draws valid topologies,
and for each one every renderer runs and every file goes to the checker the host (or libvirt, or
cloud-init) would apply: `haproxy -c`, `keepalived -t` (in a namespace holding the LB interfaces,
with the shipped root-copy checker), `cloud-init schema` for user-data, `cloud-init devel
net-convert` for network-config (cloud-init 22.4's `schema` has no network-config mode) and
`virt-xml-validate ... domain` for the transformed domain XML. There is no kubeadm here to run
`kubeadm config validate`, so the kubeadm files are parsed and their documents' kinds checked.

Bounded: 12 examples a test, all files of one example written to one scratch directory and their
checkers run side by side.
"""

from __future__ import annotations

import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from configs import containerd, kubeadm, vm
from configs import loadbalancer as lb
from dryrun import libvirt_domain
from tests.configs.test_lb_render import _check, _netns_with
from tests.strategies import cluster_models
from topology import Cluster

BOUNDED = settings(max_examples=12, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
KUBEADM_KINDS = {"InitConfiguration", "ClusterConfiguration", "JoinConfiguration", "UpgradeConfiguration",
                 "KubeletConfiguration"}

Checker = Callable[[Path], subprocess.CompletedProcess[str]]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _cloud_init_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return _run("cloud-init", "schema", "--config-file", str(path))


def _net_convert(path: Path) -> subprocess.CompletedProcess[str]:
    return _run("cloud-init", "devel", "net-convert", "--network-data", str(path), "--kind", "yaml",
                "--directory", str(path.parent / "networkd"), "--distro", "ubuntu", "--output-kind", "networkd")


def _virt_xml_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return _run("virt-xml-validate", str(path), "domain")


def _haproxy(path: Path) -> subprocess.CompletedProcess[str]:
    return _check("haproxy", path)


def rendered(cluster: Cluster) -> dict[str, tuple[str, Checker | None]]:
    """Relative path -> (content, its checker) for every file the topology renders but keepalived.conf."""
    files: dict[str, tuple[str, Checker | None]] = {"haproxy.cfg": (lb.render_haproxy(cluster), _haproxy)}
    for node in cluster.control_plane.nodes:
        if node.is_vm:
            files[f"vms/{node.name}/user-data"] = (
                vm.user_data(cluster, node, cluster.ssh.authorized_key or ""), _cloud_init_schema)
            files[f"vms/{node.name}/network-config"] = (vm.network_config(cluster, node), _net_convert)
            domain = libvirt_domain.transformed_domain_xml(cluster, node)
            files[f"vms/{node.name}/domain.xml"] = (domain, _virt_xml_validate)
    for node in [*cluster.control_plane.nodes, *cluster.workers]:
        files[f"hosts/{node.name}{containerd.CONTAINERD_CONFIG_PATH}"] = (containerd.containerd_config(cluster), None)
        for path, text in {**kubeadm.node_files(cluster, node),
                           kubeadm.KUBELET_CONFIG_PATH: kubeadm.kubelet_config(cluster, node)}.items():
            files[f"hosts/{node.name}{path}"] = (text, None)
    return files


def _write(root: Path, files: dict[str, str]) -> list[Path]:
    paths = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths.append(path)
    return paths


def _failures(jobs: list[tuple[Path, Checker]]) -> list[str]:
    """Run every (file, checker) side by side; one line per file its checker refused."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: (job[0], job[1](job[0])), jobs))
    return [f"{path}: exit {r.returncode}: {(r.stdout + r.stderr).strip()[-800:]}"
            for path, r in results if r.returncode != 0]


def _assert_kubeadm_yaml(path: Path, text: str) -> None:
    if path.suffix == ".toml":  # containerd's config: TOML that reads back as config version 3
        assert tomllib.loads(text)["version"] == containerd.CONFIG_VERSION, path
        return
    docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    assert docs and all(isinstance(doc, dict) for doc in docs), path
    if path.parent.name == "kubeadm":  # init.yaml / join.yaml: typed documents
        assert {doc.get("kind") for doc in docs} <= KUBEADM_KINDS, path
        assert all(str(doc.get("apiVersion", "")).startswith(("kubeadm.k8s.io/", "kubelet.config.k8s.io/"))
                   for doc in docs), path


@pytest.mark.tool("haproxy", "cloud-init", "virt-xml-validate", "xmllint")
@BOUNDED
@given(cluster_models())
def test_every_rendered_file_passes_its_checker(cluster: Cluster) -> None:
    files = rendered(cluster)
    vms = [n for n in cluster.control_plane.nodes if n.is_vm]
    assert sum(1 for rel in files if rel.startswith("vms/")) == 3 * len(vms)
    with tempfile.TemporaryDirectory(prefix="hk-render-") as scratch:
        paths = _write(Path(scratch), {rel: text for rel, (text, _) in files.items()})
        checkers = [checker for _, checker in files.values()]
        for path, checker in zip(paths, checkers, strict=True):
            if checker is None:
                _assert_kubeadm_yaml(path, path.read_text())
        failures = _failures([(p, c) for p, c in zip(paths, checkers, strict=True) if c is not None])
    assert not failures, "\n".join(failures)


@pytest.mark.root
@pytest.mark.tool("keepalived")
@BOUNDED
@given(cluster_models(max_workers=0))
def test_every_keepalived_conf_passes_keepalived_t(cluster: Cluster) -> None:
    peers = lb.lb_nodes(cluster)
    assert len(peers) >= 2
    # keepalived -t checks that each VRRP interface exists: give the namespace every one ("lo" is there).
    with _netns_with({p.interface for p in peers} - {"lo"}) as netns, \
            tempfile.TemporaryDirectory(prefix="hk-render-") as scratch:
        paths = _write(Path(scratch), {f"{p.name}.conf": lb.render_keepalived(cluster, p.name) for p in peers})
        failures = _failures([(path, lambda path: _check("keepalived", path, netns)) for path in paths])
        leftovers = sorted(p.name for p in Path(scratch).iterdir()) != sorted(p.name for p in paths)
    assert not failures, "\n".join(failures)
    assert not leftovers, "the checker's root copies were left behind"
