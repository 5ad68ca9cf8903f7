"""etcd snapshots, restores and quorum-loss recovery against a real etcd (Debian's 3.4 here; the
scripts use etcdutl where it is installed) in network namespaces, run the way kubeadm runs it:
static pod manifests that a kubelet stand-in starts and stops (lab/etcdlab.py).

The snapshot goes through configs/scripts/etcd-snapshot.sh, copied over SSH to a real sshd in a
`backup` namespace (its host key pinned, the key installed by etcd-backup-key.sh from stdin);
restores and recoveries run configs/etcd_recovery.py's plans through recovery/run.py's execute,
each step the command line ./scripts/restore-etcd sends over SSH, entered into the member's
namespace instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from configs import etcd as etcd_config
from configs import etcd_recovery
from lab.etcdlab import BACKUP_ADDRESS, KEY_PREFIX, BackupHost, EtcdLab, LabMember, LabRunner, lab_members
from lab.procs import wait_until
from recovery.run import StepFailed, execute

pytestmark = [pytest.mark.root, pytest.mark.tool("etcd", "etcdctl", "sshd", "ssh", "ssh-keygen")]

NAMES = ("e1", "e2", "e3")
FIRST = {f"{KEY_PREFIX}{n:05d}" for n in range(1000)}
EVERY = {f"{KEY_PREFIX}{n:05d}" for n in range(1100)}
SNAPSHOT_DIR = "/var/lib/hakube/etcd-snapshots"


def _keypair(directory: Path) -> tuple[str, str]:
    """A fresh ed25519 key: (private key text, public key line)."""
    path = directory / "backup-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "etcd-backup", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)
    return path.read_text(), path.with_suffix(".pub").read_text().strip()


def _snapshot_env(lab: EtcdLab, name: str, keep: int, target_keep: int | None) -> dict[str, str]:
    env = {"CLUSTER_NAME": "lab", "NODE_NAME": name, "SNAPSHOT_DIR": SNAPSHOT_DIR, "KEEP": str(keep),
           "REASON": "manual", "ETCDCTL_ENDPOINTS": lab.members[name].client_url}
    if target_keep is not None:
        env.update({"TARGET_NAME": "backup", "TARGET_ADDRESS": BACKUP_ADDRESS, "TARGET_PORT": "22",
                    "TARGET_USER": "root", "TARGET_DIR": str(lab.dir / "backup" / "store"),
                    "TARGET_KEEP": str(target_keep), "BACKUP_KEY": etcd_config.BACKUP_KEY_PATH,
                    "KNOWN_HOSTS": etcd_config.KNOWN_HOSTS_PATH, "HOST_KEY_CHECK": "yes"})
    return env


def _install_key(runner: LabRunner, name: str, private: str, backup: BackupHost) -> str:
    env = {"ACTION": "install", "BACKUP_KEY": etcd_config.BACKUP_KEY_PATH, "KNOWN_HOSTS": etcd_config.KNOWN_HOSTS_PATH,
           "KNOWN_HOSTS_LINE": f"{BACKUP_ADDRESS} {backup.host_key}", "HAKUBE_ROOT": str(runner.lab.root(name))}
    result = runner.run_script(name, "etcd-backup-key.sh", env,
                               secrets={"BACKUP_PRIVATE_KEY": etcd_config.key_secret(private)})
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


def _snapshot(runner: LabRunner, name: str, env: dict[str, str]) -> dict[str, object]:
    result = runner.run_script(name, etcd_config.SNAPSHOT_SCRIPT, {**env, "HAKUBE_ROOT": str(runner.lab.root(name))})
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def _with_backup(lab: EtcdLab, runner: LabRunner, name: str) -> BackupHost:
    private, public = _keypair(lab.dir)
    backup = BackupHost(lab, public)
    assert _install_key(runner, name, private, backup) == public
    return backup


def _corrupt(lab: EtcdLab, *names: str) -> None:
    """The members' data is destroyed (every file under member/ overwritten with random bytes): their
    etcd crashes, and kubelet's restarts crash again."""
    for name in names:
        lab.pods.pause(name)
        for path in (lab.data_dir(name) / "member").rglob("*"):
            if path.is_file():
                path.write_bytes(os.urandom(max(path.stat().st_size, 4096)))
        lab.pods.resume(name)


