"""Real etcd and kube-apiserver processes started from the static-pod manifests kubeadm itself wrote.

`prepare(tree, nodes, out, tools, apiserver_files)` builds each control-plane node with lab/controlplane.py (the real
kubeadm's certs, kubeconfigs and manifests) and turns the etcd and kube-apiserver manifests into
command lines for this machine; `RealControlPlane.start(namespaces)` runs them, one node per network
namespace (anything with lab/netlab.py Lab's `spawn`/`run`/`running`), and waits on each
apiserver's real /readyz over TLS, verified against kubeadm's CA. One node (nodes=[the init node])
is the same code: a one-member etcd and one apiserver.

What is rewritten, and nothing else (every flag stays as kubeadm wrote it):
- argv[0] becomes the binary of that name in the tools directory (not the manifest's image: etcd is
  the tools' 3.6 build where kubeadm names its 3.7 image);
- every absolute path in a flag value (the hostPath volumes: /etc/kubernetes/pki/..., etcd's
  /var/lib/etcd) becomes the same path under the node's scratch root;
- etcd's --initial-cluster names every member started together and --initial-cluster-state=new:
  kubeadm gives a joiner only itself, and the real join adds the member first (lab/controlplane.py).

The apiserver's own files (encryption configuration, audit policy: configs/apiserver.py) are placed
by the real file-set.sh, as `<cp>-apiserver-files-apply` does on a node, which puts the keys (fresh
random ones unless given) in place of the plan's placeholders; `place_apiserver_files` places a
re-rendered set again (a rotation step), and `restart_apiserver` stands in for apiserver-restart.sh's
kubelet restart.

What the lab stands in for, there being no kubelet and no container runtime: static pods run as
plain processes in a network namespace (the node's hostNetwork), sharing the machine's PID, mount
and cgroup namespaces; the manifests' resources (Guaranteed QoS, cpu/memory cgroups), probes,
securityContext, priorityClass and mirror pods are not applied; a process that exits is not
restarted unless the lab starts it again; no kube-controller-manager or kube-scheduler runs, so
nothing reconciles (no default ServiceAccounts, no scheduling: a pod stays Pending).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from configs import apiserver
from configs.remote import file_set_env, file_set_stdin
from configs.scripts import SCRIPT_DIR
from lab import controlplane

ETCD, APISERVER = "etcd", "kube-apiserver"
ROLES = {ETCD: "etcd", APISERVER: "apiserver"}  # lab role names (lab/netlab.py's backend is "apiserver")
ETCD_DATA_MODE = 0o700  # etcd refuses looser permissions on its data directory
READY_TIMEOUT_S = 90.0  # a cold apiserver on 2 busy cores: a few seconds to ~30 s
READY_STEP_S = 0.25
STOP_TIMEOUT_S = 30.0  # the apiserver's shutdown delay (5 s) plus its drain
_KEY_VARIABLE = re.compile(r"\$\{(HAKUBE_ENCRYPTION_KEY_[A-Z0-9_]+)\}")
# kubeadm init's binding for admin.conf's group (cmd/kubeadm/app/phases/kubeconfig: EnsureAdminClusterRoleBinding).
CLUSTER_ADMINS_BINDING = CLUSTER_ADMINS_GROUP = "kubeadm:cluster-admins"


class Namespaces(Protocol):
    """What the control plane needs from a lab: one network namespace per node name."""

    def spawn(self, host: str, role: str, argv: Sequence[str]) -> Any: ...

    def run(self, host: str, *argv: str, check: bool = ..., timeout: float = ...,
            stdin: str | None = ...) -> subprocess.CompletedProcess[str]: ...

    def running(self, host: str, role: str) -> bool: ...

    def stop(self, host: str, role: str, timeout: float = ...) -> None: ...


def flags(command: Sequence[str]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in command[1:] if "=" in arg)


def _host_value(built: controlplane.ScratchControlPlane, value: str) -> str:
    """A flag value with each absolute path (comma-separated lists too) moved under the scratch root."""
    return ",".join(str(built.host_path(part)) if part.startswith("/") else part for part in value.split(","))


def host_command(built: controlplane.ScratchControlPlane, component: str, tools: Path) -> list[str]:
    """The component's manifest command as this machine runs it (see the module docstring)."""
    command = [str(c) for c in built.pod(component)["spec"]["containers"][0]["command"]]
    out = [str(tools / command[0])]
    for arg in command[1:]:
        name, sep, value = arg.partition("=")
        out.append(f"{name}={_host_value(built, value)}" if sep else arg)
    return out


