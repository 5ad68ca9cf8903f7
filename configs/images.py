"""The images a cluster pulls, by their upstream names, and how each follows `images.repository`.

The rule a site mirrors by: every image keeps its upstream path under the repository in place of its registry
host (docker.io/envoyproxy/envoy:x -> registry.site.example:5000/envoyproxy/envoy:x), for kubeadm's images
(its imageRepository, plus dns.imageRepository so CoreDNS keeps its coredns/coredns path), the pause image
containerd pins, and every chart whose values allow it. `python -m dryrun --list-images` prints the list
(configs/addons.py cluster_images picks the charts a stack installs).

Chart images are what each pinned chart (at its version in configs/addons.py) and, for Calico, the Tigera
operator deploy with hakube's values; each entry names where its tags were read. Cilium's chart could not be
read here (cilium/cilium is too large to fetch), so its list is partial and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from topology.model import Cluster
from topology.versions import minor_of

# kubeadm's default imageRepository (kubeadm's constants), where every upstream kubeadm image lives.
KUBEADM_REGISTRY = "registry.k8s.io"
PAUSE = "pause"
# In kubeadm's order (`kubeadm config images list`).
KUBERNETES_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
COREDNS_PATH = "coredns/coredns"  # kubeadm renames registry.k8s.io/coredns to this path only upstream


def mirrored(reference: str, repository: str | None) -> str:
    """`reference` (registry/path[:tag]) with its registry host replaced by `repository`, when there is one."""
    if repository is None:
        return reference
    return f"{repository}/{reference.split('/', 1)[1]}"


def pause_image(cluster: Cluster) -> str:
    """The sandbox image kubeadm pulls for the cluster's minor, and containerd pins."""
    return mirrored(f"{KUBEADM_REGISTRY}/{PAUSE}:{minor_of(cluster.kubernetes_version).pause}",
                    cluster.images.repository)


def kubeadm_images(cluster: Cluster) -> list[str]:
    """What kubeadm of the cluster's version pulls (upstream names), in `kubeadm config images list` order."""
    minor = minor_of(cluster.kubernetes_version)
    tag = f"v{cluster.kubernetes_version}"
    return [*(f"{KUBEADM_REGISTRY}/{name}:{tag}" for name in KUBERNETES_COMPONENTS),
            f"{KUBEADM_REGISTRY}/{COREDNS_PATH}:{minor.coredns}", f"{KUBEADM_REGISTRY}/{PAUSE}:{minor.pause}",
            f"{KUBEADM_REGISTRY}/etcd:{minor.etcd}"]


def kubeadm_image_fields(cluster: Cluster) -> dict[str, Any]:
    """ClusterConfiguration fields that point kubeadm at images.repository ({} without one)."""
    repository = cluster.images.repository
    if repository is None:
        return {}
    # kubeadm puts CoreDNS at <imageRepository>/coredns; its own repository keeps the upstream path.
    return {"imageRepository": repository, "dns": {"imageRepository": f"{repository}/{COREDNS_PATH.split('/')[0]}"}}


# --- charts -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChartImages:
    """The images one pinned chart makes the cluster pull, and the values pointing them at a repository."""

    images: Callable[[str], tuple[str, ...]]  # chart version -> upstream references
    values: Callable[[str, str], dict[str, Any]]  # (repository, chart version) -> values overrides
    unlisted: str = ""  # what this list leaves out, and how to get it


def _calico(version: str) -> tuple[str, ...]:
    # What the Tigera operator v1.42.3 (the operator of Calico v3.32.1: its pkg/components/calico.go) renders
    # for hakube's Installation: Calico CNI on the v1 CRDs (no webhooks), the API server, Goldmane and Whisker
    # (the chart's defaults), the flexvol driver (FlexVolumePath defaulted), no CSI (the chart's
    # kubeletVolumePluginPath "None"), no certificate management (no key-cert-provisioner).
    components = ("node", "cni", "kube-controllers", "typha", "pod2daemon-flexvol", "apiserver", "goldmane",
                  "whisker", "whisker-backend")
    return ("quay.io/tigera/operator:v1.42.3", *(f"quay.io/calico/{name}:{version}" for name in components))


