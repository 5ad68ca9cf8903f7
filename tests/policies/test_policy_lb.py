"""The load-balancer rules (policies/lb.py) on the rendered keepalived.conf and haproxy.cfg."""

from __future__ import annotations

from policies import lb
from tests.policy_helpers import (
    drop,
    messages,
    rec,
    replace_in,
    run_of,
    stack_violations,
)


def test_lb_needs_two_nodes_on_distinct_hosts() -> None:
    run = run_of("dev")
    rec(run, "lb2-lb").inputs["address"] = rec(run, "lb1-lb").inputs["address"]
    assert "LB nodes share address 198.18.0.11" in messages(stack_violations("lb-redundancy", run))
    drop(run, "lb2-lb")
    assert "api-lb: 1 LB node(s); a VIP needs two" in messages(stack_violations("lb-redundancy", run))


def test_each_lb_node_runs_haproxy_and_keepalived() -> None:
    run = run_of("edge")
    drop(run, "edge3-haproxy")
    assert stack_violations("lb-redundancy", run) == [("edge3-lb", "edge3-lb: no haproxy.cfg dropped on this LB "
                                                                    "node")]


def test_vrrp_priorities_are_distinct() -> None:
    run = run_of("edge")
    first = lb.keepalived_facts(rec(run, "edge1-keepalived").inputs["content"])["priority"]
    third = lb.keepalived_facts(rec(run, "edge3-keepalived").inputs["content"])["priority"]
    replace_in(run, "edge3-keepalived", f"\n    priority {third}\n", f"\n    priority {first}\n", "content")
    found = stack_violations("lb-vrrp-priorities", run)
    assert [r for r, _ in found] == ["edge3-keepalived"] and "equals edge1-keepalived's" in found[0][1]


def test_vip_is_no_host_address() -> None:
    run = run_of("dev")
    rec(run, "api-lb").inputs["vip"] = "198.18.0.41"
    replace_in(run, "lb2-keepalived", "198.18.0.100/32", "198.18.0.31/32", "content")
    text = messages(stack_violations("lb-vip", run))
    assert "api-lb: VIP 198.18.0.41 is the address of w1" in text
    assert "lb2-keepalived: VIP 198.18.0.31 is the address of hv1" in text
    assert "lb1-keepalived: VIP 198.18.0.100 is not the pair's (198.18.0.41)" in text


def test_stacked_haproxy_never_binds_the_apiserver_port() -> None:
    run = run_of("edge")
    assert stack_violations("lb-stacked-ports", run) == []
    replace_in(run, "edge2-haproxy", "bind 198.18.4.100:6443", "bind 198.18.4.100:6444", "content")
    found = stack_violations("lb-stacked-ports", run)
    assert found == [("edge2-haproxy", "edge2-haproxy: HAProxy binds port 6444 on edge2, which is kube-apiserver's "
                                       "bind port (its kubeadm config)")]


def test_external_lb_nodes_run_no_apiserver() -> None:
    run = run_of("dev")
    replace_in(run, "lb1-haproxy", "bind 198.18.0.100:6443", "bind :6443", "content")
    assert stack_violations("lb-stacked-ports", run) == []  # lb1 is no control-plane node
