"""A control-plane node's apiserver taken out of HAProxy through its runtime API (the real
configs/scripts/haproxy-backend.sh against each LB namespace's admin socket, via `ip netns exec`)
while a client polls the VIP every 40 ms: no request may fail, and the server comes back."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from configs.loadbalancer import render_haproxy, render_keepalived
from configs.scripts import SCRIPT_DIR
from configs.upgrade import ADMIN_SOCKET, backend_env
from dryrun.mockrun import REPO
from lab.netlab import LbLab, setup_from_cluster
from topology import load_stack_file

pytestmark = [pytest.mark.root, pytest.mark.tool("haproxy", "keepalived", "socat", "curl", "openssl")]

CLUSTER = load_stack_file(REPO / "Pulumi.dev.yaml")


@pytest.fixture(scope="module")
def roots() -> Iterator[Path]:
    """One scratch root per LB node: each HAProxy gets its own admin socket below it."""
    with tempfile.TemporaryDirectory(prefix="hk-upgrade-") as base:
        for lb in ("lb1", "lb2"):
            (Path(base) / lb / ADMIN_SOCKET.lstrip("/")).parent.mkdir(parents=True)
        yield Path(base)


@pytest.fixture(scope="module")
def lab(roots: Path) -> Iterator[LbLab]:
    def haproxy(node: str) -> str:
        return render_haproxy(CLUSTER).replace(ADMIN_SOCKET, f"{roots / node}{ADMIN_SOCKET}")

    setup = setup_from_cluster(CLUSTER, haproxy, lambda node: render_keepalived(CLUSTER, node, script_user="nobody"),
                               "198.18.0.50")
    with LbLab(setup) as running:
        yield running


def _backend(lab: LbLab, roots: Path, lb: str, action: str) -> subprocess.CompletedProcess[str]:
    env = {**backend_env(CLUSTER, "cp1", action), "DRAIN_WAIT": "1", "HAKUBE_ROOT": str(roots / lb),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(["ip", "netns", "exec", lab.ns(lb), "env", *(f"{k}={v}" for k, v in env.items()),
                           "bash", str(SCRIPT_DIR / "haproxy-backend.sh")],
                          capture_output=True, text=True, timeout=30, check=False)


def _status(roots: Path, lb: str) -> str:
    out = subprocess.run(["socat", "-t", "2", "stdio", f"UNIX-CONNECT:{roots / lb}{ADMIN_SOCKET}"],
                         input="show stat\n", capture_output=True, text=True, timeout=10, check=True).stdout
    return next(line.split(",")[17] for line in out.splitlines() if line.startswith("kube-apiserver,cp1,"))


def test_drain_one_backend_while_the_vip_is_polled(lab: LbLab, roots: Path) -> None:
    poll = lab.poll(5.0)
    time.sleep(0.5)
    for lb in ("lb1", "lb2"):
        result = _backend(lab, roots, lb, "disable")
        assert result.returncode == 0, result.stderr
        assert _status(roots, lb).startswith("MAINT")
    # The apiserver "restarts" while out of service: nobody notices.
    lab.kill("cp1", "apiserver")
    time.sleep(1.5)
    lab.start_apiserver("cp1", str(CLUSTER.control_plane.nodes[0].control_plane_address), CLUSTER.apiserver_port)
    for lb in ("lb1", "lb2"):
        result = _backend(lab, roots, lb, "enable")
        assert result.returncode == 0, result.stderr
        assert '"changed":true' in result.stdout
    measured = poll.result()
    print(f"backend drain during polling: {measured['failed']}/{measured['requests']} failed,"
          f" longest gap {measured['longest_gap_ms']} ms")
    assert measured.get("error") is None
    assert measured["failed"] == 0
    # Back in service: checks rise again within a few intervals.
    deadline = time.monotonic() + 10
    while not all(_status(roots, lb).startswith("UP") for lb in ("lb1", "lb2")):
        assert time.monotonic() < deadline, [_status(roots, lb) for lb in ("lb1", "lb2")]
        time.sleep(0.2)
