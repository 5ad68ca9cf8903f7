"""The kubeadm host scripts run for real under bash against a scratch root, with PATH shims for
kubeadm, kubectl, systemctl and etcdctl that log their argv and imitate the files the real tools
leave behind. Asserted: the order of calls, that a second run calls nothing that changes anything,
and that no token, certificate key or CA hash ever appears in any argv or on stdout (except the
credentials line kubeadm-token.sh exists to print)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from configs import kubeadm
from configs.remote import command_line, secret_stdin
from dryrun.mockrun import REPO
from lab.hostsim import ScratchHost
from topology import load_stack_file

DEV = load_stack_file(REPO / "Pulumi.dev.yaml")
TOKEN = "k3x9qa.0123456789abcdef"
HASH = "sha256:" + "5e" * 32
KEY = "c0ffee" * 10 + "beef"
SECRETS = (TOKEN, KEY, HASH.removeprefix("sha256:"))
JOIN_ENV = {"JOIN_TOKEN": TOKEN, "CA_CERT_HASH": HASH}
MY_SCRIPTS = ("kubeadm-init.sh", "kubeadm-token.sh", "kubeadm-join.sh", "kubelet-cpu-manager.sh", "node-remove.sh",
              "etcd-member-remove.sh", "node-reset.sh")

# What `kubeadm init --upload-certs` prints at its end, secrets included.
INIT_OUTPUT = (f"kubeadm join 198.18.0.100:6443 --token {TOKEN} --discovery-token-ca-cert-hash {HASH}"
               f" --control-plane --certificate-key {KEY}")
KUBEADM_SHIM = f"""
root="$HAKUBE_ROOT"; seen="$HOME/seen"; mkdir -p "$seen"
case "$1 $2" in
  "init --config")
    cp "$3" "$seen/init.yaml"
    mkdir -p "$root/etc/kubernetes/manifests" "$root/etc/kubernetes/pki"
    echo admin > "$root/etc/kubernetes/admin.conf"; echo pod > "$root/etc/kubernetes/manifests/kube-apiserver.yaml"
    echo "[init] Using Kubernetes version"; echo "{INIT_OUTPUT}" ;;
  "join --config")
    cp "$3" "$seen/join.yaml"; stat -c %a "$3" > "$seen/join.mode"; echo "$3" > "$seen/join.path"
    mkdir -p "$root/etc/kubernetes/manifests"; echo kubelet > "$root/etc/kubernetes/kubelet.conf"
    grep -q '^controlPlane:' "$3" && echo pod > "$root/etc/kubernetes/manifests/kube-apiserver.yaml"
    echo "This node has joined the cluster" ;;
  "token create")
    n=$(cat "$seen/tokens" 2>/dev/null || echo 0); echo $((n+1)) > "$seen/tokens"
    echo "k3x9qa.0123456789abcd$((n+10))" ;;
  "init phase")
    echo "[upload-certs] Storing the certificates in Secret \\"kubeadm-certs\\""
    echo "[upload-certs] Using certificate key:"; echo "{KEY}" ;;
  "reset -f")
    rm -rf "$root/etc/kubernetes/pki" "$root/etc/kubernetes/manifests" "$root/var/lib/kubelet" "$root/var/lib/etcd"
    rm -f "$root/etc/kubernetes/"*.conf
    echo "[reset] Stopping the kubelet service" ;;
  *) echo "unexpected kubeadm $*" >&2; exit 2 ;;
esac
"""
# API up when $HOME/api-up exists; nodes are the files in $HOME/nodes.
KUBECTL_SHIM = """
args=" $* "
case "$args" in
  *" --raw=/readyz "*) [[ -f "$HOME/api-up" ]] ;;
  *" get node "*) [[ -f "$HOME/api-up" ]] || { echo "connection refused" >&2; exit 1; }
                  [[ -f "$HOME/nodes/$3" ]] && echo "node/$3"; exit 0 ;;
  *" drain "*) [[ ! -f "$HOME/drain-fails" ]] || { echo "error: timed out waiting for eviction" >&2; exit 1; } ;;
  *" delete node "*) rm -f "$HOME/nodes/$3" ;;