def _wipe_while_down(lab: EtcdLab, *names: str) -> None:
    """The members are killed with their kubelet (the machine is down) and their data is deleted.
    They stay down: a wiped etcd 3.4 restarted from its old manifest rejoins under its old member ID
    with an empty log, which is what a recovery must not rely on."""
    for name in names:
        lab.pods.pause(name)
        subprocess.run(["rm", "-rf", str(lab.data_dir(name))], check=True, timeout=30)


def _no_quorum(lab: EtcdLab, name: str) -> bool:
    return lab.etcdctl(name, "put", "hakube/probe", "x", check=False).returncode != 0


def _healthy_cluster(lab: EtcdLab, listed: list[LabMember]) -> None:
    for m in listed:
        wait_until(lambda n=m.name: lab.healthy(n), 30, step=0.2, what=f"{m.name} healthy")
        assert lab.member_list(m.name) == sorted((x.name, x.peer_url) for x in listed)


def _now() -> str:
    return etcd_recovery.stamp(datetime.now(UTC))


def test_snapshot_retention_here_and_on_the_target() -> None:
    (one,) = lab_members(["e1"])
    with EtcdLab([one]) as lab:
        lab.form(["e1"])
        runner = LabRunner(lab)
        _with_backup(lab, runner, "e1")
        lab.put_keys("e1", range(10))
        env = _snapshot_env(lab, "e1", keep=2, target_keep=3)
        reports = [_snapshot(runner, "e1", env) for _ in range(5)]
        names = [str(r["snapshot"]) for r in reports]
        assert len(set(names)) == 5 and names == sorted(names)  # names sort by time

        local = sorted(p.name for p in (lab.root("e1") / SNAPSHOT_DIR.lstrip("/")).glob("*.db"))
        remote_dir = lab.dir / "backup" / "store" / "lab" / "e1"
        remote = sorted(p.name for p in remote_dir.iterdir())
        assert local == names[-2:]  # exactly the newest KEEP here
        assert remote == names[-3:]  # exactly the newest TARGET_KEEP on the target
        assert [r["kept"] for r in reports] == [1, 2, 2, 2, 2]
        assert [r["offsiteKept"] for r in reports] == [1, 2, 3, 3, 3]
        assert reports[-1]["keys"] >= 10 and reports[-1]["offsite"] == f"backup:{remote_dir}/{names[-1]}"
        for name in remote:  # the copies are the files, byte for byte
            local_copy = lab.root("e1") / SNAPSHOT_DIR.lstrip("/") / name
            if local_copy.exists():
                assert hashlib.sha256(local_copy.read_bytes()).digest() == \
                    hashlib.sha256((remote_dir / name).read_bytes()).digest()
        assert oct((lab.root("e1") / SNAPSHOT_DIR.lstrip("/")).stat().st_mode & 0o777) == "0o700"
        assert oct(remote_dir.stat().st_mode & 0o777) == "0o700"

        # A target whose host key is not the pinned one gets nothing; the local snapshot stays.
        known = lab.root("e1") / etcd_config.KNOWN_HOSTS_PATH.lstrip("/")
        other_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOp0MUduak/ixB95hGYmocP9Ky7B2/Wqhw4yhy3eCipk"
        known.write_text(f"{BACKUP_ADDRESS} {other_key}\n")
        result = runner.run_script("e1", etcd_config.SNAPSHOT_SCRIPT, {**env, "HAKUBE_ROOT": str(lab.root("e1"))})
        assert result.returncode == 1 and b"the local snapshot is kept" in result.stderr
        assert sorted(p.name for p in remote_dir.iterdir()) == remote