def _with_flags(command: list[str], wanted: Mapping[str, str]) -> list[str]:
    """`command` with each flag in `wanted` set to its value (replaced in place, else appended)."""
    kept = [arg for arg in command if arg.split("=", 1)[0].removeprefix("--") not in wanted]
    return kept + [f"--{name}={value}" for name, value in wanted.items()]


@dataclass(frozen=True)
class Member:
    """One control-plane node: what kubeadm built and the two command lines."""

    node: str
    built: controlplane.ScratchControlPlane
    etcd: tuple[str, ...]
    apiserver: tuple[str, ...]

    @property
    def address(self) -> str:
        return flags(self.apiserver)["advertise-address"]

    @property
    def port(self) -> int:
        return int(flags(self.apiserver)["secure-port"])

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}"

    @property
    def ca(self) -> Path:
        return self.built.pki / "ca.crt"

    @property
    def data_dir(self) -> Path:
        return Path(flags(self.etcd)["data-dir"])


def _members(built: Mapping[str, controlplane.ScratchControlPlane], tools: Path) -> dict[str, Member]:
    etcds = {node: host_command(b, ETCD, tools) for node, b in built.items()}
    initial = ",".join(f"{node}={flags(cmd)['initial-advertise-peer-urls']}" for node, cmd in etcds.items())
    cluster = {"initial-cluster": initial, "initial-cluster-state": "new"}
    return {node: Member(node, b, tuple(_with_flags(etcds[node], cluster)),
                         tuple(host_command(b, APISERVER, tools)))
            for node, b in built.items()}


class RealControlPlane:
    """The members of one control plane; start them in a lab, then talk to them."""

    def __init__(self, members: Mapping[str, Member], out: Path, tools: Path) -> None:
        self.members = dict(members)
        self.out = out
        self.tools = tools
        self.start_seconds: float | None = None
        self.keys: dict[str, str] = {}  # key variable -> value the apiserver files were placed with

    # -- processes
    def start_etcd(self, ns: Namespaces, node: str) -> None:
        member = self.members[node]
        member.data_dir.mkdir(parents=True, exist_ok=True, mode=ETCD_DATA_MODE)
        member.data_dir.chmod(ETCD_DATA_MODE)
        ns.spawn(node, ROLES[ETCD], member.etcd)

    def start_apiserver(self, ns: Namespaces, node: str, wait: bool = True,
                        timeout: float = READY_TIMEOUT_S) -> None:
        ns.spawn(node, ROLES[APISERVER], self.members[node].apiserver)
        if wait:
            self.wait_ready(ns, node, timeout)

    def restart_apiserver(self, ns: Namespaces, node: str, timeout: float = READY_TIMEOUT_S) -> float:
        """SIGTERM the node's apiserver, wait until it exited, start it again and wait until ready (what
        kubelet does for apiserver-restart.sh); returns seconds from the signal to ready again."""
        started = time.monotonic()
        ns.stop(node, ROLES[APISERVER], STOP_TIMEOUT_S)
        self.start_apiserver(ns, node, timeout=timeout)
        return round(time.monotonic() - started, 2)

    def start(self, ns: Namespaces, timeout: float = READY_TIMEOUT_S) -> float:
        """Every etcd member at once (a new cluster), every apiserver, then each /readyz; returns seconds."""
        started = time.monotonic()
        for node in self.members:
            self.start_etcd(ns, node)
        for node in self.members:
            self.start_apiserver(ns, node, wait=False)
        for node in self.members:
            self.wait_ready(ns, node, max(timeout - (time.monotonic() - started), 1))
        self.bind_cluster_admins(ns)
        self.start_seconds = round(time.monotonic() - started, 2)
        return self.start_seconds

    def bind_cluster_admins(self, ns: Namespaces) -> None:
        """What `kubeadm init` does once the apiserver answers: bind admin.conf's group to cluster-admin,
        through super-admin.conf (system:masters). Idempotent, so a restart may call it again."""
        node = next(iter(self.members))
        kubectl = [str(self.tools / "kubectl"), f"--kubeconfig={self.kubeconfig(node, which='super-admin.conf')}",
                   "--request-timeout=20s"]
        binding = ns.run(node, *kubectl, "create", "clusterrolebinding", CLUSTER_ADMINS_BINDING,
                         "--clusterrole=cluster-admin", f"--group={CLUSTER_ADMINS_GROUP}",
                         "--dry-run=client", "-o", "yaml", check=True, timeout=30).stdout
        ns.run(node, *kubectl, "apply", "-f", "-", stdin=binding, check=True, timeout=30)

    # -- probes and clients
    def readyz(self, ns: Namespaces, node: str, via: str | None = None) -> str:
        """GET /readyz on the node's apiserver from `via` (default: the node), anonymously, verifying its
        serving certificate with kubeadm's CA; the body, or "" when it does not answer 200."""
        member = self.members[node]
        result = ns.run(via or node, "curl", "-sf", "--max-time", "2", "--cacert", str(member.ca),
                        f"{member.url}/readyz", check=False, timeout=5)
        return result.stdout.strip() if result.returncode == 0 else ""

    def wait_ready(self, ns: Namespaces, node: str, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while self.readyz(ns, node) != "ok":
            for role in ROLES.values():
                if not ns.running(node, role):
                    raise RuntimeError(f"{node}: {role} exited before the apiserver was ready")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node}: the apiserver was not ready within {timeout:.0f}s")
            time.sleep(READY_STEP_S)

    def kubeconfig(self, node: str | None = None, server: str | None = None, which: str = "admin.conf") -> Path:
        """kubeadm's admin.conf (group kubeadm:cluster-admins) or super-admin.conf (system:masters) pointed
        at `server`: by default the node's own apiserver (kubeadm names the control-plane endpoint)."""
        member = self.members[node or next(iter(self.members))]
        config = yaml.safe_load(member.built.kubeconfigs[which].read_text())
        target = server or member.url
        for cluster in config["clusters"]:
            cluster["cluster"]["server"] = target
        path = self.out / f"{which.removesuffix('.conf')}-{member.node}-{target.split('//')[1].replace(':', '-')}.conf"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def admin_credentials(self, out: Path) -> tuple[Path, Path, Path]:
        """admin.conf's CA, client certificate and key as PEM files under `out` (key 0600), for clients that
        take files (Python's ssl), not a kubeconfig: (ca, cert, key)."""
        first = next(iter(self.members.values()))
        config = yaml.safe_load(first.built.kubeconfigs["admin.conf"].read_text())
        fields = {"ca": config["clusters"][0]["cluster"]["certificate-authority-data"],
                  "cert": config["users"][0]["user"]["client-certificate-data"],
                  "key": config["users"][0]["user"]["client-key-data"]}
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, data in fields.items():
            path = out / f"admin-{name}.pem"
            path.touch(mode=0o600)
            path.write_bytes(base64.b64decode(data))
            paths.append(path)
        return paths[0], paths[1], paths[2]

    def endpoint(self) -> str:
        """The control-plane endpoint admin.conf names (the VIP:port when the stack has one)."""
        first = next(iter(self.members.values()))
        config = yaml.safe_load(first.built.kubeconfigs["admin.conf"].read_text())
        return str(config["clusters"][0]["cluster"]["server"])


