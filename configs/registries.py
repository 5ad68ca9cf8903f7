"""containerd's registry hosts and logins on every node, from `registries` (built as data, written as TOML).

containerd 2.x reads `/etc/containerd/certs.d/<registry>/hosts.toml` (config_path, config.toml) afresh at
every pull (containerd docs/hosts.md: "Updates under this directory do not require restarting the
containerd daemon"), so mirrors and CAs are re-placed without a restart. Per registry host:
- the endpoints as `[host."<url>"]` entries, tried in order, with capabilities pull and resolve (a private
  mirror: trusted to resolve tags, never pushed to) and `ca` when the endpoint has one; no `server`, so
  containerd falls back to the registry itself (registry-1.docker.io for docker.io) after them;
- with skipFallback, the last endpoint is the `server` instead (hosts.md: "to ensure only the mirror is
  utilised and the upstream not consulted, set the mirror as the server"), so upstream is never asked;
- `"*"` is containerd's `_default` namespace, used for any registry without a directory of its own.
The registry of images.repository gets a hosts.toml too when it has endpoint settings and no mirrors: its
endpoint as the server, so its CA applies to the images kubeadm and the charts pull from it.

Logins: hosts.toml has no credential field; containerd 2.x takes them from the CRI plugin's
`registry.configs.<host:port>.auth` (docs/cri/registry.md; deprecated for plain-text secrets but kept
until a secret plugin replaces it; containerd v2.2-v2.4 read it), keyed by the host the request goes to
and used unless the kubelet passes pull-secret credentials. They live in a file of their own,
/etc/containerd/conf.d/hakube-registry-auth.toml (0600), which config.toml imports (containerd merges
imported files into its configuration, plugin tables key by key): config.toml carries no secret and
stays as the dry run shows it, and the file holds placeholders that node-side file-set.sh fills from
its stdin (`auth` is base64 of user:password, so no value can break the TOML). containerd reads it at
start: a changed login restarts containerd (running containers keep running).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from configs.tomlwriter import dumps
from topology.model import ANY_REGISTRY, Cluster, RegistryEndpoint, registry_endpoint

CERTS_DIR = "/etc/containerd/certs.d"  # config.toml's config_path
CONF_DIR = "/etc/containerd/conf.d"
IMPORTS = f"{CONF_DIR}/*.toml"  # a glob: no file there is no error
AUTH_PATH = f"{CONF_DIR}/hakube-registry-auth.toml"
CRI_IMAGES_PLUGIN = "io.containerd.cri.v1.images"
CONFIG_VERSION = 3  # containerd 2.x; an imported file without it would be read as version 1
DEFAULT_NAMESPACE = "_default"
MIRROR_CAPABILITIES = ["pull", "resolve"]
# The node's record of the files each set placed (file-set.sh MANIFEST): what to remove when they go.
HOSTS_MANIFEST = "/var/lib/hakube/files/registry-hosts.list"
AUTH_MANIFEST = "/var/lib/hakube/files/registry-auth.list"
AUTH_SECRET_PREFIX = "REGISTRY_AUTH_"
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")


@dataclass(frozen=True)
class Login:
    """One registry login: the host:port containerd keys it by, its user, the secret key holding its password,
    and the placeholder (file-set.sh's secret variable) its auth value takes in the auth file."""

    netloc: str
    username: str
    password_secret: str
    variable: str


def namespace_dir(host: str) -> str:
    """The directory containerd looks up for registry `host` ("*": its fallback namespace)."""
    return f"{CERTS_DIR}/{DEFAULT_NAMESPACE if host == ANY_REGISTRY else host}"


def ca_path(host: str, endpoint: str) -> str:
    return f"{namespace_dir(host)}/{_UNSAFE.sub('_', urlsplit(endpoint).netloc)}.crt"


def _settings(cluster: Cluster) -> dict[str, RegistryEndpoint]:
    """Per-endpoint settings by the endpoint's normalized URL (as mirrors hold it)."""
    return {registry_endpoint(url): settings for url, settings in cluster.registries.endpoints.items()}


def _host_entry(cluster: Cluster, host: str, endpoint: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"capabilities": list(MIRROR_CAPABILITIES)}
    settings = _settings(cluster).get(endpoint)
    if settings is not None and settings.ca is not None:
        entry["ca"] = ca_path(host, endpoint)
    return entry


def repository_endpoint(cluster: Cluster) -> tuple[str, str] | None:
    """(registry host, endpoint URL) of images.repository's registry when endpoint settings name it and no
    mirror entry covers it: it then gets a hosts.toml of its own."""
    repository = cluster.images.repository
    if repository is None:
        return None
    host = repository.split("/", 1)[0]
    if host in cluster.registries.mirrors:
        return None
    return next(((host, url) for url in _settings(cluster) if urlsplit(url).netloc == host), None)


def hosts_data(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """Registry host -> its hosts.toml as data."""
    registries = cluster.registries
    out: dict[str, dict[str, Any]] = {}
    for host, endpoints in registries.mirrors.items():
        tried = endpoints[:-1] if registries.skip_fallback else endpoints
        data: dict[str, Any] = {}
        if registries.skip_fallback:
            data = {"server": endpoints[-1], **_host_entry(cluster, host, endpoints[-1])}
        if tried:
            data["host"] = {endpoint: _host_entry(cluster, host, endpoint) for endpoint in tried}
        out[host] = data
    own = repository_endpoint(cluster)
    if own is not None:
        host, endpoint = own
        entry = _host_entry(cluster, host, endpoint)
        entry.pop("capabilities")  # the registry itself: every capability (containerd's default)
        out[host] = {"server": endpoint, **entry}
    return out


def _header(host: str) -> str:
    what = "images of every registry without a directory here" if host == ANY_REGISTRY else f"{host} images"
    return f"# hakube (configs/registries.py): where containerd pulls {what} from; read at every pull.\n"


def hosts_files(cluster: Cluster) -> dict[str, str]:
    """Absolute path -> content: every hosts.toml and CA file of the nodes' certs.d ({} without mirrors)."""
    files = {f"{namespace_dir(host)}/hosts.toml": _header(host) + dumps(data)
             for host, data in hosts_data(cluster).items()}
    settings = _settings(cluster)
    for host, data in hosts_data(cluster).items():
        for endpoint in [data.get("server"), *data.get("host", {})]:
            ca = settings[endpoint].ca if endpoint in settings else None
            if ca is not None:
                files[ca_path(host, endpoint)] = ca
    return files


def logins(cluster: Cluster) -> list[Login]:
    """Every registry login, one per host:port (topology/rules.py refuses two users for one host)."""
    found: dict[str, RegistryEndpoint] = {}
    for url, settings in _settings(cluster).items():
        if settings.username is not None:
            found.setdefault(urlsplit(url).netloc, settings)
    return [Login(netloc, s.username or "", s.password_secret, f"{AUTH_SECRET_PREFIX}{i}")
            for i, (netloc, s) in enumerate(sorted(found.items()), 1)]


def auth_file(cluster: Cluster) -> str | None:
    """The imported auth file, with a `${REGISTRY_AUTH_<n>}` placeholder per login (None without logins)."""
    found = logins(cluster)
    if not found:
        return None
    configs = {login.netloc: {"auth": {"auth": f"${{{login.variable}}}"}} for login in found}
    data = {"version": CONFIG_VERSION, "plugins": {CRI_IMAGES_PLUGIN: {"registry": {"configs": configs}}}}
    return "# hakube (configs/registries.py): registry logins, filled in on the node; containerd reads it at start.\n" \
        + dumps(data)


def auth_value(username: str, password: str) -> str:
    """containerd's `auth`: base64 of user:password, as in a Docker config.json."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()
