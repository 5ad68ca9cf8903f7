"""The dry run runs the policy pack: policy.txt lists every rule, and a mandatory violation exits 1."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from dryrun.mockrun import REPO
from policies import _engine, pack


def dry_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dryrun", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)


def rule_lines(policy_txt: str) -> dict[str, str]:
    """rule name -> status word, from policy.txt's `STATUS    name [level; scope]` lines."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^(PASS|ADVISORY|MANDATORY) +(\S+) \[", policy_txt, re.M)}


def test_dev_dry_run_passes_every_rule(tmp_path: Path) -> None:
    result = dry_run("--stack", "dev", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "out/policy.txt").read_text()
    assert rule_lines(text) == {p.name: "PASS" for p in pack.POLICIES}
    assert f"{len(pack.POLICIES)} rules, {len(pack.POLICIES)} passed" in text
    # The rules about VMs, the LB pair and secrets had real resources to check in dev.
    for name in ("cp-vcpu-pinning", "cp-spread", "etcd-storage", "lb-vip", "secrets"):
        assert re.search(rf"^PASS +{name} \[mandatory; \d+ resource\(s\) in scope\]", text, re.M), name
    assert '"mandatoryViolations": 0' in result.stdout


def test_two_control_plane_vms_on_one_hypervisor_exit_1_naming_the_spread_rule(tmp_path: Path) -> None:
    stack = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    cp2 = next(n for n in stack["config"]["hakube:cluster"]["controlPlane"]["nodes"] if n["name"] == "cp2")
    cp2.update(hypervisor="hv1", pinnedCpus="6-9")  # on cp1's hypervisor, on cores of its own
    config = tmp_path / "Pulumi.dev.yaml"
    config.write_text(yaml.safe_dump(stack))
    result = dry_run("--config", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cp-spread" in result.stdout and '"mandatoryViolations": 1' in result.stdout
    text = (tmp_path / "out/policy.txt").read_text()
    statuses = rule_lines(text)
    assert statuses.pop("cp-spread") == "MANDATORY"
    assert set(statuses.values()) == {"PASS"}  # disjoint pins: every other rule still holds
    assert "hv1: hosts cp1-vm, cp2-vm although 3 hypervisors are declared" in text


def test_stack_rules_read_the_inputs_of_resources_whose_outputs_a_preview_does_not_know() -> None:
    """A first `pulumi preview` hands stack policies an empty map for each resource of a provider it
    has not configured (libvirt, kubernetes: their inputs are unknown then). The pack reads the inputs
    its resource policies were handed instead, as the dry run's mocks (outputs = inputs) do."""
    from pulumi_policy import ResourceValidationArgs, StackValidationArgs

    from dryrun import policy_check
    from tests.mockgraph import stack_graph

    resources = policy_check.policy_resources(stack_graph("dev").run)
    unconfigured = ("libvirt:", "kubernetes:")
    for r in resources:
        if r.resource_type.startswith(unconfigured):
            r.props = policy_check.engine_props({})  # what the engine's AnalyzeStack carries for it
    pinning = next(p for p in pack.POLICIES if p.name == "cp-vcpu-pinning")

    def stack_violations() -> list[str]:
        found: list[str] = []
        pinning.validate(StackValidationArgs(resources, None), lambda message, urn=None: found.append(message))
        return found

    _engine._INPUTS.clear()
    assert any("has no xml.xslt" in m for m in stack_violations())  # read as absent, not as unknown
    secrets = next(p for p in pack.POLICIES if p.name == "secrets")
    for r in stack_graph("dev").run.records:  # Analyze: every resource's inputs, before AnalyzeStack
        secrets.validate(ResourceValidationArgs(r.type, policy_check.engine_props(r.inputs), r.urn, r.name,
                                                policy_check._options(r), None, None), lambda *_: None)
    assert stack_violations() == []
    _engine._INPUTS.clear()