def test_restore_brings_back_exactly_the_snapshot_and_three_healthy_members() -> None:
    members = lab_members(NAMES)
    with EtcdLab(members) as lab:
        lab.form(NAMES)
        runner = LabRunner(lab, calls=[])
        _with_backup(lab, runner, "e1")
        lab.put_keys("e1", range(1000))
        report = _snapshot(runner, "e1", _snapshot_env(lab, "e1", keep=5, target_keep=5))
        lab.put_keys("e1", range(1000, 1100))
        assert lab.keys("e3", serializable=False) == EVERY

        _corrupt(lab, "e2", "e3")
        wait_until(lambda: _no_quorum(lab, "e1"), 30, step=0.5, what="quorum to be lost")
        # The copy on the backup host is what the restore reads, as an operator would fetch it.
        snapshot = (lab.dir / "backup" / "store" / "lab" / "e1" / str(report["snapshot"])).read_bytes()
        steps = etcd_recovery.restore_plan([m.member() for m in members], "lab", hashlib.sha256(snapshot).hexdigest(),
                                           _now(), data_dir="/var/lib/etcd")
        execute(steps, [m.member() for m in members], runner, snapshot, say=lambda _: None)

        _healthy_cluster(lab, members)
        for name in NAMES:
            assert lab.keys(name) == FIRST, name  # exactly the first 1,000, on every member
        lab.put_keys("e2", range(2000, 2010))  # and it takes writes
        assert len(lab.keys("e3", serializable=False)) == 1010
        # The data that was there is kept, moved aside within the data directory.
        kept = list(lab.data_dir("e1").glob(".hakube-before-restore-*/member"))
        assert len(kept) == 1
        assert [s for _, s in runner.calls] == ["stop"] * 3 + ["receive"] * 3 + ["restore"] * 3 + ["start"] * 3 + \
            ["check"] * 3

        # Each step runs again without harm: a second restore from the same file gives the same.
        execute(steps, [m.member() for m in members], runner, snapshot, say=lambda _: None)
        _healthy_cluster(lab, members)
        assert lab.keys("e1") == FIRST


def test_restore_onto_replacement_nodes_with_new_names_and_addresses() -> None:
    old = lab_members(NAMES)
    new = lab_members(("r1", "r2", "r3"), first=11)
    with EtcdLab(old) as lab:
        lab.form(NAMES)
        runner = LabRunner(lab)
        lab.put_keys("e1", range(1000))
        snapshot_report = _snapshot(runner, "e2", _snapshot_env(lab, "e2", keep=5, target_keep=None))
        lab.put_keys("e1", range(1000, 1100))
        path = lab.root("e2") / SNAPSHOT_DIR.lstrip("/") / str(snapshot_report["snapshot"])
        snapshot = path.read_bytes()
        for name in NAMES:  # the old machines are gone
            lab.pods.pause(name)

        # Replacement nodes, set up as hakube sets up control-plane nodes: their own (empty) etcd.
        lab.add_members(new)
        lab.form([m.name for m in new])
        assert lab.keys("r1") == set()
        steps = etcd_recovery.restore_plan([m.member() for m in new], "lab", hashlib.sha256(snapshot).hexdigest(),
                                           _now())
        execute(steps, [m.member() for m in new], runner, snapshot, say=lambda _: None)

        # The NEW member list and peer URLs, not the snapshot's e1-e3 at 198.18.210.1-3.
        _healthy_cluster(lab, new)
        for m in new:
            assert lab.keys(m.name) == FIRST


