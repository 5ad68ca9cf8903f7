"""containerd's config.toml of every node: built as data, written by configs/tomlwriter.py, read
back with tomllib; config version 3 with the systemd cgroup driver through runc's options, the
sandbox image kubeadm pulls for the cluster's minor, and the socket the kubelet is pointed at."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from configs import containerd, kubeadm
from configs.tomlwriter import dumps
from dryrun.mockrun import REPO
from topology import load_stack_file
from topology.versions import SUPPORTED

DEV = load_stack_file(REPO / "Pulumi.dev.yaml")


def _at(version: str) -> Any:
    return DEV.model_copy(update={"kubernetes_version": version})


def test_config_version_3_with_the_systemd_cgroup_driver_through_runc_options() -> None:
    config = tomllib.loads(containerd.containerd_config(DEV))
    assert config["version"] == 3
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]["containerd"]
    assert runtime["runtimes"]["runc"] == {"runtime_type": "io.containerd.runc.v2", "options": {"SystemdCgroup": True}}
    assert runtime["default_runtime_name"] == "runc"
    # No containerd 1.x section: the CRI plugin of config version 2 is gone.
    assert "io.containerd.grpc.v1.cri" not in config["plugins"]
    # The kubelet drives cgroups the same way.
    assert "cgroupDriver: systemd" in kubeadm.kubelet_config(DEV, DEV.workers[0])


def test_the_text_says_what_the_containerd_docs_show() -> None:
    text = containerd.containerd_config(DEV)
    assert text.startswith("version = 3\n")
    assert "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n" in text


@pytest.mark.parametrize(("version", "pause"), [("1.35.9", "3.10.1"), ("1.36.5", "3.10.2"), ("1.37.2", "3.10.2")])
def test_the_sandbox_image_is_kubeadms_pause_for_the_minor(version: str, pause: str) -> None:
    images = tomllib.loads(containerd.containerd_config(_at(version)))["plugins"]["io.containerd.cri.v1.images"]
    assert images["pinned_images"]["sandbox"] == f"registry.k8s.io/pause:{pause}"


def test_every_supported_minor_names_a_pause() -> None:
    assert all(m.pause.count(".") >= 1 for m in SUPPORTED)


def test_containerd_listens_where_the_kubelet_and_kubeadm_connect() -> None:
    config = tomllib.loads(containerd.containerd_config(DEV))
    assert f"unix://{config['grpc']['address']}" == kubeadm.CRI_SOCKET == containerd.CRI_SOCKET
    assert f"containerRuntimeEndpoint: {kubeadm.CRI_SOCKET}" in kubeadm.kubelet_config(DEV, DEV.workers[0])


# --- the TOML writer ---------------------------------------------------------------------------

_keys = st.one_of(st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True),
                  st.text(st.characters(blacklist_characters="'\n\r", blacklist_categories=("Cs", "Cc")),
                          min_size=1, max_size=12))
_scalars = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20))
_tables = st.recursive(st.dictionaries(_keys, _scalars, max_size=4),
                       lambda children: st.dictionaries(_keys, st.one_of(_scalars, children), max_size=4),
                       max_leaves=12)


@given(_tables)
def test_every_table_reads_back_as_written(data: dict[str, Any]) -> None:
    assert tomllib.loads(dumps(data)) == data


def test_lists_and_empty_tables_read_back() -> None:
    data = {"a": [1, 2], "b": {}, "c": {"d": {}, "e": ["x", "y"]}}
    assert tomllib.loads(dumps(data)) == data


@pytest.mark.parametrize(("data", "error"), [
    ({"it's": 1}, ValueError), ({"a": 1.5}, TypeError), ({"a": None}, TypeError),
])
def test_what_the_writer_cannot_write_is_refused(data: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        dumps(data)
