"""The upgrade and certificate host scripts run for real under bash against a scratch root, with
PATH shims for kubeadm, kubelet, kubectl, apt-get, systemctl, socat, curl and openssl-free cert
files: the order of calls, that a node already at the version gets no mutating call, drain before
upgrade, backend disabled then re-enabled (also when the drain fails), no secret in any argv."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from configs.containerd import containerd_config
from configs.kubeadm import UPGRADE_CONFIG_PATH
from configs.kubeadm import upgrade_config as upgrade_config_text
from configs.loadbalancer import render_haproxy
from configs.upgrade import ADMIN_SOCKET, worker_waits
from dryrun.mockrun import REPO
from lab.hostsim import ScratchHost
from topology import Cluster, load_stack_file

MINE = ("kubeadm-upgrade.sh", "node-drain.sh", "haproxy-backend.sh", "certs-check.sh")
OLD, NEW = "1.36.5", "1.37.2"
DEV = load_stack_file(REPO / "Pulumi.dev.yaml")
TARGET = DEV.model_copy(update={"kubernetes_version": NEW})

# Versions live in $HOME/<tool>-version; the apiserver manifest's image tag in the scratch root.
NODE_SHIMS = {
    "kubeadm": """
case "$1" in
  version) cat "$HOME/kubeadm-version" ;;
  upgrade) [[ "$2" == plan ]] && exit 0
           v="$(cat "$HOME/kubeadm-version")"; m="$HAKUBE_ROOT/etc/kubernetes/manifests/kube-apiserver.yaml"
           [[ -f "$m" ]] && sed -i -E "s/kube-apiserver:v[0-9.]+/kube-apiserver:$v/" "$m"; exit 0 ;;
esac""",
    "kubelet": 'echo "Kubernetes $(cat "$HOME/kubelet-version")"',
    "apt-cache": f'echo "   kubeadm | {NEW}-1.1 | http://mirror.invalid/v1.37/deb  Packages"',
    "apt-get": """
for a in "$@"; do case "$a" in
  kubeadm=*) echo "v${a#kubeadm=}" | sed 's/-.*//' > "$HOME/kubeadm-version" ;;
  kubelet=*) echo "v${a#kubelet=}" | sed 's/-.*//' > "$HOME/kubelet-version" ;;
