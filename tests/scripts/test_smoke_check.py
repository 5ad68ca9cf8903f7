"""smoke-check.sh run for real under bash, with `curl` and `kubectl` shims standing in for the
NodePort and the API: every node reached, a dead node named, bounded retries, JSON summary."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from configs import addons as cfg
from lab.hostsim import ScratchHost
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
    ({"NODE_PORT": ""}, "set NODE_PORT, GATEWAY or both"),
    ({"ATTEMPTS": "0"}, "not a count"),
    ({"GATEWAY": "hakube"}, "is not namespace/name"),
    ({"GATEWAY": "hakube-gateway/hakube"}, "GATEWAY_PORT= is not a port number"),
    ({"GATEWAY": "hakube-gateway/hakube", "GATEWAY_PORT": "80", "GATEWAY_SERVICE_NAMESPACE": "x",
      "GATEWAY_SERVICE_SELECTOR": "a=b;reboot"}, "is not a label selector"),
])
def test_bad_input_refused(tmp_path: Path, env: dict[str, str], message: str) -> None:
    host = _host(tmp_path)
    result = host.run(SCRIPT, env=_env(**env))
    assert result.returncode != 0
    assert message in result.stderr
    assert host.calls("curl") == []


GATEWAY = "hakube-gateway/hakube"
GATEWAY_ADDRESS = "198.18.0.200"
GATEWAY_NODE_PORT = 31080


def _gateway_host(tmp_path: Path, address: str = GATEWAY_ADDRESS, dead: tuple[str, ...] = ()) -> ScratchHost:
    """kubectl answers like an API with the Gateway's status address and its Service's NodePort;
    curl answers 200 except at `dead` addresses."""
    host = _host(tmp_path, dead=dead)
    host.shim("kubectl", f'case "$*" in *" get deployment "*) printf 1;; *" get gateway "*) printf "{address}";;'
                         f' *" get service "*) printf {GATEWAY_NODE_PORT};; esac')
    return host


def _gateway_env(**extra: str) -> dict[str, str]:
    return {"GATEWAY": GATEWAY, "GATEWAY_PORT": "80", "NAMESPACE": "hakube-smoke", "DEPLOYMENT": "hakube-smoke",
            "REPLICAS": "1", **FAST, **extra}


@pytest.mark.tool("bash")
def test_gateway_answers_at_the_address_in_its_status(tmp_path: Path) -> None:
    host = _gateway_host(tmp_path)
    result = host.run(SCRIPT, env=_gateway_env())
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["nodes"] == [] and "nodePort" not in summary
    assert summary["gateway"] == {"name": GATEWAY, "port": 80, "targets": [
        {"name": "hakube", "address": GATEWAY_ADDRESS, "status": 200, "attempts": 1}]}
    assert [call[-1] for call in host.calls("curl")] == [f"http://{GATEWAY_ADDRESS}:80/"]
    gateway_reads = [call for call in host.calls("kubectl") if "gateway" in call]
    assert gateway_reads and gateway_reads[0][3:7] == ["-n", "hakube-gateway", "get", "gateway"]
    assert "jsonpath={.status.addresses[0].value}" in gateway_reads[0][-1]


@pytest.mark.tool("bash")
def test_gateway_node_port_is_probed_through_every_node(tmp_path: Path) -> None:
    host = _gateway_host(tmp_path, dead=("198.18.0.42",))
    env = _gateway_env(NODE_ADDRESSES=NODES, GATEWAY_SERVICE_NAMESPACE="envoy-gateway-system",
                       GATEWAY_SERVICE_SELECTOR="gateway.envoyproxy.io/owning-gateway-name=hakube")
    result = host.run(SCRIPT, env=env, timeout=30)
    assert result.returncode == 1 and result.stdout == ""
    assert (f"gateway {GATEWAY} through node w2 (198.18.0.42): http://198.18.0.42:{GATEWAY_NODE_PORT}/ gave no"
            " HTTP 200 in 3 attempts") in result.stderr
    assert "w1" not in result.stderr
    urls = [call[-1] for call in host.calls("curl")]
    assert urls.count(f"http://198.18.0.41:{GATEWAY_NODE_PORT}/") == 1
    assert urls.count(f"http://198.18.0.42:{GATEWAY_NODE_PORT}/") == 3
    (service_read,) = [call for call in host.calls("kubectl") if "service" in call]
    assert service_read[3:8] == ["-n", "envoy-gateway-system", "get", "service", "-l"]
    assert "ports[?(@.port==80)].nodePort" in service_read[-1]


@pytest.mark.tool("bash")
def test_gateway_node_ports_answering_everywhere_are_summarised(tmp_path: Path) -> None:
    host = _gateway_host(tmp_path)
    env = _gateway_env(NODE_ADDRESSES=NODES, GATEWAY_SERVICE_NAMESPACE="hakube-gateway",
                       GATEWAY_SERVICE_SELECTOR="io.cilium.gateway/owning-gateway=hakube")
    result = host.run(SCRIPT, env=env)
    assert result.returncode == 0, result.stderr
    gateway = json.loads(result.stdout)["gateway"]
    assert gateway["port"] == GATEWAY_NODE_PORT
    assert [(t["name"], t["address"], t["status"]) for t in gateway["targets"]] == [
        ("w1", "198.18.0.41", 200), ("w2", "198.18.0.42", 200), ("cp1", "198.18.0.21", 200)]


@pytest.mark.tool("bash")
def test_a_gateway_without_an_address_fails_after_bounded_reads(tmp_path: Path) -> None:
    host = _gateway_host(tmp_path, address="")
    started = time.monotonic()
    result = host.run(SCRIPT, env=_gateway_env(), timeout=30)
    assert result.returncode == 1
    assert f"gateway {GATEWAY} has no address in its status after 3 attempts" in result.stderr
    assert len([call for call in host.calls("kubectl") if "gateway" in call]) == 3
    assert host.calls("curl") == []
    assert time.monotonic() - started < 10


def test_gateway_env_from_config() -> None:
    data = stack_cluster("dev") | {"addons": {"gateway": {"enabled": True}}}
    env = cfg.smoke_check_env(load_cluster(data), ["w1=198.18.0.41"])
    assert env["GATEWAY"] == f"{cfg.GATEWAY_NAMESPACE}/{cfg.GATEWAY_NAME}"
    assert env["GATEWAY_PORT"] == str(cfg.GATEWAY_PORT)
    assert env["GATEWAY_SERVICE_NAMESPACE"] == cfg.ENVOY_GATEWAY_NAMESPACE
    assert env["NODE_ADDRESSES"] == "w1=198.18.0.41" and env["NODE_PORT"] == str(cfg.SMOKE_NODE_PORT)
    lb = load_cluster(data | {"addons": {"gateway": {"enabled": True},
                                         "metallb": {"enabled": True, "addresses": ["198.18.0.200/29"]}}})
    assert "GATEWAY" not in cfg.smoke_check_env(lb, ["w1=198.18.0.41"])
    assert set(cfg.gateway_check_env(lb)) == {"GATEWAY", "GATEWAY_PORT", "NAMESPACE", "DEPLOYMENT", "REPLICAS"}


def test_env_from_config_names_the_given_nodes() -> None:
    cluster = load_cluster(stack_cluster("dev"))
    nodes = [f"{n.name}={n.address}" for n in [*cluster.control_plane.nodes, *cluster.workers]]
    env = cfg.smoke_check_env(cluster, nodes)
    entries = env["NODE_ADDRESSES"].split()
    assert entries == ["cp1=198.18.0.21", "cp2=198.18.0.22", "cp3=198.18.0.23",
                       "w1=198.18.0.41", "w2=198.18.0.42", "w3=198.18.0.43"]
    assert env["NODE_PORT"] == str(cfg.SMOKE_NODE_PORT)
    assert env["REPLICAS"] == str(cluster.addons.smoke_test_replicas)
