"""etcd snapshots as plain data: where they live, the timer and service that take them, and the
environment of configs/scripts/etcd-snapshot.sh (components/etcd.py wires the steps).

On every control-plane node a systemd timer runs etcd-snapshot.sh: `etcdctl snapshot save` from
the node's own member, a status check of the file, the newest `keep` kept in SNAPSHOT_DIR, and a
copy to the backup target over SSH (with the target's own retention). The same script runs as a
step before each control-plane upgrade and, from the first control-plane node, before a
control-plane node is removed.
"""

from __future__ import annotations

import base64
from typing import Any

from configs.scripts import script
from configs.systemd import Unit, environment_file, unit_text
from policies.contract import SNAPSHOT_ENV_PATH, SNAPSHOT_TIMER_PATH, SNAPSHOT_UNIT
from topology.model import BackupTarget, Cluster, time_span_seconds
from topology.rules import backup_target_address

SNAPSHOT_SCRIPT = "etcd-snapshot.sh"
# Snapshots hold every Secret of the cluster: root-only directories, here and on the target.
SNAPSHOT_DIR = "/var/lib/hakube/etcd-snapshots"
# The off-node copy's SSH key and known_hosts (written by etcd-backup-key.sh, 0600 in a 0700 directory).
BACKUP_STATE_DIR = "/var/lib/hakube/etcd-backup"
BACKUP_KEY_PATH = f"{BACKUP_STATE_DIR}/ssh-key"
KNOWN_HOSTS_PATH = f"{BACKUP_STATE_DIR}/known_hosts"
# kubeadm's etcd listens on 127.0.0.1 as well as on the node's controlPlaneAddress: the local
# member answers even when the control-plane network is down.
LOCAL_ENDPOINT = "https://127.0.0.1:2379"
UNIT_NAME = SNAPSHOT_UNIT
SERVICE_PATH = f"/etc/systemd/system/{UNIT_NAME}.service"
TIMER_PATH = SNAPSHOT_TIMER_PATH  # the pack's etcd-offsite-snapshots rule reads these two
INSTALLED_SCRIPT_PATH = "/usr/local/lib/hakube/etcd-snapshot.sh"
ENV_PATH = SNAPSHOT_ENV_PATH
# Why a snapshot was taken: part of its file name (etcd-snapshot.sh).
REASONS = ("scheduled", "pre-upgrade", "pre-removal", "manual")


def snapshot_env(cluster: Cluster, node: str, reason: str = "scheduled", label: str = "") -> dict[str, str]:
    """etcd-snapshot.sh's environment on control-plane node `node` (also the timer's EnvironmentFile)."""
    if reason not in REASONS:
        raise ValueError(f"unknown snapshot reason {reason!r}")
    snapshots = cluster.etcd.snapshots
    env = {"CLUSTER_NAME": cluster.name, "NODE_NAME": node, "SNAPSHOT_DIR": SNAPSHOT_DIR,
           "KEEP": str(snapshots.keep), "REASON": reason, "ETCDCTL_ENDPOINTS": LOCAL_ENDPOINT}
    if label:
        env["LABEL"] = label
    if snapshots.target is not None:
        env.update(target_env(cluster, snapshots.target))
    return env


def target_env(cluster: Cluster, target: BackupTarget) -> dict[str, str]:
    address = backup_target_address(cluster)
    return {"TARGET_NAME": target.name, "TARGET_ADDRESS": str(address), "TARGET_PORT": str(target.port),
            "TARGET_USER": target.user, "TARGET_DIR": target.directory, "TARGET_KEEP": str(target.keep),
            "BACKUP_KEY": BACKUP_KEY_PATH, "KNOWN_HOSTS": KNOWN_HOSTS_PATH,
            # A pinned host key is the only one accepted; without one the first key seen is kept.
            "HOST_KEY_CHECK": "yes" if target.host_key else "accept-new"}


