"""The version-change rule: kubeadm upgrades one minor at a time and never downgrades.

Unlike the rules in topology/rules.py it needs the previously deployed version, which is not in
the stack file: the program reads it from the stack's own `kubernetesVersion` output
(components/previous.py) and the dry run from `--previous-version`.
"""

from __future__ import annotations

from topology.load import TopologyError, render_loc
from topology.model import Cluster
from topology.rules import Problem

LOC = ("kubernetesVersion",)


def _parts(version: str) -> tuple[int, int, int]:
    major, minor, patch = (int(p) for p in version.removeprefix("v").split("."))
    return major, minor, patch


def check_upgrade(previous: str | None, new: str) -> list[Problem]:
    """Problems with going from `previous` (None: first deployment) to `new`."""
    if not previous:
        return []
    try:
        old_v, new_v = _parts(previous), _parts(new)
    except ValueError:
        return [Problem(LOC, f"the deployed version {previous!r} is not x.y.z; cannot check the upgrade path")]
    if new_v < old_v:
        return [Problem(LOC, f"{new} is older than the deployed {previous}; kubeadm does not downgrade")]
    if new_v[0] != old_v[0] or new_v[1] > old_v[1] + 1:
        return [Problem(LOC, f"{previous} -> {new} skips a minor version; kubeadm upgrades one minor at a time"
                        f" (go to 1.{old_v[1] + 1}.x first)")]
    return []


def refuse_bad_upgrade(previous: str | None, cluster: Cluster) -> None:
    """Raise TopologyError (one path-named line per problem) when the version change is refused."""
    problems = check_upgrade(previous, cluster.kubernetes_version)
    if problems:
        raise TopologyError([f"{render_loc(p.loc)}: {p.message}" for p in problems])