esac
"""


def _host(tmp_path: Path) -> ScratchHost:
    host = ScratchHost(tmp_path)
    host.shim("kubeadm", KUBEADM_SHIM)
    host.shim("kubectl", KUBECTL_SHIM)
    # Records whether the CPU manager checkpoint still exists when the kubelet starts.
    host.shim("systemctl", '[[ "$1" == start ]] && { [[ -e "$HAKUBE_ROOT/var/lib/kubelet/cpu_manager_state" ]]'
                           ' && echo present || echo absent; } > "$HOME/state-at-start"; exit 0')
    return host


def _place(host: ScratchHost, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = host.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def _tools(host: ScratchHost) -> list[str]:
    return [call[0] + (" " + call[1] if len(call) > 1 else "") for call in host.calls()]


def _assert_no_secret_in_argv(host: ScratchHost) -> None:
    leaked = [call for call in host.calls() for arg in call if any(s in arg for s in SECRETS)]
    assert leaked == []


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------------------------------
# kubeadm-init.sh


def _init_host(tmp_path: Path) -> ScratchHost:
    host = _host(tmp_path)
    patches = {p: t for p, t in kubeadm.node_files(DEV, DEV.first_control_plane).items() if "/patches/" in p}
    _place(host, patches)
    return host


@pytest.mark.tool("bash")
def test_init_runs_kubeadm_once_with_the_config_and_hides_its_secrets(tmp_path: Path) -> None:
    host = _init_host(tmp_path)
    config = kubeadm.init_config(DEV)
    first = host.run("kubeadm-init.sh", stdin=config)
    assert first.returncode == 0, first.stderr
    placed = host.root / "etc/kubernetes/kubeadm/init.yaml"
    assert placed.read_text() == config and _mode(placed) == 0o600
    assert host.calls() == [["kubeadm", "init", "--config", str(placed), "--upload-certs"]]
    assert (tmp_path / "seen/init.yaml").read_text() == config
    # kubeadm's join command (token, hash, certificate key) is redacted and kept off stdout.
    assert "[redacted-token]" in first.stderr and "[redacted-key]" in first.stderr
    assert not any(secret in first.stdout + first.stderr for secret in SECRETS)
    assert first.stderr.strip().splitlines()[-1] == "kubeadm-init: initialised; admin.conf written"

    (tmp_path / "api-up").touch()
    before = host.tree()
    host.clear_calls()
    second = host.run("kubeadm-init.sh", stdin=config)
    assert second.returncode == 0, second.stderr
    assert "already initialised" in second.stderr
    assert _tools(host) == ["kubectl --kubeconfig"]  # only the readiness question
    assert host.tree() == before


@pytest.mark.tool("bash")
def test_init_refuses_an_existing_control_plane_that_does_not_answer(tmp_path: Path) -> None:
    host = _init_host(tmp_path)
    (host.root / "etc/kubernetes").mkdir(parents=True, exist_ok=True)
    (host.root / "etc/kubernetes/admin.conf").write_text("admin")
    result = host.run("kubeadm-init.sh", env={"ATTEMPTS": "3", "INTERVAL": "0"}, stdin=kubeadm.init_config(DEV))
    assert result.returncode == 1
    assert "did not answer after 3 attempts" in result.stderr
    assert _tools(host) == ["kubectl --kubeconfig"] * 3


@pytest.mark.tool("bash")
def test_init_needs_the_static_pod_patches(tmp_path: Path) -> None:
    host = _init_host(tmp_path)
    (host.root / "etc/kubernetes/patches/etcd+strategic.yaml").unlink()
    result = host.run("kubeadm-init.sh", stdin=kubeadm.init_config(DEV))
    assert result.returncode == 1 and "no etcd patch in /etc/kubernetes/patches" in result.stderr
    assert host.calls() == []


@pytest.mark.tool("bash")
def test_init_uses_the_placed_config_without_stdin(tmp_path: Path) -> None:
    host = _init_host(tmp_path)
    _place(host, {kubeadm.INIT_CONFIG_PATH: kubeadm.init_config(DEV)})
    result = host.run("kubeadm-init.sh", stdin="")
    assert result.returncode == 0, result.stderr
    assert "wrote" not in result.stdout
    assert host.calls()[0][:2] == ["kubeadm", "init"]


# ---------------------------------------------------------------------------------------------
# kubeadm-token.sh


def _token_host(tmp_path: Path) -> ScratchHost:
    host = _host(tmp_path)
    pki = host.root / "etc/kubernetes/pki"
    pki.mkdir(parents=True)
    (host.root / "etc/kubernetes/admin.conf").write_text("admin")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "ca.key"),
                    "-out", str(pki / "ca.crt"), "-subj", "/CN=kubernetes", "-days", "1"],
                   check=True, capture_output=True, timeout=60)
    return host


def _ca_hash(ca: Path) -> str:
    """The hash as kubeadm's documentation computes it (openssl rsa, not the script's openssl pkey)."""
    pubkey = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", str(ca)],
                            check=True, capture_output=True, timeout=30).stdout
    der = subprocess.run(["openssl", "rsa", "-pubin", "-outform", "der"], input=pubkey,
                         check=True, capture_output=True, timeout=30).stdout
    digest = subprocess.run(["sha256sum"], input=der, check=True, capture_output=True, timeout=30).stdout
    return "sha256:" + digest.split()[0].decode()


@pytest.mark.tool("bash", "openssl")
def test_token_prints_fresh_control_plane_credentials(tmp_path: Path) -> None:
    host = _token_host(tmp_path)
    result = host.run("kubeadm-token.sh", env={"CONTROL_PLANE": "true", "NODE_NAME": "cp2"})
    assert result.returncode == 0, result.stderr
    credentials = json.loads(result.stdout)
    ca_hash = _ca_hash(host.root / "etc/kubernetes/pki/ca.crt")
    assert credentials == {"token": "k3x9qa.0123456789abcd10", "caCertHash": ca_hash, "certificateKey": KEY}
    assert kubeadm.join_credentials(result.stdout, control_plane=True)["CERTIFICATE_KEY"] == KEY
    admin = str(host.root / "etc/kubernetes/admin.conf")
    assert host.calls() == [
        ["kubeadm", "token", "create", "--ttl", "30m", "--description", "hakube join of cp2", "--kubeconfig", admin],
        ["kubeadm", "init", "phase", "upload-certs", "--upload-certs", "--kubeconfig", admin],
    ]
    _assert_no_secret_in_argv(host)
    assert "k3x9qa" not in result.stderr

    again = host.run("kubeadm-token.sh", env={"CONTROL_PLANE": "true"})
    assert json.loads(again.stdout)["token"] == "k3x9qa.0123456789abcd11"  # a fresh token every run


@pytest.mark.tool("bash", "openssl")
def test_token_for_a_worker_makes_no_certificate_key(tmp_path: Path) -> None:
    host = _token_host(tmp_path)
    result = host.run("kubeadm-token.sh", env={"TOKEN_TTL": "10m"})
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"token", "caCertHash"}
    assert [c[:3] for c in host.calls()] == [["kubeadm", "token", "create"]]
    assert host.calls()[0][4] == "10m"


@pytest.mark.tool("bash")
def test_token_failure_is_redacted(tmp_path: Path) -> None:
    host = _host(tmp_path)
    (host.root / "etc/kubernetes/pki").mkdir(parents=True)
    (host.root / "etc/kubernetes/admin.conf").write_text("admin")
    (host.root / "etc/kubernetes/pki/ca.crt").write_text("not a certificate")
    host.shim("kubeadm", f'echo "error: token {TOKEN} was not stored" >&2; exit 1')
    result = host.run("kubeadm-token.sh")
    assert result.returncode == 1
    assert "kubeadm token create failed" in result.stderr and "[redacted-token]" in result.stderr
    assert TOKEN not in result.stdout + result.stderr and result.stdout == ""


@pytest.mark.tool("bash")
def test_token_needs_the_first_control_plane_node(tmp_path: Path) -> None:
    result = _host(tmp_path).run("kubeadm-token.sh")
    assert result.returncode == 1 and "admin.conf is missing" in result.stderr


# ---------------------------------------------------------------------------------------------
# kubeadm-join.sh


def _join_host(tmp_path: Path, node_index: int | None) -> tuple[ScratchHost, str]:
    """A host holding the dev node's files: control-plane node cp<index+1>, or w1 for None."""
    host = _host(tmp_path)
    node = DEV.workers[0] if node_index is None else DEV.control_plane.nodes[node_index]
    files = kubeadm.node_files(DEV, node)
    _place(host, files)
    return host, files[kubeadm.JOIN_CONFIG_PATH]


