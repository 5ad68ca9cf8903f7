"""A real etcd cluster run the way kubeadm runs it, in network namespaces (lab/netlab.py's Lab).

Each member is a namespace with its own root directory (the scripts' HAKUBE_ROOT) holding a
kubeadm-shaped static pod manifest, /etc/kubernetes/manifests/etcd.yaml. `StaticPods` stands in
for kubelet: it runs the command of every manifest it finds, restarts it when it exits or the
manifest changes, and stops it when the manifest leaves the directory; a "paused" member's
kubelet is down (its etcd killed, the manifest ignored). The cluster is grown as kubeadm does it:
the first member alone (init), then each `member add` + a join manifest with
--initial-cluster-state=existing. `BackupHost` runs a real sshd in another namespace as the
snapshot copy's target. `LabRunner` runs a host script in a member's namespace with the very
command line pulumi-command and ./scripts/restore-etcd send (configs/remote.py).
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from configs.etcd_recovery import Member, Step
from configs.remote import command_line, secret_stdin
from lab.netlab import HostSpec, Lab
from lab.procs import wait_until

SUBNET = "198.18.210"
PREFIX = 24
BACKUP_ADDRESS = f"{SUBNET}.50"
DATA_DIR = "/var/lib/etcd"
KEY_PREFIX = "hakube/key/"
RESTART_BACKOFF_S = 1.0


@dataclass(frozen=True)
class LabMember:
    name: str
    address: str

    @property
    def peer_url(self) -> str:
        return f"http://{self.address}:2380"

    @property
    def client_url(self) -> str:
        return f"http://{self.address}:2379"

    def member(self) -> Member:
        return Member(self.name, self.address, self.peer_url, self.client_url)


def lab_members(names: Sequence[str], first: int = 1) -> list[LabMember]:
    return [LabMember(name, f"{SUBNET}.{first + i}") for i, name in enumerate(names)]


class EtcdLab(Lab):
    """Namespaces for `members` plus `backup`; roots under the lab directory."""

    def __init__(self, members: Sequence[LabMember], backup: bool = True) -> None:
        hosts = [HostSpec(m.name, (f"{m.address}/{PREFIX}",)) for m in members]
        if backup:
            hosts.append(HostSpec("backup", (f"{BACKUP_ADDRESS}/{PREFIX}",)))
        super().__init__(hosts)
        self.members = {m.name: m for m in members}
        self.pods: StaticPods | None = None

    def __enter__(self) -> EtcdLab:
        super().__enter__()
        self.pods = StaticPods(self)
        return self

    def close(self) -> None:
        if self.pods is not None:
            self.pods.shutdown()
        super().close()

    def add_members(self, members: Sequence[LabMember]) -> None:
        """More member namespaces in the running lab (replacement nodes)."""
        for m in members:
            spec = HostSpec(m.name, (f"{m.address}/{PREFIX}",))
            self.hosts[m.name] = spec
            self._add_ns(self.ns(m.name))
            self.plug(m.name)
            self.members[m.name] = m

    def root(self, name: str) -> Path:
        path = self.dir / name / "root"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def manifest_path(self, name: str) -> Path:
        return self.root(name) / "etc/kubernetes/manifests/etcd.yaml"

    def data_dir(self, name: str) -> Path:
        return self.root(name) / DATA_DIR.lstrip("/")

    # -- etcdctl against one member
    def etcdctl(self, name: str, *args: str, check: bool = True, stdin: str | None = None,
                timeout: float = 20) -> subprocess.CompletedProcess[str]:
        m = self.members[name]
        return self.run(name, "etcdctl", f"--endpoints={m.client_url}", "--dial-timeout=2s", "--command-timeout=8s",
                        *args, check=check, stdin=stdin, timeout=timeout)

    def healthy(self, name: str) -> bool:
        return self.etcdctl(name, "endpoint", "health", check=False).returncode == 0

    def member_list(self, name: str) -> list[tuple[str, str]]:
        """(name, peer URLs) of each member, sorted; an unstarted member has no name yet."""
        lines = self.etcdctl(name, "member", "list").stdout.splitlines()
        return sorted((parts[2], parts[3]) for parts in (line.split(", ") for line in lines))

    def put_keys(self, name: str, numbers: range, batch: int = 100) -> None:
        """hakube/key/<n> = value-<n>, `batch` puts per transaction (etcd allows 128 operations)."""
        for start in range(numbers.start, numbers.stop, batch):
            chunk = range(start, min(start + batch, numbers.stop))
            ops = "".join(f"put {KEY_PREFIX}{n:05d} value-{n}\n" for n in chunk)
            result = self.etcdctl(name, "txn", stdin=f"\n{ops}\n\n")
            assert result.stdout.startswith("SUCCESS"), result.stdout + result.stderr

    def keys(self, name: str, serializable: bool = True) -> set[str]:
        """Every hakube/key/ key the member has (serializable: its own copy, without a quorum read)."""
        extra = ["--consistency=s"] if serializable else []
        out = self.etcdctl(name, "get", "--prefix", KEY_PREFIX, "--keys-only", *extra).stdout
        return {line for line in out.splitlines() if line}

    # -- the cluster as kubeadm grows it
    def write_manifest(self, name: str, initial: Sequence[LabMember], state: str | None) -> None:
        """The member's etcd.yaml: kubeadm init's (state None) or a join's (state "existing")."""
        m = self.members[name]
        command = [
            "etcd", f"--name={m.name}", f"--data-dir={self.data_dir(name)}", "--logger=zap", "--log-outputs=stderr",
            f"--listen-client-urls={m.client_url}", f"--advertise-client-urls={m.client_url}",
            f"--listen-peer-urls={m.peer_url}", f"--initial-advertise-peer-urls={m.peer_url}",
            "--initial-cluster=" + ",".join(f"{i.name}={i.peer_url}" for i in initial),
            *([f"--initial-cluster-state={state}"] if state else []),
        ]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "etcd", "namespace": "kube-system"},
               "spec": {"hostNetwork": True, "containers": [{"name": "etcd", "command": command}]}}
        path = self.manifest_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(pod, default_flow_style=False))

    def add_member(self, via: str, name: str) -> None:
        add = ("member", "add", name, f"--peer-urls={self.members[name].peer_url}")
        wait_until(lambda: self.etcdctl(via, *add, check=False).returncode == 0, 30, step=0.5,
                   what=f"etcd to accept {name} as a member")

    def form(self, names: Sequence[str]) -> None:
        """init on the first, then join the others one at a time."""
        listed = [self.members[n] for n in names]
        self.write_manifest(names[0], listed[:1], None)
        wait_until(lambda: self.healthy(names[0]), 30, step=0.2, what=f"{names[0]} to start")
        for i, name in enumerate(names[1:], 1):
            # etcd refuses a member add for a few seconds after the previous member started.
            self.add_member(names[0], name)
            self.write_manifest(name, listed[: i + 1], "existing")
            wait_until(lambda n=name: self.healthy(n), 30, step=0.2, what=f"{name} to join")


