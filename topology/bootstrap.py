"""Which control-plane node ran `kubeadm init`, and which one hakube runs its admin steps on.

Both follow from the stack file plus what the previous deployment recorded in its stack outputs
(`firstControlPlane`, `kubeadmInitNode`, `controlPlaneNodes`; read by components/previous.py), so
that reordering or removing control-plane nodes never turns a member into a fresh `kubeadm init`
or resets a node that is still wanted:

- The **init node** ran `kubeadm init`; its `kubeadm-init` step exists while it is listed and, once
  it has been removed, never again (a node re-added under its name joins like any other).
- The **admin node** is `controlPlane.nodes[0]`: join credentials are made there, membership is
  checked and removed from there, the admin kubeconfig is read there. It must already hold an
  admin kubeconfig: the init node, or a control-plane node that joined in an earlier deployment.
- **Promotion**: list a joined control-plane node first and deploy; the init node stays (its own
  removal steps now run from the promoted node). A later deployment may then remove it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from topology.load import TopologyError
from topology.model import Cluster

PATH = "hakube:cluster.controlPlane.nodes"


@dataclass(frozen=True)
class Bootstrap:
    init_node: str | None  # None: the node that ran `kubeadm init` has been removed
    admin_node: str


def outputs(cluster: Cluster, roles: Bootstrap) -> dict[str, Any]:
    """The stack outputs a deployment records for the next one to read."""
    return {
        "firstControlPlane": roles.admin_node,
        "kubeadmInitNode": roles.init_node or "",
        "controlPlaneNodes": [cp.name for cp in cluster.control_plane.nodes],
    }


def bootstrap_roles(cluster: Cluster, previous: Mapping[str, Any]) -> Bootstrap:
    """The init and admin nodes of this deployment; TopologyError when the change is unsafe."""
    names = [cp.name for cp in cluster.control_plane.nodes]
    admin = names[0]
    if not previous.get("firstControlPlane"):  # never deployed: the first node listed runs init
        return Bootstrap(init_node=admin, admin_node=admin)
    before_admin = str(previous["firstControlPlane"])
    before_init = str(previous.get("kubeadmInitNode", before_admin))
    members = [str(n) for n in previous.get("controlPlaneNodes") or [before_admin]]
    problems = []
    if before_init and before_init not in names and before_admin == before_init:
        problems.append(
            f"{PATH}: {before_init} ran `kubeadm init` and is the node hakube runs its admin steps on; it"
            f" cannot be removed in the same change. Promote another control-plane node first: list a joined one"
            f" ({', '.join(n for n in members if n != before_init) or 'none yet'}) first, deploy, then remove"
            f" {before_init}"
        )
    elif admin not in members:
        problems.append(
            f"{PATH}[0]: {admin} is listed first but has not joined yet; the first node makes join credentials"
            f" and removes nodes, so it must already be a member ({', '.join(members)}). List {admin} after"
            f" {before_admin}"
        )
    if problems:
        raise TopologyError(problems)
    return Bootstrap(init_node=before_init if before_init in names else None, admin_node=admin)