@pytest.mark.tool("bash")
def test_worker_join_substitutes_secrets_into_a_private_file_it_removes(tmp_path: Path) -> None:
    host, config = _join_host(tmp_path, None)
    result = host.run("kubeadm-join.sh", env=JOIN_ENV)
    assert result.returncode == 0, result.stderr
    (call,) = host.calls()
    assert call[:3] == ["kubeadm", "join", "--config"]
    secret_file = Path(call[3])
    assert secret_file.parent == host.root / "run/hakube" and not secret_file.exists()
    assert _mode(secret_file.parent) == 0o700
    assert (tmp_path / "seen/join.mode").read_text().strip() == "600"
    seen = yaml.safe_load((tmp_path / "seen/join.yaml").read_text())
    assert seen["discovery"]["bootstrapToken"]["token"] == TOKEN
    assert seen["discovery"]["bootstrapToken"]["caCertHashes"] == [HASH]
    # Apart from the secrets, kubeadm saw exactly the rendered configuration.
    expected = yaml.safe_load(config)
    expected["discovery"]["bootstrapToken"].update(token=TOKEN, caCertHashes=[HASH])
    assert seen == expected
    assert (host.root / kubeadm.JOIN_CONFIG_PATH.lstrip("/")).read_text() == config  # kept secret-free
    _assert_no_secret_in_argv(host)
    assert not any(secret in result.stdout for secret in SECRETS)
    assert result.stderr.strip().splitlines()[-1] == "kubeadm-join: joined as a worker node"

    before = host.tree()
    host.clear_calls()
    second = host.run("kubeadm-join.sh", env=JOIN_ENV)
    assert second.returncode == 0 and "already a member" in second.stderr
    assert host.calls() == [] and host.tree() == before


