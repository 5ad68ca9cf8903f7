"""`python -m dryrun` as a user runs it: exit codes, what it writes, and what it refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from configs.containerd import containerd_config
from dryrun.mockrun import REPO
from topology import load_stack_file


def dryrun(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dryrun", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("stack", ["dev", "edge", "prod"])
def test_committed_stacks_dry_run(stack: str, tmp_path: Path) -> None:
    out = tmp_path / stack
    result = dryrun("--stack", stack, "--out", str(out))
    assert result.returncode == 0, result.stderr
    plan = json.loads((out / "plan.json").read_text())
    names = {row["name"] for row in plan["resources"]}
    stack_file = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]["hakube:cluster"]
    bare = [n["name"] for n in stack_file["controlPlane"]["nodes"] if "hypervisor" not in n]
    bare += [w["name"] for w in stack_file["workers"]]
    assert {f"{name}-prereqs" for name in bare} <= names
    # Every Kubernetes node's hosts/ tree holds what node-prereqs.sh and the kubeadm file step place.
    kube_nodes = [n["name"] for n in stack_file["controlPlane"]["nodes"]] + [w["name"] for w in stack_file["workers"]]
    cluster = load_stack_file(REPO / f"Pulumi.{stack}.yaml")
    for name in kube_nodes:
        host = out / "hosts" / name
        assert (host / "etc/containerd/config.toml").read_text() == containerd_config(cluster)
        upgrade = yaml.safe_load((host / "etc/kubernetes/kubeadm/upgrade.yaml").read_text())
        assert (upgrade["apiVersion"], upgrade["kind"]) == ("kubeadm.k8s.io/v1beta4", "UpgradeConfiguration")
    text = (out / "plan.txt").read_text()
    assert text.startswith(f"hakube plan for stack {stack}:")
    # The admin kubeconfig is a secret output: never written in clear to a plan file.
    assert "  kubeconfig: [secret]" in text
    assert "kind: Config" not in text and "kind: Config" not in (out / "plan.json").read_text()


def test_bad_stack_file_exits_2_names_the_path_and_writes_nothing(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    document["config"]["hakube:cluster"]["controlPlane"]["nodes"][2]["pinnedCpus"] = "2-5,1"
    document["config"]["hakube:cluster"]["workers"][1]["name"] = "W 2"
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    result = dryrun("--config", str(bad), "--out", str(out))
    assert result.returncode == 2
    assert "hakube:cluster.workers[1].name: 'W 2' is not a DNS label" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists()


def test_empty_file_is_refused_without_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "Pulumi.empty.yaml"
    empty.write_text("")
    result = dryrun("--config", str(empty), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "the stack file is empty" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_copy_of_a_committed_stack_upgrades_from_its_version(tmp_path: Path) -> None:
    # With no --previous-version, the committed Pulumi.dev.yaml stands for what dev runs now.
    text = (REPO / "Pulumi.dev.yaml").read_text()
    copy = tmp_path / "Pulumi.dev.yaml"
    copy.write_text(text.replace('kubernetesVersion: "1.37.2"', 'kubernetesVersion: "1.36.5"'))
    back = dryrun("--config", str(copy), "--out", str(tmp_path / "back"))
    assert back.returncode == 2
    assert "hakube:cluster.kubernetesVersion: 1.36.5 is older than the deployed 1.37.2" in back.stderr
    assert not (tmp_path / "back").exists()
    jump = dryrun("--stack", "dev", "--previous-version", "1.35.9", "--out", str(tmp_path / "jump"))
    assert jump.returncode == 2
    assert "hakube:cluster.kubernetesVersion: 1.35.9 -> 1.37.2 skips a minor version" in jump.stderr
    assert not (tmp_path / "jump").exists()
    minor = dryrun("--stack", "dev", "--previous-version", "1.36.5", "--out", str(tmp_path / "minor"))
    assert minor.returncode == 0, minor.stderr  # the 1.36 -> 1.37 upgrade of the committed stack
    fresh = dryrun("--config", str(copy), "--previous-version", "none", "--out", str(tmp_path / "fresh"))
    assert fresh.returncode == 0, fresh.stderr
