"""kube-apiserver's encryption configuration and audit policy on every control-plane node
(configs/apiserver.py has the files), key generation, and the Secrets rewrite of a key rotation.

On each control-plane node one step places both files (keys substituted on the node from stdin)
and restarts that node's apiserver when they changed; the nodes go one after another, so a change
rolls through the control plane one apiserver at a time while the others serve. On a new node the
step runs before kubeadm starts the apiserver (init and join wait for it). Once every node has its
files, the rewrite step rewrites every Secret with the write key; it runs again whenever the write
key changes (a rotation's promote step, topology/encryption.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi

from components.base import Component
from components.files import FileSet
from components.node import Node
from components.step import Step, run
from configs import apiserver
from configs.remote import Script
from topology import Cluster
from topology.encryption import keys_needed, providers

# A generated key never changes once made: not when the script, the admin node or its address does.
GENERATED_KEY_KEEPS = ("connection", "create", "triggers", "logging")


class ApiserverFiles(Component):
    """`given`: key name -> value (hakube:encryptionKeys); every other key the stack names is generated
    once on the first control-plane node and kept, secret, in the state."""

    def __init__(self, cluster: Cluster, nodes: Mapping[str, Node], given: Mapping[str, pulumi.Output[str]], *,
                 opts: pulumi.ResourceOptions) -> None:
        props = {"encryption": {"enabled": cluster.encryption.enabled, "provider": apiserver.ENCRYPTION_PROVIDER,
                                "keys": providers(cluster), "resources": list(apiserver.ENCRYPTED_RESOURCES)},
                 "audit": cluster.audit.model_dump(by_alias=True)}
        super().__init__("ApiserverFiles", "apiserver-files", props, opts)
        self.cluster = cluster
        admin = nodes[cluster.first_control_plane.name]
        keys = {name: given[name] if name in given else self._generated(name, admin) for name in keys_needed(cluster)}
        secrets = {apiserver.key_variable(name): value for name, value in keys.items()}
        files, restart = apiserver.node_files(cluster), Script("apiserver-restart.sh", apiserver.restart_env(cluster))
        self.placed: dict[str, pulumi.Resource] = {}
        previous: list[pulumi.Resource] = []
        for spec in cluster.control_plane.nodes:
            node = nodes[spec.name]
            step = FileSet(f"{spec.name}-apiserver-files", node.host, files,
                           secrets=secrets, keep_previous=False, manifest=apiserver.MANIFEST, then=restart,
                           # One apiserver restarted at a time: each node after the one before it.
                           opts=pulumi.ResourceOptions(parent=node, depends_on=[node.prerequisites, *previous]))
            self.placed[spec.name] = step.command
            previous = [step.command]
        self.admin = admin
        self.finish()

    def _generated(self, name: str, admin: Node) -> pulumi.Output[str]:
        step = run(
            f"encryption-key-{name}", admin.host,
            Step(Script("encryption-key.sh"), secret_stdout=True, ignore_changes=GENERATED_KEY_KEEPS),
            # The cluster's, not the node's: the key outlives the node it was made on.
            pulumi.ResourceOptions(parent=self, depends_on=[admin.prerequisites]),
        )
        key: pulumi.Output[str] = pulumi.Output.secret(step.stdout)
        return key.apply(str.strip)

    def rewrite_secrets(self, after: pulumi.Resource) -> pulumi.Resource:
        """The step rewriting every Secret with the write key once every apiserver has it first."""
        env = apiserver.rewrite_env(self.cluster)
        return run(
            "secrets-rewrite", self.admin.host, Step(Script("secrets-rewrite.sh", env), triggers=(env["WRITE_KEY"],)),
            pulumi.ResourceOptions(parent=self, depends_on=[after, *self.placed.values()]),
        )