def known_hosts_line(cluster: Cluster, target: BackupTarget) -> str:
    """The target's known_hosts entry ('' when its key is not pinned); ssh writes [host]:port off port 22."""
    if not target.host_key:
        return ""
    address = backup_target_address(cluster)
    host = str(address) if target.port == 22 else f"[{address}]:{target.port}"
    return f"{host} {target.host_key}"


def backup_key_env(cluster: Cluster, target: BackupTarget, action: str = "install") -> dict[str, str]:
    """etcd-backup-key.sh's environment (the key itself travels on stdin, encoded by key_secret)."""
    return {"ACTION": action, "BACKUP_KEY": BACKUP_KEY_PATH, "KNOWN_HOSTS": KNOWN_HOSTS_PATH,
            "KNOWN_HOSTS_LINE": known_hosts_line(cluster, target)}


def key_secret(private_key: str) -> str:
    """The private key as one stdin line (secret_stdin takes single-line values): base64 of its text."""
    if "PRIVATE KEY" not in private_key:
        raise ValueError("hakube:etcdBackupSshKey is not a private key (no 'PRIVATE KEY' block)")
    return base64.b64encode(private_key.strip().encode()).decode()


def timer_unit(cluster: Cluster) -> Unit:
    schedule = cluster.etcd.snapshots.schedule
    if time_span_seconds(schedule) is not None:
        # An interval: the first run that long after boot, then that long after each run.
        when = [("OnBootSec", schedule), ("OnUnitActiveSec", schedule)]
    else:
        # A calendar event; Persistent catches up on a run missed while the node was down.
        when = [("OnCalendar", schedule), ("Persistent", "true")]
    return {
        "Unit": [("Description", "hakube: scheduled etcd snapshots of this control-plane node")],
        "Timer": [*when, ("AccuracySec", "1min"), ("Unit", f"{UNIT_NAME}.service")],
        "Install": [("WantedBy", "timers.target")],
    }


def service_unit() -> Unit:
    return {
        "Unit": [("Description", "hakube: etcd snapshot of this control-plane node, copied off the node"),
                 ("Wants", "network-online.target"), ("After", "network-online.target")],
        "Service": [
            ("Type", "oneshot"),
            ("EnvironmentFile", ENV_PATH),
            ("ExecStart", f"/bin/bash {INSTALLED_SCRIPT_PATH}"),
            # Off the critical path of etcd and the apiserver on the same node.
            ("Nice", "10"), ("IOSchedulingClass", "idle"),
            ("TimeoutStartSec", "30min"),
            ("PrivateTmp", "true"), ("NoNewPrivileges", "true"),
            # /usr, /boot and /etc read-only: the script writes only below /var/lib/hakube and /run.
            ("ProtectSystem", "full"),
        ],
    }


def timer_env(cluster: Cluster) -> dict[str, str]:
    """etcd-snapshot-timer.sh's environment: whether the timer runs."""
    return {"UNIT": UNIT_NAME, "ENABLED": "true" if cluster.etcd.snapshots.enabled else "false"}


def node_files(cluster: Cluster, node: str) -> dict[str, str]:
    """The files a control-plane node gets: the units, the script they run and its environment."""
    return {
        SERVICE_PATH: unit_text(service_unit()),
        TIMER_PATH: unit_text(timer_unit(cluster)),
        INSTALLED_SCRIPT_PATH: script(SNAPSHOT_SCRIPT),
        ENV_PATH: environment_file(snapshot_env(cluster, node)),
    }


def snapshot_props(cluster: Cluster) -> dict[str, Any]:
    """What the EtcdSnapshots component declares (and the policy pack reads)."""
    snapshots = cluster.etcd.snapshots
    target = snapshots.target
    return {
        "enabled": snapshots.enabled, "schedule": snapshots.schedule, "keep": snapshots.keep,
        "directory": SNAPSHOT_DIR,
        "target": None if target is None else {
            "name": target.name, "address": str(backup_target_address(cluster)), "port": target.port,
            "user": target.user, "directory": target.directory, "keep": target.keep,
            "hostKeyPinned": target.host_key is not None,
        },
    }
