"""The real program under Pulumi mocks: the resource graph, parents and secrets."""

from __future__ import annotations

import json

import pulumi
import pytest

from dryrun.mockrun import SECRET_MARK, MockRun, run_program
from tests.mockgraph import cluster_copy, graph, stack_cluster, stack_graph
from topology import load_cluster


@pytest.mark.parametrize("stack", ["dev", "edge", "prod"])
def test_one_cluster_component_with_a_node_per_bare_metal_host(stack: str) -> None:
    g = stack_graph(stack)
    cluster = load_cluster(stack_cluster(stack))
    (root,) = g.of_type("hakube:index:Cluster")
    assert root["name"] == cluster.name and root["parent"] is None
    nodes = {row["name"]: row for row in g.of_type("hakube:index:Node")}
    bare = {n.name for n in cluster.bare_metal_nodes()}
    assert bare <= set(nodes)
    for name in bare:
        assert nodes[name]["parent"] == cluster.name


@pytest.mark.parametrize("stack", ["dev", "edge", "prod"])
def test_every_bare_metal_host_gets_prerequisites_pinned_to_the_version(stack: str) -> None:
    g = stack_graph(stack)
    cluster = load_cluster(stack_cluster(stack))
    for node in cluster.bare_metal_nodes():
        row = g.by_name[f"{node.name}-prereqs"]
        assert row["type"] == "command:remote:Command"
        assert row["parent"] == node.name
        assert f"KUBERNETES_VERSION={cluster.kubernetes_version}" in row["inputs"]["create"]
        assert "swapoff" in row["inputs"]["create"]


def test_ssh_key_is_a_secret_everywhere() -> None:
    g = stack_graph("dev")
    commands = [r for r in g.run.records if r.type == "command:remote:Command"]
    assert commands
    for record in commands:
        assert pulumi.runtime.rpc.is_rpc_secret(record.inputs["connection"])
    plan = json.dumps(g.table)
    assert "throwaway key" not in plan
    assert all(row["inputs"]["connection"] == SECRET_MARK for row in g.table if row["type"] == "command:remote:Command")


def test_prerequisites_are_not_rerun_by_a_version_change() -> None:
    # Upgrades go one node at a time through the upgrade steps; re-running prerequisites on every
    # node at once would upgrade all kubelets together.
    before = stack_graph("edge").by_name["edge1-prereqs"]
    changed = cluster_copy("edge")
    changed["kubernetesVersion"] = "1.37.3"
    after = graph(changed, "edge").by_name["edge1-prereqs"]
    assert before["inputs"]["triggers"] == after["inputs"]["triggers"]
    # The containerd configuration (stdin) follows the version through the upgrade steps instead.
    assert after["ignoreChanges"] == ["create", "stdin"]
    assert "KUBERNETES_VERSION=1.37.3" in after["inputs"]["create"]


def test_bad_topology_registers_nothing() -> None:
    bad = cluster_copy("dev")
    bad["loadBalancer"]["nodes"][1]["priority"] = 150
    seen = MockRun()
    with pytest.raises(pulumi.RunError) as err:
        run_program(bad, "dev", sink=seen)
    assert seen.records == []
    assert "hakube:cluster.loadBalancer.nodes[1].priority: equals nodes[0].priority (150)" in str(err.value)


def test_a_vrrp_password_is_refused_before_anything_is_registered() -> None:
    """Pulumi.yaml does not declare hakube:vrrpPassword (the engine would require a declared key
    without a default on every stack), so the program refuses it itself."""
    seen = MockRun()
    with pytest.raises(pulumi.RunError) as err:
        run_program(cluster_copy("dev"), "dev", extra_config={"hakube:vrrpPassword": "s3cret"}, sink=seen)
    assert seen.records == []
    assert "hakube:vrrpPassword: VRRP authentication exists only in VRRPv2" in str(err.value)
    assert "s3cret" not in str(err.value)



def test_the_dry_run_answers_the_programs_read_of_its_own_outputs() -> None:
    from components import previous
    from dryrun import mockrun

    assert mockrun.READ_STACK_OUTPUTS == previous.READ_STACK_OUTPUTS
    run = mockrun.run_function(previous.previous_outputs, "dev", previous_outputs={"kubernetesVersion": "1.36.5"})
    assert run.records == []  # a read, not a resource
