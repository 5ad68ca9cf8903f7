"""kube-apiserver's own files on every control-plane node, and the flags that point it at them.

- `/etc/kubernetes/hakube/encryption-config.yaml` (0600): the EncryptionConfiguration, Secrets
  through secretbox with the stack's keys (topology/encryption.py gives the order), `identity`
  always readable last so Secrets written before encryption was on still read. The file shown in
  the plan holds placeholders (`${HAKUBE_ENCRYPTION_KEY_KEY1}`); file-set.sh puts the values in on
  the node from its stdin (components/apiserver.py), so a key is never in a plan, argv or log.
- `/etc/kubernetes/hakube/audit-policy.yaml`: what the audit log records. Metadata (who, what,
  when, the response code) for every request, nothing for health checks, discovery and metrics;
  never a request or response body, so no Secret, ConfigMap or token value is ever written to it.

Both files are placed before `kubeadm init`/`join` starts the apiserver, and the flags (extraArgs)
and the directory mounts (extraVolumes) go into ClusterConfiguration, which kubeadm keeps in the
`kubeadm-config` ConfigMap for every later join and upgrade. The flags are always set, so turning
encryption or the audit log off only changes the files (an identity-only configuration, a policy
that records nothing); a changed file restarts the apiservers one node at a time
(configs/scripts/apiserver-restart.sh). Changing the log path, size or rotation changes flags:
those reach running apiservers at the next `kubeadm upgrade` (README).
"""

from __future__ import annotations

import posixpath
from typing import Any

from configs.yamltext import Quoted, dump
from policies.contract import APISERVER_CONFIG_DIR as CONFIG_DIR
from policies.contract import ENCRYPTION_CONFIG_PATH, ENCRYPTION_FLAG
from topology.encryption import keys_needed, providers
from topology.model import IDENTITY, Cluster

# CONFIG_DIR, ENCRYPTION_CONFIG_PATH and ENCRYPTION_FLAG are the contract's: the encryption-at-rest rule reads them.
AUDIT_POLICY_PATH = f"{CONFIG_DIR}/audit-policy.yaml"
AUDIT_POLICY_FLAG = "audit-policy-file"
# apiserver-restart.sh's record of the files the running apiserver started with (their digest).
STARTED_WITH_PATH = f"{CONFIG_DIR}/apiserver-started-with"
# file-set.sh's record of the set (a set with secrets needs one: its delete cannot list the files from
# a stdin that starts with secrets).
MANIFEST = f"{CONFIG_DIR}/apiserver-files.manifest"
ENCRYPTED_RESOURCES = ("secrets",)
ENCRYPTION_PROVIDER = "secretbox"
# kube-apiserver's stored form of a value its first provider wrote (what tests read back from etcd).
STORED_PREFIX = "k8s:enc:secretbox:v1:"
# Non-resource URLs nobody audits: probes, discovery, metrics; asked every few seconds by everything.
UNAUDITED_URLS = ("/healthz*", "/livez*", "/readyz*", "/version", "/version/", "/api", "/api/*", "/apis",
                  "/apis/*", "/openapi/*", "/metrics", "/.well-known/openid-configuration", "/openid/v1/jwks")
# Recorded at Metadata whatever a later rule says: their bodies are secret values.
METADATA_ONLY = (
    {"group": "", "resources": ["secrets", "configmaps", "serviceaccounts/token"]},
    {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
)


def key_variable(name: str) -> str:
    """The variable file-set.sh replaces with key `name`'s value (a DNS label: '-' becomes '_')."""
    return "HAKUBE_ENCRYPTION_KEY_" + name.upper().replace("-", "_")


def encryption_config(cluster: Cluster) -> dict[str, Any]:
    order = providers(cluster)
    # Quoted: the value file-set.sh puts in stays a string whatever its characters.
    keys = [{"name": name, "secret": Quoted(f"${{{key_variable(name)}}}")} for name in order if name != IDENTITY]
    secretbox = [{ENCRYPTION_PROVIDER: {"keys": keys}}] if keys else []
    identity: list[dict[str, Any]] = [{IDENTITY: {}}]
    chain = identity + secretbox if order[0] == IDENTITY else secretbox + identity
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [{"resources": list(ENCRYPTED_RESOURCES), "providers": chain}],
    }


def audit_policy(cluster: Cluster) -> dict[str, Any]:
    head = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy"}
    if not cluster.audit.enabled:
        return {**head, "rules": [{"level": "None"}]}
    return {
        **head,
        # RequestReceived would log every request twice (received, then answered).
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "nonResourceURLs": list(UNAUDITED_URLS)},
            {"level": "Metadata", "resources": [dict(r, resources=list(r["resources"])) for r in METADATA_ONLY]},
            {"level": "Metadata"},
        ],
    }


def node_files(cluster: Cluster) -> dict[str, str]:
    """What every control-plane node gets in CONFIG_DIR (keys as placeholders)."""
    return {ENCRYPTION_CONFIG_PATH: dump(encryption_config(cluster)), AUDIT_POLICY_PATH: dump(audit_policy(cluster))}


def _file_paths() -> list[str]:
    """The paths node_files places, in the order apiserver-restart.sh digests them."""
    return sorted((ENCRYPTION_CONFIG_PATH, AUDIT_POLICY_PATH))


def extra_args(cluster: Cluster) -> dict[str, str]:
    """kube-apiserver flags for ClusterConfiguration apiServer.extraArgs."""
    audit = cluster.audit
    return {
        ENCRYPTION_FLAG: ENCRYPTION_CONFIG_PATH,
        AUDIT_POLICY_FLAG: AUDIT_POLICY_PATH,
        "audit-log-path": audit.path,
        "audit-log-maxsize": str(audit.max_size_mb),
        "audit-log-maxbackup": str(audit.max_backups),
        "audit-log-maxage": str(audit.max_age_days),
    }


def extra_volumes(cluster: Cluster) -> list[dict[str, Any]]:
    """The host directories the apiserver pod mounts: its configuration (read-only), the audit log."""
    log_dir = posixpath.dirname(cluster.audit.path)
    return [
        {"name": "hakube-config", "hostPath": CONFIG_DIR, "mountPath": CONFIG_DIR, "readOnly": True,
         "pathType": "DirectoryOrCreate"},
        {"name": "audit-log", "hostPath": log_dir, "mountPath": log_dir, "readOnly": False,
         "pathType": "DirectoryOrCreate"},
    ]


def restart_env(cluster: Cluster) -> dict[str, str]:
    """apiserver-restart.sh's environment."""
    # Only the flags whose file does something: an identity-only configuration or a policy that records
    # nothing changes nothing unread, so a cluster made before the flags may run with both off.
    needed = [*([ENCRYPTION_FLAG] if keys_needed(cluster) else []),
              *([AUDIT_POLICY_FLAG] if cluster.audit.enabled else [])]
    args = extra_args(cluster)
    flags = {name: args[name] for name in needed}
    return {"CONFIG_FILES": " ".join(_file_paths()), "STARTED_WITH": STARTED_WITH_PATH,
            "APISERVER_PORT": str(cluster.apiserver_port),
            "REQUIRED_FLAGS": " ".join(f"{name}={value}" for name, value in flags.items())}


def rewrite_env(cluster: Cluster) -> dict[str, str]:
    """secrets-rewrite.sh's environment: the write provider the Secrets are rewritten with (its
    change is the step's trigger)."""
    return {"WRITE_KEY": providers(cluster)[0], "RESOURCES": " ".join(ENCRYPTED_RESOURCES)}
