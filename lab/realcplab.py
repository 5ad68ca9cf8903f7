"""Real control planes (lab/realcp.py) in lab/netlab.py's namespaces.

`real_control_plane(stack)` is the context manager another test uses: one namespace per control-plane
node of a committed stack (its node and control-plane addresses on eth0, all in 198.18.0.0/15), kubeadm's
files built from the stack's dry-run tree, etcd + kube-apiserver started and ready; it yields a
`Running` (the lab, the control plane, an admin kubeconfig for the first node, `kubectl`/`etcdctl`
run inside a node's namespace). `nodes=1` is the one-node variant (the init node alone).

`RealLbLab` is lab/netlab.py's LbLab with those real apiservers as the backends, the scenarios
unchanged: an "apiserver" that the scenario kills or stops is restarted from its manifest command and
waited on (/readyz), and a host that was unplugged gets its etcd member back too.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from configs import apiserver
from configs.scripts import SCRIPT_DIR
from dryrun.mockrun import REPO, run_program
from dryrun.plan import files_for_hosts
from lab import realcp
from lab.netlab import Lab, LbLab, PairSetup, WatchSetup, control_plane_host
from lab.realtools import path_of
from topology import ROOT, Cluster, load_stack_file, read_stack_file
from topology.model import Encryption

REAL_TOOLS = ("kubeadm", "kube-apiserver", "etcd", "etcdctl", "kubectl")


@cache
def stack_hosts(stack: str) -> dict[str, str]:
    """The committed stack's dry-run host files (hosts/<host>/<path> -> content), what kubeadm builds from."""
    return files_for_hosts(run_program(read_stack_file(REPO / f"Pulumi.{stack}.yaml")[ROOT], stack))


def stack_cluster(stack: str) -> Cluster:
    return load_stack_file(REPO / f"Pulumi.{stack}.yaml")


def prepare(stack: str, nodes: int | None, out: Path) -> realcp.RealControlPlane:
    """kubeadm's files for the stack's first `nodes` control-plane nodes (all by default) under `out`."""
    names = [n.name for n in stack_cluster(stack).control_plane.nodes][:nodes]
    return realcp.prepare(stack_hosts(stack), names, out, path_of("kubeadm").parent,
                          apiserver.node_files(stack_cluster(stack)))


@dataclass
class Running:
    lab: Lab
    cp: realcp.RealControlPlane
    kubeconfig: Path  # admin.conf aimed at the first node's apiserver; use it inside that node's namespace

    @property
    def first(self) -> str:
        return next(iter(self.cp.members))

    def kubectl(self, *args: str, node: str | None = None, stdin: str | None = None,
                check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """kubectl as cluster-admin against `node`'s apiserver (default: the first), from its namespace."""
        node = node or self.first
        config = self.kubeconfig if node == self.first else self.cp.kubeconfig(node)
        return self.lab.run(node, str(path_of("kubectl")), f"--kubeconfig={config}", "--request-timeout=20s",
                            *args, check=check, timeout=timeout, stdin=stdin)

    def etcdctl(self, *args: str, node: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """etcdctl with the apiserver's etcd client certificate, against the node's local member."""
        member = self.cp.members[node or self.first]
        flags = realcp.flags(member.apiserver)
        return self.lab.run(member.node, str(path_of("etcdctl")), f"--endpoints={flags['etcd-servers']}",
                            f"--cacert={flags['etcd-cafile']}", f"--cert={flags['etcd-certfile']}",
                            f"--key={flags['etcd-keyfile']}", "--dial-timeout=3s", "--command-timeout=10s",
                            *args, check=check, timeout=20)


def place_encryption_step(running: Running, keys: list[str]) -> None:
    """A rotation step's apiserver files on every node of `running` (dev's cluster with encryption.keys
    = `keys`), as each `<cp>-apiserver-files-apply` places them; a key named for the first time gets a
    fresh value, an earlier one keeps its own."""
    cluster = stack_cluster("dev").model_copy(update={"encryption": Encryption(keys=keys)})
    files = apiserver.node_files(cluster)
    for name in realcp.key_variables(files):
        running.cp.keys.setdefault(name, realcp.new_key())
    for member in running.cp.members.values():
        realcp.place_apiserver_files(member.built.root, files, running.cp.keys)


def rewrite_secrets(running: Running, write_key: str) -> str:
    """The real secrets-rewrite.sh on the first node, with admin.conf where the script looks for it;
    returns its log (stderr)."""
    root = running.lab.dir / "rewrite-root"
    (root / "etc/kubernetes").mkdir(parents=True, exist_ok=True)
    (root / "etc/kubernetes/admin.conf").write_text(running.kubeconfig.read_text())
    env = [f"HAKUBE_ROOT={root}", f"PATH={path_of('kubectl').parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
           f"WRITE_KEY={write_key}", "INTERVAL=1"]
    result = running.lab.run(running.first, "env", *env, "bash", str(SCRIPT_DIR / "secrets-rewrite.sh"),
                             timeout=120)
    return result.stderr


@contextlib.contextmanager
def real_control_plane(stack: str = "dev", nodes: int | None = None) -> Iterator[Running]:
    cluster = stack_cluster(stack)
    with Lab([control_plane_host(cluster, n) for n in cluster.control_plane.nodes[:nodes]]) as lab:
        cp = prepare(stack, nodes, lab.dir / "cp")
        cp.start(lab)
        yield Running(lab, cp, cp.kubeconfig())


class RealLbLab(LbLab):
    """An LbLab whose backends are real etcd members and kube-apiservers, from kubeadm's manifests."""

    BACKEND_ROLES = (realcp.ROLES[realcp.APISERVER], realcp.ROLES[realcp.ETCD])

    def __init__(self, setup: PairSetup, stack: str, tag: str | None = None) -> None:
        super().__init__(setup, tag)
        self.stack = stack
        self.cp: realcp.RealControlPlane | None = None

    def start_apiserver(self, host: str, address: str, port: int) -> None:  # type: ignore[override]
        if self.cp is None:  # the first backend LbLab starts: the whole control plane, as a new cluster
            self.cp = prepare(self.stack, None, self.dir / "cp")
            if sorted(self.cp.members) != sorted(h for h, _, _ in self.setup.apiservers):
                raise ValueError("the pair's backends are not the stack's control-plane nodes")
            self.cp.start(self)
            self.watch_setup = self._watch_setup(self.cp)
        member = self.cp.members[host]
        if (member.address, member.port) != (address, port):
            raise ValueError(f"{host}: the pair expects {address}:{port}, kubeadm wrote {member.url}")
        if not self.running(host, realcp.ROLES[realcp.ETCD]):
            self.cp.start_etcd(self, host)
        if not self.running(host, realcp.ROLES[realcp.APISERVER]):
            self.cp.start_apiserver(self, host)

    def _watch_setup(self, cp: realcp.RealControlPlane) -> WatchSetup:
        """Watches as kubeadm's admin (admin.conf's certificate); the writer on the last node, which no
        scenario faults (they all hit the first apiserver or an LB)."""
        ca, cert, key = cp.admin_credentials(self.dir / "admin")
        writer = cp.members[self.setup.apiservers[-1][0]]
        if writer.node == self.setup.apiservers[0][0]:
            raise ValueError("the watch writer needs a control-plane node no scenario faults")
        return WatchSetup(ca, cert, key, writer.node, writer.address, writer.port)
