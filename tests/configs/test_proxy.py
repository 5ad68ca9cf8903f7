"""The proxy files (configs/proxy.py): the generated NO_PROXY, the systemd drop-in as systemd reads it, apt's
proxy with its per-host DIRECT lines."""

from __future__ import annotations

import configparser
import copy
import ipaddress
from typing import Any

import pytest

from configs import proxy
from tests.mockgraph import cluster_copy
from topology import load_cluster

PROXY = {"http": "http://proxy.site.example:3128", "https": "https://proxy.site.example:3129"}


def _cluster(stack: str = "dev", **settings: Any) -> Any:
    data = cluster_copy(stack)
    data["proxy"] = {**PROXY, **settings}
    return load_cluster(data)


def test_no_proxy_has_the_fixed_names_the_control_plane_the_lbs_the_vip_and_the_cidrs() -> None:
    cluster = _cluster(noProxy=[".site.example", "apt.site.example"])
    entries = proxy.no_proxy(cluster)
    assert entries[:4] == ["localhost", "127.0.0.1", ".svc", ".cluster.local"]
    for node in cluster.control_plane.nodes:
        assert str(node.address) in entries and str(node.control_plane_address) in entries
    assert {"198.18.0.11", "198.18.0.12", "198.18.0.100"} <= set(entries)
    assert {"198.18.0.0/24", "198.18.1.0/24", "10.244.0.0/16", "10.96.0.0/12"} <= set(entries)
    assert entries[-2:] == [".site.example", "apt.site.example"]
    assert len(entries) == len(set(entries))


def test_workers_are_covered_by_the_node_cidr_only() -> None:
    cluster = _cluster()
    entries = proxy.no_proxy(cluster)
    node_cidr = cluster.network.node_cidr
    for worker in cluster.workers:
        assert str(worker.address) not in entries and worker.address in node_cidr
    more = cluster_copy("dev")
    more["proxy"] = dict(PROXY)
    more["workers"].append({"name": "w9", "address": "198.18.0.49"})
    assert proxy.node_files(load_cluster(more)) == proxy.node_files(cluster)


def test_stacked_lb_nodes_are_their_control_plane_addresses() -> None:
    edge = _cluster("edge")
    entries = proxy.no_proxy(edge)
    assert all(str(edge.lb_address(n)) in entries for n in edge.load_balancer.nodes)
    assert all(ipaddress.ip_network(e) for e in entries if "/" in e)


def test_the_drop_in_is_one_service_section_of_quoted_assignments() -> None:
    text = proxy.drop_in(_cluster(noProxy=["10.20.0.0/16"]))
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    assert parser.sections() == ["Service"]
    lines = [line.removeprefix("Environment=") for line in text.splitlines() if line.startswith("Environment=")]
    assigned = dict(line.strip('"').split("=", 1) for line in lines)
    assert assigned["HTTP_PROXY"] == assigned["http_proxy"] == PROXY["http"]
    assert assigned["HTTPS_PROXY"] == assigned["https_proxy"] == PROXY["https"]
    assert assigned["NO_PROXY"].split(",") == proxy.no_proxy(_cluster(noProxy=["10.20.0.0/16"]))
    assert all(line.startswith('"') and line.endswith('"') for line in lines)


def test_only_one_proxy_sets_only_its_variables() -> None:
    data = cluster_copy("dev")
    data["proxy"] = {"https": PROXY["https"]}
    env = proxy.environment(load_cluster(data))
    assert set(env) == {"HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"}
    assert proxy.command_environment(load_cluster(data)) == {"HTTPS_PROXY": PROXY["https"],
                                                             "NO_PROXY": env["NO_PROXY"]}


def test_apt_gets_both_proxies_and_direct_for_plain_hosts_only() -> None:
    text = proxy.apt_conf(_cluster(noProxy=["apt.site.example", ".site.example", "10.20.0.0/16", "198.18.5.5",
                                            "mirror.site.example:8080"]))
    assert f'Acquire::http::Proxy "{PROXY["http"]}";' in text
    assert f'Acquire::https::Proxy "{PROXY["https"]}";' in text
    direct = sorted(line for line in text.splitlines() if line.endswith('"DIRECT";'))
    assert direct == sorted(f'Acquire::{s}::Proxy::{h} "DIRECT";' for s in ("http", "https")
                            for h in ("apt.site.example", "198.18.5.5"))


def test_without_a_proxy_no_files() -> None:
    assert proxy.node_files(load_cluster(cluster_copy("dev"))) == {}
    assert proxy.environment(load_cluster(cluster_copy("dev"))) == {}


@pytest.mark.parametrize("entry", ["localhost:8080", "*.site.example", "fd00::1", "fd00::/8", "Host.Site.Example."])
def test_no_proxy_takes_the_forms_go_and_curl_read(entry: str) -> None:
    data = copy.deepcopy(cluster_copy("dev"))
    data["proxy"] = {**PROXY, "noProxy": [entry]}
    assert proxy.no_proxy(load_cluster(data))[-1] == entry
