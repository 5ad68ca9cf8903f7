"""smoke-check.sh run for real under bash, with `curl` and `kubectl` shims standing in for the
NodePort and the API: every node reached, a dead node named, bounded retries, JSON summary."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from configs import addons as cfg
from configs.scripts import SCRIPT_DIR
from tests.hostsim import ScratchHost
from tests.mockgraph import stack_cluster
from topology import load_cluster

SCRIPT = "smoke-check.sh"
NODES = "w1=198.18.0.41 w2=198.18.0.42 cp1=198.18.0.21"
FAST = {"ATTEMPTS": "3", "INTERVAL": "0.05", "CURL_TIMEOUT": "1"}


def _host(tmp_path: Path, dead: tuple[str, ...] = (), ready: int = 2, flaky: str = "") -> ScratchHost:
    """Shims: curl answers 200 except for `dead` addresses (000, as for a refused connection);
    `flaky` answers 000 on its first call only; kubectl reports `ready` ready replicas."""
    host = ScratchHost(tmp_path)
    dead_cases = "".join(f"*//{a}:*) printf 000; exit 7;; " for a in dead)
    flaky_case = (f'*//{flaky}:*) if [[ ! -f "{tmp_path}/flaky" ]]; then touch "{tmp_path}/flaky"; printf 000; exit 7;'
                  " fi; printf 200;; ") if flaky else ""
    host.shim("curl", f'url="${{@: -1}}"; case "$url" in {dead_cases}{flaky_case}*) printf 200;; esac')
    host.shim("kubectl", f"printf {ready}")
    return host


def _env(**extra: str) -> dict[str, str]:
    return {"NODE_ADDRESSES": NODES, "NODE_PORT": str(cfg.SMOKE_NODE_PORT), **FAST, **extra}


@pytest.mark.tool("bash")
def test_every_node_reached_and_summarised(tmp_path: Path) -> None:
    host = _host(tmp_path)
    result = host.run(SCRIPT, env=_env(NAMESPACE="hakube-smoke", DEPLOYMENT="hakube-smoke", REPLICAS="2"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["nodePort"] == cfg.SMOKE_NODE_PORT
    assert summary["readyReplicas"] == 2 and summary["deployment"] == "hakube-smoke/hakube-smoke"
    assert [(n["name"], n["address"], n["status"]) for n in summary["nodes"]] == [
        ("w1", "198.18.0.41", 200), ("w2", "198.18.0.42", 200), ("cp1", "198.18.0.21", 200)]
    urls = sorted(call[-1] for call in host.calls("curl"))
    assert urls == sorted(f"http://{a}:{cfg.SMOKE_NODE_PORT}/" for a in ("198.18.0.41", "198.18.0.42", "198.18.0.21"))
    (kubectl,) = host.calls("kubectl")
    assert kubectl[1:3] == ["--kubeconfig", f"{host.root}/etc/kubernetes/admin.conf"]
    assert "hakube-smoke" in kubectl


@pytest.mark.tool("bash")
def test_a_dead_node_fails_by_name_after_bounded_retries(tmp_path: Path) -> None:
    host = _host(tmp_path, dead=("198.18.0.42",))
    started = time.monotonic()
    result = host.run(SCRIPT, env=_env(), timeout=30)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert result.stdout == ""
    assert "node w2 (198.18.0.42)" in result.stderr and "3 attempts" in result.stderr
    assert "w1" not in result.stderr and "cp1" not in result.stderr
    calls = [c[-1] for c in host.calls("curl")]
    # The dead node is tried exactly ATTEMPTS times; healthy nodes once each.
    assert calls.count(f"http://198.18.0.42:{cfg.SMOKE_NODE_PORT}/") == 3
    assert calls.count(f"http://198.18.0.41:{cfg.SMOKE_NODE_PORT}/") == 1
    assert elapsed < 10


@pytest.mark.tool("bash")
def test_a_slow_node_is_retried_until_it_answers(tmp_path: Path) -> None:
    host = _host(tmp_path, flaky="198.18.0.21")
    result = host.run(SCRIPT, env=_env())
    assert result.returncode == 0, result.stderr
    attempts = {n["name"]: n["attempts"] for n in json.loads(result.stdout)["nodes"]}
    assert attempts == {"w1": 1, "w2": 1, "cp1": 2}


@pytest.mark.tool("bash")
def test_too_few_ready_replicas_fails_before_probing(tmp_path: Path) -> None:
    host = _host(tmp_path, ready=1)
    result = host.run(SCRIPT, env=_env(NAMESPACE="hakube-smoke", DEPLOYMENT="hakube-smoke", REPLICAS="2"))
    assert result.returncode == 1
    assert "hakube-smoke/hakube-smoke has 1 of 2 replicas ready after 3 attempts" in result.stderr
    assert len(host.calls("kubectl")) == 3
    assert host.calls("curl") == []


@pytest.mark.tool("bash")
@pytest.mark.parametrize(("env", "message"), [
    ({"NODE_ADDRESSES": ""}, "NODE_ADDRESSES"),
    ({"NODE_ADDRESSES": 'w1=198.18.0.41"}'}, "bad node entry"),
    ({"NODE_PORT": "80a"}, "not a port number"),
    ({"ATTEMPTS": "0"}, "not a count"),
])
def test_bad_input_refused(tmp_path: Path, env: dict[str, str], message: str) -> None:
    host = _host(tmp_path)
    result = host.run(SCRIPT, env=_env(**env))
    assert result.returncode != 0
    assert message in result.stderr
    assert host.calls("curl") == []


def test_env_from_config_names_the_given_nodes() -> None:
    cluster = load_cluster(stack_cluster("dev"))
    nodes = [f"{n.name}={n.address}" for n in [*cluster.control_plane.nodes, *cluster.workers]]
    env = cfg.smoke_check_env(cluster, nodes)
    entries = env["NODE_ADDRESSES"].split()
    assert entries == ["cp1=198.18.0.21", "cp2=198.18.0.22", "cp3=198.18.0.23",
                       "w1=198.18.0.41", "w2=198.18.0.42", "w3=198.18.0.43"]
    assert env["NODE_PORT"] == str(cfg.SMOKE_NODE_PORT)
    assert env["REPLICAS"] == str(cluster.addons.smoke_test_replicas)


@pytest.mark.tool("shellcheck")
def test_shellcheck_clean() -> None:
    result = subprocess.run(["shellcheck", str(SCRIPT_DIR / SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