esac; done""",
    "apt-mark": "exit 0",
    "systemctl": "exit 0",
}


def _node(tmp_path: Path, kubeadm: str, kubelet: str, apiserver: str | None, target: Cluster = TARGET,
          ) -> ScratchHost:
    """A node at the given versions with the files hakube placed for `target`: its UpgradeConfiguration."""
    host = ScratchHost(tmp_path)
    upgrade_config = host.root / UPGRADE_CONFIG_PATH.lstrip("/")
    upgrade_config.parent.mkdir(parents=True)
    node = target.control_plane.nodes[0] if apiserver else target.workers[0]
    upgrade_config.write_text(upgrade_config_text(target, node))
    for name, body in NODE_SHIMS.items():
        host.shim(name, body)
    (host.base / "kubeadm-version").write_text(f"v{kubeadm}\n")
    (host.base / "kubelet-version").write_text(f"v{kubelet}\n")
    if apiserver:
        manifests = host.root / "etc/kubernetes/manifests"
        manifests.mkdir(parents=True)
        (manifests / "kube-apiserver.yaml").write_text(
            f"spec:\n  containers:\n  - name: kube-apiserver\n    image: images.invalid/kube-apiserver:v{apiserver}\n")
    return host


def _upgrade(host: ScratchHost, role: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"KUBERNETES_VERSION": NEW, "ROLE": role, "NODE_NAME": "cp1", "UPGRADE_CONFIG": UPGRADE_CONFIG_PATH}
    return host.run("kubeadm-upgrade.sh", env, stdin=containerd_config(TARGET) if stdin is None else stdin)


def _mutating(host: ScratchHost) -> list[list[str]]:
    reads = (["kubeadm", "version"], ["kubelet", "--version"], ["apt-cache", "madison"])
    return [c for c in host.calls() if c[:2] not in reads and c[:1] != ["apt-cache"]]


def test_first_control_plane_node_plans_applies_then_upgrades_the_kubelet(tmp_path: Path) -> None:
    host = _node(tmp_path, OLD, OLD, OLD)
    result = _upgrade(host, "first")
    assert result.returncode == 0, result.stderr
    steps = [c[:3] for c in _mutating(host) if c[0] in ("kubeadm", "systemctl") or "install" in c]
    assert steps == [["apt-get", "install", "-y"], ["kubeadm", "upgrade", "plan"], ["kubeadm", "upgrade", "apply"],
                     ["systemctl", "restart", "containerd"], ["apt-get", "install", "-y"],
                     ["systemctl", "daemon-reload"], ["systemctl", "restart", "kubelet"]]
    # The version and the patches come from the UpgradeConfiguration; --yes is the one flag mixed in.
    upgrades = [c for c in host.calls("kubeadm") if c[1] == "upgrade"]
    assert upgrades == [["kubeadm", "upgrade", "plan", "--config", UPGRADE_CONFIG_PATH],
                        ["kubeadm", "upgrade", "apply", "--config", UPGRADE_CONFIG_PATH, "--yes"]]
    # The new version's containerd configuration (its pause image) is in place before the kubelet restarts.
    assert host.tree()["etc/containerd/config.toml"] == containerd_config(TARGET)
    assert f'"kubelet":"v{NEW}"' in result.stdout and f'"apiserver":"v{NEW}"' in result.stdout
    assert '"changed":true' in result.stdout


@pytest.mark.parametrize("role", ["control-plane", "worker"])
def test_other_nodes_run_upgrade_node(tmp_path: Path, role: str) -> None:
    host = _node(tmp_path, OLD, OLD, OLD if role == "control-plane" else None)
    result = _upgrade(host, role)
    assert result.returncode == 0, result.stderr
    kubeadm = [c for c in host.calls("kubeadm") if c[1] == "upgrade"]
    assert kubeadm == [["kubeadm", "upgrade", "node", "--config", UPGRADE_CONFIG_PATH]]
    assert "etc/containerd/config.toml" in host.tree()


def test_an_upgrade_configuration_left_from_another_version_is_refused(tmp_path: Path) -> None:
    host = _node(tmp_path, OLD, OLD, OLD, target=DEV.model_copy(update={"kubernetes_version": "1.37.1"}))
    result = _upgrade(host, "first")
    assert result.returncode == 1
    assert f"{UPGRADE_CONFIG_PATH} does not upgrade to v{NEW}" in result.stderr
    assert not [c for c in host.calls("kubeadm") if c[1] == "upgrade"]


def test_no_upgrade_configuration_or_containerd_configuration_is_refused(tmp_path: Path) -> None:
    host = _node(tmp_path, OLD, OLD, OLD)
    assert "no containerd configuration on stdin" in _upgrade(host, "first", stdin="").stderr
    (host.root / UPGRADE_CONFIG_PATH.lstrip("/")).unlink()
    result = _upgrade(host, "control-plane")
    assert result.returncode == 1 and f"no UpgradeConfiguration at {UPGRADE_CONFIG_PATH}" in result.stderr
    assert not [c for c in host.calls("kubeadm") if c[1] == "upgrade"]


@pytest.mark.parametrize("role", ["first", "control-plane", "worker"])
def test_a_node_at_the_version_gets_no_mutating_call(tmp_path: Path, role: str) -> None:
    """What the first deployment finds, and what a re-run after a finished upgrade finds."""
    host = _node(tmp_path, NEW, NEW, NEW if role != "worker" else None)
    result = _upgrade(host, role)
    assert result.returncode == 0, result.stderr
    assert _mutating(host) == []
    assert '"changed":false' in result.stdout and f'"version":"{NEW}"' in result.stdout


def test_an_interrupted_upgrade_resumes_where_it_stopped(tmp_path: Path) -> None:
    """kubeadm and the control plane already upgraded, the kubelet not yet: only the kubelet moves."""
    host = _node(tmp_path, NEW, OLD, NEW)
    assert _upgrade(host, "first").returncode == 0
    assert not [c for c in host.calls("kubeadm") if c[1] == "upgrade"]
    assert ["systemctl", "restart", "kubelet"] in host.calls("systemctl")


# --- node-drain.sh: kubectl with admin.conf on the first control-plane node -------------------
KUBECTL = """
args=" $* "
case "$args" in
  *" get node "*"kubeletVersion"*) cat "$HOME/node-version" ;;
  *" get node "*"upgrade-drained"*) cat "$HOME/mark" 2>/dev/null || true ;;
  *" annotate "*"upgrade-drained-"*) rm -f "$HOME/mark" ;;
  *" annotate "*) echo marked > "$HOME/mark" ;;
  *" drain "*) [[ ! -f "$HOME/drain-fails" ]] || { echo "error: timed out" >&2; exit 1; } ;;