@pytest.mark.tool("bash")
def test_control_plane_join_gets_the_certificate_key(tmp_path: Path) -> None:
    host, _ = _join_host(tmp_path, 1)
    env = {**JOIN_ENV, "CERTIFICATE_KEY": KEY, "CONTROL_PLANE": "true"}
    result = host.run("kubeadm-join.sh", env=env)
    assert result.returncode == 0, result.stderr
    seen = yaml.safe_load((tmp_path / "seen/join.yaml").read_text())
    assert seen["controlPlane"] == {"localAPIEndpoint": {"advertiseAddress": "198.18.1.22", "bindPort": 6443},
                                    "certificateKey": KEY}
    _assert_no_secret_in_argv(host)
    host.clear_calls()
    assert "already a member" in host.run("kubeadm-join.sh", env=env).stderr
    assert host.calls() == []


@pytest.mark.tool("bash")
def test_control_plane_join_needs_its_key(tmp_path: Path) -> None:
    host, _ = _join_host(tmp_path, 2)
    result = host.run("kubeadm-join.sh", env={**JOIN_ENV, "CONTROL_PLANE": "true"})
    assert result.returncode == 1 and "CERTIFICATE_KEY is missing" in result.stderr
    # The config asks for a key a worker join would not fill.
    worker_mode = host.run("kubeadm-join.sh", env=JOIN_ENV)
    assert worker_mode.returncode == 1 and "placeholder this worker join does not fill" in worker_mode.stderr
    assert host.calls() == []


@pytest.mark.tool("bash")
@pytest.mark.parametrize(("name", "value"), [
    ("JOIN_TOKEN", ""),
    ("JOIN_TOKEN", 'abcdef.0123456789abcdef"\nunsafeSkipCAVerification: true'),  # YAML injection
    ("CA_CERT_HASH", "5e" * 32),  # without its sha256: prefix
])
def test_join_refuses_malformed_secrets(tmp_path: Path, name: str, value: str) -> None:
    host, _ = _join_host(tmp_path, None)
    result = host.run("kubeadm-join.sh", env={**JOIN_ENV, name: value})
    assert result.returncode == 1 and f"{name} is missing or not" in result.stderr
    assert host.calls() == [] and not list((host.root / "run").glob("**/*.yaml"))


@pytest.mark.tool("bash")
def test_a_worker_is_not_silently_taken_for_a_control_plane_member(tmp_path: Path) -> None:
    host, _ = _join_host(tmp_path, 1)
    (host.root / "etc/kubernetes/kubelet.conf").write_text("kubelet")
    result = host.run("kubeadm-join.sh", env={**JOIN_ENV, "CERTIFICATE_KEY": KEY, "CONTROL_PLANE": "true"})
    assert result.returncode == 1 and "member without a kube-apiserver" in result.stderr
    assert host.calls() == []


