"""The load-balancer pair's files: haproxy.cfg and keepalived.conf, pure functions of the topology.

HAProxy (TCP mode) spreads the API endpoint over every kube-apiserver and asks each one `/readyz`
over TLS; keepalived (VRRPv3, unicast, sub-second adverts) holds the VIP on a node whose HAProxy
is alive. The component drops both with configs/scripts/config-drop.sh, using the checker and
reload commands below.

Placements: *external* renders for the two LB nodes; *stacked* for every control-plane node in
`loadBalancer.nodes` (HAProxy on the endpoint port bound to the VIP, kube-apiserver on
`apiserverPort`, 6444 by default, so the two never bind the same port).

Known limits, measured in the namespace lab (tests/lab/test_failover_netns.py, bench/failover.py):
- Any VIP move resets the connections open through the node that loses it (no connection-state
  sync between the nodes); clients reconnect through the new holder.
- A master frozen (SIGSTOP, a stalled VM) and then resumed takes the VIP back even with nopreempt:
  it resumes as MASTER and the higher priority wins the two-master contest, which resets the
  connections through the node that had taken over.
- A keepalived killed with SIGKILL leaves the VIP on its interface (nothing removes it), so that
  node keeps answering ARP for it until keepalived restarts; the peer takes over regardless.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from pathlib import Path
from typing import NamedTuple

import jinja2

from configs.remote import ConfigDrop, Script
from topology.model import Cluster

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

# HAProxy's liveness endpoint for keepalived's track script (loopback only, clear of the
# apiserver, etcd, kubelet and CNI ports).
MONITOR_PORT = 8404
MONITOR_URI = "/hakube/haproxy-alive"
DEFAULT_SCRIPT_USER = "keepalived_script"

# Where the files land on an LB node.
CONFIG_PATHS = {
    "haproxy": "/etc/haproxy/haproxy.cfg",
    "keepalived": "/etc/keepalived/keepalived.conf",
}
# config-drop.sh runs these with `bash -c CMD check FILE`: the candidate file is "$1".
# keepalived: Debian's 2.2.7 `keepalived -t` kills itself (exit 143) whenever a non-root
# script_user is in effect (fixed upstream in 2.2.8), so it checks a copy naming root instead;
# lb-prepare.sh creates the real user, and everything else in the file is checked as shipped.
CHECKERS = {
    "haproxy": 'haproxy -c -f "$1"',  # no -q: it would hide the reason too
    "keepalived": (
        'copy="$1.root-check"; '
        "sed -E 's/^([[:space:]]*script_user)[[:space:]].*$/\\1 root/' \"$1\" >\"$copy\"; "
        'keepalived -t -f "$copy"; status=$?; rm -f "$copy"; exit "$status"'
    ),
}
# Reloads that start the daemon if it is not running yet and fail when it does not stay up.
RELOADERS = {
    "haproxy": "systemctl reload-or-restart haproxy && systemctl is-active --quiet haproxy",
    "keepalived": "systemctl reload-or-restart keepalived && sleep 1 && systemctl is-active --quiet keepalived",
}
# Run when a drop is deleted (`pulumi destroy`, or the node leaves the pair) before its file goes: a
# node without hakube's configuration runs neither daemon, now or after a reboot.
STOPPERS = {
    "haproxy": "systemctl disable --now haproxy",
    "keepalived": "systemctl disable --now keepalived",
}


# HAProxy tuning (the targets; see tests/lab/test_failover_netns.py and bench/failover.py).
HAPROXY_TUNING = {
    # ~1,600 nodes at 5 long-lived connections each; needs ~16k file descriptors (2 per connection).
    "maxconn": 8000,
    "timeout_connect": "500ms",  # a vanished apiserver costs a client at most this, then redispatch
    "retries": 3,
    "timeout_stream": "1h",
    "timeout_check": "1s",
    "inter": "1s",
    "fastinter": "500ms",
    "fall": 2,
    "rise": 2,
    "error_limit": 2,
}


def _seconds(duration: str) -> float:
    """An HAProxy time ("500ms", "1s") in seconds."""
    return float(duration[:-2]) / 1000 if duration.endswith("ms") else float(duration.rstrip("s"))


def backend_drain_s() -> float:
    """The longest time from an apiserver failing /readyz to HAProxy marking it down (it then sends it
    no new connection): the check in flight (inter, up to timeout_check), then fall - 1 more at
    fastinter, each also up to timeout_check."""
    t = HAPROXY_TUNING
    check = _seconds(str(t["timeout_check"]))
    return _seconds(str(t["inter"])) + check + (int(str(t["fall"])) - 1) * (_seconds(str(t["fastinter"])) + check)


# keepalived track script (whole seconds only): HAProxy dead -> FAULT within one interval. One
# failure is enough: the probe is loopback to HAProxy itself, so it fails only when HAProxy does
# not accept connections, and then the VIP is better anywhere else.
TRACK_TUNING = {"track_interval": 1, "track_timeout": 2, "track_fall": 1, "track_rise": 2}


class LbPeer(NamedTuple):
    name: str
    address: ipaddress.IPv4Address
    interface: str
    priority: int


class Server(NamedTuple):
    name: str
    address: ipaddress.IPv4Address
    port: int


VRRP_AUTH_REFUSED = (
    "hakube:vrrpPassword: VRRP authentication exists only in VRRPv2 (whole-second adverts),"
    " not in the VRRPv3 hakube runs for sub-second failover; unset it (unicast peers with"
    " check_unicast_src already accept adverts only from the LB nodes)"
)


class VrrpAuthUnsupported(ValueError):
    """A VRRP password was given; see `render_keepalived` for why hakube refuses it."""


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # config files, not HTML
    )


def _render(template: str, **context: object) -> str:
    return _env().get_template(template).render(**context)


def lb_nodes(cluster: Cluster) -> list[LbPeer]:
    """Every LB node as (name, address, interface, priority); stacked nodes use their node address."""
    return [
        LbPeer(n.name, cluster.lb_address(n), n.interface, n.priority) for n in cluster.load_balancer.nodes
    ]


def apiserver_backends(cluster: Cluster) -> list[Server]:
    """Every kube-apiserver, on the control-plane network at the apiserver's bind port."""
    return [Server(n.name, n.control_plane_address, cluster.apiserver_port) for n in cluster.control_plane.nodes]


