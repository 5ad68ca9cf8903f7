"""The restore and recovery plans as plain data (configs/etcd_recovery.py), ./scripts/restore-etcd
as a user runs it (the plan, refusals, exit codes; a fake ssh on PATH records what it would send),
and lib-etcd.sh's manifest edits on a kubeadm-shaped manifest. The plans run against a real etcd
in tests/lab/test_etcd_restore_netns.py."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from configs import etcd_recovery
from configs.etcd_recovery import Member
from configs.scripts import SCRIPT_DIR
from dryrun.mockrun import REPO
from recovery.run import StepFailed, execute
from tests.mockgraph import cluster_copy
from topology import load_cluster

DEV = load_cluster(cluster_copy("dev"))
WHEN = "20261203T101500Z"


def test_members_are_the_control_plane_nodes_at_their_control_plane_addresses() -> None:
    assert etcd_recovery.members(DEV) == [
        Member("cp1", "198.18.0.21", "https://198.18.1.21:2380", "https://127.0.0.1:2379"),
        Member("cp2", "198.18.0.22", "https://198.18.1.22:2380", "https://127.0.0.1:2379"),
        Member("cp3", "198.18.0.23", "https://198.18.1.23:2380", "https://127.0.0.1:2379"),
    ]


def test_restore_plan_gives_every_member_the_new_member_list_and_one_token() -> None:
    listed = etcd_recovery.members(DEV)
    steps = etcd_recovery.restore_plan(listed, "dev", "ab" * 32, WHEN)
    assert [(s.env["STEP"], s.member) for s in steps] == [
        (step, m) for step in ("stop", "receive", "restore", "start", "check") for m in ("cp1", "cp2", "cp3")]
    restores = [s.env for s in steps if s.env["STEP"] == "restore"]
    everyone = "cp1=https://198.18.1.21:2380,cp2=https://198.18.1.22:2380,cp3=https://198.18.1.23:2380"
    assert {r["INITIAL_CLUSTER"] for r in restores} == {everyone}
    assert {r["CLUSTER_TOKEN"] for r in restores} == {f"dev-restore-{WHEN}"}
    assert [(r["MEMBER_NAME"], r["PEER_URL"]) for r in restores] == [(m.name, m.peer_url) for m in listed]
    assert {r["BUMP_REVISION"] for r in restores} == {"1000000000"}
    assert {s.env["DATA_DIR"] for s in steps} == {"/var/lib/etcd"}
    assert [s.sends_snapshot for s in steps] == [s.env["STEP"] == "receive" for s in steps]
    assert {s.env["SNAPSHOT_SHA256"] for s in steps if s.sends_snapshot} == {"ab" * 32}
    # The apiserver stops before etcd and starts after it.
    stop = next(s for s in steps if s.env["STEP"] == "stop").env["STATIC_PODS"].split()
    start = next(s for s in steps if s.env["STEP"] == "start").env["STATIC_PODS"].split()
    assert stop[-1] == "etcd" and start[0] == "etcd" and set(stop) == set(start) == {
        "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    assert {s.env["EXPECT_MEMBERS"] for s in steps if s.env["STEP"] == "check"} == {"cp1,cp2,cp3"}


def test_restore_onto_replacement_nodes_uses_their_names_and_addresses() -> None:
    cluster = cluster_copy("dev")
    for i, node in enumerate(cluster["controlPlane"]["nodes"]):
        node.update(name=f"new{i + 1}", address=f"198.18.0.{61 + i}", controlPlaneAddress=f"198.18.1.{61 + i}")
    cluster["loadBalancer"]["nodes"][0]["name"] = "lb1"
    listed = etcd_recovery.members(load_cluster(cluster))
    restores = [s.env for s in etcd_recovery.restore_plan(listed, "dev", "0" * 64, WHEN) if s.env["STEP"] == "restore"]
    assert restores[0]["INITIAL_CLUSTER"] == ("new1=https://198.18.1.61:2380,new2=https://198.18.1.62:2380,"
                                              "new3=https://198.18.1.63:2380")
    assert [r["MEMBER_NAME"] for r in restores] == ["new1", "new2", "new3"]


def test_recovery_plan_keeps_the_survivor_and_grows_the_member_list_one_at_a_time() -> None:
    listed = etcd_recovery.members(DEV)
    steps = etcd_recovery.recovery_plan(listed, "cp2", WHEN)
    assert [(s.member, s.env["STEP"]) for s in steps] == [
        ("cp1", "stop-member"), ("cp3", "stop-member"), ("cp2", "force-new-cluster"),
        ("cp2", "add"), ("cp1", "rejoin"), ("cp2", "add"), ("cp3", "rejoin")]
    rejoins = [s.env for s in steps if s.env["STEP"] == "rejoin"]
    assert rejoins[0]["INITIAL_CLUSTER"] == "cp2=https://198.18.1.22:2380,cp1=https://198.18.1.21:2380"
    assert rejoins[1]["INITIAL_CLUSTER"] == rejoins[0]["INITIAL_CLUSTER"] + ",cp3=https://198.18.1.23:2380"
    assert [r["EXPECT_MEMBERS"] for r in rejoins] == ["cp1,cp2", "cp1,cp2,cp3"]
    adds = [s.env for s in steps if s.env["STEP"] == "add"]
    assert [(a["MEMBER_NAME"], a["PEER_URL"]) for a in adds] == [("cp1", listed[0].peer_url),
                                                                  ("cp3", listed[2].peer_url)]
    assert {s.env["STAMP"] for s in steps} == {WHEN}


@pytest.mark.parametrize(("listed", "survivor", "message"), [
    ([], "cp1", "no etcd members"),
    ([Member("a", "h", "p"), Member("a", "h2", "p2")], "a", "member names repeat: a, a"),
    ([Member("a", "h", "p")], "b", "b is not a member (a)"),
])
def test_plans_refuse_impossible_member_lists(listed: list[Member], survivor: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        etcd_recovery.recovery_plan(listed, survivor, WHEN)


class _Failing:
    def __init__(self, fail_at: int) -> None:
        self.fail_at, self.seen = fail_at, 0

    def run(self, member: Member, step: etcd_recovery.Step, stdin: bytes | None) -> tuple[int, str]:
        self.seen += 1
        return (1, "etcd-restore: boom\n") if self.seen == self.fail_at else (0, "")


def test_execute_stops_at_the_first_failed_step_and_names_it() -> None:
    listed = etcd_recovery.members(DEV)
    steps = etcd_recovery.restore_plan(listed, "dev", "0" * 64, WHEN)
    runner = _Failing(fail_at=8)
    with pytest.raises(StepFailed) as failed:
        execute(steps, listed, runner, b"snapshot", say=lambda _: None)
    assert runner.seen == 8 and failed.value.number == 8
    assert str(failed.value).startswith("step 8 (restore cp2's data directory") and "boom" in str(failed.value)
    with pytest.raises(ValueError, match="sends the snapshot, but none was given"):
        execute(steps, listed, _Failing(fail_at=0), None, say=lambda _: None)


# -- ./scripts/restore-etcd ------------------------------------------------------------------------


def _cli(*args: str, tmp_path: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The command with a fake `ssh` first on PATH that records each call (NUL-separated argv, one file
    a call, in order) and succeeds."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "ssh-calls"
    bin_dir.mkdir(exist_ok=True)
    calls.mkdir(exist_ok=True)
    fake = bin_dir / "ssh"
    (tmp_path / "ssh-stdin").mkdir(exist_ok=True)
    fake.write_text(f'#!/usr/bin/env bash\nn=$(printf %03d "$(ls "{calls}" | wc -l)")\n'
                    f'printf "%s\\0" "$@" >"{calls}/$n"\ncat >"{tmp_path}/ssh-stdin/$n"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run([str(REPO / "scripts" / "restore-etcd"), *args], input=stdin, capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path, check=False)


def _ssh_calls(tmp_path: Path) -> list[list[str]]:
    return [path.read_text().split("\0")[:-1] for path in sorted((tmp_path / "ssh-calls").iterdir())]


def test_cli_prints_the_plan_and_touches_nothing(tmp_path: Path) -> None:
    snapshot = tmp_path / "snap.db"
    snapshot.write_bytes(b"x")
    result = _cli("dev", "snap.db", "--plan", tmp_path=tmp_path)  # a path relative to where it is run
    assert result.returncode == 0, result.stderr
    first = "  1. on cp1: stop kube-apiserver, kube-controller-manager, kube-scheduler, etcd on cp1"
    assert result.stdout.splitlines()[0] == first
    assert len(result.stdout.splitlines()) == 15 and _ssh_calls(tmp_path) == []
    recover = _cli("dev", "--recover-from", "cp3", "--plan", tmp_path=tmp_path)
    assert recover.returncode == 0 and "restart cp3 once with --force-new-cluster" in recover.stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    (("dev", "missing.db"), 2, "missing.db: no such snapshot file"),
    (("dev", "--recover-from", "cp9"), 2, "--recover-from cp9: not a control-plane node of dev (cp1, cp2, cp3)"),
    (("nosuchstack", "--recover-from", "cp1"), 2, "cannot read"),
    (("dev", "--recover-from", "cp1"), 1, "refusing to run without --yes"),
])
def test_cli_refusals(tmp_path: Path, args: tuple[str, ...], code: int, message: str) -> None:
    result = _cli(*args, tmp_path=tmp_path)
    assert result.returncode == code and message in result.stderr, result.stderr
    assert _ssh_calls(tmp_path) == []


def test_cli_runs_each_step_over_ssh_as_the_stack_user(tmp_path: Path) -> None:
    snapshot = tmp_path / "snap.db"
    snapshot.write_bytes(b"snapshot bytes")
    result = _cli("dev", str(snapshot), "--yes", "--identity", "/keys/ops", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    calls = _ssh_calls(tmp_path)
    assert len(calls) == 15 and all(len(call) == 10 for call in calls)
    assert calls[0][:8] == ["-p", "22", "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-i", "/keys/ops"]
    assert [call[8] for call in calls] == [f"ops@198.18.0.2{i}" for _ in range(5) for i in (1, 2, 3)]
    assert calls[0][9].startswith("sudo -n env ") and "STEP=stop" in calls[0][9]
    assert "STEP=restore" in calls[6][9] and "MEMBER_NAME=cp1" in calls[6][9]
    # The snapshot travels on stdin to the three receive steps only.
    sent = [path.read_bytes() for path in sorted((tmp_path / "ssh-stdin").iterdir())]
    assert sent == [b""] * 3 + [b"snapshot bytes"] * 3 + [b""] * 9
    assert "done: etcd of dev runs with members cp1, cp2, cp3" in result.stdout


# -- lib-etcd.sh's manifest edits --------------------------------------------------------------------


MANIFEST = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "etcd", "namespace": "kube-system"},
            "spec": {"containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:3.5.15-0", "command": [
                "etcd", "--advertise-client-urls=https://198.18.1.21:2379", "--data-dir=/var/lib/etcd",
                "--initial-advertise-peer-urls=https://198.18.1.21:2380",
                "--initial-cluster=cp1=https://198.18.1.21:2380", "--name=cp1"]}]}}


def _lib(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    script = (f'set -euo pipefail\nlog() {{ :; }}\nfail() {{ echo "$*" >&2; exit 1; }}\n'
              f'source {shlex.quote(str(SCRIPT_DIR / "lib-etcd.sh"))}\n{body}\n')
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, cwd=tmp_path,
                          check=False)


def test_manifest_flags_are_set_replaced_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "etcd.yaml"
    path.write_text(yaml.safe_dump(MANIFEST, default_flow_style=False))
    path.chmod(0o600)
    result = _lib(tmp_path, "set_manifest_flag etcd.yaml force-new-cluster\n"
                            "set_manifest_flag etcd.yaml initial-cluster 'cp2=https://x:2380,cp1=https://y:2380'\n"
                            "set_manifest_flag etcd.yaml initial-cluster-state existing\n"
                            "manifest_flag etcd.yaml initial-advertise-peer-urls")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "https://198.18.1.21:2380\n"
    command = yaml.safe_load(path.read_text())["spec"]["containers"][0]["command"]
    assert command[0] == "etcd"
    assert command.count("--force-new-cluster") == 1
    assert [c for c in command if c.startswith("--initial-cluster=")] == [
        "--initial-cluster=cp2=https://x:2380,cp1=https://y:2380"]
    assert "--initial-cluster-state=existing" in command
    assert set(MANIFEST["spec"]["containers"][0]["command"]) - set(command) == {
        "--initial-cluster=cp1=https://198.18.1.21:2380"}  # every other flag kept
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    dropped = _lib(tmp_path, "drop_manifest_flag etcd.yaml force-new-cluster")
    assert dropped.returncode == 0
    assert "--force-new-cluster" not in yaml.safe_load(path.read_text())["spec"]["containers"][0]["command"]
    # --initial-cluster-state is not touched by dropping --initial-cluster (a prefix of its name).
    _lib(tmp_path, "drop_manifest_flag etcd.yaml initial-cluster")
    assert "--initial-cluster-state=existing" in path.read_text()


def test_manifest_without_an_etcd_command_is_refused(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text("spec:\n  containers:\n  - command:\n    - kube-apiserver\n")
    result = _lib(tmp_path, "set_manifest_flag other.yaml force-new-cluster")
    assert result.returncode == 1 and "has no '- etcd' command item" in result.stderr


def test_static_pods_are_parked_beside_the_manifest_directory_and_back(tmp_path: Path) -> None:
    manifests = tmp_path / "etc/kubernetes/manifests"
    manifests.mkdir(parents=True)
    for pod in ("etcd", "kube-apiserver"):
        (manifests / f"{pod}.yaml").write_text(pod)
    body = f"root={shlex.quote(str(tmp_path))}\npark_static_pods kube-apiserver etcd kube-scheduler\n"
    assert _lib(tmp_path, body).returncode == 0
    parked = tmp_path / "etc/kubernetes/hakube-parked-manifests"
    assert sorted(p.name for p in parked.iterdir()) == ["etcd.yaml", "kube-apiserver.yaml"]
    assert list(manifests.iterdir()) == [] and stat.S_IMODE(parked.stat().st_mode) == 0o700
    assert _lib(tmp_path, body).returncode == 0  # a second stop changes nothing
    assert _lib(tmp_path, f"root={shlex.quote(str(tmp_path))}\nunpark_static_pods etcd kube-apiserver").returncode == 0
    assert sorted(p.name for p in manifests.iterdir()) == ["etcd.yaml", "kube-apiserver.yaml"]
    assert (manifests / "etcd.yaml").read_text() == "etcd"