# ---------------------------------------------------------------------------------------------
# kubelet-cpu-manager.sh

# The shape of the file kubeadm writes (sigs.k8s.io/yaml: sorted keys, double-quoted "0").
KUBEADM_WRITTEN = """apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
cpuManagerPolicy: none
kind: KubeletConfiguration
resolvConf: /run/systemd/resolve/resolv.conf
"""


# The CPU manager fields as kubeadm writes what hakube asks for (sorted keys, "true" quoted).
KUBEADM_CPU_MANAGER = ('cpuManagerPolicy: static\ncpuManagerPolicyOptions:\n  full-pcpus-only: "true"\n'
                       '  strict-cpu-reservation: "true"\ncpuManagerReconcilePeriod: 10s\nreservedSystemCPUs: "0"')


def _kubelet_file(host: ScratchHost) -> Path:
    return host.root / "var/lib/kubelet/config.yaml"


@pytest.mark.tool("bash")
def test_cpu_manager_change_restarts_the_kubelet_with_a_fresh_checkpoint(tmp_path: Path) -> None:
    host = _host(tmp_path)
    _place(host, {kubeadm.KUBELET_CONFIG_PATH: KUBEADM_WRITTEN,
                  "/var/lib/kubelet/cpu_manager_state": '{"policyName":"none"}'})
    wanted = kubeadm.kubelet_config(DEV, DEV.workers[0])
    result = host.run("kubelet-cpu-manager.sh", stdin=wanted)
    assert result.returncode == 0, result.stderr
    assert host.calls() == [["systemctl", "stop", "kubelet"], ["systemctl", "start", "kubelet"]]
    assert (tmp_path / "state-at-start").read_text().strip() == "absent"
    assert not (host.root / "var/lib/kubelet/cpu_manager_state").exists()
    written = yaml.safe_load(_kubelet_file(host).read_text())
    assert written["cpuManagerPolicy"] == "static" and written["reservedSystemCPUs"] == "0"
    assert written["resolvConf"] == "/run/systemd/resolve/resolv.conf"  # kubeadm's host-detected field stays
    assert "policy none -> static" in result.stderr

    before = host.tree()
    host.clear_calls()
    second = host.run("kubelet-cpu-manager.sh", stdin=wanted)
    assert second.returncode == 0 and "unchanged" in second.stderr
    assert host.calls() == [] and host.tree() == before


@pytest.mark.tool("bash")
def test_a_new_reserved_set_also_needs_a_fresh_checkpoint(tmp_path: Path) -> None:
    host = _host(tmp_path)
    current = KUBEADM_WRITTEN.replace("cpuManagerPolicy: none", KUBEADM_CPU_MANAGER)
    _place(host, {kubeadm.KUBELET_CONFIG_PATH: current, "/var/lib/kubelet/cpu_manager_state": "{}"})
    node = DEV.workers[0].model_copy(update={"reserved_cpus": "0-1"})
    unchanged = host.run("kubelet-cpu-manager.sh", stdin=kubeadm.kubelet_config(DEV, DEV.workers[0]))
    assert "unchanged" in unchanged.stderr and host.calls() == []  # kubeadm's "0" quoting equals ours
    result = host.run("kubelet-cpu-manager.sh", stdin=kubeadm.kubelet_config(DEV, node))
    assert result.returncode == 0, result.stderr
    assert [c[1] for c in host.calls()] == ["stop", "start"]
    assert yaml.safe_load(_kubelet_file(host).read_text())["reservedSystemCPUs"] == "0-1"


@pytest.mark.tool("bash")
def test_without_a_kubelet_file_the_config_is_written_whole(tmp_path: Path) -> None:
    host = _host(tmp_path)
    wanted = kubeadm.kubelet_config(DEV, DEV.control_plane.nodes[0])
    result = host.run("kubelet-cpu-manager.sh", stdin=wanted)
    assert result.returncode == 0, result.stderr
    assert _kubelet_file(host).read_text() == wanted and host.calls() == []


def _static_memory(node: Any) -> Any:
    return node.model_copy(update={"memory_manager": "static"})


