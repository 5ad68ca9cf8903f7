"""The upgrade and certificate steps in the mocked resource graph: serial control-plane order,
workers after the control plane in bounded lanes, a version change that replaces only upgrade
steps, and a refused two-minor jump."""

from __future__ import annotations

from functools import cache

import pulumi
import pytest

from bench.plan_shape import blast_radius
from configs.kubeadm import UPGRADE_CONFIG_PATH
from dryrun.mockrun import run_program
from dryrun.plan import resource_table
from tests.mockgraph import Graph, cluster_copy, stack_graph

UPGRADE_SUFFIXES = ("-drain", "-upgrade", "-uncordon", "-certs")


def _deps(g: Graph, name: str) -> set[str]:
    """Names of the resources `name` depends on directly."""
    return set(g.by_name[name]["dependencies"])


def _waits(g: Graph, name: str) -> set[str]:
    """Everything `name` waits for, transitively."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for dep in _deps(g, todo.pop()) - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def _is_upgrade_step(name: str) -> bool:
    return name.endswith(UPGRADE_SUFFIXES) or "-backend-" in name


@cache
def _dev_workers(count: int, parallelism: int) -> Graph:
    cluster = cluster_copy("dev")
    cluster["workers"] = [{"name": f"w{i}", "address": f"198.18.0.{40 + i}"} for i in range(1, count + 1)]
    cluster["upgrade"] = {"workerParallelism": parallelism}
    cluster["kubernetesVersion"] = "1.37.2"
    run = run_program(cluster, "dev", previous_version="1.36.5")  # the lanes exist while the version changes
    return Graph(run, resource_table(run))


def test_control_plane_nodes_upgrade_one_at_a_time() -> None:
    g = stack_graph("dev")
    # cp1 runs upgrade apply (ROLE=first) after its backend left every LB node.
    assert "ROLE=first" in g.by_name["cp1-upgrade"]["inputs"]["create"]
    assert {"cp1-backend-drain-lb1", "cp1-backend-drain-lb2"} <= _waits(g, "cp1-upgrade")
    # cp2's backend leaves only after cp1 is back in service everywhere; cp3 waits for cp2 alike.
    assert {"cp1-backend-restore-lb1", "cp1-backend-restore-lb2"} <= _deps(g, "cp2-backend-drain-lb1")
    assert {"cp1-upgrade", "cp2-upgrade"} <= _waits(g, "cp3-upgrade")
    assert "cp3-upgrade" not in _waits(g, "cp2-upgrade") and "cp2-upgrade" not in _waits(g, "cp1-upgrade")
    assert "ROLE=control-plane" in g.by_name["cp3-upgrade"]["inputs"]["create"]
    # drain before the upgrade, restore after uncordon.
    assert _deps(g, "cp2-upgrade") == {"cp2-drain"}
    assert "cp2-uncordon" in _deps(g, "cp2-backend-restore-lb2")


def test_backend_steps_run_on_every_lb_node_and_drain_runs_on_the_first_control_plane() -> None:
    g = stack_graph("dev")
    conn = {name: g.record(name).inputs["connection"] for name in ("cp2-backend-drain-lb2", "cp2-drain", "cp2-upgrade")}
    text = {k: str(v) for k, v in conn.items()}
    assert "198.18.0.12" in text["cp2-backend-drain-lb2"]
    assert "198.18.0.21" in text["cp2-drain"]  # kubectl with admin.conf: the first control-plane node
    assert "198.18.0.22" in text["cp2-upgrade"]
    assert "ACTION=disable" in g.by_name["cp2-backend-drain-lb1"]["inputs"]["create"]
    assert "SERVER=cp2" in g.by_name["cp2-backend-drain-lb1"]["inputs"]["create"]


def test_workers_wait_for_every_control_plane_node_and_run_in_bounded_lanes() -> None:
    g = _dev_workers(5, 2)
    for w in ("w1", "w2"):
        assert {"cp3-backend-restore-lb1", "cp3-backend-restore-lb2"} <= _deps(g, f"{w}-drain")
    assert "w1-uncordon" in _deps(g, "w3-drain") and "w2-uncordon" in _deps(g, "w4-drain")
    assert "w3-uncordon" in _deps(g, "w5-drain")
    # Two lanes: w1 and w2 never wait for each other, nor w3 for w2.
    assert "w1-upgrade" not in _waits(g, "w2-upgrade") and "w2-upgrade" not in _waits(g, "w3-upgrade")


def test_default_parallelism_is_one_at_a_time() -> None:
    g = _dev_workers(3, 1)
    assert "w1-uncordon" in _deps(g, "w2-drain") and "w2-uncordon" in _deps(g, "w3-drain")


def test_without_a_version_change_workers_are_not_chained() -> None:
    """First deployment: every worker's (no-op) steps wait only for the control plane and the node."""
    g = stack_graph("dev")
    assert not {"w1-uncordon", "w2-uncordon"} & (_deps(g, "w2-drain") | _deps(g, "w3-drain"))


