"""node-prereqs.sh run for real under bash against a scratch root, with PATH shims for the
package manager, systemctl and kernel tools; the shims keep a tiny dpkg database so a second run
sees what the first installed. The scratch root stands for the host's / (HAKUBE_ROOT), its
sys/fs/cgroup/cgroup.controllers for a cgroup v2 host."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from configs.containerd import containerd_config
from configs.scripts import LIB_SOURCE, SCRIPT_DIR, all_scripts, script
from dryrun.mockrun import REPO
from lab.hostsim import ScratchHost
from topology import load_stack_file

CLUSTER = load_stack_file(REPO / "Pulumi.dev.yaml")
VERSION = CLUSTER.kubernetes_version
CONTAINERD_CONFIG = containerd_config(CLUSTER)
CONTAINERD_2 = "2.2.1-0ubuntu1~24.04.1"  # Ubuntu 24.04 noble-updates
CONTAINERD_1 = "1.7.28-0ubuntu1~24.04.1"
MUTATING = {"apt-get", "apt-mark", "swapoff", "modprobe", "sysctl"}


def _fake_host(tmp_path: Path, candidate: str = CONTAINERD_2, cgroup_v2: bool = True) -> ScratchHost:
    host = ScratchHost(tmp_path)
    db = tmp_path / "dpkg"
    db.mkdir()
    # As dpkg-query answers: the version for -f '${Version}', the state for -f '${db:Status-Status}'.
    host.shim("dpkg-query", f'pkg="${{@: -1}}"; [[ -f "{db}/$pkg" ]] || exit 1; '
                            f'if [[ "$*" == *db:Status-Status* ]]; then echo installed; else cat "{db}/$pkg"; fi')
    host.shim(
        "apt-get",
        f'if [[ "$1" == install ]]; then for a in "$@"; do case "$a" in -*|install) ;; '
        f'*=*) printf %s "${{a#*=}}" > "{db}/${{a%%=*}}";; *) printf 3.5.0 > "{db}/$a";; esac; done; fi',
    )
    host.shim("apt-cache", f'if [[ "$1" == policy ]]; then printf "%s:\\n  Candidate: %s\\n" "$2" "{candidate}"; '
                           f'else echo "   kubeadm | {VERSION}-1.1 | http://mirror.invalid/ ./ Packages"; fi')
    host.shim("apt-mark")
    host.shim("systemctl", f'[[ "$1" == is-enabled && -f "{tmp_path}/enabled-$3" ]] && exit 0; '
                           f'[[ "$1" == enable ]] && touch "{tmp_path}/enabled-${{@: -1}}"; '
                           '[[ "$1" == is-enabled ]] && exit 1; exit 0')
    host.shim("swapoff", f'printf "Filename\\n" > "{host.root}/proc/swaps"')
    host.shim("modprobe", f'mkdir -p "{host.root}/sys/module/$1"')
    host.shim("sysctl")
    (host.root / "proc").mkdir()
    (host.root / "proc/swaps").write_text("Filename Type Size Used Priority\n/swap.img file 1 0 -2\n")
    (host.root / "etc").mkdir()
    (host.root / "etc/fstab").write_text("UUID=abc / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n")
    if cgroup_v2:
        (host.root / "sys/fs/cgroup").mkdir(parents=True)
        (host.root / "sys/fs/cgroup/cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    return host


def _prereqs(host: ScratchHost, env: dict[str, str] | None = None, stdin: str | None = CONTAINERD_CONFIG,
             ) -> subprocess.CompletedProcess[str]:
    return host.run("node-prereqs.sh", env={"KUBERNETES_VERSION": VERSION, **(env or {})},
                    stdin=stdin if stdin is not None else "")


def _installed(tmp_path: Path, package: str, version: str) -> None:
    (tmp_path / "dpkg" / package).write_text(version)


@pytest.mark.tool("bash")
def test_first_run_prepares_the_node(tmp_path: Path) -> None:
    host = _fake_host(tmp_path)
    result = _prereqs(host)
    assert result.returncode == 0, result.stderr
    files = host.tree()
    assert "# disabled by hakube: /swap.img none swap sw 0 0" in files["etc/fstab"]
    assert files["etc/modules-load.d/hakube-k8s.conf"].split() == ["overlay", "br_netfilter"]
    assert "net.ipv4.ip_forward = 1" in files["etc/sysctl.d/99-hakube-k8s.conf"]
    # containerd 2.x from apt's candidate, configured with exactly what configs/containerd.py renders.
    assert ["apt-get", "install", "-y", "-q", f"containerd={CONTAINERD_2}"] in host.calls()
    assert files["etc/containerd/config.toml"] == CONTAINERD_CONFIG
    config = tomllib.loads(files["etc/containerd/config.toml"])
    assert config["version"] == 3
    runc = config["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is True
    installs = [c for c in host.calls("apt-get") if c[1] == "install"]
    assert installs[-1][-3:] == [f"kubelet={VERSION}-1.1", f"kubeadm={VERSION}-1.1", f"kubectl={VERSION}-1.1"]
    assert ["apt-mark", "hold", "kubelet", "kubeadm", "kubectl"] in host.calls()
    tools = [c[0] for c in host.calls()]
    assert tools.index("swapoff") < tools.index("modprobe") < tools.index("sysctl")
    assert ["systemctl", "restart", "containerd"] in host.calls()


@pytest.mark.tool("bash")
def test_second_run_changes_nothing(tmp_path: Path) -> None:
    host = _fake_host(tmp_path)
    assert _prereqs(host).returncode == 0
    before = host.tree()
    host.clear_calls()
    second = _prereqs(host)
    assert second.returncode == 0, second.stderr
    assert host.tree() == before
    mutating = [c for c in host.calls() if c[0] in MUTATING or c[1:2] in (["restart"], ["enable"])]
    assert mutating == []
    assert "wrote" not in second.stdout


@pytest.mark.tool("bash")
def test_a_changed_containerd_config_is_written_and_containerd_restarted(tmp_path: Path) -> None:
    host = _fake_host(tmp_path)
    (host.root / "etc/containerd").mkdir(parents=True)
    (host.root / "etc/containerd/config.toml").write_text("version = 2\n")
    _installed(tmp_path, "containerd", CONTAINERD_2)
    result = _prereqs(host)
    assert result.returncode == 0, result.stderr
    assert host.tree()["etc/containerd/config.toml"] == CONTAINERD_CONFIG
    assert ["systemctl", "restart", "containerd"] in host.calls()
    assert not [c for c in host.calls("apt-get") if "containerd" in " ".join(c)]  # 2.x kept as installed


def _refused_without_a_change(host: ScratchHost, result: subprocess.CompletedProcess[str], before: dict[str, str],
                              ) -> None:
    assert result.returncode == 1
    assert host.tree() == before  # refused before swap, modules, sysctls or any file
    assert not [c for c in host.calls() if c[0] in MUTATING - {"apt-get"} or c[1:2] == ["install"]]


@pytest.mark.tool("bash")
def test_cgroup_v1_is_refused_with_what_to_do(tmp_path: Path) -> None:
    host = _fake_host(tmp_path, cgroup_v2=False)
    before = host.tree()
    result = _prereqs(host)
    _refused_without_a_change(host, result, before)
    assert "cgroup v1 (no /sys/fs/cgroup/cgroup.controllers)" in result.stderr
    assert "systemd.unified_cgroup_hierarchy=1" in result.stderr and "reboot" in result.stderr


@pytest.mark.tool("bash")
@pytest.mark.parametrize("package", ["containerd", "containerd.io"])
def test_installed_containerd_1_is_refused_with_what_to_do(tmp_path: Path, package: str) -> None:
    host = _fake_host(tmp_path)
    _installed(tmp_path, package, CONTAINERD_1)
    before = host.tree()
    result = _prereqs(host)
    _refused_without_a_change(host, result, before)
    assert f"containerd {CONTAINERD_1} is installed, but Kubernetes 1.35+ needs containerd 2.x" in result.stderr
    assert "Ubuntu 24.04 noble-updates ships 2.2.1, 26.04 ships 2.2.2" in result.stderr


@pytest.mark.tool("bash")
def test_offered_containerd_1_is_never_installed(tmp_path: Path) -> None:
    host = _fake_host(tmp_path, candidate="1.7.24-0ubuntu1~24.04.2")
    before = host.tree()
    result = _prereqs(host)
    _refused_without_a_change(host, result, before)
    assert "apt offers containerd 1.7.24-0ubuntu1~24.04.2, but Kubernetes 1.35+ needs containerd 2.x" in result.stderr


@pytest.mark.tool("bash")
def test_no_containerd_package_at_all_is_refused(tmp_path: Path) -> None:
    host = _fake_host(tmp_path, candidate="(none)")
    result = _prereqs(host)
    assert result.returncode == 1
    assert "no containerd package in the configured apt sources" in result.stderr


@pytest.mark.tool("bash")
def test_dockers_containerd_io_2_is_used_as_installed(tmp_path: Path) -> None:
    host = _fake_host(tmp_path)
    _installed(tmp_path, "containerd.io", "2.2.2-1~ubuntu.24.04~noble")
    result = _prereqs(host)
    assert result.returncode == 0, result.stderr
    assert not [c for c in host.calls("apt-get") if any(a.startswith("containerd") for a in c)]
    assert host.tree()["etc/containerd/config.toml"] == CONTAINERD_CONFIG


@pytest.mark.tool("bash")
@pytest.mark.parametrize("stdin", ["", "version = 2\n[plugins]\n"])
def test_a_missing_containerd_config_is_refused(tmp_path: Path, stdin: str) -> None:
    host = _fake_host(tmp_path)
    before = host.tree()
    result = _prereqs(host, stdin=stdin)
    _refused_without_a_change(host, result, before)
    assert "no containerd configuration (config version 3" in result.stderr


@pytest.mark.tool("bash")
def test_missing_version_in_apt_sources_fails_clearly(tmp_path: Path) -> None:
    host = _fake_host(tmp_path)
    result = _prereqs(host, env={"KUBERNETES_VERSION": "1.36.5"})
    assert result.returncode == 1
    assert "no kubeadm 1.36.5-*" in result.stderr


@pytest.mark.tool("bash")
def test_version_is_required(tmp_path: Path) -> None:
    result = _fake_host(tmp_path).run("node-prereqs.sh")
    assert result.returncode != 0
    assert "KUBERNETES_VERSION is required" in result.stderr


@pytest.mark.tool("shellcheck")
def test_every_host_script_is_shellcheck_clean() -> None:
    scripts = sorted(SCRIPT_DIR.glob("*.sh"))
    assert scripts, "no host scripts found"
    result = subprocess.run(["shellcheck", "-x", *map(str, scripts)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


@pytest.mark.tool("bash")
def test_control_plane_nodes_get_etcdctl_once(tmp_path: Path) -> None:
    host = _fake_host(tmp_path)
    env = {"ETCD_CLIENT": "true"}
    assert _prereqs(host, env=env).returncode == 0
    assert ["apt-get", "install", "-y", "-q", "etcd-client"] in host.calls()
    host.clear_calls()
    assert _prereqs(host, env=env).returncode == 0
    assert not [c for c in host.calls("apt-get") if c[1] == "install"]


def test_shared_lib_is_inlined_into_what_is_sent() -> None:
    # Hosts receive one self-contained script: lib.sh's text replaces the line that sources it.
    sent = script("node-prereqs.sh")
    assert LIB_SOURCE not in sent and "write_if_changed() {" in sent
    assert (SCRIPT_DIR / "node-prereqs.sh").read_text().count("write_if_changed() {") == 0
    assert "lib.sh" not in {p.name for p in all_scripts()}
