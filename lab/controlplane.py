"""A scratch control-plane node made by the real kubeadm: its certificates, kubeconfigs and static-pod
manifests, from the files the program renders for that node, in a directory of ours.

`build(tree, node, out, kubeadm)` takes the dry run's host files (`dryrun.plan.files_for_hosts`, the
same mapping the dry run writes under hosts/), places the node's /etc/kubernetes files (its kubeadm
configuration and patches) under OUT/etc/kubernetes, and runs `kubeadm init phase certs all`,
`kubeconfig all`, `etcd local` and `control-plane all --config ...` there through lab/kubeadm-phases.sh:
in a private mount namespace with no network, /etc/kubernetes bound to OUT's and overlays over /etc,
/var/lib and /run, so the machine's own files are never written and every write elsewhere is recorded.

The first control-plane node runs its rendered init.yaml. A node that joins cannot run `kubeadm join
phase control-plane-prepare` offline: every join phase first discovers the cluster (cluster-info from
the API endpoint, then the kubeadm-config ConfigMap), and `--dry-run` answers with kubeadm's own canned
cluster-info, whose JWS signature our token cannot verify. So it runs the init phases with the
InitConfiguration kubeadm itself builds for a join (cmd/kubeadm/app/cmd/join.go,
fetchInitConfigurationFromJoinConfiguration): the cluster's documents as init.yaml uploaded them, with
the joiner's nodeRegistration, its controlPlane.localAPIEndpoint and its patches directory
(`joining_init_config`). Pass the first node's pki directory as `shared_pki` to give it the cluster's
CAs and service-account key, as the join's download-certs phase would (kubeadm then signs the node's
own certificates with them). One difference stays: a joiner's etcd manifest says
`--initial-cluster=<itself>` and no `--initial-cluster-state=existing`, which the real join's etcd
phase writes after adding the member; a lab starting a multi-member etcd from these manifests sets both.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from configs.kubeadm import INIT_CONFIG_PATH, JOIN_CONFIG_PATH, KUBEADM_DIR, STATIC_POD_COMPONENTS

SCRIPT = Path(__file__).resolve().parent / "kubeadm-phases.sh"
KUBERNETES_DIR = "/etc/kubernetes"
PHASES = ("certs all", "kubeconfig all", "etcd local", "control-plane all")
# Where a joining node's InitConfiguration equivalent is placed (beside its join.yaml).
JOINER_INIT_PATH = f"{KUBEADM_DIR}/join-as-init.yaml"
# Directories the phase script overlays; OUT must lie outside them (it is written through the bind).
WATCHED_DIRS = ("/etc", "/var/lib", "/run")
# What the kubeadm-certs Secret carries to a joining control-plane node with stacked etcd
# (cmd/kubeadm/app/phases/copycerts certsToTransfer).
SHARED_PKI_FILES = ("ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub",
                    "etcd/ca.crt", "etcd/ca.key")
KUBECONFIGS = ("admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf")
HOSTS_PREFIX = "hosts/"


class KubeadmPhaseError(RuntimeError):
    """A kubeadm phase failed; the message carries kubeadm's log."""


@dataclass(frozen=True)
class ScratchControlPlane:
    """What kubeadm made for one node. `root` stands for the node's /: `host_path` maps a path as the
    node (or a manifest) names it to the file here."""

    node: str
    root: Path
    config: str  # the --config path kubeadm read, as the node sees it
    outside_writes: tuple[str, ...]  # paths kubeadm created or changed outside /etc/kubernetes
    phase_seconds: dict[str, float]
    log: str

    def host_path(self, node_path: str) -> Path:
        return self.root / node_path.lstrip("/")

    @property
    def kubernetes_dir(self) -> Path:
        return self.host_path(KUBERNETES_DIR)

    @property
    def pki(self) -> Path:
        return self.host_path(f"{KUBERNETES_DIR}/pki")

    @property
    def manifests(self) -> dict[str, Path]:
        return {name: self.host_path(f"{KUBERNETES_DIR}/manifests/{name}.yaml") for name in STATIC_POD_COMPONENTS}

    @property
    def kubeconfigs(self) -> dict[str, Path]:
        return {name: self.host_path(f"{KUBERNETES_DIR}/{name}") for name in KUBECONFIGS}

    def pod(self, component: str) -> dict[str, Any]:
        return yaml.safe_load(self.manifests[component].read_text())


def node_files(tree: Mapping[str, str], node: str) -> dict[str, str]:
    """The node's files from a dry-run tree: absolute path on the node -> content."""
    prefix = f"{HOSTS_PREFIX}{node}/"
    files = {"/" + rel.removeprefix(prefix): text for rel, text in tree.items() if rel.startswith(prefix)}
    if not files:
        raise ValueError(f"the tree has no files for host {node!r}")
    return files


def cluster_init_config(tree: Mapping[str, str]) -> str:
    """The init.yaml of the one node that runs `kubeadm init`."""
    found = [text for rel, text in tree.items() if rel.startswith(HOSTS_PREFIX) and rel.endswith(INIT_CONFIG_PATH)]
    if len(found) != 1:
        raise ValueError(f"expected one {INIT_CONFIG_PATH} in the tree, found {len(found)}")
    return found[0]


