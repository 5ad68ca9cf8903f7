"""The kubeadm bootstrap graph under mocks (components/kubeadm.py): order, secrets, day 2, and the
first-node rule (topology/bootstrap.py)."""

from __future__ import annotations

import itertools
import json
import runpy
from functools import cache
from typing import Any

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

from bench.plan_shape import blast_radius, plan_table
from bench.scale import _add_control_plane_vm, topology
from dryrun.mockrun import REPO, fake_stdout, is_secret, run_function, run_program
from dryrun.plan import resource_table, waves
from tests.mockgraph import Graph, closure_of, cluster_copy, graph, stack_cluster, stack_graph
from topology import TopologyError, load_cluster
from topology.bootstrap import Bootstrap, bootstrap_roles, outputs

STACKS = ("dev", "edge", "prod")
FAKE = json.loads(fake_stdout("x-credentials"))
SECRET_VALUES = (FAKE["token"], FAKE["caCertHash"], FAKE["certificateKey"])


@cache
def closure(stack: str) -> dict[str, set[str]]:
    """name -> every custom resource it waits for, transitively, with dryrun.plan's semantics."""
    direct = {row["name"]: set(row["waits_for"]) for step in waves(stack_graph(stack).table) for row in step}
    memo: dict[str, set[str]] = {}

    def walk(name: str) -> set[str]:
        if name not in memo:
            memo[name] = set()
            for dep in direct[name]:
                memo[name] |= {dep} | walk(dep)
        return memo[name]

    return {name: walk(name) for name in direct}


def names(stack: str) -> dict[str, list[str]]:
    cluster = stack_cluster(stack)
    cps = [n["name"] for n in cluster["controlPlane"]["nodes"]]
    return {"cp": cps, "workers": [w["name"] for w in cluster.get("workers", [])],
            "lb": [n["name"] for n in cluster["loadBalancer"]["nodes"]]}


@pytest.mark.parametrize("stack", STACKS)
def test_init_waits_for_every_prerequisite_the_lb_and_its_files(stack: str) -> None:
    waits, table = closure(stack), stack_graph(stack).table
    # Each node's kubeadm step waits for its own prerequisites (a slow worker does not hold up init).
    prereqs = {f"{names(stack)['cp'][0]}-prereqs"} | {row["name"] for row in table if row["name"].endswith("-prereqs")
                                                     and row["parent"] in names(stack)["lb"]}
    for node in names(stack)["cp"][1:] + names(stack)["workers"]:
        assert f"{node}-prereqs" in closure(stack)[f"{node}-join"]
    lb_files = {row["name"] for row in table if row["name"].endswith(("-haproxy-apply", "-keepalived-apply"))}
    first = names(stack)["cp"][0]
    # The etcd snapshot files are placed once the member exists, after init (components/etcd.py).
    own_files = {row["name"] for row in table if row["name"].startswith(f"{first}-")
                 and row["name"].endswith("-apply") and row["name"] not in lb_files
                 and row["name"] != f"{first}-etcd-snapshot-apply"}
    assert len(lb_files) == 2 * len(names(stack)["lb"])
    # The apiserver's encryption configuration and audit policy are in place before it first starts.
    assert own_files == {f"{first}-kubeadm-init-config-apply", f"{first}-kubeadm-files-apply",
                         f"{first}-apiserver-files-apply"}
    assert prereqs | lb_files | own_files <= waits["kubeadm-init"]
    assert stack_graph(stack).by_name["kubeadm-init"]["parent"] == first


@pytest.mark.parametrize("stack", STACKS)
def test_control_plane_joins_one_at_a_time(stack: str) -> None:
    waits, cps = closure(stack), names(stack)["cp"]
    for before, node in itertools.pairwise(cps):
        anchor = "kubeadm-init" if before == cps[0] else f"{before}-membership"
        assert anchor in waits[f"{node}-credentials"]
        join = stack_graph(stack).by_name[f"{node}-join"]
        assert {f"{node}-credentials", f"{node}-kubeadm-files-apply"} <= set(join["dependencies"])
        assert {f"{node}-credentials", f"{node}-prereqs", f"{node}-kubeadm-files-apply"} <= waits[f"{node}-join"]
        assert f"{node}-join" in waits[f"{node}-membership"]
    assert len(cps) == 1 or f"{cps[-1]}-membership" in waits["k8s"]


@pytest.mark.parametrize("stack", STACKS)
def test_workers_join_in_parallel_after_init(stack: str) -> None:
    waits, workers, cps = closure(stack), names(stack)["workers"], names(stack)["cp"]
    by_name = stack_graph(stack).by_name
    for worker in workers:
        assert set(by_name[f"{worker}-credentials"]["dependencies"]) == {"kubeadm-init"}
        assert "kubeadm-init" in waits[f"{worker}-join"]
        mine = {n for n in waits if n.startswith(f"{worker}-")}
        for other in workers:
            if other != worker:
                assert not {n for n in waits[f"{worker}-membership"] if n.startswith(f"{other}-")}
                assert not waits[f"{other}-join"] & mine
        # Nor after another control-plane join: workers join alongside them.
        assert not any(n.startswith(f"{cp}-join") for cp in cps[1:] for n in waits[f"{worker}-join"])