def vrrp_priorities(cluster: Cluster) -> dict[str, int]:
    """The VRRP priority rendered per LB node: the configured order mapped onto 254, 253, ...

    Between hakube's own nodes only the order of priorities matters (no track weights), but the
    value sets a backup's skew time, (256 - priority) / 256 x advert interval (RFC 5798): how
    long the VIP is nowhere after a master resigns with a priority-0 advert (graceful stop). At
    150/100 and 100 ms adverts that is 61 ms, 1-2 failed requests at a 40 ms cadence; at 254/253
    it is about 1 ms and a graceful stop loses at most a request in flight (measured in the
    namespace lab).
    """
    ranked = sorted(lb_nodes(cluster), key=lambda n: -n.priority)
    return {n.name: 254 - rank for rank, n in enumerate(ranked)}


def prepare_script() -> Script:
    """lb-prepare.sh: the daemons, and the unprivileged user their health-check scripts run as."""
    return Script("lb-prepare.sh", {"SCRIPT_USER": DEFAULT_SCRIPT_USER})


def config_drop(daemon: str) -> ConfigDrop:
    """How configs/scripts/config-drop.sh places, checks, reloads and removes `daemon`'s file."""
    return ConfigDrop(CONFIG_PATHS[daemon], check=CHECKERS[daemon], reload=RELOADERS[daemon], stop=STOPPERS[daemon])


def monitor_url() -> str:
    return f"http://127.0.0.1:{MONITOR_PORT}{MONITOR_URI}"


def render_haproxy(cluster: Cluster) -> str:
    """haproxy.cfg for every LB node (the same file on each): VIP:port -> every apiserver."""
    return _render(
        "haproxy.cfg.j2",
        cluster_name=cluster.name,
        vip=cluster.api_endpoint.vip,
        frontend_port=cluster.api_endpoint.port,
        servers=apiserver_backends(cluster),
        monitor_port=MONITOR_PORT,
        monitor_uri=MONITOR_URI,
        **HAPROXY_TUNING,
    )


def _advert_int(interval_ms: int) -> str:
    """keepalived takes seconds with decimals; 100 ms -> '0.1', 1000 ms -> '1'."""
    return f"{interval_ms / 1000:g}"


def render_keepalived(
    cluster: Cluster,
    node_name: str,
    script_user: str = DEFAULT_SCRIPT_USER,
    auth_password: str | None = None,
) -> str:
    """keepalived.conf for one LB node: VRRPv3 over unicast to the other LB nodes.

    `auth_password` (the optional `hakube:vrrpPassword`) is refused with VrrpAuthUnsupported:
    VRRPv3 (RFC 5798) has no authentication, and keepalived only honours `authentication` in
    VRRPv2, whose advert interval is whole seconds: switching to it would turn the sub-second
    failover into the multi-second one this design exists to avoid. PASS auth would also buy
    little: the password travels in clear text in every advert. What it guards against, a stray
    VRRP speaker on the segment, is handled instead by unicast adverts plus `check_unicast_src`
    (adverts are accepted only from the configured peers' addresses).
    """
    if auth_password:
        raise VrrpAuthUnsupported(VRRP_AUTH_REFUSED)
    nodes = lb_nodes(cluster)
    node = next((n for n in nodes if n.name == node_name), None)
    if node is None:
        raise ValueError(f"{node_name} is not a load-balancer node of {cluster.name}: {[n.name for n in nodes]}")
    vrrp = cluster.load_balancer.vrrp
    return _render(
        "keepalived.conf.j2",
        cluster_name=cluster.name,
        node=node,
        priority=vrrp_priorities(cluster)[node_name],
        peers=[n for n in nodes if n.name != node_name],
        vip=cluster.api_endpoint.vip,
        router_id=vrrp.router_id,
        advert_int=_advert_int(vrrp.advert_interval_ms),
        preempt=vrrp.preempt,
        script_user=script_user,
        script_name="hakube_haproxy_alive",
        instance_name="hakube_api_endpoint",
        track_command=f"/usr/bin/curl --silent --fail --output /dev/null --max-time 1 {monitor_url()}",
        **TRACK_TUNING,
    )
