"""SshLab: SSH hosts in network namespaces, for running hakube's host steps (and real `pulumi up`).

Network (like lab/netlab.py): one bridge namespace `sw` with a veth to each host's `eth0`, every
address in 198.18.0.0/15 (on-link /15 unless a prefix is given), `lo` up everywhere, names
prefixed with a tag unique to the lab. Each host also gets mount, UTS and PID namespaces of its own
(lab/hostinit.py is its PID 1): its /etc, /var, /run, /usr/local, /opt, /root, /home and /srv are
overlays whose writes land in the lab's directory (in /dev/shm), /tmp and /dev/shm are tmpfs of
its own, and it runs its own sshd on its addresses (key auth only) for the stack's ssh user, who
has passwordless sudo. The shims of lab/shims/ sit first on sudo's PATH (/usr/local/sbin, linked
from /usr/local/bin for the login user) and stand in for what cannot be real here.

The runner namespace (`runner`, RUNNER_ADDRESS) is where whatever connects to the hosts runs: the
test's ssh, a VIP client, and pulumi itself (`runner_argv`). Nothing is added to the machine's own
network namespace, so labs never collide (two may use the same addresses at once) and a process in
the runner can only reach the lab: it has no route anywhere else.

Teardown (also when the body raised): every host's PID 1 is killed, which takes every process of
that host with it; then any process still in one of the lab's namespaces is killed by PID (pidfd);
the namespaces are deleted and the lab's directory removed. HAKUBE_LAB_KEEP=1 keeps the directory.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.procs import NsId, all_pids, children, kill_in, ns_id, processes_in, start_time, wait_until

LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")
DEFAULT_PREFIX = LAB_RANGE.prefixlen  # every lab address on-link to every other
BRIDGE = "sw"
RUNNER = "runner"
RUNNER_ADDRESS = "198.19.255.254"
PRIVATE_DIRS = ("/etc", "/var", "/run", "/usr/local", "/opt", "/root", "/home", "/srv")
# The hosts' overlay upper dirs, keys and logs: in memory, where making and removing them is cheap
# (on this kind of machine's disk, removing a 6-host lab's files took 0.9 s).
STATE_PARENT = Path("/dev/shm")
SHIMS = Path(__file__).resolve().parent / "shims"
FAKE_CLUSTER = Path(__file__).resolve().parent / "fakecluster.py"  # what the kubeadm/kubectl/etcdctl shims run
HOSTINIT = Path(__file__).resolve().parent / "hostinit.py"
CHECKOUT = Path(__file__).resolve().parent.parent  # what the hosts must still see under a private /tmp
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # sudo's, as on Debian
HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,12}$")  # the bridge-side veth is v-<name>: 15 chars at most
START_TIMEOUT_S = 20
CMD_TIMEOUT_S = 60


class LabError(RuntimeError):
    pass


@dataclass(frozen=True)
class LabHost:
    name: str
    interfaces: tuple[ipaddress.IPv4Interface, ...]  # on eth0, the first is the host's address

    @property
    def address(self) -> str:
        return str(self.interfaces[0].ip)


def _interfaces(name: str, spec: str | Sequence[str]) -> tuple[ipaddress.IPv4Interface, ...]:
    items = [spec] if isinstance(spec, str) else list(spec)
    interfaces = tuple(ipaddress.IPv4Interface(a if "/" in a else f"{a}/{DEFAULT_PREFIX}") for a in items)
    for interface in interfaces:
        if not interface.network.subnet_of(LAB_RANGE):
            raise ValueError(f"{name}: {interface} is outside the lab range {LAB_RANGE}")
    if not interfaces:
        raise ValueError(f"{name}: no address")
    return interfaces


def parse_hosts(hosts: Mapping[str, str | Sequence[str]], runner_address: str) -> dict[str, LabHost]:
    """`{"lb1": "198.18.0.11", "cp1": ("198.18.0.21", "198.18.1.21/24")}` -> LabHost each, checked."""
    parsed: dict[str, LabHost] = {}
    owner: dict[ipaddress.IPv4Address, str] = {}
    for name, spec in {**hosts, RUNNER: runner_address}.items():
        if name in parsed or (name in (RUNNER, BRIDGE) and name in hosts):
            raise ValueError(f"{name!r} is reserved for the lab's {name} namespace; pick another host name")
        if not HOST_NAME.match(name):
            raise ValueError(f"host name {name!r}: lower-case letters, digits and '-', at most 13 characters")
        parsed[name] = LabHost(name, _interfaces(name, spec))
        for interface in parsed[name].interfaces:
            if interface.ip in owner:
                raise ValueError(f"{name}: {interface.ip} is already {owner[interface.ip]}'s address")
            owner[interface.ip] = name
    return parsed


@dataclass
class Spawned:
    """A long-running process the lab started in a host (through nsenter, which forks into the
    host's PID namespace: `popen` is nsenter, `pid` the process itself)."""

    host: str
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int | None:
        found = children(self.popen.pid)
        return found[0] if found else None

    def signal(self, sig: int) -> None:
        if (pid := self.pid) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


class SshLab:
    """`with SshLab(hosts={"lb1": "198.18.0.11", ...}, user="ops") as lab:` (see the module doc)."""

    def __init__(self, hosts: Mapping[str, str | Sequence[str]], user: str = "ops", *, port: int = 22,
                 runner_address: str = RUNNER_ADDRESS, tag: str | None = None) -> None:
        self.hosts = parse_hosts(hosts, runner_address)
        self.user = user
        self.port = port
        self.tag = tag or f"hs{os.getpid() % 100000}{secrets.token_hex(2)}"
        self.dir = (STATE_PARENT if STATE_PARENT.is_dir() else Path(tempfile.gettempdir())) / self.tag  # made on entry
        self.key_file = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.private_key = ""
        self.public_key = ""
        self._inits: dict[str, subprocess.Popen[bytes]] = {}  # host -> `unshare`, the parent of its PID 1
        self._init_pids: dict[str, int] = {}  # host -> its PID 1, as this machine numbers it
        self._namespaces: list[str] = []
        self._ns_ids: set[NsId] = set()
        self._ns_fds: list[int] = []
        self._unkillable: list[int] = []
        self._spawned: list[Spawned] = []
        self._runner_procs: list[subprocess.Popen[Any]] = []

    # -- the lab's facts
    @property
    def ssh_hosts(self) -> list[str]:
        return [name for name in self.hosts if name != RUNNER]

    def address(self, host: str) -> str:
        return self.hosts[host].address

    def ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    # -- building
    def __enter__(self) -> SshLab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        self.dir.mkdir(mode=0o700)
        self._make_key()
        self._make_network()
        for host in self.ssh_hosts:
            self._start_host(host)
        known = [self._await_host(host) for host in self.ssh_hosts]
        self.known_hosts.write_text("".join(known))

    def _make_key(self) -> None:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"hakube-lab {self.tag}",
                        "-f", str(self.key_file)], check=True, capture_output=True, timeout=30)
        self.private_key = self.key_file.read_text()
        self.public_key = Path(f"{self.key_file}.pub").read_text().strip()

    def _ip_batch(self, commands: list[str], ns: str | None = None) -> None:
        argv = ["ip", *(["-n", ns] if ns else []), "-batch", "-"]
        result = subprocess.run(argv, input="\n".join(commands) + "\n", capture_output=True, text=True,
                                timeout=30, check=False)
        if result.returncode != 0:
            raise LabError(f"{' '.join(argv)}: {result.stderr.strip()}")

    def _make_network(self) -> None:
        names = [self.ns(BRIDGE), *(self.ns(h) for h in self.hosts)]
        self._namespaces = names  # deleted at teardown, even the ones not made yet
        self._ip_batch([f"netns add {n}" for n in names])
        self._ns_ids.update(i for n in names if (i := ns_id(f"/run/netns/{n}")) is not None)
        bridge = ["link set lo up", "link add br0 type bridge forward_delay 0 stp_state 0", "link set br0 up"]
        for host in self.hosts:
            bridge += [f"link add {self._port(host)} type veth peer name eth0 netns {self.ns(host)}",
                       f"link set {self._port(host)} master br0 up"]
        self._ip_batch(bridge, self.ns(BRIDGE))
        for host, spec in self.hosts.items():
            self._ip_batch(["link set lo up", *(f"addr add {i} dev eth0" for i in spec.interfaces),
                            "link set eth0 up"], self.ns(host))

    @staticmethod
    def _port(host: str) -> str:
        return f"v-{host}"

    def _start_host(self, host: str) -> None:
        state = self.dir / "hosts" / host
        state.mkdir(parents=True)
        settings = {
            "name": host, "state": str(state), "private_dirs": list(PRIVATE_DIRS), "user": self.user,
            "authorized_key": self.public_key, "addresses": [str(i.ip) for i in self.hosts[host].interfaces],
            "port": self.port, "shims": str(SHIMS), "helpers": [str(FAKE_CLUSTER)], "python": sys.executable,
            "hosts": {name: spec.address for name, spec in self.hosts.items()},
            "keep": [str(CHECKOUT), sys.prefix],
        }
        with (state / "init.log").open("ab") as log:
            init = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(host), "unshare", "--mount", "--uts", "--pid", "--fork",
                 "--kill-child", "--mount-proc", "--propagation", "slave", "--",
                 sys.executable, "-I", str(HOSTINIT)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=self._host_env())
        self._inits[host] = init
        assert init.stdin is not None
        init.stdin.write(json.dumps(settings).encode())
        init.stdin.close()

    def _await_host(self, host: str) -> str:
        """Wait for the host's `ready` line; its known_hosts line."""
        init = self._inits[host]
        assert init.stdout is not None
        ready, _, _ = select.select([init.stdout], [], [], START_TIMEOUT_S)
        line = init.stdout.readline().decode().strip() if ready else ""
        init.stdout.close()
        if not line.startswith("ready "):
            log = (self.dir / "hosts" / host / "init.log").read_text(errors="replace")[-2000:]
            raise LabError(f"host {host} did not start: {line or 'no answer'} {log}")
        wait_until(lambda: bool(children(init.pid)), 5, f"{host}'s PID 1")
        self._init_pids[host] = children(init.pid)[0]
        for kind in ("mnt", "pid"):  # the PID 1's own; `unshare` stays in the machine's PID namespace
            # Held open until teardown is over, so no other namespace can get its number meanwhile.
            fd = os.open(f"/proc/{self._init_pids[host]}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
            self._ns_fds.append(fd)
            st = os.fstat(fd)
            self._ns_ids.add((st.st_dev, st.st_ino))
        addresses = ",".join(str(i.ip) for i in self.hosts[host].interfaces)
        return f"{addresses} {line.removeprefix('ready ')}\n"

    @staticmethod
    def _host_env() -> dict[str, str]:
        return {"PATH": SECURE_PATH, "HOME": "/root", "LANG": "C.UTF-8"}

    # -- inside a host, as root
    def _enter(self, host: str) -> list[str]:
        if host not in self._init_pids:
            raise LabError(f"{host} is not a running SSH host of this lab: {self.ssh_hosts}")
        return ["nsenter", f"--target={self._init_pids[host]}", "--mount", "--uts", "--net", "--pid", "--"]

    def run(self, host: str, command: str, *, stdin: str | None = None, check: bool = True,
            timeout: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        """`bash -c command` as root inside the host (its files, network and processes)."""
        result = subprocess.run([*self._enter(host), "bash", "-c", command], input=stdin, capture_output=True,
                                text=True, timeout=timeout, check=False, env=self._host_env())
        if check and result.returncode != 0:
            raise LabError(f"{host}: {command!r} exited {result.returncode}: {result.stderr.strip()}")
        return result

    def read(self, host: str, path: str) -> str:
        return self.run(host, f"cat -- {shlex.quote(path)}").stdout

    def exists(self, host: str, path: str) -> bool:
        return self.run(host, f"test -e {shlex.quote(path)}", check=False).returncode == 0

    def write(self, host: str, path: str, text: str, mode: str = "0644") -> None:
        if not re.fullmatch(r"0?[0-7]{3}", mode):
            raise ValueError(f"{path}: bad file mode {mode!r}")
        quoted = shlex.quote(path)
        self.run(host, f'mkdir -p "$(dirname {quoted})" && cat >{quoted} && chmod {mode} {quoted}', stdin=text)

    def spawn(self, host: str, name: str, argv: Sequence[str]) -> Spawned:
        """A long-running process inside the host (e.g. a fake apiserver); killed at teardown."""
        log = self.dir / "hosts" / host / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen([*self._enter(host), *argv], stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=out, env=self._host_env())
        proc = Spawned(host, name, popen, log)
        self._spawned.append(proc)
        wait_until(lambda: proc.pid is not None or popen.poll() is not None, 5, f"{name} in {host}")
        return proc

    def host_processes(self, host: str) -> dict[int, str]:
        """Every process of the host (its PID namespace) as this machine numbers it: pid -> the
        start time field of /proc/PID/stat, so a later check is not fooled by a reused PID."""
        host_pid_ns = ns_id(f"/proc/{self._init_pids[host]}/ns/pid")
        return {pid: start for pid in all_pids() if ns_id(f"/proc/{pid}/ns/pid") == host_pid_ns
                and (start := start_time(pid))}

    def processes(self) -> list[int]:
        """Every live process in any of the lab's namespaces (its hosts and the runner), by PID."""
        return processes_in(self._ns_ids)

    def addresses(self, host: str) -> list[str]:
        """The IPv4 addresses on the host's eth0 right now (a VIP shows up here)."""
        out = subprocess.run(["ip", "-n", self.ns(host), "-4", "-o", "addr", "show", "dev", "eth0"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return [line.split()[3].split("/")[0] for line in out.splitlines()]

    def link_down(self, host: str) -> None:
        self._ip_batch([f"link set {self._port(host)} down"], self.ns(BRIDGE))

    def link_up(self, host: str) -> None:
        self._ip_batch([f"link set {self._port(host)} up"], self.ns(BRIDGE))

    # -- from the runner namespace (the test's side: ssh, clients, pulumi)
    def runner_argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` run in the runner namespace, as PID 1 of a PID namespace of its own: when it
        exits or is killed, every process it left behind dies with it."""
        return ["ip", "netns", "exec", self.ns(RUNNER), "unshare", "--pid", "--fork", "--kill-child", "--", *argv]

    def runner_run(self, argv: Sequence[str], *, stdin: str | None = None, timeout: float = CMD_TIMEOUT_S,
                   env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.runner_argv(argv), input=stdin, capture_output=True, text=True, timeout=timeout,
                              check=False, env=dict(env) if env is not None else None)

    def runner_popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """A long-running process in the runner (a VIP client, pulumi); killed at teardown."""
        popen: subprocess.Popen[Any] = subprocess.Popen(self.runner_argv(argv), **kwargs)
        self._runner_procs.append(popen)
        return popen

    def ssh_argv(self, host: str, command: str) -> list[str]:
        """A real ssh from the runner to `host` as the lab user, checking the host key."""
        return ["ssh", "-i", str(self.key_file), "-p", str(self.port), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "ConnectTimeout=5", "-F", "none", f"{self.user}@{self.address(host)}", command]

    def ssh(self, host: str, command: str, *, stdin: str | None = None,
            timeout: float = CMD_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return self.runner_run(self.ssh_argv(host, command), stdin=stdin, timeout=timeout, env=self._host_env())

    # -- teardown
    def close(self) -> None:
        """Tear everything down; each stage runs even if an earlier one raised."""
        try:
            self._stop_processes()
        finally:
            try:
                for name in reversed(self._namespaces):
                    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10, check=False)
                self._namespaces = []
            finally:
                self._release()
        if self._unkillable:
            raise LabError(f"teardown: processes {self._unkillable} would not die")

    def _stop_processes(self) -> None:
        for host, init in self._inits.items():
            if host in self._init_pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._init_pids[host], signal.SIGKILL)  # the kernel kills the rest of the host
            else:
                init.kill()  # --kill-child: a PID 1 that never reported dies with it
        for init in self._inits.values():
            try:
                init.wait(timeout=5)  # `unshare` reaps its PID 1, then exits
            except subprocess.TimeoutExpired:
                init.kill()
        self._init_pids.clear()
        others = [*self._runner_procs, *(s.popen for s in self._spawned)]
        for proc in others:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        self._unkillable = kill_in(self._ns_ids)
        for popen in [*self._inits.values(), *others]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)
        self._inits.clear()
        self._spawned.clear()
        self._runner_procs.clear()

    def _release(self) -> None:
        for fd in self._ns_fds:  # the hosts' mount namespaces go, and their overlays with them
            os.close(fd)
        self._ns_fds.clear()
        if not os.environ.get("HAKUBE_LAB_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """What of this lab is still on the machine (empty after close): namespaces, processes in
        them, mounts of its directory, the directory."""
        found = [f"namespace {n}" for n in _netns_names() if n.startswith(f"{self.tag}-")]
        # While its namespaces were still held, teardown killed until no process was left in them.
        found += [f"process {pid}" for pid in self._unkillable]
        found += [f"mount {m}" for m in _mounts_mentioning(str(self.dir))]
        if self.dir.exists() and not os.environ.get("HAKUBE_LAB_KEEP"):
            found.append(f"directory {self.dir}")
        return found


def _netns_names() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _mounts_mentioning(text: str) -> list[str]:
    """Mounts in any process's mount namespace whose source or options name `text`."""
    found: set[str] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{name}/mountinfo").read_text().splitlines():
                if text in line:
                    found.add(line.split(" - ")[0].split()[4])
    return sorted(found)