def joining_init_config(init_yaml: str, join_yaml: str) -> str:
    """The InitConfiguration kubeadm builds for a control-plane join: the cluster's documents (what init
    stored in kubeadm-config and kubelet-config) with the joiner's node registration, local API endpoint
    and patches. The join's discovery secrets are not read, so placeholders may stay in `join_yaml`."""
    join = yaml.safe_load(join_yaml)
    if join.get("kind") != "JoinConfiguration" or "controlPlane" not in join:
        raise ValueError("not a control-plane JoinConfiguration")
    docs = list(yaml.safe_load_all(init_yaml))
    init = next(doc for doc in docs if doc.get("kind") == "InitConfiguration")
    init.pop("bootstrapTokens", None)  # a join creates none
    init["nodeRegistration"] = join["nodeRegistration"]
    init["localAPIEndpoint"] = join["controlPlane"]["localAPIEndpoint"]
    init["patches"] = join["patches"]
    return yaml.safe_dump_all(docs, sort_keys=False)


def node_config(tree: Mapping[str, str], node: str) -> tuple[str, str]:
    """(--config path on the node, its content): init.yaml, or for a joiner its InitConfiguration equivalent."""
    files = node_files(tree, node)
    if INIT_CONFIG_PATH in files:
        return INIT_CONFIG_PATH, files[INIT_CONFIG_PATH]
    if JOIN_CONFIG_PATH not in files:
        raise ValueError(f"{node} has neither {INIT_CONFIG_PATH} nor {JOIN_CONFIG_PATH}")
    return JOINER_INIT_PATH, joining_init_config(cluster_init_config(tree), files[JOIN_CONFIG_PATH])


def _refuse_watched(out: Path) -> None:
    for watched in WATCHED_DIRS:
        if out.is_relative_to(watched):
            raise ValueError(f"{out}: the output directory must lie outside {', '.join(WATCHED_DIRS)}")


def _place(out: Path, tree: Mapping[str, str], node: str, shared_pki: Path | None) -> str:
    config_path, config = node_config(tree, node)
    files = {path: text for path, text in node_files(tree, node).items() if path.startswith(KUBERNETES_DIR + "/")}
    files[config_path] = config
    for path, text in files.items():
        target = out / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if shared_pki is not None:
        for name in SHARED_PKI_FILES:
            target = out / KUBERNETES_DIR.lstrip("/") / "pki" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(shared_pki / name, target)
    return config_path


def _snapshot(path: Path) -> dict[str, str]:
    """Upper-layer entry (as the node names it) -> its type, mode, size and mtime."""
    layers = {f"/upper{d.replace('/', '_')}": d for d in WATCHED_DIRS}
    entries = {}
    for line in path.read_text().splitlines():
        where, rest = line.split(" ", 1)
        inside = where.split("/.namespace", 1)[1]
        for layer, node_dir in layers.items():
            if inside == layer or inside.startswith(layer + "/"):
                entries[node_dir + inside.removeprefix(layer)] = rest
    return entries


def _outside_writes(out: Path) -> tuple[str, ...]:
    before, after = _snapshot(out / ".writes-before"), _snapshot(out / ".writes-after")
    return tuple(sorted(path for path, state in after.items()
                        if before.get(path) != state and path not in WATCHED_DIRS))


def _phase_seconds(out: Path) -> dict[str, float]:
    rows = (line.split("\t") for line in (out / "times").read_text().splitlines())
    return {phase: round(float(end) - float(start), 3) for phase, start, end in rows}


def build(tree: Mapping[str, str], node: str, out: Path, kubeadm: Path, shared_pki: Path | None = None,
          timeout: float = 60) -> ScratchControlPlane:
    """Run kubeadm's control-plane phases for `node` of the rendered `tree` into `out` (empty or absent)."""
    out = out.resolve()
    _refuse_watched(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty")
    config_path = _place(out, tree, node, shared_pki)
    argv = ["unshare", "--mount", "--net", "--propagation", "private",
            "bash", str(SCRIPT), str(out), config_path, str(kubeadm), *PHASES]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    log = (out / "kubeadm.log").read_text() if (out / "kubeadm.log").exists() else ""
    if result.returncode != 0:
        raise KubeadmPhaseError(f"{node}: {result.stderr.strip()}\n{log}")
    seconds = _phase_seconds(out)
    seconds["total"] = round(time.monotonic() - started, 3)
    return ScratchControlPlane(node=node, root=out, config=config_path, outside_writes=_outside_writes(out),
                               phase_seconds=seconds, log=log)


def build_all(tree: Mapping[str, str], nodes: list[str], out: Path, kubeadm: Path) -> dict[str, ScratchControlPlane]:
    """Every control-plane node in `nodes`, the init node first; joiners share its CAs. `out`/<node> each."""
    init_node = next(n for n in nodes if INIT_CONFIG_PATH in node_files(tree, n))
    first = build(tree, init_node, out / init_node, kubeadm)
    built = {init_node: first}
    for node in nodes:
        if node != init_node:
            built[node] = build(tree, node, out / node, kubeadm, shared_pki=first.pki)
    return {node: built[node] for node in nodes}
