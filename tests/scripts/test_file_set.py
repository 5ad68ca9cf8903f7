"""file-set.sh (a node's kubeadm files in one step) for real under bash against a scratch root, and
the exact command the program sends for a worker: the files, then the kubelet CPU manager."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from configs.kubeadm import KUBELET_RECORD_PATH
from configs.remote import file_set_stdin
from lab.hostsim import ScratchHost
from tests.mockgraph import stack_graph

JOIN = "/etc/kubernetes/kubeadm/join.yaml"
PATCH = "/etc/kubernetes/patches/kubeletconfiguration+merge.yaml"
FILES = {JOIN: "kind: JoinConfiguration\n", PATCH: 'reservedSystemCPUs: "0"\n'}


def _stdin(files: dict[str, str], mode: str = "0600") -> str:
    return file_set_stdin([(path, mode, content) for path, content in files.items()])


def _mode(host: ScratchHost, path: str) -> int:
    return (host.root / path.lstrip("/")).stat().st_mode & 0o777


@pytest.mark.tool("bash")
def test_first_run_places_every_file_and_a_second_changes_nothing(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    first = host.run("file-set.sh", stdin=_stdin(FILES))
    assert first.returncode == 0, first.stderr
    assert host.tree() == {path.lstrip("/"): content for path, content in FILES.items()}  # no temp files
    assert _mode(host, JOIN) == 0o600
    placed = host.tree()
    second = host.run("file-set.sh", stdin=_stdin(FILES))
    assert second.returncode == 0 and "unchanged (2 files)" in second.stderr
    assert host.tree() == placed


@pytest.mark.tool("bash")
def test_a_changed_file_alone_is_replaced_and_its_previous_kept(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    assert host.run("file-set.sh", stdin=_stdin(FILES)).returncode == 0
    changed = {**FILES, PATCH: 'reservedSystemCPUs: "0-1"\n'}
    result = host.run("file-set.sh", stdin=_stdin(changed, mode="0640"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [f"file-set: mode 0640 on {JOIN}", f"file-set: installed {PATCH}"]
    tree = host.tree()
    assert tree[PATCH.lstrip("/")] == changed[PATCH] and tree[PATCH.lstrip("/") + ".hakube-prev"] == FILES[PATCH]
    assert JOIN.lstrip("/") + ".hakube-prev" not in tree  # not rewritten: no backup, only its mode set
    assert _mode(host, PATCH) == 0o640 and _mode(host, JOIN) == 0o640


@pytest.mark.tool("bash")
@pytest.mark.parametrize("bad_line", ["0600 /etc/x not-base64!", "0600 relative/path eA==", "999 /etc/x eA=="])
def test_a_bad_line_leaves_every_destination_as_it_was(tmp_path: Path, bad_line: str) -> None:
    host = ScratchHost(tmp_path)
    assert host.run("file-set.sh", stdin=_stdin(FILES)).returncode == 0
    before = host.tree()
    changed = _stdin({**FILES, JOIN: "kind: JoinConfiguration\nnodeRegistration: {}\n"})
    result = host.run("file-set.sh", stdin=changed + bad_line + "\n")
    assert result.returncode == 1 and result.stderr.startswith("file-set: ")
    assert host.tree() == before  # the good new join.yaml was not swapped in either; no temp file left


@pytest.mark.tool("bash")
def test_no_files_is_an_error(tmp_path: Path) -> None:
    result = ScratchHost(tmp_path).run("file-set.sh", stdin="")
    assert result.returncode == 1 and "no files on stdin" in result.stderr


MANIFEST = "/var/lib/hakube/files/test.list"
HOSTS = "/etc/containerd/certs.d/docker.io/hosts.toml"
QUAY = "/etc/containerd/certs.d/quay.io/hosts.toml"


@pytest.mark.tool("bash")
def test_with_a_manifest_a_file_dropped_from_the_set_is_removed_and_remove_takes_them_all(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    host.shim("systemctl", "exit 0")
    env = {"MANIFEST": MANIFEST, "RELOAD_UNITS": "containerd"}
    first = host.run("file-set.sh", env=env, stdin=_stdin({HOSTS: "a\n", QUAY: "b\n"}, mode="0644"))
    assert first.returncode == 0, first.stderr
    assert (host.root / MANIFEST.lstrip("/")).read_text().split() == [HOSTS, QUAY]
    second = host.run("file-set.sh", env=env, stdin=_stdin({HOSTS: "a\n"}, mode="0644"))
    assert second.returncode == 0 and f"file-set: removed {QUAY}" in second.stderr
    assert not (host.root / QUAY.lstrip("/")).parent.exists()  # its emptied directory went too
    assert (host.root / HOSTS.lstrip("/")).read_text() == "a\n"
    assert host.calls("systemctl") == [["systemctl", "try-restart", "containerd"]] * 2
    unchanged = host.run("file-set.sh", env=env, stdin=_stdin({HOSTS: "a\n"}, mode="0644"))
    assert "unchanged" in unchanged.stderr and len(host.calls("systemctl")) == 2
    gone = host.run("file-set.sh", env={**env, "REMOVE": "true"})
    assert gone.returncode == 0 and f"file-set: removed {HOSTS}" in gone.stderr
    assert not (host.root / HOSTS.lstrip("/")).exists() and not (host.root / MANIFEST.lstrip("/")).exists()
    assert len(host.calls("systemctl")) == 3
    assert host.run("file-set.sh", env={**env, "REMOVE": "true"}).returncode == 0  # nothing left: no restart
    assert len(host.calls("systemctl")) == 3


@pytest.mark.tool("bash")
def test_a_changed_unit_drop_in_reloads_systemd_before_the_restart(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    host.shim("systemctl", "exit 0")
    drop_in = "/etc/systemd/system/kubelet.service.d/hakube-proxy.conf"
    env = {"MANIFEST": MANIFEST, "RELOAD_UNITS": "containerd kubelet"}
    assert host.run("file-set.sh", env=env, stdin=_stdin({drop_in: "[Service]\n"}, mode="0644")).returncode == 0
    assert host.calls("systemctl") == [["systemctl", "daemon-reload"],
                                       ["systemctl", "try-restart", "containerd", "kubelet"]]


@pytest.mark.tool("bash")
def test_secret_placeholders_are_filled_from_the_environment_and_bad_values_refused(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    path = "/etc/containerd/conf.d/auth.toml"
    files = {path: 'auth = "${TOKEN_A}"\nother = "${TOKEN_B}" ${NOT_LISTED}\n'}
    env = {"SECRET_NAMES": "TOKEN_A TOKEN_B", "TOKEN_A": "dXNlcjpwYXNz", "TOKEN_B": "abc.def-1"}
    result = host.run("file-set.sh", env=env, stdin=_stdin(files))
    assert result.returncode == 0, result.stderr
    assert (host.root / path.lstrip("/")).read_text() == 'auth = "dXNlcjpwYXNz"\nother = "abc.def-1" ${NOT_LISTED}\n'
    for bad in ('a"b', "two words", ""):
        refused = host.run("file-set.sh", env={**env, "TOKEN_B": bad}, stdin=_stdin(files))
        assert refused.returncode == 1 and "secret TOKEN_B is missing or not base64/token characters" in refused.stderr
        assert bad == "" or bad not in refused.stdout + refused.stderr
    assert (host.root / path.lstrip("/")).read_text().startswith('auth = "dXNlcjpwYXNz"')  # left as it was


def test_stdin_refuses_what_the_script_could_not_read() -> None:
    with pytest.raises(ValueError, match="absolute"):
        file_set_stdin([("etc/x", "0600", "")])
    with pytest.raises(ValueError, match="whitespace"):
        file_set_stdin([("/etc/a b", "0600", "")])
    with pytest.raises(ValueError, match="mode"):
        file_set_stdin([("/etc/x", "rw", "")])
    with pytest.raises(ValueError, match="at least one"):
        file_set_stdin([])


def _sent(host: ScratchHost, name: str) -> subprocess.CompletedProcess[str]:
    """Run a recorded step's create command with its stdin, as pulumi-command would over SSH."""
    record = stack_graph("dev").record(name)
    env = {"PATH": f"{host.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HAKUBE_ROOT": str(host.root),
           "LC_ALL": "C"}
    return subprocess.run(["bash", "-c", record.inputs["create"]], input=record.inputs["stdin"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _worker_host(tmp_path: Path) -> ScratchHost:
    host = ScratchHost(tmp_path)
    host.shim("sudo", '[[ "$1" == -n ]] && shift; exec "$@"')
    host.shim("systemctl", "exit 0")
    return host


def _joined(host: ScratchHost, kubelet_config: str) -> Path:
    """As if kubeadm join had run: the kubelet's own configuration file exists."""
    kubelet = host.root / "var/lib/kubelet/config.yaml"
    kubelet.parent.mkdir(parents=True)
    kubelet.write_text(kubelet_config)
    return kubelet


@pytest.mark.tool("bash")
def test_the_sent_step_places_the_files_and_leaves_the_kubelet_to_kubeadm_before_the_join(tmp_path: Path) -> None:
    host = _worker_host(tmp_path)
    result = _sent(host, "w1-kubeadm-files-apply")
    assert result.returncode == 0, result.stderr
    placed = stack_graph("dev").record("w1-kubeadm-files").inputs["files"]
    assert {p["path"].lstrip("/"): p["content"] for p in placed} == host.tree()
    assert "kubeadm writes it when the node joins" in result.stderr and host.calls("systemctl") == []


@pytest.mark.tool("bash")
def test_the_sent_step_applies_a_changed_cpu_manager_to_a_joined_kubelet(tmp_path: Path) -> None:
    host = _worker_host(tmp_path)
    kubelet = _joined(host, "kind: KubeletConfiguration\ncpuManagerPolicy: none\nreservedSystemCPUs: \"5\"\n")
    (host.root / "var/lib/kubelet/cpu_manager_state").write_text("{}")
    result = _sent(host, "w1-kubeadm-files-apply")
    assert result.returncode == 0, result.stderr
    applied = yaml.safe_load(kubelet.read_text())
    assert (applied["cpuManagerPolicy"], applied["reservedSystemCPUs"]) == ("static", "0")
    assert host.calls("systemctl") == [["systemctl", "stop", "kubelet"], ["systemctl", "start", "kubelet"]]
    assert not (host.root / "var/lib/kubelet/cpu_manager_state").exists()
    again = _sent(host, "w1-kubeadm-files-apply")
    assert again.returncode == 0 and "unchanged" in again.stderr and len(host.calls("systemctl")) == 2


@pytest.mark.tool("bash")
def test_a_joined_node_without_its_record_names_the_record(tmp_path: Path) -> None:
    host = _worker_host(tmp_path)
    _joined(host, "kind: KubeletConfiguration\n")
    env = {"KUBELET_RECORD": KUBELET_RECORD_PATH}
    result = host.run("kubelet-cpu-manager.sh", env=env)
    assert result.returncode == 1
    assert f"no kubelet configuration at {KUBELET_RECORD_PATH}" in result.stderr
    (host.root / KUBELET_RECORD_PATH.lstrip("/")).write_text("kind: KubeletConfiguration\n")
    unusable = host.run("kubelet-cpu-manager.sh", env=env)
    assert f"the configuration on {KUBELET_RECORD_PATH} has no cpuManagerPolicy" in unusable.stderr
    assert host.calls("systemctl") == []


@pytest.mark.tool("bash")
def test_the_delete_removes_every_listed_file_and_its_previous_and_nothing_else(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    assert host.run("file-set.sh", stdin=_stdin(FILES)).returncode == 0
    assert host.run("file-set.sh", stdin=_stdin({**FILES, PATCH: "changed\n"})).returncode == 0
    other = host.root / "etc/kubernetes/admin.conf"
    other.write_text("not ours\n")
    removed = host.run("file-set.sh", env={"REMOVE": "true"}, stdin=_stdin({**FILES, PATCH: "changed\n"}))
    assert removed.returncode == 0, removed.stderr
    assert removed.stderr.strip() == "file-set: removed 2 files"
    assert host.tree() == {"etc/kubernetes/admin.conf": "not ours\n"}
    again = host.run("file-set.sh", env={"REMOVE": "true"}, stdin=_stdin(FILES))
    assert again.returncode == 0 and again.stderr.strip() == "file-set: already removed"


def test_the_program_deletes_a_file_set_with_its_own_stdin_and_never_replaces_it() -> None:
    record = stack_graph("dev").record("w1-kubeadm-files-apply")
    assert record.inputs["delete"].startswith("sudo -n env REMOVE=true bash -c ")
    assert record.inputs["delete"].endswith(" file-set")
    assert record.inputs["create"].startswith("sudo -n env bash -c ")  # the create applies
    assert record.ignore_changes == ["triggers"]
