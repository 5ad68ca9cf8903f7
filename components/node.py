"""A Kubernetes node reached over SSH: its site files (proxy, registry hosts and logins), then its
prerequisites (and, later, its kubelet and join)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import pulumi

from components.base import Component
from components.files import FileSet
from components.step import Host, Step, run
from configs import containerd, proxy, registries
from configs.remote import Script
from topology import Cluster


class Node(Component):
    """One Kubernetes node: a bare-metal host, or a control-plane VM once it is up."""

    def __init__(
        self, name: str, cluster: Cluster, host: Host, role: str, *, opts: pulumi.ResourceOptions,
        after: Sequence[pulumi.Resource] = (), registry_passwords: Mapping[str, pulumi.Output[str]] | None = None,
    ) -> None:
        runtime_config = containerd.containerd_config(cluster)
        # The files node-prereqs.sh places, as FileSet lists them: the dry run writes them into hosts/.
        files = [{"path": containerd.CONTAINERD_CONFIG_PATH, "content": runtime_config, "mode": "0644"}]
        super().__init__("Node", name, {"host": host.name, "address": host.address, "role": role, "files": files},
                         opts)
        self.host = host
        # In place before the prerequisites: apt there goes through the proxy, and containerd starts with them.
        site = self._site_files(name, cluster, host, after, registry_passwords or {})
        self.prerequisites = run(
            f"{name}-prereqs", host,
            # The packages and containerd configuration a node starts with; later version changes are
            # the upgrade steps' job (kubeadm-upgrade.sh installs the containerd configuration of the new
            # version too), which take one node at a time: re-running this everywhere at once would not,
            # and would run the old `create` (old version) against upgraded packages.
            Step(Script("node-prereqs.sh", containerd.prereqs_env(cluster, role)), payload=runtime_config,
                 ignore_changes=("create", "stdin")),
            pulumi.ResourceOptions(parent=self, depends_on=[*after, *site]),
        )
        self.finish()

    def _site_files(self, name: str, cluster: Cluster, host: Host, after: Sequence[pulumi.Resource],
                    passwords: Mapping[str, pulumi.Output[str]]) -> list[pulumi.Resource]:
        """The steps placing what a site without the internet needs, each only when configured; each owns
        its files (a manifest on the node), so removing a setting removes them."""
        opts = pulumi.ResourceOptions(parent=self, depends_on=list(after))
        steps: list[pulumi.Resource] = []
        proxy_files = proxy.node_files(cluster)
        if proxy_files:
            steps.append(FileSet(f"{name}-proxy", host, proxy_files, mode="0644", manifest=proxy.MANIFEST,
                                 reload_units=proxy.SERVICES, opts=opts).command)
        hosts = registries.hosts_files(cluster)
        if hosts:
            # containerd reads hosts.toml at every pull: no restart.
            steps.append(FileSet(f"{name}-registry-hosts", host, hosts, mode="0644",
                                 manifest=registries.HOSTS_MANIFEST, opts=opts).command)
        auth = registries.auth_file(cluster)
        if auth is not None:
            secrets = {login.variable: passwords[login.password_secret].apply(
                functools.partial(registries.auth_value, login.username))
                for login in registries.logins(cluster)}
            # containerd reads its configuration (and so the imported logins) at start.
            steps.append(FileSet(f"{name}-registry-auth", host, {registries.AUTH_PATH: auth}, mode="0600",
                                 manifest=registries.AUTH_MANIFEST, reload_units=("containerd",),
                                 secrets=secrets, opts=opts).command)
        return steps


def apt_proxy(name: str, cluster: Cluster, host: Host, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """apt's proxy on a host that is no Kubernetes node (an external LB node, a hypervisor), placed before
    anything there runs apt; [] without a proxy."""
    if not cluster.proxy.enabled:
        return []
    return [FileSet(f"{name}-proxy", host, {proxy.APT_CONF: proxy.apt_conf(cluster)}, mode="0644",
                    manifest=proxy.MANIFEST, opts=opts).command]