def test_certificate_checks_chain_over_control_plane_nodes_and_are_a_stack_output() -> None:
    g = stack_graph("dev")
    assert "cp1-certs" in _deps(g, "cp2-certs") and "cp2-certs" in _deps(g, "cp3-certs")
    assert "RENEW_BEFORE_DAYS=30" in g.by_name["cp1-certs"]["inputs"]["create"]
    assert set(g.run.outputs["certificates"]) == {"cp1", "cp2", "cp3"}


def test_every_step_is_replaced_on_a_version_trigger() -> None:
    g = stack_graph("dev")
    for row in g.table:
        if row["custom"] and _is_upgrade_step(row["name"]):
            assert "1.37.2" in row["inputs"]["triggers"], row["name"]


@pytest.mark.parametrize(("old", "new"), [("1.36.3", "1.36.5"), ("1.36.5", "1.37.2")])
def test_a_version_change_changes_only_upgrade_steps(old: str, new: str) -> None:
    deployed = cluster_copy("dev")
    deployed["kubernetesVersion"] = old
    before = resource_table(run_program(deployed, "dev", previous_version=old))
    cluster = cluster_copy("dev")
    cluster["kubernetesVersion"] = new
    after = resource_table(run_program(cluster, "dev", previous_version=old))
    blast = blast_radius(before, after)
    # Worker lanes form while the version changes: dependencies only (rewired), no replacement.
    assert not blast.added and not blast.removed
    assert all(name.startswith("w") and name.endswith("-drain") for name in blast.rewired)
    acting = {name for name in blast.changed if next(r for r in after if r["name"] == name)["custom"]}
    # Besides the upgrade steps, each control-plane node's file set places its UpgradeConfiguration for
    # the new version (a worker's names no version: `kubeadm upgrade node` asks the cluster).
    placing = {name for name in acting if name.endswith("-kubeadm-files-apply")}
    assert placing == {f"{n}-kubeadm-files-apply" for n in ("cp1", "cp2", "cp3")}
    assert all(_is_upgrade_step(name) for name in acting - placing), sorted(acting - placing)
    assert {f"{n}-upgrade" for n in ("cp1", "cp2", "cp3", "w1", "w2", "w3")} <= acting
    # ... and only that file changes in it.
    files = {row["name"]: {f["path"]: f["content"] for f in row["inputs"]["files"]}
             for row in after if row["name"].endswith("-kubeadm-files")}
    files_before = {row["name"]: {f["path"]: f["content"] for f in row["inputs"]["files"]}
                    for row in before if row["name"].endswith("-kubeadm-files")}
    for name, placed in files.items():
        changed = {path for path in placed if placed[path] != files_before[name].get(path)}
        assert changed == ({UPGRADE_CONFIG_PATH} if name.startswith("cp") else set()), name
    # No join, VM, LB or prerequisites step: the components that change only carry the version as a prop.
    assert not any(n.endswith(("-join", "-domain", "-prereqs", "-lb-prepare")) for n in blast.changed)


def test_the_upgrade_step_carries_the_new_versions_containerd_configuration() -> None:
    cluster = cluster_copy("dev")
    cluster["kubernetesVersion"] = "1.36.5"
    run = run_program(cluster, "dev", previous_version="1.35.9")
    step = next(r for r in run.records if r.name == "w1-upgrade")
    assert "pause:3.10.2" in step.inputs["stdin"]  # 1.35's kubeadm pulls pause 3.10.1, 1.36's 3.10.2
    assert f"UPGRADE_CONFIG={UPGRADE_CONFIG_PATH}" in step.inputs["create"]


@pytest.mark.parametrize(("previous", "new", "why"), [
    ("1.35.9", "1.37.2", "skips a minor version"),
    ("1.37.2", "1.37.1", "older than the deployed 1.37.2"),
])
def test_a_refused_version_change_registers_nothing(previous: str, new: str, why: str) -> None:
    cluster = cluster_copy("dev")
    cluster["kubernetesVersion"] = new
    with pytest.raises(pulumi.RunError, match=rf"hakube:cluster\.kubernetesVersion: .*{why}"):
        run_program(cluster, "dev", previous_version=previous)