esac"""


def _admin(tmp_path: Path, node_version: str) -> ScratchHost:
    host = ScratchHost(tmp_path)
    host.shim("kubectl", KUBECTL)
    (host.base / "node-version").write_text(f"v{node_version}")
    return host


def _drain(host: ScratchHost, action: str) -> subprocess.CompletedProcess[str]:
    return host.run("node-drain.sh", {"ACTION": action, "NODE_NAME": "w1", "KUBERNETES_VERSION": NEW})


def _verbs(host: ScratchHost) -> list[str]:
    return [c[1] for c in host.calls("kubectl") if c[1] != "get"]


def test_drain_cordons_then_drains_and_uncordon_undoes_only_its_own_drain(tmp_path: Path) -> None:
    host = _admin(tmp_path, OLD)
    assert _drain(host, "drain").returncode == 0
    assert _verbs(host) == ["annotate", "cordon", "drain"]
    drain = next(c for c in host.calls("kubectl") if c[1] == "drain")
    assert "--timeout=300s" in drain and "--ignore-daemonsets" in drain
    host.clear_calls()
    assert _drain(host, "uncordon").returncode == 0
    assert _verbs(host) == ["uncordon", "annotate"]
    host.clear_calls()
    assert _drain(host, "uncordon").returncode == 0  # the mark is gone: a hand-cordoned node stays so
    assert _verbs(host) == []


def test_a_node_at_the_version_is_not_drained(tmp_path: Path) -> None:
    host = _admin(tmp_path, NEW)
    result = _drain(host, "drain")
    assert result.returncode == 0 and _verbs(host) == []
    assert f'"kubelet":"v{NEW}"' in result.stdout


def test_a_drain_that_times_out_fails_the_step(tmp_path: Path) -> None:
    host = _admin(tmp_path, OLD)
    (host.base / "drain-fails").touch()
    assert _drain(host, "drain").returncode != 0


# --- haproxy-backend.sh: the runtime API through socat ----------------------------------------
# A fake HAProxy: `show stat` from $HOME/state (status) and $HOME/scur; `set server` updates them.
SOCAT = r"""
read -r cmd
case "$cmd" in
  "show stat") printf '# pxname,svname,qcur,qmax,scur\n'
               printf 'kube-apiserver,cp2,0,0,%s,0,0,0,0,0,0,0,0,0,0,0,0,%s\n' \
                 "$(cat "$HOME/scur")" "$(cat "$HOME/state")" ;;
  "set server kube-apiserver/cp2 state drain") [[ -f "$HOME/refuse-drain" ]] && { echo "No such server."; exit 0; }
                                               echo DRAIN > "$HOME/state"; echo 0 > "$HOME/scur" ;;
  "set server kube-apiserver/cp2 state maint") [[ -f "$HOME/refuse-maint" ]] && { echo "Refused."; exit 0; }
                                               echo MAINT > "$HOME/state" ;;
  "set server kube-apiserver/cp2 state ready") echo UP > "$HOME/state" ;;
  *) echo "Unknown command."
