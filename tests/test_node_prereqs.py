"""node-prereqs.sh run for real under bash against a scratch root, with PATH shims for the
package manager, systemctl and kernel tools; the shims keep a tiny dpkg database so a second run
sees what the first installed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from configs.scripts import LIB_SOURCE, SCRIPT_DIR, all_scripts, script
from tests.hostsim import ScratchHost

VERSION = "1.31.4"
MUTATING = {"apt-get", "apt-mark", "swapoff", "modprobe", "sysctl"}


def _fake_host(tmp_path: Path) -> ScratchHost:
    host = ScratchHost(tmp_path)
    db = tmp_path / "dpkg"
    db.mkdir()
    host.shim("dpkg-query", f'pkg="${{@: -1}}"; [[ -f "{db}/$pkg" ]] && cat "{db}/$pkg" || exit 1')
    host.shim(
        "apt-get",
        f'if [[ "$1" == install ]]; then for a in "$@"; do case "$a" in -*|install) ;; '
        f'*=*) printf %s "${{a#*=}}" > "{db}/${{a%%=*}}";; *) printf 1.7.24 > "{db}/$a";; esac; done; fi',
    )
    host.shim("apt-cache", f'echo "   kubeadm | {VERSION}-1.1 | http://mirror.invalid/ ./ Packages"')
    host.shim("apt-mark")
    host.shim("containerd", "printf '%s\\n' '[plugins.cri]' '  SystemdCgroup = false'")
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
    return host


@pytest.mark.tool("bash")
def test_first_run_prepares_the_node(tmp_path: Path) -> None:
    host = _fake_host(tmp_path)
    result = host.run("node-prereqs.sh", env={"KUBERNETES_VERSION": VERSION})
    assert result.returncode == 0, result.stderr
    files = host.tree()
    assert "# disabled by hakube: /swap.img none swap sw 0 0" in files["etc/fstab"]
    assert files["etc/modules-load.d/hakube-k8s.conf"].split() == ["overlay", "br_netfilter"]
    assert "net.ipv4.ip_forward = 1" in files["etc/sysctl.d/99-hakube-k8s.conf"]
    assert "SystemdCgroup = true" in files["etc/containerd/config.toml"]
    installs = [c for c in host.calls("apt-get") if c[1] == "install"]
    assert installs[-1][-3:] == [f"kubelet={VERSION}-1.1", f"kubeadm={VERSION}-1.1", f"kubectl={VERSION}-1.1"]
    assert ["apt-mark", "hold", "kubelet", "kubeadm", "kubectl"] in host.calls()
    tools = [c[0] for c in host.calls()]
    assert tools.index("swapoff") < tools.index("modprobe") < tools.index("sysctl")
    assert ["systemctl", "restart", "containerd"] in host.calls()


@pytest.mark.tool("bash")
def test_second_run_changes_nothing(tmp_path: Path) -> None:
    host = _fake_host(tmp_path)
    assert host.run("node-prereqs.sh", env={"KUBERNETES_VERSION": VERSION}).returncode == 0
    before = host.tree()
    host.clear_calls()
    second = host.run("node-prereqs.sh", env={"KUBERNETES_VERSION": VERSION})
    assert second.returncode == 0, second.stderr
    assert host.tree() == before
    mutating = [c for c in host.calls() if c[0] in MUTATING or c[1:2] in (["restart"], ["enable"])]
    assert mutating == []
    assert "wrote" not in second.stdout


@pytest.mark.tool("bash")
def test_missing_version_in_apt_sources_fails_clearly(tmp_path: Path) -> None:
    host = _fake_host(tmp_path)
    result = host.run("node-prereqs.sh", env={"KUBERNETES_VERSION": "1.32.0"})
    assert result.returncode == 1
    assert "no kubeadm 1.32.0-*" in result.stderr


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
    env = {"KUBERNETES_VERSION": VERSION, "ETCD_CLIENT": "true"}
    assert host.run("node-prereqs.sh", env=env).returncode == 0
    assert ["apt-get", "install", "-y", "-q", "etcd-client"] in host.calls()
    host.clear_calls()
    assert host.run("node-prereqs.sh", env=env).returncode == 0
    assert not [c for c in host.calls("apt-get") if c[1] == "install"]


def test_shared_lib_is_inlined_into_what_is_sent() -> None:
    # Hosts receive one self-contained script: lib.sh's text replaces the line that sources it.
    sent = script("node-prereqs.sh")
    assert LIB_SOURCE not in sent and "write_if_changed() {" in sent
    assert (SCRIPT_DIR / "node-prereqs.sh").read_text().count("write_if_changed() {") == 0
    assert "lib.sh" not in {p.name for p in all_scripts()}
