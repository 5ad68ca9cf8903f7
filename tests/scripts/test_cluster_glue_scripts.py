"""admin-kubeconfig.sh and node-registered.sh for real against a scratch root with shims."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.hostsim import ScratchHost


@pytest.mark.tool("bash")
def test_admin_kubeconfig_prints_the_file_or_explains(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    missing = host.run("admin-kubeconfig.sh")
    assert missing.returncode == 1 and "has kubeadm init run" in missing.stderr
    (host.root / "etc/kubernetes").mkdir(parents=True)
    (host.root / "etc/kubernetes/admin.conf").write_text("apiVersion: v1\nkind: Config\n")
    found = host.run("admin-kubeconfig.sh")
    assert found.returncode == 0 and found.stdout == "apiVersion: v1\nkind: Config\n"


@pytest.mark.tool("bash")
def test_node_registered_waits_a_bounded_time(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    host.shim("kubectl", f'n=$(cat "{tmp_path}/n" 2>/dev/null || echo 0); echo $((n+1)) > "{tmp_path}/n"; '
                         '[[ $n -ge 2 ]]')
    ok = host.run("node-registered.sh", env={"NODE_NAME": "w1", "ATTEMPTS": "5", "INTERVAL": "0"})
    assert ok.returncode == 0 and "w1 is a member" in ok.stderr
    assert len(host.calls("kubectl")) == 3
    assert host.calls("kubectl")[0] == ["kubectl", "get", "node", "w1", "--request-timeout=10s", "-o", "name"]


@pytest.mark.tool("bash")
def test_node_registered_gives_up(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    host.shim("kubectl", "exit 1")
    result = host.run("node-registered.sh", env={"NODE_NAME": "w9", "ATTEMPTS": "3", "INTERVAL": "0"})
    assert result.returncode == 1 and "did not register after 3 attempts" in result.stderr
    assert len(host.calls("kubectl")) == 3