@pytest.mark.tool("bash")
def test_new_cpu_manager_options_reach_a_running_kubelet_with_a_fresh_cpu_checkpoint(tmp_path: Path) -> None:
    host = _host(tmp_path)
    current = KUBEADM_WRITTEN.replace("cpuManagerPolicy: none", 'cpuManagerPolicy: static\nreservedSystemCPUs: "0"')
    _place(host, {kubeadm.KUBELET_CONFIG_PATH: current, "/var/lib/kubelet/cpu_manager_state": "{}",
                  "/var/lib/kubelet/memory_manager_state": "{}"})
    result = host.run("kubelet-cpu-manager.sh", stdin=kubeadm.kubelet_config(DEV, DEV.workers[0]))
    assert result.returncode == 0, result.stderr
    assert [c[1] for c in host.calls()] == ["stop", "start"]
    written = yaml.safe_load(_kubelet_file(host).read_text())
    assert written["cpuManagerPolicyOptions"] == {"full-pcpus-only": "true", "strict-cpu-reservation": "true"}
    assert not (host.root / "var/lib/kubelet/cpu_manager_state").exists()
    assert (host.root / "var/lib/kubelet/memory_manager_state").exists()  # its fields did not change
    assert "CPU manager changed" in result.stderr and "Memory Manager" not in result.stderr


@pytest.mark.tool("bash")
def test_a_static_memory_manager_reaches_a_running_kubelet_and_goes_again(tmp_path: Path) -> None:
    host = _host(tmp_path)
    current = KUBEADM_WRITTEN.replace("cpuManagerPolicy: none", KUBEADM_CPU_MANAGER)
    _place(host, {kubeadm.KUBELET_CONFIG_PATH: current, "/var/lib/kubelet/cpu_manager_state": "{}",
                  "/var/lib/kubelet/memory_manager_state": "{}"})
    node = _static_memory(DEV.workers[0])
    result = host.run("kubelet-cpu-manager.sh", stdin=kubeadm.kubelet_config(DEV, node))
    assert result.returncode == 0, result.stderr
    written = yaml.safe_load(_kubelet_file(host).read_text())
    assert written["memoryManagerPolicy"] == "Static"
    assert written["reservedMemory"] == [{"limits": {"memory": "100Mi"}, "numaNode": 0}]
    assert written["resolvConf"] == "/run/systemd/resolve/resolv.conf"
    assert not (host.root / "var/lib/kubelet/memory_manager_state").exists()
    assert (host.root / "var/lib/kubelet/cpu_manager_state").exists()
    assert "Memory Manager changed (policy None -> Static)" in result.stderr

    # kubeadm's own rendering of the same fields (sorted keys, quoted quantities) counts as unchanged.
    kubeadm_form = current.replace("kind: KubeletConfiguration\n", "kind: KubeletConfiguration\n"
                                   "memoryManagerPolicy: Static\nreservedMemory:\n- limits:\n"
                                   '    memory: "100Mi"\n  numaNode: 0\n')
    _kubelet_file(host).write_text(kubeadm_form)
    host.clear_calls()
    same = host.run("kubelet-cpu-manager.sh", stdin=kubeadm.kubelet_config(DEV, node))
    assert "unchanged" in same.stderr and host.calls() == []

    back = host.run("kubelet-cpu-manager.sh", stdin=kubeadm.kubelet_config(DEV, DEV.workers[0]))
    assert back.returncode == 0, back.stderr
    assert "Memory Manager changed (policy Static -> None)" in back.stderr
    assert not {"memoryManagerPolicy", "reservedMemory"} & set(yaml.safe_load(_kubelet_file(host).read_text()))


@pytest.mark.tool("bash")
def test_cpu_manager_needs_a_config(tmp_path: Path) -> None:
    result = _host(tmp_path).run("kubelet-cpu-manager.sh", stdin="kind: KubeletConfiguration\n")
    assert result.returncode == 1 and "no cpuManagerPolicy" in result.stderr


# ---------------------------------------------------------------------------------------------
# node-remove.sh