def test_restore_refuses_a_node_set_up_for_another_address() -> None:
    members = lab_members(NAMES)
    with EtcdLab(members, backup=False) as lab:
        lab.form(NAMES)
        runner = LabRunner(lab)
        lab.put_keys("e1", range(10))
        report = _snapshot(runner, "e1", _snapshot_env(lab, "e1", keep=5, target_keep=None))
        snapshot = (lab.root("e1") / SNAPSHOT_DIR.lstrip("/") / str(report["snapshot"])).read_bytes()
        # The stack says e3 is at .9 now, but the node's etcd still advertises .3.
        moved = [m.member() for m in members[:2]] + [etcd_recovery.Member("e3", members[2].address,
                                                                          "http://198.18.210.9:2380",
                                                                          members[2].client_url)]
        steps = etcd_recovery.restore_plan(moved, "lab", hashlib.sha256(snapshot).hexdigest(), _now())
        with pytest.raises(StepFailed) as failed:
            execute(steps, moved, runner, snapshot, say=lambda _: None)
        assert failed.value.step.member == "e3" and failed.value.step.env["STEP"] == "restore"
        assert "advertises http://198.18.210.3:2380, but the stack makes it e3 at http://198.18.210.9:2380" in \
            str(failed.value)
        # Nothing was swapped on e3: its data directory is the old one, and no restore was kept.
        assert (lab.data_dir("e3") / "member").is_dir()
        assert not list(lab.data_dir("e3").glob(".hakube-before-restore-*"))


def test_quorum_loss_recovery_from_the_surviving_member_keeps_every_key() -> None:
    members = lab_members(NAMES)
    with EtcdLab(members, backup=False) as lab:
        lab.form(NAMES)
        lab.put_keys("e1", range(1100))
        ids_before = lab.etcdctl("e1", "member", "list").stdout
        # e2 survives (a member that joined); e1 (which ran init) and e3 lose their data.
        _wipe_while_down(lab, "e1", "e3")
        wait_until(lambda: _no_quorum(lab, "e2"), 30, step=0.5, what="quorum to be lost")

        runner = LabRunner(lab, calls=[])
        listed = [m.member() for m in members]
        steps = etcd_recovery.recovery_plan(listed, "e2", _now())
        assert [s.env["STEP"] for s in steps[:2]] == ["stop-member", "stop-member"]
        execute(steps[:2], listed, runner, say=lambda _: None)
        # The machines are back (their kubelets run) once their etcd manifests are parked.
        for name in ("e1", "e3"):
            lab.pods.resume(name)
        execute(steps[2:], listed, runner, say=lambda _: None)

        _healthy_cluster(lab, members)
        for name in NAMES:
            assert lab.keys(name) == EVERY, name  # every key, on every member
        lab.put_keys("e1", range(2000, 2010))
        assert len(lab.keys("e3", serializable=False)) == 1110
        # e1 and e3 are new members (new IDs); e2 keeps its own.
        ids_after = lab.etcdctl("e2", "member", "list").stdout
        id_of = {line.split(", ")[2]: line.split(", ")[0] for text in (ids_before,) for line in text.splitlines()}
        id_now = {line.split(", ")[2]: line.split(", ")[0] for line in ids_after.splitlines()}
        assert id_now["e2"] == id_of["e2"] and id_now["e1"] != id_of["e1"] and id_now["e3"] != id_of["e3"]
        # --force-new-cluster is gone from the survivor's manifest (a later restart keeps the members).
        assert "--force-new-cluster" not in lab.manifest_path("e2").read_text()
        assert "--initial-cluster-state=existing" in lab.manifest_path("e1").read_text()
        # The survivor's data as it was before recovery is kept.
        assert list(lab.data_dir("e2").glob(".hakube-before-recovery-*/member/wal"))
        assert [(n, s) for n, s in runner.calls] == [
            ("e1", "stop-member"), ("e3", "stop-member"), ("e2", "force-new-cluster"),
            ("e2", "add"), ("e1", "rejoin"), ("e2", "add"), ("e3", "rejoin")]
        # A restart of the survivor now keeps all three members.
        lab.pods.pause("e2")
        lab.pods.resume("e2")
        _healthy_cluster(lab, members)
