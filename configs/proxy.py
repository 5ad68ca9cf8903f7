"""An HTTP proxy for the hosts (`proxy`): systemd drop-ins for containerd and the kubelet, and apt's proxy.

NO_PROXY is generated: localhost, 127.0.0.1, .svc and .<cluster domain>, every control-plane node's two
addresses, every LB node's address and the VIP, the node, control-plane, pod and service CIDRs, then the
user's additions. Workers are covered by the node CIDR only (containerd and the kubelet are Go programs,
whose proxy rules match CIDRs), so adding or removing a worker changes no host's drop-in; the addresses
that are listed one by one are those a tool that cannot read CIDRs must still reach directly (the VIP and
the control plane).

apt reads no NO_PROXY: it gets `Acquire::http(s)::Proxy` and, for each host name or address the user adds
to noProxy (an apt mirror on the site, say), a per-host `DIRECT`.
"""

from __future__ import annotations

from configs.kubeadm import CLUSTER_DOMAIN
from configs.systemd import unit_text
from topology.model import Cluster

CONTAINERD_DROP_IN = "/etc/systemd/system/containerd.service.d/hakube-proxy.conf"
KUBELET_DROP_IN = "/etc/systemd/system/kubelet.service.d/hakube-proxy.conf"
APT_CONF = "/etc/apt/apt.conf.d/90hakube-proxy"
# The record of what the proxy file set placed (file-set.sh MANIFEST), so a removed proxy takes its files along.
MANIFEST = "/var/lib/hakube/files/proxy.list"
# Services that read the drop-ins at start: restarted when a drop-in changes (if running).
SERVICES = ("containerd", "kubelet")


def no_proxy(cluster: Cluster) -> list[str]:
    """The NO_PROXY entries, in a stable order, each once."""
    network = cluster.network
    entries = ["localhost", "127.0.0.1", ".svc", f".{CLUSTER_DOMAIN}"]
    for node in cluster.control_plane.nodes:
        entries += [str(node.address), str(node.control_plane_address)]
    entries += [str(cluster.lb_address(node)) for node in cluster.load_balancer.nodes]
    entries.append(str(cluster.api_endpoint.vip))
    entries += [str(net) for net in (network.node_cidr, network.control_plane_cidr, network.pod_cidr,
                                     network.service_cidr)]
    entries += cluster.proxy.no_proxy
    return list(dict.fromkeys(entries))


def environment(cluster: Cluster) -> dict[str, str]:
    """The proxy variables, upper and lower case (Go reads either; curl only lower-case http_proxy)."""
    proxy = cluster.proxy
    values = {"HTTP_PROXY": proxy.http, "HTTPS_PROXY": proxy.https,
              "NO_PROXY": ",".join(no_proxy(cluster)) if proxy.enabled else None}
    env = {name: value for name, value in values.items() if value is not None}
    return {**env, **{name.lower(): value for name, value in env.items()}}


def command_environment(cluster: Cluster) -> dict[str, str]:
    """The upper-case proxy variables for a command hakube runs (an env NAME=value prefix takes upper case
    only): curl reads HTTPS_PROXY and NO_PROXY so, not HTTP_PROXY (it wants http_proxy for http:// URLs)."""
    return {name: value for name, value in environment(cluster).items() if name.isupper()}


def drop_in(cluster: Cluster) -> str:
    """A [Service] drop-in setting the proxy environment (systemd.exec(5) Environment=)."""
    # Quoted assignments; '%' starts a unit specifier, so it is doubled (validated values have no '"' or '\').
    lines = [("Environment", f'"{name}={value.replace("%", "%%")}"')
             for name, value in sorted(environment(cluster).items())]
    return "# hakube (configs/proxy.py): the site's HTTP proxy.\n" + unit_text({"Service": lines})


def _direct_hosts(cluster: Cluster) -> list[str]:
    """noProxy additions apt can name one by one: host names and IPv4 addresses without a port (apt's
    per-host key is the bare host; CIDRs and domains it cannot match)."""
    return [entry for entry in cluster.proxy.no_proxy if not any(c in entry for c in "/:*") and entry[0] != "."]


def apt_conf(cluster: Cluster) -> str:
    proxy = cluster.proxy
    lines = ["// hakube (configs/proxy.py): the site's HTTP proxy for apt."]
    for scheme, url in (("http", proxy.http), ("https", proxy.https)):
        if url is None:
            continue
        lines.append(f'Acquire::{scheme}::Proxy "{url}";')
        lines += [f'Acquire::{scheme}::Proxy::{host} "DIRECT";' for host in _direct_hosts(cluster)]
    return "\n".join(lines) + "\n"


def node_files(cluster: Cluster) -> dict[str, str]:
    """A Kubernetes node's proxy files ({} without a proxy)."""
    if not cluster.proxy.enabled:
        return {}
    text = drop_in(cluster)
    return {CONTAINERD_DROP_IN: text, KUBELET_DROP_IN: text, APT_CONF: apt_conf(cluster)}
