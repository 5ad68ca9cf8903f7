"""Data safety: etcd snapshots (components/etcd.py, configs/etcd.py) taken on every control-plane
node and copied off it, so losing a member never loses the data it protects."""

from __future__ import annotations

from typing import Any

from ._data import Resource, Stack, Violation, reveal
from ._engine import MANDATORY, Policy, Scope, stack_policy
from .contract import ETCD_SNAPSHOTS, NODE, SNAPSHOT_ENV_PATH, SNAPSHOT_TIMER_PATH


def environment_file(text: Any) -> dict[str, str]:
    """NAME="value" lines of a systemd EnvironmentFile (as configs/systemd.py writes them)."""
    env = {}
    for line in str(text or "").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            env[name.strip()] = value
    return env


def _snapshot_files(stack: Stack, node: Resource) -> dict[str, Resource]:
    wanted = (SNAPSHOT_TIMER_PATH, SNAPSHOT_ENV_PATH)
    return {str(d.props.get("path")): d for d in stack.files_on(node) if d.props.get("path") in wanted}


def offsite_snapshots(stack: Stack) -> list[Violation]:
    """Scheduled etcd snapshots on every control-plane node, each copied to a backup target off the
    node: a snapshot on the disk of the member it protects is lost with that member."""
    nodes = sorted(stack.control_plane_nodes, key=lambda n: n.name)
    if not nodes:
        return []
    declared = stack.of_type(ETCD_SNAPSHOTS)
    cluster = stack.cluster()
    where = declared[0] if declared else cluster
    urn, name = (where.urn, where.name) if where is not None else ("", "cluster")
    props = declared[0].props if declared else {}
    if not declared:
        return [Violation(urn, f"{name}: no etcd snapshots are declared (etcd.snapshots)")]
    if props.get("enabled") is False:
        return [Violation(urn, f"{name}: etcd.snapshots.enabled is false: no snapshot to restore etcd from")]
    if not props.get("target"):
        return [Violation(urn, f"{name}: etcd.snapshots.target is not set: snapshots stay on the control-plane "
                               "nodes they protect; name a backup host reached over SSH")]
    out = []
    for node in nodes:
        files = _snapshot_files(stack, node)
        if SNAPSHOT_TIMER_PATH not in files:
            out.append(Violation(node.urn, f"{node.name}: no etcd snapshot timer ({SNAPSHOT_TIMER_PATH})"))
        env_file = files.get(SNAPSHOT_ENV_PATH)
        env = environment_file(reveal(env_file.props.get("content"))) if env_file is not None else {}
        if not env.get("TARGET_ADDRESS"):
            out.append(Violation(node.urn, f"{node.name}: its snapshots are not copied off the node "
                                           f"(no TARGET_ADDRESS in {SNAPSHOT_ENV_PATH})"))
    return out


POLICIES: list[Policy] = [
    stack_policy("etcd-offsite-snapshots", "Every control-plane node takes scheduled etcd snapshots and copies them "
                 "to a backup target off the node (etcd.snapshots.target); advisory on edge.",
                 offsite_snapshots, MANDATORY, Scope((ETCD_SNAPSHOTS, NODE))),
]