def _calico_values(repository: str, version: str) -> dict[str, Any]:
    # tigeraOperator.registry holds tigera/operator; installation.registry every calico/<component> (the
    # Installation API wants the trailing slash).
    return {"tigeraOperator": {"registry": repository}, "installation": {"registry": f"{repository}/"}}


def _cilium(version: str) -> tuple[str, ...]:
    tag = f"v{version.lstrip('v')}"  # Cilium's chart versions have no v, its image tags do
    return (f"quay.io/cilium/cilium:{tag}", f"quay.io/cilium/operator-generic:{tag}")


def _cilium_values(repository: str, version: str) -> dict[str, Any]:
    # The keys Cilium's chart has had since 1.1x (not read at 1.20.5 here); the operator image is
    # <operator.image.repository>-generic. Digests stay the chart's: copy images with their digests.
    return {"image": {"repository": mirrored("quay.io/cilium/cilium", repository)},
            "operator": {"image": {"repository": mirrored("quay.io/cilium/operator", repository)}},
            "envoy": {"image": {"repository": mirrored("quay.io/cilium/cilium-envoy", repository)}}}


def _flannel(version: str) -> tuple[str, ...]:
    # chart/kube-flannel/values.yaml at v0.28.9.
    return (f"ghcr.io/flannel-io/flannel:{version}", "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3")


def _flannel_values(repository: str, version: str) -> dict[str, Any]:
    return {"flannel": {"image": {"repository": mirrored("ghcr.io/flannel-io/flannel", repository)},
                        "flannel_cni": {"image": {"repository": mirrored("ghcr.io/flannel-io/flannel-cni-plugin",
                                                                         repository)}}}}


def _metallb(version: str) -> tuple[str, ...]:
    # charts/metallb at metallb-chart-0.16.1: tags default to the appVersion, v<chart version>; frr is off.
    return tuple(f"quay.io/metallb/{name}:v{version}" for name in ("controller", "speaker"))


def _metallb_values(repository: str, version: str) -> dict[str, Any]:
    return {name: {"image": {"repository": mirrored(f"quay.io/metallb/{name}", repository)}}
            for name in ("controller", "speaker")}


# Envoy Gateway v1.9.0: its Envoy proxy image (api/v1alpha1/shared_types.go DefaultEnvoyProxyImage); the
# controller image is docker.io/envoyproxy/gateway:<tag> (release workflow), its certgen job too.
ENVOY_PROXY_IMAGE = "docker.io/envoyproxy/envoy:distroless-v1.39.0"


def _envoy_gateway(version: str) -> tuple[str, ...]:
    return (f"docker.io/envoyproxy/gateway:{version}", ENVOY_PROXY_IMAGE)


def _envoy_gateway_values(repository: str, version: str) -> dict[str, Any]:
    # global.imageRegistry replaces the registry of the controller (and rate-limit) image; the proxy image
    # follows it once global.images.envoyProxy.image is set (charts/gateway-helm/templates/_helpers.tpl).
    return {"global": {"imageRegistry": repository, "images": {"envoyProxy": {"image": ENVOY_PROXY_IMAGE}}}}


def _none(version: str) -> tuple[str, ...]:
    return ()


def _no_values(repository: str, version: str) -> dict[str, Any]:
    return {}


# By chart name (configs/addons.py pins the charts).
CHART_IMAGES: Mapping[str, ChartImages] = {
    "tigera-operator": ChartImages(_calico, _calico_values),
    "crd.projectcalico.org.v1": ChartImages(_none, _no_values),
    "cilium": ChartImages(_cilium, _cilium_values, unlisted="cilium-envoy (and any optional component turned on):"
                          " `helm template cilium cilium --repo https://helm.cilium.io/ --version 1.20.5 | grep"
                          " image:`"),
    "flannel": ChartImages(_flannel, _flannel_values),
    "metallb": ChartImages(_metallb, _metallb_values),
    "gateway-crds-helm": ChartImages(_none, _no_values),
    "gateway-helm": ChartImages(_envoy_gateway, _envoy_gateway_values),
}


def chart_images(name: str, version: str) -> tuple[str, ...]:
    return CHART_IMAGES[name].images(version)


def chart_image_values(cluster: Cluster, name: str, version: str) -> dict[str, Any]:
    """Values pointing chart `name`'s images at images.repository ({} without one)."""
    repository = cluster.images.repository
    return {} if repository is None else CHART_IMAGES[name].values(repository, version)