@pytest.mark.parametrize("stack", STACKS)
def test_admin_kubeconfig_after_init(stack: str) -> None:
    assert "kubeadm-init" in closure(stack)["admin-kubeconfig"]


def _secret_free(value: Any) -> Any:
    if is_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {k: _secret_free(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_secret_free(v) for v in value]
    return value


@pytest.mark.parametrize("stack", STACKS)
def test_secrets_reach_commands_through_stdin_only(stack: str) -> None:
    g = stack_graph(stack)
    carriers = [r for r in g.run.records if r.type == "command:remote:Command" and "stdin" in r.inputs
                and is_secret(r.inputs["stdin"])]
    expected = {f"{n}-join" for n in names(stack)["cp"][1:] + names(stack)["workers"]}
    assert expected <= {r.name for r in carriers}
    for r in carriers:
        assert "stdin" in r.additional_secret_outputs
        assert not is_secret(r.inputs["create"])  # the command line itself holds no secret
    for r in g.run.records:
        if r.name.endswith("-credentials") or r.name == "admin-kubeconfig":
            assert "stdout" in r.additional_secret_outputs
        # No fake credential anywhere outside a secret input: argv (create/delete), env, files.
        text = json.dumps(_secret_free(r.inputs))
        assert not any(v in text for v in SECRET_VALUES), r.name
    plan = json.dumps(resource_table(g.run))
    assert not any(v in plan for v in SECRET_VALUES)


def test_kubeconfig_output_is_secret() -> None:
    exports: dict[str, pulumi.Output[Any]] = {}

    def program() -> None:
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
        exports.update(pulumi.runtime.get_root_resource().outputs)

    config = {"hakube:cluster": json.dumps(stack_cluster("dev")), "hakube:sshPrivateKey": "k",
              "hakube:etcdBackupSshKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nk\n-----END OPENSSH PRIVATE KEY-----"}
    run_function(program, "dev", config=config, secret_keys=["hakube:sshPrivateKey", "hakube:etcdBackupSshKey"])
    assert _sync_await(exports["kubeconfig"].is_secret())
    assert exports["firstControlPlane"] == "cp1"  # plain: the next deployment reads it back


# Day 2 ------------------------------------------------------------------------------------------

def test_removal_steps_and_their_order() -> None:
    g = stack_graph("dev")
    for node, control_plane in (("cp2", True), ("w1", False)):
        membership, join = g.record(f"{node}-membership"), g.record(f"{node}-join")
        # Runs on the first control-plane node: drain and delete, then (control plane) the etcd member.
        assert membership.inputs["connection"]["value"]["host"] == "198.18.0.21" if is_secret(
            membership.inputs["connection"]) else membership.inputs["connection"]["host"] == "198.18.0.21"
        delete = membership.inputs["delete"]
        assert "kubectl drain" in delete and "kubectl delete node" in delete and f"NODE_NAME={node}" in delete
        assert ("etcdctl member remove" in delete) is control_plane
        assert f"MEMBER_NAME={node}" in delete
        assert delete.index("kubectl drain") < delete.index("kubectl delete node")
        # Depends on the join, so the engine deletes it first: drain before `kubeadm reset`.
        assert g.by_name[f"{node}-membership"]["dependencies"] == [f"{node}-join"]
        assert "kubeadm reset -f" in join.inputs["delete"]
        # Never replaced (a replacement would run the delete): script changes become updates.
        assert "triggers" in membership.ignore_changes and "triggers" in join.ignore_changes


def test_adding_two_control_plane_nodes_touches_only_the_lb_backends() -> None:
    before, after = plan_table(topology(3)), plan_table(topology(3, extra_control_planes=2))
    blast = blast_radius(before, after)
    assert blast.removed == []
    assert set(blast.changed) == {"dev", "lb1-haproxy", "lb1-haproxy-apply", "lb2-haproxy", "lb2-haproxy-apply"}
    assert blast.changed["dev"] == ["controlPlaneCount"]  # the root component's own record: no action
    assert {"cp4-join", "cp5-join", "cp4-credentials", "hv4", "cp5-vm"} <= set(blast.added)
    # The init node's config lists the initial SANs but is write-once, so cp1 is untouched.
    assert "cp1-kubeadm-init-config" not in blast.changed


def test_adding_a_worker_to_dev_changes_no_existing_resource() -> None:
    cluster = cluster_copy("dev")
    cluster["workers"].append({"name": "w9", "address": "198.18.0.49", "reservedCpus": "0"})
    before, after = stack_graph("dev").table, graph(cluster).table
    blast = blast_radius(before, after)
    assert blast.changed == {} and blast.removed == []
    assert {"w9", "w9-join", "w9-credentials", "w9-membership"} <= set(blast.added)


# The first-node rule ------------------------------------------------------------------------------

def _cluster(order: list[str]) -> Any:
    data = cluster_copy("dev")
    nodes = {n["name"]: n for n in data["controlPlane"]["nodes"]}
    data["controlPlane"]["nodes"] = [nodes[n] for n in order]
    if len(order) % 2 == 0:  # an odd count, as etcd wants: a new cp4 (on a new hv4) joins last
        _add_control_plane_vm(data, 4)
        data["controlPlane"]["nodes"][-1]["controlPlaneAddress"] = "198.18.1.24"
    return data


DEPLOYED = outputs(load_cluster(stack_cluster("dev")), Bootstrap("cp1", "cp1"))


def test_roles_of_a_fresh_and_of_a_deployed_stack() -> None:
    dev = load_cluster(stack_cluster("dev"))
    assert bootstrap_roles(dev, {}) == Bootstrap("cp1", "cp1") == bootstrap_roles(dev, DEPLOYED)
    assert DEPLOYED == {"firstControlPlane": "cp1", "kubeadmInitNode": "cp1",
                        "controlPlaneNodes": ["cp1", "cp2", "cp3"]}


def _roles(order: list[str], previous: dict[str, Any]) -> Bootstrap:
    try:
        return bootstrap_roles(load_cluster(_cluster(order)), previous)
    except TopologyError as err:
        raise AssertionError(err.lines) from None


def test_removing_the_first_node_is_refused_without_promotion() -> None:
    with pytest.raises(TopologyError) as err:
        bootstrap_roles(load_cluster(_cluster(["cp2", "cp3"])), DEPLOYED)
    (line,) = err.value.lines
    assert line.startswith("hakube:cluster.controlPlane.nodes: cp1 ran `kubeadm init`")
    assert "Promote another control-plane node first" in line and "cp2, cp3" in line


def test_a_new_node_cannot_be_listed_first() -> None:
    data = _cluster(["cp1", "cp2", "cp3"])
    new = dict(data["controlPlane"]["nodes"][2], name="cp9")
    data["controlPlane"]["nodes"] = [new, *data["controlPlane"]["nodes"][:2]]
    with pytest.raises(TopologyError) as err:
        bootstrap_roles(load_cluster(data), DEPLOYED)
    assert err.value.lines[0].startswith("hakube:cluster.controlPlane.nodes[0]: cp9 is listed first but has not joined")


def test_promotion_then_removal() -> None:
    promoted = _roles(["cp2", "cp1", "cp3"], DEPLOYED)
    assert promoted == Bootstrap("cp1", "cp2")
    after = outputs(load_cluster(_cluster(["cp2", "cp1", "cp3"])), promoted)
    assert _roles(["cp2", "cp3"], after) == Bootstrap(None, "cp2")  # cp4 joins as cp1 leaves


def test_program_refuses_before_registering_anything() -> None:
    from dryrun.mockrun import MockRun

    sink = MockRun()
    with pytest.raises(Exception, match="cp1 ran `kubeadm init`"):
        run_program(_cluster(["cp2", "cp3"]), "dev", previous=DEPLOYED, sink=sink)
    assert sink.records == []


def _g(order: list[str], previous: dict[str, Any]) -> Graph:
    run = run_program(_cluster(order), "dev", previous=previous)
    return Graph(run, resource_table(run))


def test_promotion_keeps_every_node_and_moves_the_admin_steps() -> None:
    base, g = stack_graph("dev"), _g(["cp2", "cp1", "cp3"], DEPLOYED)
    blast = blast_radius(base.table, g.table)
    assert blast.removed == [] and blast.added == ["cp1-membership"]
    assert g.by_name["kubeadm-init"]["parent"] == "cp1" and "cp2-join" in g.by_name
    membership = g.record("cp1-membership")
    assert "etcdctl member remove" in membership.inputs["delete"]
    assert g.by_name["cp1-membership"]["dependencies"] == ["kubeadm-init"]
    assert g.run.outputs["firstControlPlane"] == "cp2" and g.run.outputs["kubeadmInitNode"] == "cp1"


def test_removing_the_promoted_away_init_node() -> None:
    promoted = outputs(load_cluster(_cluster(["cp2", "cp1", "cp3"])), Bootstrap("cp1", "cp2"))
    g = _g(["cp2", "cp3"], promoted)
    assert "kubeadm-init" not in g.by_name and not any(n.startswith("cp1") for n in g.by_name)
    assert {"cp2-join", "cp3-join", "w1-join"} <= set(g.by_name)  # cp2 is not reset: it stays a member
    assert "cp2-membership" in closure_of(g, "w1-credentials")
    assert g.run.outputs["kubeadmInitNode"] == ""


@pytest.mark.parametrize("stack", ["dev", "edge", "prod"])
def test_no_step_with_a_delete_is_ever_replaced(stack: str) -> None:
    # A replacement creates the new step, then runs the old one's delete, which undoes what the new
    # one just did (a key removed, a node reset): a changed script must run again as an update.
    run = stack_graph(stack).run
    with_delete = [r for r in run.records if r.type == "command:remote:Command" and r.inputs.get("delete")]
    assert with_delete
    assert [r.name for r in with_delete if "triggers" not in r.ignore_changes] == []
