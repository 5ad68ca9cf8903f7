"""The images a cluster pulls (configs/images.py, configs/addons.py cluster_images): kubeadm's per-minor tags
held to the real kubeadm v1.37.2, images.repository followed by kubeadm, containerd and every chart, and
charts.repository as every chart's source."""

from __future__ import annotations

import copy
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from configs import addons, containerd, images, kubeadm
from lab import realtools
from tests.chart_values import cni_pod_cidr
from tests.mockgraph import cluster_copy
from topology import load_cluster
from topology.versions import SUPPORTED, minor_of

REPO_PREFIX = "registry.site.example:5000/k8s"


def _cluster(version: str = "1.37.2", repository: str | None = None, **addon_settings: Any) -> Any:
    data = cluster_copy("dev")
    data["kubernetesVersion"] = version
    if repository:
        data["images"] = {"repository": repository}
    data["addons"].update(addon_settings)
    return load_cluster(data)


def _kubeadm(*args: str) -> list[str]:
    result = subprocess.run([str(realtools.path_of("kubeadm")), "config", "images", "list", *args],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.realtool("kubeadm")
def test_the_newest_minor_s_images_are_what_the_real_kubeadm_lists() -> None:
    version = realtools.pinned()["KUBERNETES_VERSION"]
    assert minor_of(version).minor == SUPPORTED[-1].minor  # the built kubeadm is the newest minor's
    assert images.kubeadm_images(_cluster(version)) == _kubeadm("--kubernetes-version", f"v{version}")


@pytest.mark.realtool("kubeadm")
def test_the_real_kubeadm_reads_images_repository_from_init_yaml_as_hakube_lists_it(tmp_path: Path) -> None:
    """kubeadm parses the rendered init.yaml (every document of it) and lists the renamed images."""
    cluster = _cluster(realtools.pinned()["KUBERNETES_VERSION"], REPO_PREFIX)
    config = tmp_path / "init.yaml"
    config.write_text(kubeadm.init_config(cluster))
    listed = _kubeadm("--config", str(config))
    assert listed == [images.mirrored(name, REPO_PREFIX) for name in images.kubeadm_images(cluster)]
    assert f"{REPO_PREFIX}/coredns/coredns:{minor_of(cluster.kubernetes_version).coredns}" in listed
    # And the pause containerd pins is the one kubeadm pulls.
    sandbox = tomllib.loads(containerd.containerd_config(cluster))["plugins"]["io.containerd.cri.v1.images"]
    assert sandbox["pinned_images"]["sandbox"] in listed


@pytest.mark.parametrize("row", SUPPORTED, ids=[f"1.{m.minor}" for m in SUPPORTED])
def test_every_minor_names_its_own_kubeadm_tags(row: Any) -> None:
    listed = images.kubeadm_images(_cluster(f"1.{row.minor}.{row.newest_patch}"))
    assert listed[:4] == [f"registry.k8s.io/{name}:v1.{row.minor}.{row.newest_patch}"
                          for name in images.KUBERNETES_COMPONENTS]
    assert listed[4:] == [f"registry.k8s.io/coredns/coredns:{row.coredns}", f"registry.k8s.io/pause:{row.pause}",
                          f"registry.k8s.io/etcd:{row.etcd}"]
    assert row.coredns.startswith("v") and row.etcd.endswith("-0")


def test_without_a_repository_nothing_is_renamed() -> None:
    cluster = _cluster()
    assert images.kubeadm_image_fields(cluster) == {}
    assert "imageRepository" not in kubeadm.init_config(cluster)
    assert all(pulled == upstream for pulled, upstream in addons.cluster_images(cluster))


@pytest.mark.parametrize("reference", ["quay.io/calico/node:v3.32.1", "docker.io/library/nginx:1.28",
                                       "registry.k8s.io/coredns/coredns:v1.14.6"])
def test_mirrored_keeps_the_upstream_path_under_the_repository(reference: str) -> None:
    assert images.mirrored(reference, REPO_PREFIX) == f"{REPO_PREFIX}/{reference.split('/', 1)[1]}"
    assert images.mirrored(reference, None) == reference


# --- charts --------------------------------------------------------------------------------------

def _values_of(cluster: Any, chart: addons.Chart, values: dict[str, Any]) -> dict[str, Any]:
    return addons.chart_values(cluster, chart, values)


def test_calico_s_operator_and_components_follow_the_repository_and_keep_the_pod_cidr() -> None:
    cluster = _cluster(repository=REPO_PREFIX)
    values = _values_of(cluster, addons.cni_chart(cluster), addons.cni_values(cluster))
    assert values["tigeraOperator"]["registry"] == REPO_PREFIX
    assert values["installation"]["registry"] == f"{REPO_PREFIX}/"  # the Installation API wants the slash
    assert cni_pod_cidr("calico", values) == str(cluster.network.pod_cidr)  # merged, not replaced


@pytest.mark.parametrize(("cni", "paths"), [
    ("flannel", [("flannel", "image", "repository"), ("flannel", "flannel_cni", "image", "repository")]),
    ("cilium", [("image", "repository"), ("operator", "image", "repository"), ("envoy", "image", "repository")]),
])
def test_cni_chart_images_follow_the_repository(cni: str, paths: list[tuple[str, ...]]) -> None:
    cluster = _cluster(repository=REPO_PREFIX, cni=cni)
    values = _values_of(cluster, addons.cni_chart(cluster), addons.cni_values(cluster))
    for path in paths:
        value: Any = values
        for key in path:
            value = value[key]
        assert value.startswith(f"{REPO_PREFIX}/") and value.count("/") == REPO_PREFIX.count("/") + 2, (path, value)
    assert cni_pod_cidr(cni, values) == str(cluster.network.pod_cidr)


def test_metallb_and_envoy_gateway_follow_the_repository() -> None:
    cluster = _cluster(repository=REPO_PREFIX, metallb={"enabled": True, "addresses": ["198.18.0.200/29"]})
    metallb = _values_of(cluster, addons.METALLB_CHART, addons.metallb_values())
    assert metallb["controller"]["image"]["repository"] == f"{REPO_PREFIX}/metallb/controller"
    assert metallb["speaker"]["image"]["repository"] == f"{REPO_PREFIX}/metallb/speaker"
    assert metallb["frrk8s"] == {"enabled": False}
    envoy = _values_of(cluster, addons.ENVOY_GATEWAY_CHART, addons.envoy_gateway_values())
    assert envoy["global"]["imageRegistry"] == REPO_PREFIX and envoy["crds"] == {"enabled": False}
    assert envoy["global"]["images"]["envoyProxy"]["image"] == images.ENVOY_PROXY_IMAGE


def test_every_pinned_chart_has_an_image_entry_and_the_lists_name_their_chart_s_version() -> None:
    pinned = [*addons.CNI_CHARTS.values(), addons.CALICO_CRD_CHART, addons.METALLB_CHART,
              addons.ENVOY_GATEWAY_CRD_CHART, addons.ENVOY_GATEWAY_CHART]
    assert {chart.name for chart in pinned} == set(images.CHART_IMAGES)
    for chart in pinned:
        listed = images.chart_images(chart.name, chart.version)
        assert all(name.count("/") >= 2 and ":" in name.rsplit("/", 1)[1] for name in listed), listed
        if listed:
            assert any(name.endswith(f":v{chart.version.lstrip('v')}") for name in listed), (chart.name, listed)


def test_the_images_follow_what_the_stack_installs() -> None:
    dev = [upstream for _, upstream in addons.cluster_images(_cluster())]
    assert "docker.io/envoyproxy/gateway:v1.9.0" in dev and addons.SMOKE_IMAGE in dev
    assert not any("metallb" in name for name in dev)
    bare = [upstream for _, upstream in addons.cluster_images(
        _cluster(smokeTest=False, gateway={"enabled": False}, metallb={"enabled": True,
                                                                       "addresses": ["198.18.0.200/29"]}))]
    assert addons.SMOKE_IMAGE not in bare and not any("envoyproxy" in name for name in bare)
    assert "quay.io/metallb/speaker:v0.16.1" in bare
    assert len(bare) == len(set(bare))
    assert addons.unlisted_images(_cluster()) == []


# --- charts.repository ---------------------------------------------------------------------------

@pytest.mark.parametrize(("repository", "expected"), [
    ("https://charts.site.example/stable", {"chart": "tigera-operator",
                                            "repository_opts": {"repo": "https://charts.site.example/stable"}}),
    ("oci://registry.site.example/charts/", {"chart": "oci://registry.site.example/charts/tigera-operator"}),
])
def test_charts_repository_is_every_chart_s_source(repository: str, expected: dict[str, Any]) -> None:
    data = cluster_copy("dev")
    data["charts"] = {"repository": repository}
    cluster = load_cluster(data)
    assert addons.chart_source(cluster, addons.CNI_CHARTS["calico"]) == expected
    envoy = addons.chart_source(cluster, addons.ENVOY_GATEWAY_CHART)
    assert envoy.get("chart", "").endswith("gateway-helm") and addons.ENVOY_GATEWAY_REGISTRY not in str(envoy)
    upstream = addons.chart_source(load_cluster(cluster_copy("dev")), addons.CNI_CHARTS["calico"])
    assert upstream == {"chart": "tigera-operator", "repository_opts": {"repo": addons.CALICO_REPO}}


def test_the_gateway_api_manifest_can_come_from_a_file_on_the_pulumi_machine() -> None:
    data = copy.deepcopy(cluster_copy("dev"))
    assert addons.gateway_api_crds(load_cluster(data)) == addons.GATEWAY_API_CRDS_URL
    data["charts"] = {"gatewayApiCrds": "/srv/mirror/gateway-api/standard-install.yaml"}
    assert addons.gateway_api_crds(load_cluster(data)) == "/srv/mirror/gateway-api/standard-install.yaml"


def test_the_smoke_deployment_pulls_from_the_repository() -> None:
    deployment = addons.smoke_deployment(_cluster(repository=REPO_PREFIX))
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"{REPO_PREFIX}/nginxinc/nginx-unprivileged:1.28.0-alpine"
    assert yaml.safe_dump(deployment)  # still plain data
