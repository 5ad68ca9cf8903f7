"""What `__main__.py` runs: load and check the topology, then build the cluster."""

from __future__ import annotations

import pulumi

from components.cluster import HakubeCluster
from topology import TopologyError, load_cluster


def run(config: pulumi.Config) -> HakubeCluster:
    try:
        cluster = load_cluster(config.require_object("cluster"))
    except TopologyError as err:
        # Refuse before any resource is registered, one path-named line per problem, no traceback.
        raise pulumi.RunError("invalid stack configuration:\n" + "\n".join(err.lines)) from None
    key = config.require_secret("sshPrivateKey")
    built = HakubeCluster(cluster, key)
    pulumi.export("apiEndpoint", f"https://{cluster.api_endpoint.vip}:{cluster.api_endpoint.port}")
    pulumi.export("kubernetesVersion", cluster.kubernetes_version)
    pulumi.export("kubeconfig", built.kubeconfig)
    if built.addons.smoke_test is not None:
        pulumi.export("smokeTest", built.addons.smoke_test)
    return built
