"""The LB pair's rendered files for every committed stack: the daemons' own checkers accept them,
and the facts those checkers miss (NETNS-LAB.md) are asserted here."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from configs.loadbalancer import (
    CHECKERS,
    CONFIG_PATHS,
    DEFAULT_SCRIPT_USER,
    MONITOR_PORT,
    MONITOR_URI,
    RELOADERS,
    VrrpAuthUnsupported,
    lb_nodes,
    monitor_url,
    render_haproxy,
    render_keepalived,
    vrrp_priorities,
)
from dryrun.mockrun import REPO
from topology import Cluster, load_cluster, load_stack_file, read_stack_file
from topology.load import ROOT as CONFIG_ROOT

STACKS = ("dev", "edge", "prod")


def _cluster(stack: str) -> Cluster:
    return load_stack_file(REPO / f"Pulumi.{stack}.yaml")


def _variant(stack: str, **vrrp: object) -> Cluster:
    data = read_stack_file(REPO / f"Pulumi.{stack}.yaml")[CONFIG_ROOT]
    data["loadBalancer"]["vrrp"].update(vrrp)
    return load_cluster(data)


def _sections(cfg: str) -> dict[str, list[str]]:
    """haproxy.cfg as {section header: its stripped, non-comment lines}."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in cfg.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            current = line.strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line.strip())
    return sections


def _block(conf: str, keyword: str) -> list[str]:
    """The lines inside the first `keyword { ... }` of a keepalived.conf (no nesting needed)."""
    match = re.search(rf"^\s*{re.escape(keyword)}\s*\{{\n(.*?)^\s*\}}", conf, re.M | re.S)
    assert match, f"no {keyword} block"
    return [ln.strip() for ln in match.group(1).splitlines() if ln.strip() and not ln.strip().startswith("!")]


