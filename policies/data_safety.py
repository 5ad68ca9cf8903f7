"""Data safety: etcd snapshots (components/etcd.py, configs/etcd.py) taken on every control-plane
node and copied off it, so losing a member never loses the data it protects; and Secrets encrypted
in etcd (components/apiserver.py, configs/apiserver.py), so a copied snapshot or disk does not give
them away."""

from __future__ import annotations

from typing import Any

from ._data import Resource, Stack, Violation, load_yaml_docs, reveal
from ._engine import MANDATORY, Policy, Scope, stack_policy
from .contract import (
    APISERVER_FILES,
    ENCRYPTION_CONFIG_PATH,
    ENCRYPTION_FLAG,
    ETCD_SNAPSHOTS,
    NODE,
    PLAIN_TEXT_PROVIDER,
    SNAPSHOT_ENV_PATH,
    SNAPSHOT_TIMER_PATH,
)


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


def _first_providers(content: Any) -> list[str]:
    """The first provider of each resource group for secrets of an EncryptionConfiguration ('' where none)."""
    out = []
    for doc in load_yaml_docs(content):
        if doc.get("kind") != "EncryptionConfiguration":
            continue
        for group in doc.get("resources") or []:
            if not isinstance(group, dict) or "secrets" not in (group.get("resources") or []):
                continue
            providers = group.get("providers") or []
            first = providers[0] if providers and isinstance(providers[0], dict) else {}
            out.append(next(iter(first), ""))
    return out


def _apiserver_flags(stack: Stack) -> dict[str, str]:
    """apiServer.extraArgs of the ClusterConfiguration kubeadm init reads (name -> value)."""
    for drop in stack.kubeadm_drops:
        for doc in load_yaml_docs(drop.props.get("content")):
            if doc.get("kind") == "ClusterConfiguration":
                args = (doc.get("apiServer") or {}).get("extraArgs") or []
                return {str(a.get("name")): str(a.get("value")) for a in args if isinstance(a, dict)}
    return {}


def encryption_at_rest(stack: Stack) -> list[Violation]:
    """Secrets are encrypted in etcd: kube-apiserver reads an EncryptionConfiguration whose write
    provider for secrets is not `identity` (plain text), on every control-plane node."""
    nodes = sorted(stack.control_plane_nodes, key=lambda n: n.name)
    if not nodes:
        return []
    declared = stack.of_type(APISERVER_FILES)
    if not declared:
        cluster = stack.cluster()
        return [Violation(cluster.urn if cluster is not None else "",
                          "no encryption at rest is declared (encryption): Secrets are stored in plain text")]
    component = declared[0]
    if (component.props.get("encryption") or {}).get("enabled") is False:
        return [Violation(component.urn, f"{component.name}: encryption.enabled is false: Secrets are stored in etcd"
                                         " in plain text")]
    out = []
    if _apiserver_flags(stack).get(ENCRYPTION_FLAG) != ENCRYPTION_CONFIG_PATH:
        out.append(Violation(component.urn, f"{component.name}: kube-apiserver is not started with"
                                            f" --{ENCRYPTION_FLAG}={ENCRYPTION_CONFIG_PATH}"))
    for node in nodes:
        firsts = [first for d in stack.files_on(node) if d.props.get("path") == ENCRYPTION_CONFIG_PATH
                  for first in _first_providers(reveal(d.props.get("content")))]
        if not firsts:
            out.append(Violation(node.urn, f"{node.name}: no EncryptionConfiguration for secrets"
                                           f" ({ENCRYPTION_CONFIG_PATH})"))
        elif any(first in ("", PLAIN_TEXT_PROVIDER) for first in firsts):
            out.append(Violation(node.urn, f"{node.name}: secrets are written with the identity provider (plain"
                                           f" text) in {ENCRYPTION_CONFIG_PATH}"))
    return out


POLICIES: list[Policy] = [
    stack_policy("etcd-offsite-snapshots", "Every control-plane node takes scheduled etcd snapshots and copies them "
                 "to a backup target off the node (etcd.snapshots.target); advisory on edge.",
                 offsite_snapshots, MANDATORY, Scope((ETCD_SNAPSHOTS, NODE))),
    stack_policy("encryption-at-rest", "Every control-plane node's kube-apiserver encrypts Secrets in etcd (an "
                 "EncryptionConfiguration whose write provider is not identity); advisory on edge.",
                 encryption_at_rest, MANDATORY, Scope((APISERVER_FILES, NODE))),
]
