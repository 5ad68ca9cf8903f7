"""A real control plane from kubeadm's own manifests (lab/realcp.py, lab/realcplab.py): 3 etcd members
and 3 kube-apiservers, one network namespace per dev control-plane node, and the one-node variant."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from lab import realcp
from lab.realcplab import REAL_TOOLS, Running, real_control_plane, stack_cluster

pytestmark = [pytest.mark.root, pytest.mark.realtool(*REAL_TOOLS), pytest.mark.tool("curl")]


@pytest.fixture(scope="module")
def three() -> Iterator[Running]:
    started = time.monotonic()
    with real_control_plane("dev") as running:
        print(f"\n3-node control plane ready in {running.cp.start_seconds}s"
              f" ({time.monotonic() - started:.1f}s with kubeadm's phases)")
        yield running


def test_every_apiserver_is_ready_over_tls_at_the_address_kubeadm_advertised(three: Running) -> None:
    cluster = stack_cluster("dev")
    for node in cluster.control_plane.nodes:
        member = three.cp.members[node.name]
        assert (member.address, member.port) == (str(node.control_plane_address), cluster.apiserver_port)
        # Verified against kubeadm's CA, from another node's namespace: the serving cert carries the address.
        assert three.cp.readyz(three.lab, node.name, via=cluster.control_plane.nodes[0].name) == "ok"


def test_etcd_is_one_cluster_of_all_members(three: Running) -> None:
    listed = sorted(line.split(", ")[2] for line in three.etcdctl("member", "list").stdout.splitlines())
    assert listed == sorted(three.cp.members)


def test_a_write_through_one_apiserver_is_read_through_another(three: Running) -> None:
    three.kubectl("create", "namespace", "hk-replicated")
    last = list(three.cp.members)[-1]
    assert three.kubectl("get", "namespace", "hk-replicated", "-o", "name", node=last).stdout.strip() \
        == "namespace/hk-replicated"


def test_admin_conf_is_cluster_admin_only_through_kubeadms_binding(three: Running) -> None:
    allowed = three.kubectl("auth", "can-i", "*", "*", "--all-namespaces", check=False)
    assert allowed.stdout.strip() == "yes"
    assert three.cp.endpoint() == f"https://{stack_cluster('dev').api_endpoint.vip}:6443"


def test_command_lines_rewrite_only_host_paths_and_the_initial_cluster(three: Running) -> None:
    for member in three.cp.members.values():
        for component, command in ((realcp.ETCD, member.etcd), (realcp.APISERVER, member.apiserver)):
            wrote = realcp.flags([str(c) for c in member.built.pod(component)["spec"]["containers"][0]["command"]])
            runs = realcp.flags(command)
            changed = {k for k in wrote if wrote[k] != runs.get(k)}
            moved = {k for k in changed if runs[k] == str(member.built.host_path(wrote[k]))}
            expected_other = {"initial-cluster"} if component == realcp.ETCD else set()
            assert changed - moved == expected_other, (member.node, component)
            assert set(runs) - set(wrote) == ({"initial-cluster-state"} if component == realcp.ETCD else set())
            assert all(str(member.built.root) in runs[k] for k in moved)


def test_one_node_variant() -> None:
    with real_control_plane("dev", nodes=1) as one:
        assert list(one.cp.members) == ["cp1"]
        assert [line.split(", ")[2] for line in one.etcdctl("member", "list").stdout.splitlines()] == ["cp1"]
        one.kubectl("create", "namespace", "hk-one")
        print(f"\n1-node control plane ready in {one.cp.start_seconds}s")
