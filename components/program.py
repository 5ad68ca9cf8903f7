"""What `__main__.py` runs: load and check the topology, then build the cluster."""

from __future__ import annotations

from typing import Any

import pulumi

from components.cluster import HakubeCluster
from components.previous import previous_outputs
from configs import registries
from configs.loadbalancer import VRRP_AUTH_REFUSED
from topology import Cluster, TopologyError, load_cluster
from topology.bootstrap import bootstrap_roles
from topology.bootstrap import outputs as bootstrap_outputs
from topology.encryption import KEYS_CONFIG, OUTPUT, deployed_keys, previous_keys, refuse_unsafe_rotation
from topology.upgrade import refuse_bad_upgrade


def run(config: pulumi.Config) -> HakubeCluster:
    if config.get_secret("vrrpPassword") is not None:
        # Not declared in Pulumi.yaml (the engine would then require it): refused when set.
        raise pulumi.RunError(f"invalid stack configuration:\n{VRRP_AUTH_REFUSED}")
    try:
        cluster = load_cluster(config.require_object("cluster"))
        previous = previous_outputs()
        refuse_bad_upgrade(previous_version(previous), cluster)
        roles = bootstrap_roles(cluster, previous)
        given_keys = encryption_keys(config)
        refuse_unsafe_rotation(previous_keys(previous), cluster, given_keys)
    except TopologyError as err:
        # Refuse before any resource is registered, one path-named line per problem, no traceback.
        raise pulumi.RunError("invalid stack configuration:\n" + "\n".join(err.lines)) from None
    key = config.require_secret("sshPrivateKey")
    built = HakubeCluster(cluster, key, roles, previous_version=previous_version(previous),
                          etcd_backup_key=etcd_backup_key(config, cluster),
                          registry_passwords=registry_passwords(config, cluster),
                          encryption_keys={name: pulumi.Output.secret(value) for name, value in given_keys.items()})
    # Read back by the next deployment (topology/bootstrap.py): which node ran init, which is first.
    for name, value in bootstrap_outputs(cluster, roles).items():
        pulumi.export(name, value)
    pulumi.export("apiEndpoint", f"https://{cluster.api_endpoint.vip}:{cluster.api_endpoint.port}")
    pulumi.export("kubernetesVersion", cluster.kubernetes_version)
    # Read back by the next deployment (topology/encryption.py): the key order it rolled out.
    pulumi.export(OUTPUT, deployed_keys(cluster, given_keys))
    pulumi.export("kubeconfig", built.kubeconfig)
    pulumi.export("certificates", built.upgrades.certificates)
    if built.addons is not None and built.addons.smoke_test is not None:
        pulumi.export("smokeTest", built.addons.smoke_test)
    return built


def previous_version(previous: dict[str, Any]) -> str | None:
    """The kubernetesVersion this stack last deployed (its own output, components/previous.py), or
    None on a first deployment."""
    value = previous.get("kubernetesVersion")
    return str(value) if value else None


# The key etcd-snapshot.sh copies snapshots off the nodes with: a key of its own (the target
# authorizes only it), never hakube:sshPrivateKey, which would give every control-plane node root
# on every host.
ETCD_BACKUP_KEY = "etcdBackupSshKey"


def etcd_backup_key(config: pulumi.Config, cluster: Cluster) -> pulumi.Output[str] | None:
    """hakube:etcdBackupSshKey when the stack names a backup target (then it is required)."""
    if cluster.etcd.snapshots.target is None:
        return None
    key = config.get_secret(ETCD_BACKUP_KEY)
    if key is None:
        raise pulumi.RunError(f"invalid stack configuration:\nhakube:{ETCD_BACKUP_KEY}: required when"
                              " hakube:cluster.etcd.snapshots.target is set (pulumi config set --secret"
                              f" hakube:{ETCD_BACKUP_KEY} < the private key the target authorizes)")
    return key


def encryption_keys(config: pulumi.Config) -> dict[str, str]:
    """hakube:encryptionKeys: key name -> value (checked by topology/encryption.py; may be unset)."""
    value = config.get_object(KEYS_CONFIG)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise TopologyError([f"hakube:{KEYS_CONFIG}: must be a mapping of key name to base64 key (pulumi config"
                             f" set --secret --path 'hakube:{KEYS_CONFIG}.key1' \"$(head -c 32 /dev/urandom |"
                             " base64)\")"])
    return dict(value)


def registry_passwords(config: pulumi.Config, cluster: Cluster) -> dict[str, pulumi.Output[str]]:
    """The secret of every registry login (registries.endpoints[*].passwordSecret), each required."""
    out: dict[str, pulumi.Output[str]] = {}
    for login in registries.logins(cluster):
        key = login.password_secret
        value = config.get_secret(key)
        if value is None or not config.get(key):  # unset, or set to nothing
            url = next(u for u, e in cluster.registries.endpoints.items() if e.password_secret == key and e.username)
            raise pulumi.RunError(f"invalid stack configuration:\nhakube:{key}: required by"
                                  f" hakube:cluster.registries.endpoints[{url!r}].username (pulumi config set"
                                  f" --secret hakube:{key})")
        out[key] = value
    return out