esac"""


def _lb(tmp_path: Path, state: str = "UP", served: str = OLD) -> ScratchHost:
    host = ScratchHost(tmp_path)
    host.shim("socat", SOCAT)
    host.shim("curl", f'echo \'{{"major": "1", "gitVersion": "v{served}"}}\'')
    (host.base / "state").write_text(state)
    (host.base / "scur").write_text("3")
    sock = host.root / ADMIN_SOCKET.lstrip("/")
    sock.parent.mkdir(parents=True)
    subprocess.run(["python3", "-c", f"import socket; socket.socket(socket.AF_UNIX).bind({str(sock)!r})"], check=True)
    return host


def _backend(host: ScratchHost, action: str) -> subprocess.CompletedProcess[str]:
    return host.run("haproxy-backend.sh", {"ACTION": action, "SERVER": "cp2", "KUBERNETES_VERSION": NEW,
                                           "VERSION_URL": "https://198.18.1.22:6443/version", "DRAIN_WAIT": "1"})


def _commands(host: ScratchHost) -> list[str]:
    log = host.base / "calls.jsonl"
    return [line for line in log.read_text().splitlines() if "socat" in line] if log.exists() else []


def _state(host: ScratchHost) -> str:
    return (host.base / "state").read_text().strip()


def test_backend_disabled_drain_then_maint_and_enabled_after(tmp_path: Path) -> None:
    host = _lb(tmp_path)
    result = _backend(host, "disable")
    assert result.returncode == 0, result.stderr
    assert _state(host) == "MAINT" and '"changed":true' in result.stdout
    result = _backend(host, "enable")
    assert result.returncode == 0 and _state(host) == "UP"
    assert all("socat" in c[0] and c[1:] == ["-t", "2", "stdio", f"UNIX-CONNECT:{host.root}{ADMIN_SOCKET}"]
               for c in host.calls("socat"))


def test_backend_already_serving_the_version_is_left_in_service(tmp_path: Path) -> None:
    host = _lb(tmp_path, served=NEW)
    result = _backend(host, "disable")
    assert result.returncode == 0 and _state(host) == "UP" and '"changed":false' in result.stdout


def test_enable_on_a_server_in_service_changes_nothing(tmp_path: Path) -> None:
    host = _lb(tmp_path)
    assert _backend(host, "enable").returncode == 0 and _state(host) == "UP"


def test_a_failed_disable_puts_the_server_back_in_service(tmp_path: Path) -> None:
    host = _lb(tmp_path)
    (host.base / "refuse-maint").touch()
    result = _backend(host, "disable")
    assert result.returncode != 0 and _state(host) == "UP"
    assert "putting cp2 back in service" in result.stderr


def test_no_socket_fails_clearly(tmp_path: Path) -> None:
    host = _lb(tmp_path)
    (host.root / ADMIN_SOCKET.lstrip("/")).unlink()
    result = _backend(host, "disable")
    assert result.returncode == 1 and "no HAProxy admin socket" in result.stderr


def test_the_shipped_haproxy_config_has_the_admin_socket() -> None:
    cfg = render_haproxy(load_stack_file(REPO / "Pulumi.dev.yaml"))
    assert f"stats socket {ADMIN_SOCKET} mode 600 level admin" in cfg


# --- certs-check.sh ---------------------------------------------------------------------------


def _certs(tmp_path: Path, days_left: int) -> ScratchHost:
    host = ScratchHost(tmp_path)
    host.shim("kubeadm", 'echo "CERTIFICATE   EXPIRES   RESIDUAL TIME"; echo "apiserver  Jan 1  \\"x\\"  9d"')
    host.shim("curl", "exit 0")
    pki = host.root / "etc/kubernetes/pki"
    (pki / "etcd").mkdir(parents=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", str(days_left), "-subj", "/CN=kube-apiserver", "-keyout", str(tmp_path / "k"),
                    "-out", str(pki / "apiserver.crt")], capture_output=True, check=True, timeout=30)
    manifests = host.root / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True)
    for pod in ("kube-apiserver", "etcd"):
        (manifests / f"{pod}.yaml").write_text(pod)
    return host


def _check(host: ScratchHost) -> subprocess.CompletedProcess[str]:
    return host.run("certs-check.sh", {"NODE_NAME": "cp1", "RENEW_BEFORE_DAYS": "30", "STATIC_POD_WAIT": "0"})


@pytest.mark.tool("openssl")
def test_certificates_far_from_expiry_are_only_reported(tmp_path: Path) -> None:
    import json
    host = _certs(tmp_path, 300)
    result = _check(host)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["renewed"] is False and "RESIDUAL TIME" in report["checkExpiration"]
    assert [c[1:3] for c in host.calls("kubeadm")] == [["certs", "check-expiration"]]


@pytest.mark.tool("openssl")
def test_certificates_near_expiry_are_renewed_and_static_pods_restarted(tmp_path: Path) -> None:
    import json
    host = _certs(tmp_path, 10)
    result = _check(host)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["renewed"] is True
    assert [c[1:3] for c in host.calls("kubeadm")] == [["certs", "renew"], ["certs", "check-expiration"]]
    assert host.calls("curl")  # waited for the apiserver to be ready again
    assert sorted(p.name for p in (host.root / "etc/kubernetes/manifests").iterdir()) == ["etcd.yaml",
                                                                                         "kube-apiserver.yaml"]


def test_worker_lanes() -> None:
    assert worker_waits(["a", "b", "c", "d"], 1) == {"a": None, "b": "a", "c": "b", "d": "c"}
    assert worker_waits(["a", "b", "c", "d"], 2) == {"a": None, "b": None, "c": "a", "d": "b"}
    with pytest.raises(ValueError):
        worker_waits(["a"], 0)
