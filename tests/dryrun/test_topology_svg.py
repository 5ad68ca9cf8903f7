"""The topology picture: what the DOT shows for each stack, that Graphviz accepts it, and that the
dry run writes topology.svg (or warns and skips only the svg when Graphviz is missing)."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.scale import topology
from dryrun import topology_svg
from dryrun.mockrun import REPO
from dryrun.topology_svg import topology_dot, write_dry_run_svg, write_svg
from topology import Cluster, load_cluster, load_stack_file, read_stack_file

STACKS = ["dev", "edge", "prod"]


def stack(name: str) -> Cluster:
    return load_stack_file(REPO / f"Pulumi.{name}.yaml")


def node_ids(dot: str) -> set[str]:
    """Every node id declared in the DOT (a quoted id followed by its attribute list)."""
    return set(re.findall(r'^"([^"]+)" \[', dot, re.MULTILINE))


@pytest.mark.parametrize("name", STACKS)
def test_dot_shows_every_host_the_vip_and_the_pinned_cores(name: str) -> None:
    cluster = stack(name)
    dot = topology_dot(cluster)
    ids = node_ids(dot)
    hosts = [hv.name for hv in cluster.hypervisors] + [cp.name for cp in cluster.control_plane.nodes]
    hosts += [lb.name for lb in cluster.load_balancer.nodes]
    assert set(hosts) <= ids
    assert f"VIP {cluster.api_endpoint.vip}:{cluster.api_endpoint.port}" in dot
    for cp in cluster.control_plane.nodes:
        if cp.is_vm:
            assert f"{cp.cpus} vCPUs pinned to cpus {cp.pinned_cpus}" in dot
    for hv in cluster.hypervisors:
        cp_pool = next(p for p in hv.pools if p.role == "controlPlane")
        assert f"pool {cp_pool.name} (controlPlane)" in dot
    assert str(cluster.network.node_cidr) in dot and str(cluster.network.control_plane_cidr) in dot
    if len(cluster.workers) <= topology_svg.WORKER_DETAIL_LIMIT:
        assert {w.name for w in cluster.workers} <= ids


def test_prod_workers_are_summarised_per_zone() -> None:
    dot = topology_dot(stack("prod"))
    assert "w01 … w06 (6 workers)" in dot and "w07 … w12 (6 workers)" in dot
    assert not {f"w{i:02d}" for i in range(1, 13)} & node_ids(dot)


def test_a_thousand_workers_stay_a_small_picture() -> None:
    dot = topology_dot(load_cluster(topology(1000)))
    workers = [i for i in node_ids(dot) if i.startswith("workers:")]
    assert 1 <= len(workers) <= topology_svg.MAX_WORKER_GROUPS
    assert "(1000 workers)" in dot or sum(int(n) for n in re.findall(r"\((\d+) workers\)", dot)) == 1000
    assert len(dot) < 20_000


def test_stacked_placement_shows_the_lb_on_the_control_plane_nodes() -> None:
    cluster = stack("edge")
    dot = topology_dot(cluster)
    assert "stacked load balancer" in dot
    assert f"HAProxy :{cluster.api_endpoint.port} -> apiservers :{cluster.apiserver_port}" in dot
    for lb in cluster.load_balancer.nodes:
        assert f'"vip" -> "{lb.name}"' in dot


@pytest.mark.tool("dot")
@pytest.mark.parametrize("name", STACKS)
def test_graphviz_accepts_the_dot_without_a_warning(name: str) -> None:
    result = subprocess.run(["dot", "-Tsvg"], input=topology_dot(stack(name)), capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "<svg" in result.stdout


@pytest.mark.tool("dot")
def test_quotes_and_backslashes_in_user_text_are_escaped(tmp_path: Path) -> None:
    data = copy.deepcopy(read_stack_file(REPO / "Pulumi.dev.yaml")["hakube:cluster"])
    data["hypervisors"][0]["pools"][1]["path"] = '/srv/"odd" \\path\\'
    data["workers"][0]["labels"] = {"note": 'say "hi"\\'}
    cluster = load_cluster(data)
    write_svg(cluster, tmp_path / "t.svg")
    svg = (tmp_path / "t.svg").read_text()
    assert "/srv/&quot;odd&quot; \\path\\" in svg
    assert "note=say &quot;hi&quot;\\" in svg


def test_without_graphviz_the_dry_run_warns_and_skips_only_the_svg(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(topology_svg.shutil, "which", lambda _name: None)
    write_dry_run_svg(read_stack_file(REPO / "Pulumi.dev.yaml")["hakube:cluster"], tmp_path)
    assert not (tmp_path / "topology.svg").exists()
    assert "warning: Graphviz `dot` is not on PATH" in capsys.readouterr().err


@pytest.mark.tool("dot")
@pytest.mark.parametrize("name", STACKS)
def test_dry_run_writes_topology_svg(name: str, tmp_path: Path) -> None:
    out = tmp_path / name
    result = subprocess.run([sys.executable, "-m", "dryrun", "--stack", name, "--out", str(out)], cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    svg = (out / "topology.svg").read_text()
    assert "<svg" in svg and str(stack(name).api_endpoint.vip) in svg
    assert (out / "plan.json").exists()
