"""./scripts/tools: its cache contract (offline, with a stand-in go) and the versions the built binaries report."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lab import realtools
from lab.realtools import path_of, pinned
from topology.versions import DEFAULT_VERSION

SCRIPT = str(realtools.SCRIPT)


def run(*argv: str | Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env)


def test_parse_versions_reads_pins_and_skips_comments() -> None:
    text = "# comment\nPULUMI_VERSION=3.276.0\n\nMOD=example.com/m/v4@v4.0.0-1-abc\n"
    assert realtools.parse_versions(text) == {"PULUMI_VERSION": "3.276.0", "MOD": "example.com/m/v4@v4.0.0-1-abc"}


@pytest.mark.parametrize("line", ["PULUMI_VERSION 3.276.0", "EMPTY=", "not-a-name=1"])
def test_parse_versions_rejects_a_line_the_script_would_misread(line: str) -> None:
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        realtools.parse_versions(line)


@pytest.fixture
def script_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An empty $HAKUBE_CACHE and a `go` that fails: the script must never build in these tests."""
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    go = fake_bin / "go"
    go.write_text("#!/bin/sh\necho 'stand-in go: no build here' >&2\nexit 1\n")
    go.chmod(0o755)
    env = {**os.environ, "HAKUBE_CACHE": str(tmp_path / "cache"), "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    env.pop(realtools.TOOLS_DIR_ENV, None)
    monkeypatch.setenv("HAKUBE_CACHE", env["HAKUBE_CACHE"])
    monkeypatch.delenv(realtools.TOOLS_DIR_ENV, raising=False)
    return env


def test_default_tools_dir_is_used_only_once_complete(script_env: dict[str, str], tmp_path: Path) -> None:
    bin_dir = tmp_path / "cache" / "tools" / "bin"
    assert realtools.default_bin_dir() == bin_dir
    bin_dir.mkdir(parents=True)
    assert realtools.tools_dir() is None, "a bin dir without its marker is an interrupted run"
    (bin_dir / realtools.COMPLETE_MARKER).write_text("etcd-x\n")
    assert realtools.tools_dir() == bin_dir


def test_tools_dir_env_wins(script_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(realtools.TOOLS_DIR_ENV, str(tmp_path / "elsewhere"))
    assert realtools.tools_dir() == tmp_path / "elsewhere"
    assert realtools.missing(("kubeadm",)) == ["kubeadm"]


def test_a_complete_tool_is_not_rebuilt_and_the_last_line_is_the_bin_dir(script_env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    tool_dir = tmp_path / "cache" / "tools" / f"etcd-{pinned()['ETCD_VERSION']}"
    tool_dir.mkdir(parents=True)
    (tool_dir / "etcd").write_text("#!/bin/sh\n")
    (tool_dir / "etcd").chmod(0o755)
    (tool_dir / ".complete").write_text("")
    result = run(SCRIPT, "etcd", env=script_env)
    assert result.returncode == 0, result.stderr
    bin_dir = tmp_path / "cache" / "tools" / "bin"
    assert result.stdout.splitlines()[-1] == str(bin_dir)
    assert "already built" in result.stderr
    assert (bin_dir / "etcd").resolve() == tool_dir / "etcd"
    assert (bin_dir / realtools.COMPLETE_MARKER).read_text().split() == [tool_dir.name]


def test_a_failing_build_names_the_tool_and_fails(script_env: dict[str, str], tmp_path: Path) -> None:
    result = run(SCRIPT, "etcd", env=script_env)
    assert result.returncode == 1
    assert f"FAILED: etcd {pinned()['ETCD_VERSION']}" in result.stderr
    assert not (tmp_path / "cache" / "tools" / f"etcd-{pinned()['ETCD_VERSION']}" / ".complete").exists()
    assert not (tmp_path / "cache" / "tools" / "bin").exists(), "no bin dir after a failed run"


def test_an_unknown_tool_is_refused_before_anything_is_built(script_env: dict[str, str]) -> None:
    result = run(SCRIPT, "etcd", "kubelet", env=script_env)
    assert result.returncode == 2
    assert "unknown tool 'kubelet'" in result.stderr
    assert "etcd" in result.stderr and "already built" not in result.stderr


def reported(*argv: str | Path) -> str:
    result = run(*argv, timeout=60)
    assert result.returncode == 0, f"{argv}: {result.stderr}"
    return result.stdout


@pytest.mark.realtool("kubeadm", "kubectl", "kube-apiserver")
def test_kubernetes_binaries_report_the_pinned_version() -> None:
    want = "v" + pinned()["KUBERNETES_VERSION"]
    assert reported(path_of("kubeadm"), "version", "-o", "short").strip() == want
    client = json.loads(reported(path_of("kubectl"), "version", "--client", "-o", "json"))["clientVersion"]
    assert (client["gitVersion"], client["gitTreeState"]) == (want, "clean")
    assert reported(path_of("kube-apiserver"), "--version").strip() == f"Kubernetes {want}"


@pytest.mark.realtool("etcd", "etcdctl", "etcdutl")
def test_etcd_binaries_report_the_pinned_version() -> None:
    want = pinned()["ETCD_VERSION"]
    assert f"etcd Version: {want}\n" in reported(path_of("etcd"), "--version")
    assert f"etcdctl version: {want}\n" in reported(path_of("etcdctl"), "version")
    assert f"etcdutl version: {want}\n" in reported(path_of("etcdutl"), "version")


def offline_pulumi_env(home: Path) -> dict[str, str]:
    return {**os.environ, "PULUMI_HOME": str(home), "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true", "PULUMI_IGNORE_AMBIENT_PLUGINS": "true"}


@pytest.mark.realtool("pulumi")
def test_pulumi_cli_reports_the_pinned_version(tmp_path: Path) -> None:
    result = run(path_of("pulumi"), "version", env=offline_pulumi_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "v" + pinned()["PULUMI_VERSION"]


@pytest.mark.realtool("pulumi", "pulumi-resource-kubernetes")
def test_kubernetes_provider_serves_its_schema_at_the_pinned_version(tmp_path: Path) -> None:
    """The CLI starts the provider binary and asks it for its schema over gRPC."""
    result = run(path_of("pulumi"), "package", "get-schema", path_of("pulumi-resource-kubernetes"),
                 env=offline_pulumi_env(tmp_path), timeout=180)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert (schema["name"], schema["version"]) == ("kubernetes", pinned()["PULUMI_KUBERNETES_VERSION"])


@pytest.mark.realtool("containerd", "ctr")
def test_containerd_binaries_report_the_pinned_version() -> None:
    want = "v" + pinned()["CONTAINERD_VERSION"]
    assert reported(path_of("containerd"), "--version").split()[2] == want
    assert reported(path_of("ctr"), "--version").split()[2] == want


def test_the_kubernetes_provider_built_is_the_release_the_python_sdk_pins() -> None:
    """tools/versions and requirements.in each name it: they must agree (SDK and provider move together)."""
    lines = (realtools.REPO / "requirements.in").read_text().splitlines()
    sdk_pins = dict(line.split("==", 1) for line in lines if "==" in line)
    assert sdk_pins["pulumi-kubernetes"] == pinned()["PULUMI_KUBERNETES_VERSION"]


def test_the_tools_build_the_default_stack_version() -> None:
    # tools/versions is read by bash, so it cannot import topology/versions.py: this holds the two together.
    assert realtools.pinned()["KUBERNETES_VERSION"] == DEFAULT_VERSION
