"""containerd's registry hosts and logins (configs/registries.py), every file read back with tomllib: endpoints in
order with the registry as fallback, or the last endpoint as the only server with skipFallback; "*" as
containerd's _default; CA files beside the hosts.toml naming them; one login per host:port."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from configs import registries
from tests.mockgraph import cluster_copy
from topology import load_cluster

PEM = "-----BEGIN CERTIFICATE-----\nMIIBexample\n-----END CERTIFICATE-----\n"
A, B = "https://a.site.example:5000", "http://b.site.example/hub"


def _cluster(**settings: Any) -> Any:
    data = cluster_copy("dev")
    data.update(settings)
    return load_cluster(data)


def _hosts(cluster: Any) -> dict[str, dict[str, Any]]:
    """Registry host -> its hosts.toml as containerd would read it (through tomllib)."""
    files = registries.hosts_files(cluster)
    out = {}
    for path, text in files.items():
        if path.endswith("/hosts.toml"):
            assert text.startswith("# hakube")
            out[path.removeprefix(registries.CERTS_DIR + "/").removesuffix("/hosts.toml")] = tomllib.loads(text)
    return out


def test_endpoints_are_tried_in_order_then_the_registry_itself() -> None:
    hosts = _hosts(_cluster(registries={"mirrors": {"docker.io": [A, B]}}))
    assert list(hosts) == ["docker.io"]
    data = hosts["docker.io"]
    assert "server" not in data  # containerd's own default: registry-1.docker.io after the hosts
    assert list(data["host"]) == [A, B]
    assert all(entry == {"capabilities": ["pull", "resolve"]} for entry in data["host"].values())


def test_skip_fallback_makes_the_last_endpoint_the_server() -> None:
    hosts = _hosts(_cluster(registries={"mirrors": {"docker.io": [A, B], "quay.io": [A]}, "skipFallback": True}))
    assert hosts["docker.io"] == {"server": B, "capabilities": ["pull", "resolve"],
                                  "host": {A: {"capabilities": ["pull", "resolve"]}}}
    assert hosts["quay.io"] == {"server": A, "capabilities": ["pull", "resolve"]}


def test_every_registry_is_the_default_namespace() -> None:
    hosts = _hosts(_cluster(registries={"mirrors": {"*": [A]}}))
    assert list(hosts) == ["_default"]


def test_a_ca_goes_beside_each_hosts_toml_that_names_its_endpoint() -> None:
    cluster = _cluster(registries={"mirrors": {"docker.io": [A, B], "ghcr.io": [A]}, "endpoints": {A: {"ca": PEM}}})
    files = registries.hosts_files(cluster)
    hosts = _hosts(cluster)
    for host in ("docker.io", "ghcr.io"):
        path = hosts[host]["host"][A]["ca"]
        assert path == f"{registries.CERTS_DIR}/{host}/a.site.example_5000.crt" and files[path] == PEM
    assert "ca" not in hosts["docker.io"]["host"][B]


def test_the_image_repository_s_registry_gets_its_ca_without_a_mirror() -> None:
    cluster = _cluster(images={"repository": "a.site.example:5000/k8s"},
                       registries={"endpoints": {A: {"ca": PEM, "username": "pull"}}})
    hosts = _hosts(cluster)
    ca = f"{registries.CERTS_DIR}/a.site.example:5000/a.site.example_5000.crt"
    assert hosts == {"a.site.example:5000": {"server": A, "ca": ca}}
    assert [login.netloc for login in registries.logins(cluster)] == ["a.site.example:5000"]


def test_logins_one_per_host_in_a_file_containerd_imports() -> None:
    cluster = _cluster(registries={
        "mirrors": {"docker.io": [A, "https://a.site.example:5000/other"], "quay.io": [B]},
        "endpoints": {A: {"username": "pull"}, "https://a.site.example:5000/other": {"username": "pull"},
                      B: {"username": "bot", "passwordSecret": "hubPassword"}}})
    found = registries.logins(cluster)
    assert [(x.netloc, x.username, x.password_secret, x.variable) for x in found] == [
        ("a.site.example:5000", "pull", "registryPassword", "REGISTRY_AUTH_1"),
        ("b.site.example", "bot", "hubPassword", "REGISTRY_AUTH_2")]
    text = registries.auth_file(cluster)
    assert text is not None
    data = tomllib.loads(text)
    assert data["version"] == 3  # without it containerd would read an imported file as version 1
    configs = data["plugins"][registries.CRI_IMAGES_PLUGIN]["registry"]["configs"]
    assert configs == {"a.site.example:5000": {"auth": {"auth": "${REGISTRY_AUTH_1}"}},
                       "b.site.example": {"auth": {"auth": "${REGISTRY_AUTH_2}"}}}


def test_no_registries_no_files() -> None:
    cluster = load_cluster(cluster_copy("dev"))
    assert registries.hosts_files(cluster) == {} and registries.auth_file(cluster) is None


@pytest.mark.parametrize("password", ["s3cret", "with spaces and \"quotes\"", "colon:inside", "ünïcödé"])
def test_the_auth_value_is_base64_of_user_colon_password(password: str) -> None:
    import base64

    value = registries.auth_value("pull", password)
    assert base64.b64decode(value).decode() == f"pull:{password}"
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
