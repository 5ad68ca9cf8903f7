"""etcd-member-remove.sh against a real 3-member etcd in network namespaces, both Debian's
etcd-server 3.4 and the etcd 3.6 that ./scripts/tools builds (what current Kubernetes runs): three
members on one bridge in 198.18.200.0/24, each with its own data directory.
The script removes one member by name (riding out etcd's "unhealthy cluster" refusal right after
start-up), the removed process stops by itself, a second run changes nothing, and the two members
left are healthy."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from configs.scripts import SCRIPT_DIR
from lab import realtools
from lab.netlab import HostSpec, Lab
from lab.procs import wait_until

SUBNET = "198.18.200"
MEMBERS = ("e1", "e2", "e3")


def _address(name: str) -> str:
    return f"{SUBNET}.{MEMBERS.index(name) + 1}"


@dataclass(frozen=True)
class Etcd:
    """Which etcd the cluster runs: its two binaries, and the PATH under which the script finds that etcdctl."""

    etcd: str
    etcdctl: str
    path: str


DEBIAN = Etcd("etcd", "etcdctl", os.environ.get("PATH", "/usr/bin:/bin"))


def _built() -> Etcd:
    etcdctl = realtools.path_of("etcdctl")
    return Etcd(str(realtools.path_of("etcd")), str(etcdctl), f"{etcdctl.parent}:{DEBIAN.path}")


def _client(name: str) -> str:
    return f"http://{_address(name)}:2379"


def _peer(name: str) -> str:
    return f"http://{_address(name)}:2380"


def _etcdctl(lab: Lab, bins: Etcd, *args: str, endpoints: str = _client("e1"), check: bool = True) -> str:
    return lab.run("e1", bins.etcdctl, f"--endpoints={endpoints}", "--dial-timeout=2s", "--command-timeout=5s", *args,
                   check=check, timeout=15).stdout


def _healthy(lab: Lab, bins: Etcd, *names: str) -> int:
    """How many of the members' endpoints etcdctl calls healthy (etcd 3.4 reports on stderr)."""
    result = lab.run("e1", bins.etcdctl, f"--endpoints={','.join(_client(n) for n in names)}", "--dial-timeout=2s",
                     "--command-timeout=5s", "endpoint", "health", check=False, timeout=15)
    return (result.stdout + result.stderr).count(" is healthy")


def _names(lab: Lab, bins: Etcd) -> list[str]:
    return sorted(line.split(", ")[2] for line in _etcdctl(lab, bins, "member", "list").splitlines())


def _start(lab: Lab, bins: Etcd) -> None:
    initial = ",".join(f"{name}={_peer(name)}" for name in MEMBERS)
    for name in MEMBERS:
        data = lab.dir / f"{name}.etcd"
        lab.spawn(name, "etcd", [
            bins.etcd, "--name", name, "--data-dir", str(data), "--logger", "zap", "--log-outputs", "stderr",
            "--listen-client-urls", _client(name), "--advertise-client-urls", _client(name),
            "--listen-peer-urls", _peer(name), "--initial-advertise-peer-urls", _peer(name),
            "--initial-cluster", initial, "--initial-cluster-token", lab.tag, "--initial-cluster-state", "new",
        ])

    wait_until(lambda: _healthy(lab, bins, *MEMBERS) == len(MEMBERS), 20, step=0.2, what="a healthy 3-member etcd")


def _remove(lab: Lab, bins: Etcd, root: Path, name: str) -> tuple[int, str, str]:
    # Run inside e1, against its own member, as the script runs on the first control-plane node.
    result = lab.run("e1", "env", f"PATH={bins.path}", f"HAKUBE_ROOT={root}", f"ETCDCTL_ENDPOINTS={_client('e1')}",
                     f"MEMBER_NAME={name}", "ATTEMPTS=20", "INTERVAL=1",
                     "bash", str(SCRIPT_DIR / "etcd-member-remove.sh"), check=False, timeout=40)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.root
@pytest.mark.parametrize("release", [
    pytest.param("3.4", marks=pytest.mark.tool("etcd", "etcdctl")),
    pytest.param("3.6", marks=pytest.mark.realtool("etcd", "etcdctl")),
])
def test_remove_a_member_of_a_real_cluster(tmp_path: Path, release: str) -> None:
    bins = DEBIAN if release == "3.4" else _built()
    hosts = [HostSpec(name, (f"{_address(name)}/24",)) for name in MEMBERS]
    with Lab(hosts) as lab:
        _start(lab, bins)
        assert _names(lab, bins) == ["e1", "e2", "e3"]
        ids_before = sorted(line.split(", ")[0] for line in _etcdctl(lab, bins, "member", "list").splitlines())

        started = time.monotonic()
        code, _out, err = _remove(lab, bins, tmp_path, "e3")
        assert code == 0, err
        assert "removed member e3" in err and "2 members left" in err
        assert _names(lab, bins) == ["e1", "e2"]
        print(f"removal took {time.monotonic() - started:.1f}s; refusals: {err.count('refused')}")

        # The removed member learns it is out and stops by itself.
        e3 = lab.procs["e3", "etcd"].popen
        wait_until(lambda: e3.poll() is not None, 15, step=0.2, what="the removed etcd to exit")

        code, _out, err = _remove(lab, bins, tmp_path, "e3")
        assert code == 0, err
        assert "already removed" in err
        ids_after = sorted(line.split(", ")[0] for line in _etcdctl(lab, bins, "member", "list").splitlines())
        assert len(ids_after) == 2 and set(ids_after) < set(ids_before)

        assert _healthy(lab, bins, "e1", "e2") == 2
        # The cluster still takes writes with two of its two members.
        _etcdctl(lab, bins, "put", "hakube/after-removal", "ok")
        value = _etcdctl(lab, bins, "get", "hakube/after-removal", "--print-value-only", endpoints=_client("e2"))
        assert value.strip() == "ok"