def _seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value).groups()
    return int(number) * {"ms": 0.001, None: 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


# -- haproxy.cfg ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_haproxy_frontend_and_backends(stack: str) -> None:
    cluster = _cluster(stack)
    sections = _sections(render_haproxy(cluster))
    frontend = sections["frontend kube-apiserver"]
    assert f"bind {cluster.api_endpoint.vip}:{cluster.api_endpoint.port}" in frontend
    servers = [line.split()[1:3] for line in sections["backend kube-apiserver"] if line.startswith("server ")]
    assert servers == [[n.name, f"{n.control_plane_address}:{cluster.apiserver_port}"]
                       for n in cluster.control_plane.nodes]
    assert "mode tcp" in sections["defaults"]


def test_stacked_frontend_does_not_collide_with_the_apiserver() -> None:
    cluster = _cluster("edge")
    assert cluster.load_balancer.placement == "stacked"
    sections = _sections(render_haproxy(cluster))
    bind_port = int(next(ln for ln in sections["frontend kube-apiserver"] if ln.startswith("bind ")).split(":")[-1])
    server_ports = {int(ln.split()[2].split(":")[1]) for ln in sections["backend kube-apiserver"]
                    if ln.startswith("server ")}
    assert bind_port == cluster.api_endpoint.port == 6443
    assert server_ports == {cluster.apiserver_port} == {6444}
    # Every stacked node is both an LB node and a backend.
    assert {n.name for n in lb_nodes(cluster)} <= {n.name for n in cluster.control_plane.nodes}


@pytest.mark.parametrize("stack", STACKS)
def test_haproxy_health_checks_ask_readyz_over_tls(stack: str) -> None:
    cfg = render_haproxy(_cluster(stack))
    backend = _sections(cfg)["backend kube-apiserver"]
    # haproxy -c accepts an HTTP check without check-ssl against a TLS port, and lets
    # ssl-hello-chk silently replace httpchk: both would pass a port that merely accepts TLS.
    assert "option httpchk" in backend
    assert "http-check send meth GET uri /readyz" in backend
    assert "http-check expect status 200" in backend
    assert "ssl-hello-chk" not in cfg
    assert "tcp-check" not in cfg
    default_server = next(ln.split() for ln in backend if ln.startswith("default-server "))
    assert {"check", "check-ssl"} <= set(default_server)
    assert default_server[default_server.index("verify") + 1] == "none"
    for ln in backend:
        if ln.startswith("server "):
            assert "no-check" not in ln and "no-check-ssl" not in ln


def _option(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


@pytest.mark.parametrize("stack", STACKS)
def test_haproxy_fails_fast_and_keeps_watches(stack: str) -> None:
    sections = _sections(render_haproxy(_cluster(stack)))
    defaults = sections["defaults"]
    assert "option redispatch 1" in defaults  # every retry goes to another server
    retries = int(next(ln.split()[1] for ln in defaults if ln.startswith("retries ")))
    assert retries >= 2
    timeouts = {ln.split()[1]: _seconds(ln.split()[2]) for ln in defaults if ln.startswith("timeout ")}
    assert timeouts["connect"] <= 1
    assert timeouts["check"] <= 2
    # kube-apiserver ends watches itself after 2 x min-request-timeout (1 h); never cut them first.
    assert timeouts["client"] >= 3600 and timeouts["server"] >= 3600
    server = next(ln.split() for ln in sections["backend kube-apiserver"] if ln.startswith("default-server "))
    assert _seconds(_option(server, "inter")) <= 1
    assert int(_option(server, "fall")) <= 2 and int(_option(server, "rise")) <= 2


@pytest.mark.parametrize("stack", STACKS)
def test_monitor_endpoint_reports_haproxy_liveness_only(stack: str) -> None:
    cfg = render_haproxy(_cluster(stack))
    monitor = _sections(cfg)["frontend hakube-monitor"]
    assert f"bind 127.0.0.1:{MONITOR_PORT}" in monitor
    assert f"monitor-uri {MONITOR_URI}" in monitor
    # A "monitor fail if { nbsrv(...) lt 1 }" would tie the VIP to backend health: at bootstrap,
    # before any apiserver runs, every node would FAULT and no one would hold the VIP.
    assert not any(ln.startswith("monitor fail") for lines in _sections(cfg).values() for ln in lines)
    assert not any(ln.startswith(("default_backend", "use_backend")) for ln in monitor)


# -- keepalived.conf -----------------------------------------------------------------------------


def _every_node() -> list[tuple[str, str]]:
    return [(stack, node.name) for stack in STACKS for node in lb_nodes(_cluster(stack))]


@pytest.mark.parametrize(("stack", "node"), _every_node())
def test_keepalived_unicast_peers(stack: str, node: str) -> None:
    cluster = _cluster(stack)
    conf = render_keepalived(cluster, node)
    me = next(n for n in lb_nodes(cluster) if n.name == node)
    # keepalived -t accepts any unicast_src_ip, even one that is not this node's.
    assert re.findall(r"^\s*unicast_src_ip (\S+)$", conf, re.M) == [str(me.address)]
    peers = {ipaddress.ip_address(p) for p in _block(conf, "unicast_peer")}
    assert peers == {n.address for n in lb_nodes(cluster) if n.name != node}
    assert me.address not in peers
    assert re.search(rf"^\s*interface {re.escape(me.interface)}$", conf, re.M)
    assert _block(conf, "virtual_ipaddress") == [f"{cluster.api_endpoint.vip}/32 dev {me.interface}"]
    assert "check_unicast_src" in conf


@pytest.mark.parametrize(("stack", "node"), _every_node())
def test_keepalived_vrrp3_sub_second_no_failback(stack: str, node: str) -> None:
    cluster = _cluster(stack)
    conf = render_keepalived(cluster, node)
    assert re.search(r"^\s*vrrp_version 3$", conf, re.M)
    advert = float(re.search(r"^\s*advert_int (\S+)$", conf, re.M).group(1))
    assert advert == cluster.load_balancer.vrrp.advert_interval_ms / 1000 < 1
    assert not cluster.load_balancer.vrrp.preempt
    assert re.findall(r"^\s*state (\S+)$", conf, re.M) == ["BACKUP"]
    assert re.search(r"^\s*nopreempt$", conf, re.M)
    assert not re.search(r"^\s*authentication", conf, re.M)


@pytest.mark.parametrize(("stack", "node"), _every_node())
def test_keepalived_tracks_local_haproxy_into_fault(stack: str, node: str) -> None:
    conf = render_keepalived(_cluster(stack), node)
    assert re.search(r"^\s*enable_script_security$", conf, re.M)
    assert re.findall(r"^\s*script_user (\S+)$", conf, re.M) == [DEFAULT_SCRIPT_USER]
    script = _block(conf, "vrrp_script hakube_haproxy_alive")
    command = next(ln for ln in script if ln.startswith("script ")).split(None, 1)[1].strip('"')
    assert command.startswith("/usr/bin/curl ") and command.endswith(monitor_url())
    assert "--fail" in command and "--max-time" in command
    # With nopreempt, a weight only lowers the priority and never moves the VIP off a live master.
    assert not any(ln.startswith("weight") for ln in script)
    assert _block(conf, "track_script") == ["hakube_haproxy_alive"]
    assert "weight" not in " ".join(_block(conf, "track_script"))


def test_priorities_keep_the_configured_order() -> None:
    for stack in STACKS:
        cluster = _cluster(stack)
        rendered = vrrp_priorities(cluster)
        by_config = sorted(lb_nodes(cluster), key=lambda n: -n.priority)
        assert [rendered[n.name] for n in by_config] == sorted(rendered.values(), reverse=True)
        assert max(rendered.values()) == 254  # 255 means address owner in VRRP
        for node in by_config:
            assert re.search(rf"^\s*priority {rendered[node.name]}$", render_keepalived(cluster, node.name), re.M)


def test_preempt_true_drops_nopreempt() -> None:
    conf = render_keepalived(_variant("dev", preempt=True), "lb1")
    assert not re.search(r"^\s*nopreempt$", conf, re.M)
    assert re.findall(r"^\s*state (\S+)$", conf, re.M) == ["BACKUP"]


def test_advert_interval_follows_the_config() -> None:
    conf = render_keepalived(_variant("dev", advertIntervalMs=250), "lb2")
    assert re.search(r"^\s*advert_int 0.25$", conf, re.M)


def test_vrrp_password_is_refused_with_the_reason() -> None:
    with pytest.raises(VrrpAuthUnsupported, match="VRRPv2"):
        render_keepalived(_cluster("dev"), "lb1", auth_password="s3cret")
    render_keepalived(_cluster("dev"), "lb1", auth_password=None)


def test_unknown_node_is_refused() -> None:
    with pytest.raises(ValueError, match="cp1 is not a load-balancer node"):
        render_keepalived(_cluster("dev"), "cp1")


def test_commands_for_the_config_drop_cover_both_daemons() -> None:
    assert set(CHECKERS) == set(RELOADERS) == set(CONFIG_PATHS) == {"haproxy", "keepalived"}
    assert all('"$1"' in cmd for cmd in CHECKERS.values())


# -- the daemons' own checkers -------------------------------------------------------------------


def _check(daemon: str, path: Path, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the shipped checker command (CHECKERS) on a file, as config-drop.sh does."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, "bash", "-c", CHECKERS[daemon], "config-check", str(path)],
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.tool("haproxy")
@pytest.mark.parametrize("stack", STACKS)
def test_haproxy_accepts_the_rendered_file(stack: str, tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(render_haproxy(_cluster(stack)))
    result = _check("haproxy", path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.tool("haproxy")
def test_haproxy_checker_rejects_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(render_haproxy(_cluster("dev")).replace("option redispatch 1", "option redispatchh 1"))
    assert _check("haproxy", path).returncode != 0


@contextlib.contextmanager
def _netns_with(interfaces: set[str]) -> Iterator[str]:
    """A scratch namespace holding the named interfaces (veth ends; this kernel has no dummy)."""
    name = f"hk{secrets.token_hex(3)}-kt"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        for i, interface in enumerate(sorted(interfaces)):
            # `name`/`dev` spelled out: ip reads a bare "a" or "addr" as its own `address` keyword.
            subprocess.run(["ip", "-n", name, "link", "add", "name", interface, "type", "veth", "peer", "name",
                            f"hkpeer{i}"], check=True, timeout=10)
            subprocess.run(["ip", "-n", name, "link", "set", "dev", interface, "up"], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


@pytest.fixture(scope="module")
def lb_netns() -> Iterator[str]:
    interfaces = {n.interface for stack in STACKS for n in lb_nodes(_cluster(stack))}
    with _netns_with(interfaces) as name:
        yield name


@pytest.mark.root
@pytest.mark.tool("keepalived")
@pytest.mark.parametrize(("stack", "node"), _every_node())
def test_keepalived_accepts_the_rendered_file(stack: str, node: str, lb_netns: str, tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(render_keepalived(_cluster(stack), node))
    result = _check("keepalived", path, lb_netns)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == [path]  # the checker's root copy is gone


@pytest.mark.root
@pytest.mark.tool("keepalived")
def test_keepalived_checker_rejects_a_broken_file(lb_netns: str, tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(render_keepalived(_cluster("dev"), "lb1").replace("interface eth0", "interface eth9"))
    result = _check("keepalived", path, lb_netns)
    assert result.returncode != 0
    assert "eth9" in result.stderr
