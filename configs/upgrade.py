"""Upgrades and certificate checks as plain data: the order of the steps and each script's environment.

A `kubernetesVersion` change runs, in this order (components/upgrade.py wires it):
1. each control-plane node, one at a time, the first one first:
   etcd snapshot of its member (components/etcd.py, when etcd.snapshots is enabled) ->
   backend disabled on every LB node -> drain (kubectl on the first control-plane node) ->
   kubeadm-upgrade.sh (`upgrade plan` + `upgrade apply` on the first, `upgrade node` on the others,
   each with the node's UpgradeConfiguration; then the new version's containerd configuration)
   -> uncordon -> backend enabled on every LB node;
2. then the workers, `upgrade.workerParallelism` at a time: worker i waits for worker
   i - parallelism (a sliding window, so one slow worker holds back only its own lane):
   drain -> kubeadm-upgrade.sh -> uncordon;
3. then the certificate checks, one control-plane node at a time.
Every step is keyed on the target version (its replace trigger) and finds nothing to do on a node
already at it, which is what the first deployment finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from configs.kubeadm import UPGRADE_CONFIG_PATH
from configs.loadbalancer import apiserver_backends
from topology.model import Cluster

# HAProxy's runtime API socket (configs/templates/haproxy.cfg.j2) and the backend of the apiservers.
ADMIN_SOCKET = "/run/haproxy/admin.sock"
BACKEND = "kube-apiserver"


def worker_waits(workers: Sequence[str], parallelism: int) -> dict[str, str | None]:
    """Worker -> the worker whose upgrade it waits for (None: only the control plane)."""
    if parallelism < 1:
        raise ValueError(f"parallelism must be at least 1, not {parallelism}")
    return {name: (workers[i - parallelism] if i >= parallelism else None) for i, name in enumerate(workers)}


def node_env(cluster: Cluster, node: str, role: str) -> dict[str, str]:
    """kubeadm-upgrade.sh's environment; role is first, control-plane or worker."""
    env = {"KUBERNETES_VERSION": cluster.kubernetes_version, "ROLE": role, "NODE_NAME": node,
           "UPGRADE_CONFIG": UPGRADE_CONFIG_PATH}
    if cluster.packages.kubernetes_apt_source:
        env["KUBERNETES_APT_SOURCE"] = cluster.packages.kubernetes_apt_source
    return env


def drain_env(cluster: Cluster, node: str, action: str) -> dict[str, str]:
    """node-drain.sh's environment (action drain or uncordon), run on the first control-plane node."""
    return {"ACTION": action, "NODE_NAME": node, "KUBERNETES_VERSION": cluster.kubernetes_version}


def version_url(cluster: Cluster, node: str) -> str:
    """Where an LB node asks a control-plane node's apiserver for its version (anonymous /version)."""
    server = next(s for s in apiserver_backends(cluster) if s.name == node)
    return f"https://{server.address}:{server.port}/version"


def backend_env(cluster: Cluster, node: str, action: str) -> dict[str, str]:
    """haproxy-backend.sh's environment (action disable or enable) for control-plane node `node`."""
    env = {"ACTION": action, "SERVER": node, "BACKEND": BACKEND, "KUBERNETES_VERSION": cluster.kubernetes_version}
    if action == "disable":
        env["VERSION_URL"] = version_url(cluster, node)
    return env


def certs_env(cluster: Cluster, node: str) -> dict[str, str]:
    return {"NODE_NAME": node, "RENEW_BEFORE_DAYS": str(cluster.certificates.renew_before_days),
            "APISERVER_PORT": str(cluster.apiserver_port)}


def check_period(today: date, renew_before_days: int) -> str:
    """The certificate check's replace trigger: changes every renewBeforeDays/2 days (at least daily),
    so a `pulumi up` in each period checks again, and a certificate cannot slip through unrenewed
    between two checks (a check every P days catches expiry within 2P days)."""
    period = max(1, renew_before_days // 2)
    return f"every {period}d: period {today.toordinal() // period}"
