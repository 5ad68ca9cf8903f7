"""Reading facts back out of rendered chart values (test-only: the program writes them, never reads them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def cni_pod_cidr(cni: str, values: Mapping[str, Any]) -> str:
    """The pod CIDR a CNI chart's values give it (configs/addons.py cni_values writes it)."""
    if cni == "calico":
        return str(values["installation"]["calicoNetwork"]["ipPools"][0]["cidr"])
    if cni == "cilium":
        return str(values["ipam"]["operator"]["clusterPoolIPv4PodCIDRList"][0])
    return str(values["podCidr"])
