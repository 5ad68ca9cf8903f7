"""Restoring etcd from a snapshot, and recovering it after a loss of quorum, as plain data: which
member list, which flags, which step on which node, in which order. `recovery/` runs the steps
(configs/scripts/etcd-restore.sh and etcd-recover.sh) over SSH; tests/lab/test_etcd_restore_netns.py
runs them against a real etcd.

Restore (every member's data replaced by one snapshot, on the same nodes or on replacement nodes
with new addresses): the member list comes from the stack as it is now, so `etcdutl snapshot
restore` writes the NEW names and peer URLs into each data directory, with a fresh cluster token;
whatever membership the snapshot remembers is dropped. Steps: stop the static pods on every node,
hand each node the snapshot, restore each, start every node, then check each sees all members.

Recovery (quorum lost, one member's data intact): every other member is stopped and its data moved
aside; the survivor restarts once with `--force-new-cluster` (a one-member cluster keeping every
key), then normally; then the others, one at a time, are added back (`etcdctl member add` on the
survivor) and start with an empty data directory and the member list as it is after their add.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from configs.etcd import LOCAL_ENDPOINT
from configs.kubeadm import STATIC_POD_COMPONENTS
from configs.vm import ETCD_MOUNT
from topology.model import Cluster

RESTORE_SCRIPT = "etcd-restore.sh"
RECOVER_SCRIPT = "etcd-recover.sh"
PEER_PORT = 2380
# After a restore the revision counter jumps this far ahead (etcdutl --bump-revision, with
# --mark-compacted), so no Kubernetes watch sees revisions go back; etcd's recovery guide uses 1e9.
BUMP_REVISION = 1_000_000_000
# The static pods a restore stops: the apiserver before etcd (nothing writes to a member being
# replaced); controllers and scheduler too, so none acts on a cache of the replaced data.
STOP_ORDER = tuple(sorted(STATIC_POD_COMPONENTS, key=lambda pod: pod == "etcd"))
START_ORDER = tuple(reversed(STOP_ORDER))


@dataclass(frozen=True)
class Member:
    """One etcd member: its name (kubeadm: the node name), where hakube reaches its host over SSH, and
    its URLs (the client URL as the node itself reaches its member)."""

    name: str
    host: str
    peer_url: str
    client_url: str = LOCAL_ENDPOINT


@dataclass(frozen=True)
class Step:
    member: str  # the node it runs on
    script: str
    env: dict[str, str]
    what: str
    sends_snapshot: bool = False  # the snapshot file is the step's stdin


def members(cluster: Cluster) -> list[Member]:
    """The control-plane nodes as etcd members: kubeadm names each after its node and advertises
    its peer URL on the node's controlPlaneAddress."""
    return [Member(n.name, str(n.address), f"https://{n.control_plane_address}:{PEER_PORT}")
            for n in cluster.control_plane.nodes]


def initial_cluster(listed: Sequence[Member]) -> str:
    """etcd's --initial-cluster value: name=peer URL for each member."""
    return ",".join(f"{m.name}={m.peer_url}" for m in listed)


def stamp(when: datetime) -> str:
    """A UTC time for names: the fresh cluster token, the directories old data is moved to."""
    return when.strftime("%Y%m%dT%H%M%SZ")


def _check_members(listed: Sequence[Member]) -> None:
    names = [m.name for m in listed]
    if not listed:
        raise ValueError("no etcd members to restore")
    if len(set(names)) != len(names):
        raise ValueError(f"member names repeat: {', '.join(names)}")


def _names(listed: Sequence[Member]) -> str:
    return ",".join(sorted(m.name for m in listed))


def _base(member: Member, data_dir: str, when: str) -> dict[str, str]:
    return {"ETCDCTL_ENDPOINTS": member.client_url, "DATA_DIR": data_dir, "STAMP": when}


def restore_plan(listed: Sequence[Member], cluster_name: str, snapshot_sha256: str, when: str,
                 data_dir: str = ETCD_MOUNT) -> list[Step]:
    """The steps restoring every member in `listed` (the NEW member list) from one snapshot."""
    _check_members(listed)
    token = f"{cluster_name}-restore-{when}"
    everyone = initial_cluster(listed)
    steps: list[Step] = []
    for m in listed:
        steps.append(Step(m.name, RESTORE_SCRIPT, {**_base(m, data_dir, when), "STEP": "stop",
                                                   "STATIC_PODS": " ".join(STOP_ORDER)},
                          f"stop {', '.join(STOP_ORDER)} on {m.name}"))
    for m in listed:
        steps.append(Step(m.name, RESTORE_SCRIPT, {**_base(m, data_dir, when), "STEP": "receive",
                                                   "SNAPSHOT_SHA256": snapshot_sha256},
                          f"copy the snapshot to {m.name} and check it", sends_snapshot=True))
    for m in listed:
        steps.append(Step(m.name, RESTORE_SCRIPT, {
            **_base(m, data_dir, when), "STEP": "restore", "MEMBER_NAME": m.name, "PEER_URL": m.peer_url,
            "INITIAL_CLUSTER": everyone, "CLUSTER_TOKEN": token, "BUMP_REVISION": str(BUMP_REVISION),
        }, f"restore {m.name}'s data directory as member {m.name} at {m.peer_url} of {everyone}"))
    for m in listed:
        steps.append(Step(m.name, RESTORE_SCRIPT, {**_base(m, data_dir, when), "STEP": "start",
                                                   "STATIC_PODS": " ".join(START_ORDER)},
                          f"start {', '.join(START_ORDER)} on {m.name}"))
    for m in listed:
        steps.append(Step(m.name, RESTORE_SCRIPT, {**_base(m, data_dir, when), "STEP": "check",
                                                   "EXPECT_MEMBERS": _names(listed)},
                          f"wait until {m.name} is healthy and lists {_names(listed)}"))
    return steps


def recovery_plan(listed: Sequence[Member], survivor: str, when: str, data_dir: str = ETCD_MOUNT) -> list[Step]:
    """The steps rebuilding the cluster around `survivor`, the one member whose data is intact."""
    _check_members(listed)
    keeper = next((m for m in listed if m.name == survivor), None)
    if keeper is None:
        raise ValueError(f"{survivor} is not a member ({', '.join(m.name for m in listed)})")
    others = [m for m in listed if m is not keeper]
    steps = [Step(m.name, RECOVER_SCRIPT, {**_base(m, data_dir, when), "STEP": "stop-member"},
                  f"stop etcd on {m.name} and move its data aside") for m in others]
    steps.append(Step(keeper.name, RECOVER_SCRIPT, {**_base(keeper, data_dir, when), "STEP": "force-new-cluster",
                                                    "MEMBER_NAME": keeper.name},
                      f"restart {keeper.name} once with --force-new-cluster: a one-member cluster with every key"))
    joined = [keeper]
    for m in others:
        joined.append(m)
        steps.append(Step(keeper.name, RECOVER_SCRIPT, {**_base(keeper, data_dir, when), "STEP": "add",
                                                        "MEMBER_NAME": m.name, "PEER_URL": m.peer_url},
                          f"add {m.name} ({m.peer_url}) as a member, on {keeper.name}"))
        steps.append(Step(m.name, RECOVER_SCRIPT, {**_base(m, data_dir, when), "STEP": "rejoin",
                                                   "MEMBER_NAME": m.name, "PEER_URL": m.peer_url,
                                                   "INITIAL_CLUSTER": initial_cluster(joined),
                                                   "EXPECT_MEMBERS": _names(joined)},
                          f"start {m.name} with an empty data directory in {initial_cluster(joined)}"))
    return steps