class StaticPods:
    """kubelet's static-pod loop for etcd on every member, every 0.1 s."""

    def __init__(self, lab: EtcdLab) -> None:
        self.lab = lab
        self.paused: set[str] = set()
        self.current: dict[str, list[str] | None] = {}
        self.exited_at: dict[str, float] = {}
        self.starts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                for name in list(self.lab.members):
                    if name not in self.paused:
                        with contextlib.suppress(Exception):
                            self._sync(name)

    def _command(self, name: str) -> list[str] | None:
        try:
            pod = yaml.safe_load(self.lab.manifest_path(name).read_text())
        except (OSError, yaml.YAMLError):
            return None
        return [str(item) for item in pod["spec"]["containers"][0]["command"]]

    def _sync(self, name: str) -> None:
        wanted, running = self._command(name), self.lab.running(name, "etcd")
        if running and wanted != self.current.get(name):
            self.lab.stop(name, "etcd")
            running = False
        if not running and (name, "etcd") in self.lab.procs and name not in self.exited_at:
            self.exited_at[name] = time.monotonic()
        if wanted is None or running or time.monotonic() - self.exited_at.get(name, 0) < RESTART_BACKOFF_S:
            return
        self.lab.spawn(name, "etcd", wanted)
        self.current[name] = wanted
        self.exited_at.pop(name, None)
        self.starts[name] = self.starts.get(name, 0) + 1

    def pause(self, name: str) -> None:
        """The member's kubelet goes down and its etcd is killed (SIGKILL, a crash)."""
        with self._lock:
            self.paused.add(name)
            self.lab.kill(name, "etcd")

    def resume(self, name: str) -> None:
        with self._lock:
            self.paused.discard(name)
            self.current.pop(name, None)

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class BackupHost:
    """A real sshd in the lab's `backup` namespace, accepting root with one key: the snapshot target.

    sshd needs /run/sshd; `ip netns exec` gives the daemon a mount namespace of its own, in which a
    small tmpfs over /run provides it without touching the machine's /run."""

    def __init__(self, lab: EtcdLab, authorized_key: str) -> None:
        self.lab = lab
        self.dir = lab.dir / "backup"
        self.store = self.dir / "store"
        self.store.mkdir(parents=True, exist_ok=True)
        host_key = self.dir / "ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "backup", "-f", str(host_key)],
                       check=True, capture_output=True, timeout=30)
        self.host_key = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
        (self.dir / "authorized_keys").write_text(authorized_key + "\n")
        config = self.dir / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {BACKUP_ADDRESS}:22", f"HostKey {host_key}", f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}", "PermitRootLogin prohibit-password",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
            "LogLevel VERBOSE", "",
        ]))
        lab.spawn("backup", "sshd", ["sh", "-c", "mount -t tmpfs -o size=1m,mode=0755 tmpfs /run"
                                     f" && mkdir /run/sshd && exec /usr/sbin/sshd -D -e -f {config}"])
        wait_until(self._listening, 15, step=0.1, what="sshd in the backup namespace")

    def _listening(self) -> bool:
        probe = self.lab.run("backup", "bash", "-c", f"exec 3<>/dev/tcp/{BACKUP_ADDRESS}/22", check=False)
        return probe.returncode == 0


@dataclass
class LabRunner:
    """Runs a step's host script in a member's namespace as `ssh host <command line>` would."""

    lab: EtcdLab
    calls: list[tuple[str, str]] | None = None

    def run(self, member: Member, step: Step, stdin: bytes | None) -> tuple[int, str]:
        env = {**step.env, "HAKUBE_ROOT": str(self.lab.root(member.name)), "POLL_S": "0.2", "WAIT_S": "60"}
        result = self.run_script(member.name, step.script, env, stdin=stdin)
        if self.calls is not None:
            self.calls.append((member.name, step.env.get("STEP", "")))
        return result.returncode, (result.stderr + result.stdout).decode(errors="replace")

    def run_script(self, name: str, script: str, env: Mapping[str, str], *, secrets: Mapping[str, str] | None = None,
                   stdin: bytes | None = None, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
        command = command_line(script, env, reads_secrets=bool(secrets))
        data = secret_stdin(secrets).encode() if secrets else (stdin or b"")
        return subprocess.run(["ip", "netns", "exec", self.lab.ns(name), "bash", "-c", command], input=data,
                              capture_output=True, timeout=timeout, check=False)