@pytest.mark.tool("bash")
def test_node_remove_cordons_drains_and_deletes_once(tmp_path: Path) -> None:
    host = _host(tmp_path)
    (tmp_path / "api-up").touch()
    (tmp_path / "nodes").mkdir()
    (tmp_path / "nodes/w3").touch()
    result = host.run("node-remove.sh", env={"NODE_NAME": "w3", "DRAIN_TIMEOUT": "120"})
    assert result.returncode == 0, result.stderr
    calls = host.calls()
    assert [c[1] for c in calls] == ["get", "cordon", "drain", "delete"]
    drain = calls[2]
    assert {"--timeout=120s", "--ignore-daemonsets", "--delete-emptydir-data"} <= set(drain)
    assert calls[3][:3] == ["kubectl", "delete", "node"] and "w3" in calls[3]
    assert "w3 drained and deleted" in result.stderr

    host.clear_calls()
    second = host.run("node-remove.sh", env={"NODE_NAME": "w3"})
    assert second.returncode == 0 and "already removed" in second.stderr
    assert [c[1] for c in host.calls()] == ["get"]


@pytest.mark.tool("bash")
def test_node_remove_stops_when_the_api_or_the_drain_fails(tmp_path: Path) -> None:
    host = _host(tmp_path)
    down = host.run("node-remove.sh", env={"NODE_NAME": "w3"})
    assert down.returncode != 0 and [c[1] for c in host.calls()] == ["get"]

    (tmp_path / "api-up").touch()
    (tmp_path / "nodes").mkdir()
    (tmp_path / "nodes/w3").touch()
    (tmp_path / "drain-fails").touch()
    host.clear_calls()
    stuck = host.run("node-remove.sh", env={"NODE_NAME": "w3"})
    assert stuck.returncode != 0 and [c[1] for c in host.calls()] == ["get", "cordon", "drain"]
    assert (tmp_path / "nodes/w3").exists()


# ---------------------------------------------------------------------------------------------
# etcd-member-remove.sh (the real etcd is in tests/lab/test_etcd_netns.py)

MEMBERS = """8e9e05c52164694d, started, cp1, https://198.18.1.21:2380, https://198.18.1.21:2379, false
91bc3c398fb3c146, started, cp2, https://198.18.1.22:2380, https://198.18.1.22:2379, false
fd422379fda50e48, started, cp3, https://198.18.1.23:2380, https://198.18.1.23:2379, false
"""
# `member remove` is refused ("unhealthy cluster") as many times as $HOME/refusals says.
ETCDCTL_SHIM = """
env | grep '^ETCDCTL_' | sort > "$HOME/etcdctl.env"
case "$1 $2" in
  "member list") cat "$HOME/members" ;;
  "member remove")
    n=$(cat "$HOME/refusals" 2>/dev/null || echo 0)
    if (( n > 0 )); then echo $((n-1)) > "$HOME/refusals"; echo "Error: etcdserver: unhealthy cluster" >&2; exit 1; fi
    grep -q "^$3," "$HOME/members" || { echo "Error: etcdserver: member not found" >&2; exit 1; }
    sed -i "/^$3,/d" "$HOME/members"; echo "Member $3 removed" ;;
esac
"""


def _etcd_host(tmp_path: Path, refusals: int = 0, members: str = MEMBERS) -> ScratchHost:
    host = ScratchHost(tmp_path)
    host.shim("etcdctl", ETCDCTL_SHIM)
    (tmp_path / "members").write_text(members)
    (tmp_path / "refusals").write_text(str(refusals))
    return host


@pytest.mark.tool("bash")
def test_etcd_member_remove_retries_a_refusal_then_verifies_by_name(tmp_path: Path) -> None:
    host = _etcd_host(tmp_path, refusals=2)
    result = host.run("etcd-member-remove.sh", env={"MEMBER_NAME": "cp3", "INTERVAL": "0"})
    assert result.returncode == 0, result.stderr
    assert host.calls() == [["etcdctl", "member", "list"], *[["etcdctl", "member", "remove", "fd422379fda50e48"]] * 3,
                            ["etcdctl", "member", "list"]]
    assert "removed member cp3 (fd422379fda50e48); 2 members left" in result.stderr
    assert "cp3" not in (tmp_path / "members").read_text()
    # Defaults for kubeadm's local etcd, handed over in the environment (never argv).
    env = (tmp_path / "etcdctl.env").read_text()
    assert "ETCDCTL_ENDPOINTS=https://127.0.0.1:2379" in env
    assert f"ETCDCTL_CACERT={host.root}/etc/kubernetes/pki/etcd/ca.crt" in env

    host.clear_calls()
    again = host.run("etcd-member-remove.sh", env={"MEMBER_NAME": "cp3"})
    assert again.returncode == 0 and "already removed" in again.stderr
    assert host.calls() == [["etcdctl", "member", "list"]]


