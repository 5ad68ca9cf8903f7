"""The registry files for real: the real containerd 2.2.1, configured by the files hakube's steps place
(config.toml, certs.d hosts.toml with the site CA, the imported login), pulls through its CRI plugin, driven
by the real kubeadm v1.37.2 (`kubeadm config images pull`), from a stand-in registry (lab/registrylab.py)
in a network namespace the test made, over TLS signed by a CA made here, behind a Basic login."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi.runtime import rpc

from configs import images
from dryrun.mockrun import REPO, run_program
from lab import realtools
from lab.hostsim import ScratchHost
from tests.sites import site_cluster
from topology import load_cluster

ADDRESS = "198.18.200.10"  # in the benchmarking range, on the namespace's own loopback
REGISTRY_HOST = "registry.site.example"
PORT = 5000
USER = "hakube-pull"
STARTUP_S = 30.0


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(directory: Path) -> str:
    """A CA and a server certificate for the registry's name; returns the CA's PEM."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=hakube-test-ca", "-days",
             "1", cwd=directory)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={REGISTRY_HOST}", cwd=directory)
    (directory / "san.ext").write_text(f"subjectAltName=DNS:{REGISTRY_HOST}\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out",
             "server.crt", "-days", "1", "-extfile", "san.ext", cwd=directory)
    return (directory / "ca.crt").read_text()


def _site(ca: str) -> dict[str, Any]:
    cluster = site_cluster()
    endpoint = f"https://{REGISTRY_HOST}:{PORT}"
    cluster["registries"]["endpoints"][endpoint]["ca"] = ca
    return cluster


def _plain(value: Any) -> Any:
    return value["value"] if rpc.is_rpc_secret(value) else value


def _place(host: ScratchHost, record: Any) -> None:
    env = {"PATH": f"{host.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HAKUBE_ROOT": str(host.root),
           "LC_ALL": "C"}
    result = subprocess.run(["bash", "-c", record.inputs["create"]], input=_plain(record.inputs["stdin"]), env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


@contextlib.contextmanager
def _namespace() -> Iterator[str]:
    name = f"hk{os.getpid()}{secrets.token_hex(2)}reg"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=30)
        subprocess.run(["ip", "-n", name, "addr", "add", f"{ADDRESS}/32", "dev", "lo"], check=True, timeout=30)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)


@contextlib.contextmanager
def _process(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        proc.kill()  # by PID: every exec in the chain keeps it
        proc.wait(timeout=30)


def _wait(ready: Any, what: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not come up in {STARTUP_S:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.mark.root
@pytest.mark.tool("openssl", "unshare")
@pytest.mark.realtool("containerd", "kubeadm")
def test_containerd_pulls_kubeadm_s_images_through_the_mirror_and_the_image_repository(tmp_path: Path) -> None:
    ca = _certificates(tmp_path)
    password = secrets.token_urlsafe(12)
    run = run_program(_site(ca), "dev", extra_config={"hakube:registryPassword": password})
    by_name = {r.name: r for r in run.records}
    host = ScratchHost(tmp_path / "node")
    host.shim("sudo", '[[ "$1" == -n ]] && shift; exec "$@"')
    host.shim("systemctl", "exit 0")
    for step in ("w1-registry-hosts-apply", "w1-registry-auth-apply"):
        _place(host, by_name[step])
    etc = host.root / "etc"
    config = next(f for f in by_name["w1"].inputs["files"] if f["path"] == "/etc/containerd/config.toml")
    (etc / "containerd/config.toml").write_text(config["content"])
    (etc / "hosts").write_text(f"{ADDRESS} {REGISTRY_HOST}\n")
    state = tmp_path / "containerd"
    socket = state / "containerd.sock"
    # Only where this containerd keeps its state, through the same imports glob as the login.
    (etc / "containerd/conf.d/zz-test.toml").write_text(
        f'version = 3\nroot = "{state}/root"\nstate = "{state}/state"\n\n[grpc]\n  address = "{socket}"\n')

    with _namespace() as ns:
        registry_log = tmp_path / "requests.jsonl"
        registry = [sys.executable, str(REPO / "lab" / "registrylab.py"), "serve", "--address", ADDRESS, "--port",
                    str(PORT), "--cert", str(tmp_path / "server.crt"), "--key", str(tmp_path / "server.key"),
                    "--user", USER, "--log", str(registry_log)]
        daemon = (f'mount --bind "{etc}" /etc && exec "{realtools.path_of("containerd")}"'
                  " --config /etc/containerd/config.toml")
        with _process(["ip", "netns", "exec", ns, *registry], tmp_path / "registry.log",
                      env={**os.environ, "REGISTRYLAB_PASSWORD": password}), \
                _process(["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c",
                          daemon], tmp_path / "containerd.log"):
            _wait(socket.exists, "containerd", tmp_path / "containerd.log")
            # Upstream names (through the registry.k8s.io mirror), then hakube's init.yaml (images.repository),
            # pointed at this containerd's socket.
            init = list(yaml.safe_load_all(_plain(by_name["cp1-kubeadm-init-config"].inputs["content"])))
            init[0]["nodeRegistration"]["criSocket"] = f"unix://{socket}"
            (tmp_path / "init.yaml").write_text(yaml.safe_dump_all(init))
            version = "v" + realtools.pinned()["KUBERNETES_VERSION"]
            for args in (["--kubernetes-version", version, "--cri-socket", f"unix://{socket}"],
                         ["--config", str(tmp_path / "init.yaml")]):
                pulled = subprocess.run([str(realtools.path_of("kubeadm")), "config", "images", "pull", *args],
                                        capture_output=True, text=True, timeout=300, check=False)
                assert pulled.returncode == 0, pulled.stdout + pulled.stderr + (tmp_path / "containerd.log").read_text()
    requests = [json.loads(line) for line in registry_log.read_text().splitlines()]
    served = [r for r in requests if r["status"] == 200]
    assert served and all(r["auth"] == "ok" for r in served)  # every answer went to the imported login
    assert all(r["status"] in (200, 401) for r in requests) and all(r["auth"] != "bad" for r in requests)
    manifests = {(r["path"].split("/manifests/")[0].removeprefix("/v2/"), r["ns"]) for r in served
                 if "/manifests/" in r["path"]}
    assert load_cluster(_site(ca)).kubernetes_version == realtools.pinned()["KUBERNETES_VERSION"]
    names = {ref.split("/", 1)[1].rsplit(":", 1)[0] for ref in images.kubeadm_images(load_cluster(_site(ca)))}
    # Through the registry.k8s.io mirror (skipFallback: its only server), then straight from images.repository.
    assert manifests == {(name, "registry.k8s.io") for name in names} | {(name, None) for name in names}
    shutil.rmtree(state, ignore_errors=True)
