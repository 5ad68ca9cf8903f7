"""A site without the internet: the README's stack lines added to the dev stack dry-run with the registry,
proxy and package files on every host; the registry-login step runs for real against a scratch root and
the real containerd reads the result; adding a worker still changes no existing resource."""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import rpc

from bench.plan_shape import blast_radius, plan_table
from bench.scale import topology
from configs import proxy, registries
from dryrun.mockrun import REPO
from lab import realtools
from lab.hostsim import ScratchHost
from tests.mockgraph import Graph, cluster_copy, graph
from tests.sites import README, site_cluster, site_settings
from topology import ROOT, load_cluster

VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))
MIRROR = "https://registry.site.example:5000"


@cache
def site_graph() -> Graph:
    return graph(site_cluster(), "dev")


def site_tree(tmp: Path) -> Path:
    stack = tmp / "Pulumi.site.yaml"
    stack.write_text(yaml.safe_dump({"config": {ROOT: site_cluster()}}, sort_keys=False))
    result = subprocess.run([PYTHON, "-m", "dryrun", "--config", str(stack), "--out", str(tmp / "out")], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert '"mandatoryViolations": 0' in result.stdout
    return tmp / "out"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return site_tree(tmp_path_factory.mktemp("site"))


def test_the_readme_lines_are_a_valid_stack_and_use_every_site_key() -> None:
    cluster = load_cluster(site_cluster())
    assert set(site_settings()) == {"registries", "images", "proxy", "charts", "packages"}
    assert cluster.registries.skip_fallback and cluster.images.repository == "registry.site.example:5000"
    assert cluster.proxy.enabled and cluster.charts.repository and cluster.packages.ubuntu_mirror


def test_every_kubernetes_node_gets_the_registry_proxy_and_login_files(tree: Path) -> None:
    cluster = load_cluster(site_cluster())
    nodes = [n.name for n in cluster.control_plane.nodes] + [w.name for w in cluster.workers]
    for node in nodes:
        etc = tree / "hosts" / node / "etc"
        for host in ("docker.io", "registry.k8s.io", "quay.io", "ghcr.io", "registry.site.example:5000"):
            assert (etc / "containerd/certs.d" / host / "hosts.toml").is_file(), (node, host)
            assert (etc / "containerd/certs.d" / host / "registry.site.example_5000.crt").read_text().startswith(
                "-----BEGIN CERTIFICATE-----")
        assert (etc / "containerd/conf.d/hakube-registry-auth.toml").is_file()
        for unit in ("containerd", "kubelet"):
            assert "NO_PROXY=" in (etc / f"systemd/system/{unit}.service.d/hakube-proxy.conf").read_text()
        assert 'Acquire::https::Proxy "http://proxy.site.example:3128";' in (
            etc / "apt/apt.conf.d/90hakube-proxy").read_text()
        config = tomllib.loads((etc / "containerd/config.toml").read_text())
        assert config["imports"] == [registries.IMPORTS]
        assert config["plugins"][registries.CRI_IMAGES_PLUGIN]["registry"] == {"config_path": registries.CERTS_DIR}


def test_hosts_that_only_run_apt_get_its_proxy_and_nothing_else(tree: Path) -> None:
    for host in ("lb1", "lb2", "hv1", "hv2", "hv3"):
        etc = tree / "hosts" / host / "etc"
        assert (etc / "apt/apt.conf.d/90hakube-proxy").is_file(), host
        assert not (etc / "containerd").exists() and not (etc / "systemd").exists()


def test_every_hosts_toml_parses_and_never_names_an_upstream_registry_with_skip_fallback(tree: Path) -> None:
    files = sorted((tree / "hosts" / "w1" / "etc/containerd/certs.d").glob("*/hosts.toml"))
    assert len(files) == 5
    for path in files:
        data = tomllib.loads(path.read_text())
        # The mirror is the only server; no [host] entries are left to fall back from.
        assert data["server"] == MIRROR and "host" not in data, path
        assert Path(data["ca"]).parent.name == path.parent.name and Path(data["ca"]).name.endswith(".crt")


def test_the_login_is_hidden_in_every_plan_file_and_a_secret_on_stdin(tree: Path) -> None:
    # hosts/ shows the file as the node holds it, the login hidden; the step's input keeps the placeholder.
    auth = tomllib.loads((tree / "hosts/w1/etc/containerd/conf.d/hakube-registry-auth.toml").read_text())
    login = auth["plugins"][registries.CRI_IMAGES_PLUGIN]["registry"]["configs"]["registry.site.example:5000"]
    assert login == {"auth": {"auth": "[secret]"}} and auth["version"] == 3
    step = site_graph().by_name["w1-registry-auth-apply"]
    placed = site_graph().by_name["w1-registry-auth"]["inputs"]
    assert "${REGISTRY_AUTH_1}" in placed["files"][0]["content"] and placed["secretNames"] == ["REGISTRY_AUTH_1"]
    assert step["inputs"]["stdin"] == "[secret]" and "SECRET_NAMES=REGISTRY_AUTH_1" in step["inputs"]["create"]
    plan = (tree / "plan.json").read_text() + (tree / "plan.txt").read_text()
    assert "dry-run throwaway" not in plan  # the password mockrun supplies


def test_kubeadm_and_the_charts_take_their_images_and_charts_from_the_site(tree: Path) -> None:
    init = list(yaml.safe_load_all((tree / "hosts/cp1/etc/kubernetes/kubeadm/init.yaml").read_text()))
    assert init[1]["imageRepository"] == "registry.site.example:5000"
    assert init[1]["dns"] == {"imageRepository": "registry.site.example:5000/coredns"}
    table = site_graph().by_name
    assert table["addon-cni"]["inputs"]["chart"] == "oci://registry.site.example:5000/charts/tigera-operator"
    assert table["addon-cni"]["inputs"]["values"]["installation"]["registry"] == "registry.site.example:5000/"
    assert table["addon-gateway-api-crds"]["inputs"]["file"].startswith("https://files.site.example/")
    image = table["addon-smoke-deployment"]["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.site.example:5000/nginxinc/nginx-unprivileged:1.28.0-alpine"
    user_data = yaml.safe_load((tree / "vms/cp1/user-data").read_text())
    assert user_data["apt"]["primary"] == [{"arches": ["default"], "uri": "https://apt.site.example/ubuntu"}]


def test_a_missing_registry_password_is_refused_naming_the_key() -> None:
    from components.program import registry_passwords

    class Config:
        def __init__(self, values: dict[str, str]) -> None:
            self.values = values

        def get(self, key: str) -> str | None:
            return self.values.get(key)

        def get_secret(self, key: str) -> str | None:
            return self.values.get(key)

    cluster = load_cluster(site_cluster())
    for missing in ({}, {"registryPassword": ""}):
        with pytest.raises(pulumi.RunError, match=re.escape(
                "hakube:registryPassword: required by hakube:cluster.registries.endpoints['https://registry.site"
                ".example:5000'].username (pulumi config set --secret hakube:registryPassword)")):
            registry_passwords(Config(missing), cluster)  # type: ignore[arg-type]
    assert registry_passwords(Config({"registryPassword": "x"}), cluster) == {"registryPassword": "x"}  # type: ignore[arg-type]
    assert registry_passwords(Config({}), load_cluster(cluster_copy("dev"))) == {}  # type: ignore[arg-type]


# --- the login step, for real ------------------------------------------------------------------

def _plain(value: Any) -> Any:
    return value["value"] if rpc.is_rpc_secret(value) else value


def _run_sent(host: ScratchHost, name: str, which: str = "create") -> subprocess.CompletedProcess[str]:
    record = site_graph().record(name)
    env = {"PATH": f"{host.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HAKUBE_ROOT": str(host.root),
           "LC_ALL": "C"}
    stdin = _plain(record.inputs.get("stdin", "")) if which == "create" else ""
    return subprocess.run(["bash", "-c", record.inputs[which]], input=stdin, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def _host(tmp_path: Path) -> ScratchHost:
    host = ScratchHost(tmp_path)
    host.shim("sudo", '[[ "$1" == -n ]] && shift; exec "$@"')
    host.shim("systemctl", "exit 0")
    return host


def _expected_auth() -> str:
    record = site_graph().record("w1-registry-auth-apply")
    secret_lines = _plain(record.inputs["stdin"]).split("\n\n", 1)[0]
    password_auth = dict(line.split("=", 1) for line in secret_lines.splitlines())["REGISTRY_AUTH_1"]
    user, _, password = base64.b64decode(password_auth).decode().partition(":")
    assert user == "hakube-pull" and password.startswith("dry-run throwaway")
    return password_auth


@pytest.mark.tool("bash")
def test_the_sent_login_step_fills_in_the_file_0600_and_restarts_containerd_only_when_it_changed(
        tmp_path: Path) -> None:
    host = _host(tmp_path)
    result = _run_sent(host, "w1-registry-auth-apply")
    assert result.returncode == 0, result.stderr
    path = host.root / registries.AUTH_PATH.lstrip("/")
    auth = tomllib.loads(path.read_text())
    configs = auth["plugins"][registries.CRI_IMAGES_PLUGIN]["registry"]["configs"]
    assert configs["registry.site.example:5000"]["auth"]["auth"] == _expected_auth()
    assert path.stat().st_mode & 0o777 == 0o600
    assert "throwaway" not in result.stdout + result.stderr
    assert host.calls("systemctl") == [["systemctl", "try-restart", "containerd"]]
    again = _run_sent(host, "w1-registry-auth-apply")
    assert again.returncode == 0 and "unchanged" in again.stderr and len(host.calls("systemctl")) == 1
    # Deleting the step (the logins removed from the stack) takes the file away and restarts containerd.
    gone = _run_sent(host, "w1-registry-auth-apply", "delete")
    assert gone.returncode == 0, gone.stderr
    assert not path.exists() and len(host.calls("systemctl")) == 2


@pytest.mark.tool("bash")
def test_the_sent_hosts_step_places_every_file_and_restarts_nothing(tmp_path: Path) -> None:
    host = _host(tmp_path)
    result = _run_sent(host, "w1-registry-hosts-apply")
    assert result.returncode == 0, result.stderr
    placed = {f["path"] for f in site_graph().record("w1-registry-hosts").inputs["files"]}
    assert {"/" + p for p in host.tree() if "certs.d" in p} == placed
    assert host.calls("systemctl") == []


@pytest.mark.tool("bash")
def test_the_sent_proxy_step_reloads_systemd_and_restarts_containerd_and_the_kubelet(tmp_path: Path) -> None:
    host = _host(tmp_path)
    assert _run_sent(host, "w1-proxy-apply").returncode == 0
    assert host.calls("systemctl") == [["systemctl", "daemon-reload"],
                                       ["systemctl", "try-restart", *proxy.SERVICES]]


@pytest.mark.root
@pytest.mark.tool("bash", "unshare")
@pytest.mark.realtool("containerd")
def test_the_real_containerd_reads_the_login_through_its_imports(tmp_path: Path) -> None:
    """containerd 2.2.1's own loader: config.toml as prereqs writes it, plus the auth file the login step
    wrote, seen at /etc in a mount namespace of its own (so the absolute import glob is what is read)."""
    host = _host(tmp_path)
    assert _run_sent(host, "w1-registry-auth-apply").returncode == 0
    config_toml = next(f for f in site_graph().record("w1").inputs["files"]
                       if f["path"] == "/etc/containerd/config.toml")["content"]
    (host.root / "etc/containerd/config.toml").write_text(config_toml)
    containerd = realtools.path_of("containerd")
    # The scratch root's /etc over the real one, in this namespace only.
    script = (f'mount --bind "{host.root}/etc" /etc && exec "{containerd}" --config /etc/containerd/config.toml'
              " config dump")
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    dump = tomllib.loads(result.stdout)
    images = dump["plugins"][registries.CRI_IMAGES_PLUGIN]
    assert images["pinned_images"]["sandbox"] == "registry.site.example:5000/pause:3.10.2"
    assert images["registry"]["config_path"] == registries.CERTS_DIR
    assert images["registry"]["configs"]["registry.site.example:5000"]["auth"]["auth"] == _expected_auth()
    runtime = dump["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]["runtimes"]["runc"]
    assert runtime["options"]["SystemdCgroup"] is True


# --- day 2 -------------------------------------------------------------------------------------

def _site_topology(workers: list[int]) -> dict[str, Any]:
    return topology(workers, **copy.deepcopy(site_settings()))


def test_adding_a_worker_to_a_site_changes_no_existing_resource() -> None:
    before, after = plan_table(_site_topology([1, 2, 3])), plan_table(_site_topology([1, 2, 3, 4]))
    blast = blast_radius(before, after)
    assert blast.changed == {} and blast.removed == []
    assert {"w0004-proxy-apply", "w0004-registry-hosts-apply", "w0004-registry-auth-apply"} <= set(blast.added)


def test_a_mirror_change_replaces_only_the_hosts_steps_and_a_proxy_change_only_the_proxy_steps() -> None:
    base = _site_topology([1, 2])
    changed = copy.deepcopy(base)
    changed["registries"]["mirrors"]["docker.io"] = ["https://other.site.example"]
    blast = blast_radius(plan_table(base), plan_table(changed))
    assert {name.rsplit("-registry-hosts", 1)[1] for name in blast.changed} == {"", "-apply"}
    noproxy = copy.deepcopy(base)
    noproxy["proxy"]["noProxy"] = [".site.example", "10.20.0.0/16"]
    touched = blast_radius(plan_table(base), plan_table(noproxy)).changed
    # The hypervisors' image fetch takes the proxy on its command line: it runs again (it is idempotent).
    assert touched and all("-proxy" in name or name.endswith("-base-image") for name in touched)


def test_list_images_prints_the_pulled_and_upstream_names_and_the_readme_holds_dev_s(tmp_path: Path) -> None:
    def listed(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PYTHON, "-m", "dryrun", *args, "--list-images"], cwd=REPO, capture_output=True,
                              text=True, timeout=120, check=False)

    dev = listed("--stack", "dev")
    assert dev.returncode == 0 and dev.stderr == ""
    block = re.search(r"<!-- image-list:begin[^\n]*\n```\n(.*?)```", README.read_text(), re.S)
    assert block and block.group(1) == dev.stdout
    stack = tmp_path / "Pulumi.site.yaml"
    stack.write_text(yaml.safe_dump({"config": {ROOT: site_cluster()}}))
    site = listed("--config", str(stack))
    pairs = [line.split(" ") for line in site.stdout.splitlines()]
    assert [upstream for _, upstream in pairs] == dev.stdout.splitlines()
    assert all(pulled == "registry.site.example:5000/" + upstream.split("/", 1)[1] for pulled, upstream in pairs)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("build*"))
    cilium = cluster_copy("prod")
    stack.write_text(json.dumps({"config": {ROOT: cilium}}))
    partial = listed("--config", str(stack))
    assert "quay.io/cilium/cilium:v1.20.5" in partial.stdout.splitlines()
    assert partial.stderr.startswith("not listed: cilium 1.20.5: cilium-envoy")
