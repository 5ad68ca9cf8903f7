"""The hakube policy pack: every module's policies, in the order reports list them, and the pack
config a stack is previewed with.

Each concern keeps its rules and their policies together: vm.py (control-plane VMs), cluster.py
(spread and quorum), lb.py (the load-balancer pair), kubeadm.py (kubeadm and the kubelet),
data_safety.py (etcd snapshots), workloads.py (control-plane isolation), credentials.py (secrets).
`_data.py` holds the plain data they read, `_engine.py` the wiring into CrossGuard policies,
contract.py the facts the pack shares with the program. `POLICIES` holds the policy objects;
`__main__.py` only puts them in a PolicyPack (which starts the gRPC server the CLI talks to), so
tests and the dry run call these objects directly, the way the engine does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import EnforcementLevel

from . import cluster, credentials, data_safety, kubeadm, lb, vm, workloads
from ._engine import ADVISORY, MANDATORY, SCOPES, Policy, shared_conversions, stack_resources

PACK_NAME = "hakube-isolation"
PACK_VERSION = "0.1.0"
# Per-stack pack config (`pulumi preview --policy-pack-config policies/config/<stack>.json`).
CONFIG_DIR = Path(__file__).resolve().parent / "config"

POLICIES: list[Policy] = [*vm.POLICIES, *cluster.POLICIES, *lb.POLICIES, *kubeadm.POLICIES, *data_safety.POLICIES,
                          *workloads.POLICIES, *credentials.POLICIES]
__all__ = ["ADVISORY", "CONFIG_DIR", "MANDATORY", "PACK_NAME", "PACK_VERSION", "POLICIES", "SCOPES", "Policy",
           "enforcement_level", "policy_config", "shared_conversions", "stack_config", "stack_resources"]


def stack_config(stack: str) -> dict[str, Any]:
    """The pack config a stack is previewed with (policies/config/<stack>.json, else none)."""
    path = CONFIG_DIR / f"{stack}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _level(value: Any) -> EnforcementLevel | None:
    raw = value.get("enforcementLevel") if isinstance(value, Mapping) else value
    return EnforcementLevel(raw) if raw else None


def enforcement_level(policy: Policy, config: Mapping[str, Any]) -> EnforcementLevel:
    """As the engine resolves it: the policy's own entry, then `all`, then the policy's level."""
    return (_level(config.get(policy.name)) or _level(config.get("all")) or policy.enforcement_level
            or MANDATORY)


def policy_config(policy: Policy, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The properties (all but enforcementLevel) that `args.get_config()` returns for this policy."""
    entry = config.get(policy.name)
    if not isinstance(entry, Mapping):
        return None
    return {k: v for k, v in entry.items() if k != "enforcementLevel"} or None
