"""etcd snapshots in the plan: the stack section and its checks, the units (checked by the real
systemd-analyze), the steps on each control-plane node and their order (a snapshot before each
control-plane upgrade and before a removal), the backup key's path (stdin only), the policy rule,
and the host scripts around the snapshot with PATH shims. The snapshot itself, its retention and
the copy off the node run against a real etcd and sshd in tests/lab/test_etcd_restore_netns.py."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.program import etcd_backup_key
from configs import etcd
from configs.remote import command_line, secret_stdin
from configs.systemd import environment_file, unit_text
from dryrun.mockrun import REPO
from lab.hostsim import ScratchHost
from policies import data_safety, pack
from tests.mockgraph import Graph, closure_of, cluster_copy, graph, stack_graph
from tests.policy_helpers import POLICY, check_resource, stack_violations
from topology import ROOT, TopologyError, load_cluster
from topology.model import time_span_seconds
from topology.versions import DEFAULT_VERSION

CPS = ("cp1", "cp2", "cp3")
COMMAND = "command:remote:Command"




def _with_snapshots(stack: str, **snapshots: Any) -> dict[str, Any]:
    cluster = cluster_copy(stack)
    cluster["etcd"] = {"snapshots": snapshots}
    return cluster


def _refused(cluster: dict[str, Any]) -> list[str]:
    with pytest.raises(TopologyError) as err:
        load_cluster(cluster)
    return err.value.lines


# -- the stack section ----------------------------------------------------------------------------


def test_defaults_every_12_hours_keep_5_no_target() -> None:
    cluster = cluster_copy("dev")
    del cluster["etcd"]
    snapshots = load_cluster(cluster).etcd.snapshots
    assert (snapshots.enabled, snapshots.schedule, snapshots.keep, snapshots.target) == \
        (True, "*-*-* 00/12:00:00", 5, None)


@pytest.mark.parametrize(("snapshots", "line"), [
    ({"schedule": "every day"}, "schedule: 'every day' is neither a systemd calendar event"),
    ({"schedule": "4min"}, "schedule: '4min' is shorter than the shortest snapshot interval, 5min"),
    ({"schedule": " daily"}, "schedule: ' daily' is neither"),
    ({"keep": 0}, "keep: Input should be greater than or equal to 1"),
    ({"enabled": "yes"}, "enabled: Input should be a valid boolean"),
    ({"target": {"name": "hv1", "user": "b", "directory": "relative/dir"}},
     "target.directory: 'relative/dir' is not an absolute directory"),
    ({"target": {"name": "hv1", "user": "b", "directory": "/srv/../etc"}}, "target.directory: '/srv/../etc' is not"),
    ({"target": {"name": "hv1", "user": "b", "directory": "/srv/x;rm"}}, "target.directory: '/srv/x;rm' is not"),
    ({"target": {"name": "hv1", "user": "b", "directory": "/srv", "hostKey": "AAAA"}},
     "target.hostKey: is not an SSH public host key"),
    ({"target": {"name": "hv1", "user": "b", "directory": "/srv", "keep": 0}},
     "target.keep: Input should be greater than or equal to 1"),
    ({"target": {"name": "hv1", "directory": "/srv"}}, "target.user: required key is missing"),
    ({"target": {"name": "nas9", "user": "b", "directory": "/srv"}},
     "target.address: required: nas9 is not a hypervisor, worker or LB node of this stack"),
    ({"target": {"name": "nas9", "address": "198.18.0.22", "user": "b", "directory": "/srv"}},
     "target.address: 198.18.0.22 (nas9) is control-plane node cp2: a copy there is not off the node"),
    ({"target": {"name": "nas9", "address": "198.18.1.23", "user": "b", "directory": "/srv"}},
     "target.address: 198.18.1.23 (nas9) is control-plane node cp3"),
    ({"target": {"name": "cp1", "address": "198.18.0.99", "user": "b", "directory": "/srv"}},
     "target.address: 198.18.0.99 (cp1) is control-plane node cp1"),
    ({"target": {"name": "hv2", "address": "198.18.0.99", "user": "b", "directory": "/srv"}},
     "target.address: 198.18.0.99 is not the address of hv2 (198.18.0.32, hypervisors[1]); leave address out"),
    ({"target": {"name": "nas9", "address": "198.18.0.11", "user": "b", "directory": "/srv"}},
     "target.address: 198.18.0.11 is already the address of lb1"),
])
def test_bad_snapshot_settings_are_refused_with_their_path(snapshots: dict[str, Any], line: str) -> None:
    lines = _refused(_with_snapshots("dev", **snapshots))
    assert len(lines) == 1 and lines[0].startswith(f"{ROOT}.etcd.snapshots.{line}"), lines


@pytest.mark.parametrize("schedule", ["*-*-* 00/12:00:00", "daily", "Mon *-*-* 03:00", "Mon,Fri 04:00",
                                      "*-*-* 02:30:00 UTC", "2026-12-* 01:00", "03:00", "hourly"])
@pytest.mark.tool("systemd-analyze")
def test_accepted_calendar_events_are_systemd_calendar_events(schedule: str) -> None:
    assert time_span_seconds(schedule) is None
    assert load_cluster(_with_snapshots("dev", schedule=schedule)).etcd.snapshots.schedule == schedule
    result = subprocess.run(["systemd-analyze", "calendar", schedule], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("span", "seconds"), [("12h", 43200), ("1h 30min", 5400), ("5min", 300), ("2d", 172800)])
def test_intervals(span: str, seconds: int) -> None:
    assert time_span_seconds(span) == seconds
    assert load_cluster(_with_snapshots("dev", schedule=span)).etcd.snapshots.schedule == span


# -- the files each control-plane node gets ----------------------------------------------------------


def test_unit_writer_keeps_order_and_refuses_what_would_change_the_meaning() -> None:
    text = unit_text({"Unit": [("After", "a"), ("After", "b")], "Service": [("ExecStart", "/bin/true")]})
    assert text == "[Unit]\nAfter=a\nAfter=b\n\n[Service]\nExecStart=/bin/true\n"
    for bad in ({"Unit": [("After", "a\nExecStart=/bin/sh")]}, {"Unit": [("Bad Key", "x")]}, {"Un]it": []},
                {"Unit": [("After", " a")]}):
        with pytest.raises(ValueError):
            unit_text(bad)
    assert environment_file({"B": 'say "hi" \\o/', "A": "1"}) == 'A="1"\nB="say \\"hi\\" \\\\o/"\n'
    with pytest.raises(ValueError):
        environment_file({"A": "$HOME"})  # systemd would expand it


def _verify(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    paths = []
    for path in (etcd.TIMER_PATH, etcd.SERVICE_PATH):
        local = tmp_path / Path(path).name
        local.write_text(files[path])
        paths.append(str(local))
    return subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.tool("systemd-analyze")
@pytest.mark.parametrize("schedule", [None, "6h", "Mon *-*-* 03:00"])
def test_units_pass_systemd_analyze_verify(tmp_path: Path, schedule: str | None) -> None:
    cluster = load_cluster(_with_snapshots("dev", **({"schedule": schedule} if schedule else {})))
    files = etcd.node_files(cluster, "cp1")
    result = _verify(tmp_path, files)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
    timer = files[etcd.TIMER_PATH]
    if schedule == "6h":
        assert "OnBootSec=6h\nOnUnitActiveSec=6h\n" in timer and "OnCalendar" not in timer
    else:
        assert f"OnCalendar={schedule or '*-*-* 00/12:00:00'}\nPersistent=true\n" in timer


@pytest.mark.tool("systemd-analyze")
def test_systemd_analyze_verify_does_catch_a_broken_unit(tmp_path: Path) -> None:
    files = etcd.node_files(load_cluster(cluster_copy("dev")), "cp1")
    files[etcd.TIMER_PATH] = files[etcd.TIMER_PATH].replace("OnCalendar=", "OnCalender=")
    assert "OnCalender" in _verify(tmp_path, files).stderr


def test_every_control_plane_node_gets_the_units_script_and_its_settings() -> None:
    g = stack_graph("dev")
    for cp in CPS:
        files = {f["path"]: f for f in g.by_name[f"{cp}-etcd-snapshot"]["inputs"]["files"]}
        assert set(files) == {etcd.SERVICE_PATH, etcd.TIMER_PATH, etcd.INSTALLED_SCRIPT_PATH, etcd.ENV_PATH}
        assert g.by_name[f"{cp}-etcd-snapshot"]["parent"] == cp
        env = data_safety.environment_file(files[etcd.ENV_PATH]["content"])
        # hv1 by name: its address comes from the hypervisor entry.
        assert env == {"CLUSTER_NAME": "dev", "NODE_NAME": cp, "SNAPSHOT_DIR": etcd.SNAPSHOT_DIR, "KEEP": "5",
                       "REASON": "scheduled", "ETCDCTL_ENDPOINTS": "https://127.0.0.1:2379", "TARGET_NAME": "hv1",
                       "TARGET_ADDRESS": "198.18.0.31", "TARGET_PORT": "22", "TARGET_USER": "etcd-backup",
                       "TARGET_DIR": "/srv/hakube-backups", "TARGET_KEEP": "14", "BACKUP_KEY": etcd.BACKUP_KEY_PATH,
                       "KNOWN_HOSTS": etcd.KNOWN_HOSTS_PATH, "HOST_KEY_CHECK": "accept-new"}
        # The service runs the script as placed, lib-etcd.sh inlined (one self-contained file).
        assert "etcd_client_defaults() {" in files[etcd.INSTALLED_SCRIPT_PATH]["content"]
        assert "source " not in files[etcd.INSTALLED_SCRIPT_PATH]["content"].split("etcd_client_defaults")[0][-300:]
        apply = g.by_name[f"{cp}-etcd-snapshot-apply"]["inputs"]["create"]
        assert "ENABLED=true" in apply and "systemctl enable --now" in apply
    assert not [row for row in g.table if row["parent"] in ("w1", "w2", "w3") and "etcd" in row["name"]]


def test_prod_pins_the_target_host_key_with_its_port() -> None:
    cluster = load_cluster(cluster_copy("prod"))
    target = cluster.etcd.snapshots.target
    assert target is not None and target.host_key is not None
    assert etcd.known_hosts_line(cluster, target) == f"198.18.8.60 {target.host_key}"
    moved = load_cluster(_with_snapshots("prod", target={**cluster_copy("prod")["etcd"]["snapshots"]["target"],
                                                         "port": 2222}))
    assert etcd.known_hosts_line(moved, moved.etcd.snapshots.target) == f"[198.18.8.60]:2222 {target.host_key}"
    assert etcd.snapshot_env(cluster, "cp1")["HOST_KEY_CHECK"] == "yes"


def test_the_backup_key_reaches_the_node_on_stdin_only() -> None:
    g = stack_graph("dev")
    for cp in CPS:
        step = g.by_name[f"{cp}-etcd-backup-key"]
        record = g.record(f"{cp}-etcd-backup-key")
        assert step["inputs"]["stdin"] == "[secret]" and "stdin" in record.additional_secret_outputs
        assert "BACKUP_PRIVATE_KEY=" not in step["inputs"]["create"]
        assert "dry-run throwaway" not in json.dumps(step["inputs"])
        assert "ACTION=remove" in step["inputs"]["delete"]  # the key leaves with the target


def test_secrets_rule_refuses_a_backup_key_on_a_plain_stdin() -> None:
    props = {"create": "sudo -n env bash -c x", "stdin": "BACKUP_PRIVATE_KEY=abc\n\n"}
    assert check_resource("secrets", COMMAND, props, name="cp1-etcd-backup-key") == \
        ["cp1-etcd-backup-key: stdin (the backup SSH key) is not secret"]
    assert check_resource("secrets", COMMAND, props, name="cp1-etcd-backup-key", secret_outputs=("stdin",)) == []


def test_key_secret_is_one_line_and_refuses_what_is_not_a_key() -> None:
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\ndef\n-----END OPENSSH PRIVATE KEY-----\n"
    line = etcd.key_secret(pem)
    assert "\n" not in line and base64.b64decode(line).decode() == pem.strip()
    with pytest.raises(ValueError, match="not a private key"):
        etcd.key_secret("ssh-ed25519 AAAA public half")


# -- snapshots before upgrades and removals -----------------------------------------------------------


def test_a_snapshot_precedes_each_control_plane_upgrade() -> None:
    g = stack_graph("dev")
    for cp in CPS:
        name = f"{cp}-etcd-snapshot-pre-upgrade"
        row = g.by_name[name]
        assert row["parent"] == cp and "REASON=pre-upgrade" in row["inputs"]["create"]
        assert "NODE_NAME=" + cp in row["inputs"]["create"]
        assert DEFAULT_VERSION in row["inputs"]["triggers"]  # run again when the version changes
        for later in (f"{cp}-backend-drain-lb1", f"{cp}-backend-drain-lb2", f"{cp}-drain", f"{cp}-upgrade"):
            assert name in closure_of(g, later), later
        assert (f"{cp}-membership" if cp != "cp1" else "kubeadm-init") in closure_of(g, name)
    # cp2's snapshot waits for cp1's upgrade to be through: one node at a time.
    assert "cp1-upgrade" in closure_of(g, "cp2-etcd-snapshot-pre-upgrade")
    assert not [row for row in g.table if row["name"].startswith("w") and "snapshot" in row["name"]]


def test_a_snapshot_is_taken_before_a_control_plane_node_is_removed() -> None:
    g = stack_graph("dev")
    for cp in CPS:
        name = f"{cp}-etcd-snapshot-pre-removal"
        row = g.by_name[name]
        # Depends on the membership step, so Pulumi deletes it first: the snapshot is taken before
        # the drain, the etcd member removal (the membership's delete) and the reset (the join's).
        assert row["parent"] == cp
        assert (f"{cp}-membership" if cp != "cp1" else "kubeadm-init") in row["dependencies"]
        delete = row["inputs"]["delete"]
        assert "REASON=pre-removal" in delete and f"LABEL={cp}" in delete and "NODE_NAME=cp1" in delete
        assert "MODE=check" in row["inputs"]["create"] and "MODE=check" not in delete
        # On the first control-plane node, which stays.
        assert g.record(name).inputs["connection"] == g.record("kubeadm-init").inputs["connection"]


def _removal_order(g: Graph, cp: str) -> list[str]:
    """Pulumi's delete order for `cp`'s steps: a resource goes before what it depends on."""
    mine = [row["name"] for row in g.table if row["parent"] == cp and row["type"] == COMMAND]
    deps = {n: set(g.by_name[n]["dependencies"]) & set(mine) for n in mine}
    order: list[str] = []
    while deps:
        free = sorted(n for n in deps if not any(n in d for m, d in deps.items() if m != n))
        order += free
        deps = {n: d for n, d in deps.items() if n not in free}
    return order


def test_removal_order_takes_the_snapshot_before_the_member_goes() -> None:
    order = _removal_order(stack_graph("dev"), "cp3")
    assert order.index("cp3-etcd-snapshot-pre-removal") < order.index("cp3-membership") < order.index("cp3-join")


def test_disabled_snapshots_stop_the_timer_and_take_no_snapshot_steps() -> None:
    g = graph(_with_snapshots("dev", enabled=False, target={"name": "hv1", "user": "b", "directory": "/srv"}))
    assert "ENABLED=false" in g.by_name["cp1-etcd-snapshot-apply"]["inputs"]["create"]
    assert not [row for row in g.table if "pre-upgrade" in row["name"] or "pre-removal" in row["name"]]
    assert "cp1-drain" in g.by_name  # the upgrade chain itself is unchanged
    assert stack_violations("etcd-offsite-snapshots", g.run) == [
        ("etcd-snapshots", "etcd-snapshots: etcd.snapshots.enabled is false: no snapshot to restore etcd from")]


def test_without_a_target_no_key_step_and_the_policy_objects() -> None:
    g = graph(_with_snapshots("dev"))
    assert not [row for row in g.table if row["name"].endswith("-etcd-backup-key")]
    env = data_safety.environment_file(next(f for f in g.by_name["cp1-etcd-snapshot"]["inputs"]["files"]
                                      if f["path"] == etcd.ENV_PATH)["content"])
    assert "TARGET_ADDRESS" not in env
    found = stack_violations("etcd-offsite-snapshots", g.run)
    assert len(found) == 1 and "etcd.snapshots.target is not set" in found[0][1]


# -- the policy rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "edge", "prod"])
def test_committed_stacks_copy_snapshots_off_the_nodes(stack: str) -> None:
    assert stack_violations("etcd-offsite-snapshots", stack_graph(stack).run) == []


def test_the_rule_reads_each_nodes_files() -> None:
    g = graph(cluster_copy("dev"))
    record = g.record("cp2-etcd-snapshot")
    for placed in record.inputs["files"]:
        if placed["path"] == etcd.ENV_PATH:
            placed["content"] = "\n".join(line for line in placed["content"].splitlines()
                                          if not line.startswith("TARGET_ADDRESS"))
    record.inputs["files"] = [f for f in record.inputs["files"] if f["path"] != etcd.TIMER_PATH]
    assert stack_violations("etcd-offsite-snapshots", g.run) == [
        ("cp2", "cp2: no etcd snapshot timer (/etc/systemd/system/hakube-etcd-snapshot.timer)"),
        ("cp2", "cp2: its snapshots are not copied off the node (no TARGET_ADDRESS in /etc/hakube/etcd-snapshot.env)"),
    ]


def test_edge_without_a_target_is_advisory_elsewhere_mandatory() -> None:
    edge = graph(_with_snapshots("edge"), "edge")
    assert stack_violations("etcd-offsite-snapshots", edge.run)
    policy = POLICY["etcd-offsite-snapshots"]
    assert pack.enforcement_level(policy, pack.stack_config("edge")) == pack.ADVISORY
    assert pack.enforcement_level(policy, pack.stack_config("dev")) == pack.MANDATORY
    assert pack.enforcement_level(policy, pack.stack_config("prod")) == pack.MANDATORY


def test_dry_run_fails_a_standard_stack_without_a_target_and_passes_edge(tmp_path: Path) -> None:
    results = {}
    for stack in ("dev", "edge"):
        path = tmp_path / f"Pulumi.{stack}.yaml"
        path.write_text(yaml.safe_dump({"config": {ROOT: _with_snapshots(stack)}}))
        run = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "dryrun", "--config", str(path), "--out",
                              str(tmp_path / stack)], cwd=REPO, capture_output=True, text=True, timeout=600,
                             check=False)
        results[stack] = run
    assert results["dev"].returncode == 1, results["dev"].stderr
    assert "etcd-offsite-snapshots" in (tmp_path / "dev" / "policy.txt").read_text()
    assert results["edge"].returncode == 0, results["edge"].stderr
    policy = (tmp_path / "edge" / "policy.txt").read_text()
    assert any(line.startswith("ADVISORY") and "etcd-offsite-snapshots" in line for line in policy.splitlines()), \
        policy


def test_a_target_without_the_backup_key_is_refused_before_any_resource() -> None:
    cluster = load_cluster(cluster_copy("dev"))

    class NoKey:
        def get_secret(self, key: str) -> None:
            return None

    with pytest.raises(pulumi.RunError, match=re.escape("hakube:etcdBackupSshKey: required when"
                                                        " hakube:cluster.etcd.snapshots.target is set")):
        etcd_backup_key(NoKey(), cluster)  # type: ignore[arg-type]
    without = load_cluster(_with_snapshots("dev"))
    assert etcd_backup_key(NoKey(), without) is None  # type: ignore[arg-type]


# -- the host scripts around the snapshot, with shims ------------------------------------------------------


def _host(tmp_path: Path) -> ScratchHost:
    host = ScratchHost(tmp_path)
    host.shim("systemctl", 'if [[ "$1" == show ]]; then echo "Thu 2026-12-03 12:00:00 UTC"; fi')
    return host


def test_timer_script_enables_or_disables_the_timer(tmp_path: Path) -> None:
    host = _host(tmp_path)
    assert host.run("etcd-snapshot-timer.sh", {"UNIT": etcd.UNIT_NAME, "ENABLED": "true"}).returncode == 0
    assert ["systemctl", "daemon-reload"] in host.calls()
    assert ["systemctl", "enable", "--now", "hakube-etcd-snapshot.timer"] in host.calls()
    host.clear_calls()
    assert host.run("etcd-snapshot-timer.sh", {"UNIT": etcd.UNIT_NAME, "ENABLED": "false"}).returncode == 0
    assert ["systemctl", "disable", "--now", "hakube-etcd-snapshot.timer"] in host.calls()


@pytest.mark.tool("ssh-keygen")
def test_backup_key_script_writes_the_key_0600_prints_its_public_half_and_removes_it(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    env = {"BACKUP_KEY": etcd.BACKUP_KEY_PATH, "KNOWN_HOSTS": etcd.KNOWN_HOSTS_PATH,
           "KNOWN_HOSTS_LINE": "198.18.0.31 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOp0MUduak"}
    stdin = secret_stdin({"BACKUP_PRIVATE_KEY": etcd.key_secret(key.read_text())})
    # As a host receives it: the secret prologue reads the key from stdin (configs/remote.py).
    result = _run_with_secrets(host, "etcd-backup-key.sh", env, stdin)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == key.with_suffix(".pub").read_text().split()[:2]
    placed = host.root / etcd.BACKUP_KEY_PATH.lstrip("/")
    assert placed.read_text() == key.read_text()
    assert oct(placed.stat().st_mode & 0o777) == "0o600" and oct(placed.parent.stat().st_mode & 0o777) == "0o700"
    known = host.root / etcd.KNOWN_HOSTS_PATH.lstrip("/")
    assert known.read_text() == env["KNOWN_HOSTS_LINE"] + "\n"
    assert "PRIVATE KEY" not in result.stdout + result.stderr  # never printed
    again = _run_with_secrets(host, "etcd-backup-key.sh", env, stdin)
    assert "key unchanged" in again.stderr
    bad = _run_with_secrets(host, "etcd-backup-key.sh", env, secret_stdin({"BACKUP_PRIVATE_KEY": "bm90IGEga2V5"}))
    assert bad.returncode == 1 and "not an unencrypted SSH private key" in bad.stderr
    assert placed.read_text() == key.read_text()  # the good key is kept
    removed = host.run("etcd-backup-key.sh", {**env, "ACTION": "remove"})
    assert removed.returncode == 0 and not placed.exists() and not known.exists()


def _run_with_secrets(host: ScratchHost, script: str, env: dict[str, str],
                      stdin: str) -> subprocess.CompletedProcess[str]:
    full = {**env, "HAKUBE_ROOT": str(host.root)}
    line = command_line(script, full, reads_secrets=True).removeprefix("sudo -n ")
    return subprocess.run(["bash", "-c", line], input=stdin, capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{host.bin}:/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C"}, check=False)


@pytest.mark.parametrize(("env", "message"), [
    ({"KEEP": "0"}, "KEEP must be a positive number"),
    ({"REASON": "nightly"}, "unknown REASON 'nightly'"),
    ({"LABEL": "Cp3"}, "LABEL must be lower-case"),
    ({"TARGET_ADDRESS": "198.18.0.31"}, "TARGET_PORT is required with TARGET_ADDRESS"),
    ({"MODE": "dump"}, "unknown MODE 'dump'"),
])
def test_snapshot_script_refuses_bad_settings(tmp_path: Path, env: dict[str, str], message: str) -> None:
    host = ScratchHost(tmp_path)
    host.shim("etcdctl", "exit 0")
    base = {"CLUSTER_NAME": "dev", "NODE_NAME": "cp1", "SNAPSHOT_DIR": etcd.SNAPSHOT_DIR}
    result = host.run(etcd.SNAPSHOT_SCRIPT, {**base, **env})
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not [c for c in host.calls("etcdctl") if c[1:2] == ["snapshot"]]


def test_snapshot_script_check_mode_takes_no_snapshot(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    host.shim("etcdctl", "exit 0")
    env = {"CLUSTER_NAME": "dev", "NODE_NAME": "cp1", "SNAPSHOT_DIR": etcd.SNAPSHOT_DIR, "MODE": "check"}
    result = host.run(etcd.SNAPSHOT_SCRIPT, env)
    assert result.returncode == 0 and json.loads(result.stdout) == {"node": "cp1", "ready": True}
    assert host.calls("etcdctl") == []
    assert (host.root / etcd.SNAPSHOT_DIR.lstrip("/")).is_dir()
    missing_key = host.run(etcd.SNAPSHOT_SCRIPT, {**env, **etcd.target_env(load_cluster(cluster_copy("dev")),
                                                                           _dev_target())})
    assert missing_key.returncode == 1 and "the backup key /var/lib/hakube/etcd-backup/ssh-key is missing" in \
        missing_key.stderr


def _dev_target() -> Any:
    target = load_cluster(cluster_copy("dev")).etcd.snapshots.target
    assert target is not None
    return target


def test_a_snapshot_that_fails_its_status_check_is_kept_aside_and_fails_the_run(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    # save writes a file; status says it is broken (what a truncated download looks like).
    host.shim("etcdctl", 'case "$1 $2" in "snapshot save") echo data >"$3" ;; "snapshot status") echo '
                         '"invalid database" >&2; exit 1 ;; esac')
    env = {"CLUSTER_NAME": "dev", "NODE_NAME": "cp1", "SNAPSHOT_DIR": etcd.SNAPSHOT_DIR, "REASON": "pre-upgrade"}
    result = host.run(etcd.SNAPSHOT_SCRIPT, env)
    assert result.returncode == 1 and "does not pass etcdctl snapshot status" in result.stderr
    assert "etcdutl not found (etcd 3.4)" in result.stderr
    kept = [p.name for p in (host.root / etcd.SNAPSHOT_DIR.lstrip("/")).iterdir() if not p.name.startswith(".")]
    assert len(kept) == 1 and kept[0].startswith("dev-cp1-") and kept[0].endswith("-pre-upgrade.db.bad"), kept


def test_dry_run_refuses_a_bad_snapshot_setting_with_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump({"config": {ROOT: _with_snapshots("dev", schedule="every day", keep=0)}}))
    out = tmp_path / "out"
    run = subprocess.run([str(REPO / ".venv/bin/python"), "-m", "dryrun", "--config", str(path), "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2 and not out.exists()
    assert run.stderr.splitlines() == [
        f"{ROOT}.etcd.snapshots.schedule: 'every day' is neither a systemd calendar event (e.g. '*-*-* 00/12:00:00',"
        " 'daily', 'Mon *-*-* 03:00') nor an interval (e.g. '12h', '1h 30min')",
        f"{ROOT}.etcd.snapshots.keep: Input should be greater than or equal to 1",
        f"{path}: 2 problem(s); nothing written",
    ]