@pytest.mark.tool("bash")
def test_etcd_member_remove_gives_up_after_its_attempts(tmp_path: Path) -> None:
    host = _etcd_host(tmp_path, refusals=99)
    result = host.run("etcd-member-remove.sh", env={"MEMBER_NAME": "cp2", "ATTEMPTS": "3", "INTERVAL": "0"})
    assert result.returncode == 1 and "still refuses to remove cp2 after 3 attempts" in result.stderr
    assert len([c for c in host.calls() if c[2] == "remove"]) == 3
    assert "cp2" in (tmp_path / "members").read_text()


@pytest.mark.tool("bash")
def test_etcd_member_remove_matches_the_whole_name_and_keeps_the_last_member(tmp_path: Path) -> None:
    host = _etcd_host(tmp_path)
    assert "already removed" in host.run("etcd-member-remove.sh", env={"MEMBER_NAME": "cp"}).stderr
    lonely = _etcd_host(tmp_path / "one", members=MEMBERS.splitlines()[0] + "\n")
    result = lonely.run("etcd-member-remove.sh", env={"MEMBER_NAME": "cp1"})
    assert result.returncode == 1 and "only member" in result.stderr
    assert [c[2] for c in lonely.calls()] == ["list"]


# ---------------------------------------------------------------------------------------------
# node-reset.sh


@pytest.mark.tool("bash")
def test_node_reset_resets_once_and_clears_the_cni_config(tmp_path: Path) -> None:
    host = _host(tmp_path)
    _place(host, {"/etc/kubernetes/kubelet.conf": "k", "/etc/kubernetes/manifests/etcd.yaml": "pod",
                  "/var/lib/kubelet/config.yaml": "c", "/etc/cni/net.d/10-calico.conflist": "{}",
                  "/etc/kubernetes/patches/etcd+strategic.yaml": "spec: {}"})
    result = host.run("node-reset.sh")
    assert result.returncode == 0, result.stderr
    assert host.calls() == [["kubeadm", "reset", "-f"]]
    assert list((host.root / "etc/cni/net.d").iterdir()) == []
    assert "iptables" in result.stderr

    host.clear_calls()
    second = host.run("node-reset.sh")
    assert second.returncode == 0 and "already reset" in second.stderr
    assert host.calls() == []


@pytest.mark.tool("bash")
def test_node_reset_of_a_clean_node_does_nothing(tmp_path: Path) -> None:
    host = _host(tmp_path)
    result = host.run("node-reset.sh")
    assert result.returncode == 0 and "already reset" in result.stderr and host.calls() == []


# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# The way the components run them: configs.remote's command line, secrets on stdin.


@pytest.mark.tool("bash", "openssl")
def test_token_then_join_as_pulumi_command_would_run_them(tmp_path: Path) -> None:
    first = _token_host(tmp_path / "cp1")
    made = first.run("kubeadm-token.sh", env={"CONTROL_PLANE": "true"})
    credentials = kubeadm.join_credentials(made.stdout, control_plane=True)

    host, config = _join_host(tmp_path / "cp2", 1)
    host.shim("sudo", '[[ "$1" == -n ]] && shift; exec "$@"')
    command = command_line("kubeadm-join.sh", {"CONTROL_PLANE": "true"}, reads_secrets=True)
    env = {"PATH": f"{host.bin}:/usr/bin:/bin:/usr/sbin:/sbin", "HAKUBE_ROOT": str(host.root), "HOME": str(host.base)}
    # The join config travels as the payload after the secrets, as the component may send it.
    result = subprocess.run(["bash", "-c", command], env=env, input=secret_stdin(credentials, config), text=True,
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    seen = yaml.safe_load((host.base / "seen/join.yaml").read_text())
    assert seen["discovery"]["bootstrapToken"]["token"] == credentials["JOIN_TOKEN"]
    assert seen["discovery"]["bootstrapToken"]["caCertHashes"] == [credentials["CA_CERT_HASH"]]
    assert seen["controlPlane"]["certificateKey"] == credentials["CERTIFICATE_KEY"]
    values = list(credentials.values())
    assert not [call for call in host.calls() for arg in call if any(v in arg for v in values)]
    assert not any(v in result.stdout + result.stderr for v in values)