def key_variables(files: Mapping[str, str]) -> list[str]:
    return sorted({match for text in files.values() for match in _KEY_VARIABLE.findall(text)})


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def place_apiserver_files(root: Path, files: Mapping[str, str], keys: Mapping[str, str]) -> None:
    """file-set.sh on a node's scratch root: the files, each ${HAKUBE_ENCRYPTION_KEY_<NAME>} replaced
    by keys[<variable>], as components/apiserver.py places them (the values in the environment here,
    where a node's step exports them from its secret stdin)."""
    names = key_variables(files)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HAKUBE_ROOT": str(root), "LC_ALL": "C",
           **file_set_env(manifest=apiserver.MANIFEST, secret_names=names, keep_previous=False),
           **{name: keys[name] for name in names}}
    stdin = file_set_stdin([(path, "0600", text) for path, text in sorted(files.items())])
    result = subprocess.run(["bash", str(SCRIPT_DIR / "file-set.sh")], input=stdin, env=env, text=True,
                            capture_output=True, timeout=30, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"file-set.sh under {root}: {result.stderr.strip()}")


def prepare(tree: Mapping[str, str], nodes: Sequence[str], out: Path, tools: Path,
            apiserver_files: Mapping[str, str], keys: Mapping[str, str] | None = None) -> RealControlPlane:
    """kubeadm builds every node of `nodes` (the init node among them) under `out`/<node>, and each gets
    `apiserver_files` (configs/apiserver.py node_files: the placeholders, where the dry run's tree shows
    [secret]); `keys`: key variable -> value (default: fresh random keys, the same on every node)."""
    out.mkdir(parents=True, exist_ok=True)
    built = controlplane.build_all(tree, list(nodes), out, tools / "kubeadm")
    chosen = {name: (keys or {}).get(name) or new_key() for name in key_variables(apiserver_files)}
    for scratch in built.values():
        place_apiserver_files(scratch.root, apiserver_files, chosen)
    cp = RealControlPlane(_members(built, tools), out, tools)
    cp.keys = chosen
    return cp
