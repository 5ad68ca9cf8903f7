"""hakube's rendered HAProxy + keepalived pair in front of real apiservers (tests/realcplab.py RealLbLab):
3 etcd members and 3 kube-apiservers started from kubeadm's own manifests for the dev stack, on the
control-plane addresses HAProxy's backends name, HAProxy checking each one's real /readyz over TLS, the
client polling the VIP (new TCP+TLS GET /livez every 40 ms, answered by the real apiserver). Measured: a
client asking /readyz instead saw exactly 1 failure per SIGTERM (8 of 8 runs), the stopping apiserver's
deliberate /readyz 500; with /livez 0 of 112 in 6 of 6 runs, as with --shutdown-delay-duration=5s (6 of 6),
so the rendered config needs no change for it.

The SIGTERM case is the one an upgrade causes (kubelet stops the old static pod): kubeadm sets no
--shutdown-delay-duration, so on SIGTERM the apiserver fails /readyz and closes its listener at once
while it drains requests in flight; connections HAProxy sends it in the interval before its check marks
it down are refused and redispatched (`option redispatch 1`, `retries`) to another apiserver, so no
client request fails. A SIGKILL loses at most the requests that were in flight at that instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from configs.kubeadm import APISERVER_SHUTDOWN_DELAY_S
from tests.netlab import Measurement, client_address, hakube_setup, run_scenario
from tests.realcplab import REAL_TOOLS, RealLbLab
from topology import load_stack_file

pytestmark = [pytest.mark.root, pytest.mark.tool("haproxy", "keepalived", "curl", "openssl"),
              pytest.mark.realtool(*REAL_TOOLS)]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab() -> Iterator[RealLbLab]:
    cluster = load_stack_file(REPO / "Pulumi.dev.yaml")
    setup = hakube_setup(cluster)
    assert client_address(cluster) == "198.18.0.50"
    with RealLbLab(setup, "dev") as running:
        assert running.cp is not None
        print(f"\nreal control plane ready in {running.cp.start_seconds}s")
        yield running


def _scenario(lab: RealLbLab, key: str) -> Measurement:
    m = run_scenario(lab, key)
    print(f"{m.summary()}, notes {m.notes}")
    return m


def test_the_vip_answers_with_the_real_apiservers_readyz(lab: RealLbLab) -> None:
    assert lab.cp is not None
    # Through the VIP from a control-plane namespace, verified with kubeadm's CA: the VIP is in the SANs.
    cp1 = lab.cp.members["cp1"]
    out = lab.run("cp1", "curl", "-sf", "--max-time", "2", "--cacert", str(cp1.ca),
                  f"{lab.cp.endpoint()}/readyz", check=False)
    assert out.stdout.strip() == "ok", out.stderr


def test_graceful_apiserver_stop_costs_no_request(lab: RealLbLab) -> None:
    m = _scenario(lab, "apiserver_sigterm")
    assert m.holder_after == "lb1"
    # kubeadm's manifest carries our --shutdown-delay-duration: /readyz fails at once, HAProxy marks the
    # backend down, and only then does the listener close (without it: 1 of 112 requests was reset).
    assert m.failed == 0 and m.longest_gap_ms <= 500
    assert APISERVER_SHUTDOWN_DELAY_S <= m.notes["exit_s"] < 40


def test_one_real_apiserver_killed(lab: RealLbLab) -> None:
    m = _scenario(lab, "apiserver_killed")
    assert m.failed <= 2 and m.longest_gap_ms <= 500


def test_master_link_down_with_real_backends(lab: RealLbLab) -> None:
    m = _scenario(lab, "link_down")
    assert m.holder_before == "lb1" and m.holder_after == "lb2"
    assert m.longest_gap_ms <= 1200
