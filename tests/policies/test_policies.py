"""The CrossGuard pack (policies/) as a whole: every rule named with its documented level, every
rule passing on the committed stacks, and the pack as the CLI runs it, over gRPC. Each concern's
rules fail when one real input is broken: tests/test_policy_<concern>.py (helpers in
tests/policy_helpers.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    StackValidationPolicy,
)

from dryrun.mockrun import REPO, MockRun, Record
from policies import _data, pack
from tests.policy_helpers import (
    POLICY,
    moved_run,
    rec,
    resource_violations,
    run_of,
    stack_violations,
)


@pytest.fixture(scope="module")
def moved() -> MockRun:
    return moved_run()


LEVELS = {
    "cp-vcpu-pinning": "mandatory", "cp-memory-locked": "mandatory", "cp-dedicated-cores": "mandatory",
    "cp-no-overcommit": "mandatory", "etcd-storage": "mandatory", "cp-network": "mandatory",
    "cp-spread": "mandatory", "cp-spread-best-effort": "advisory", "quorum": "mandatory",
    "lb-redundancy": "mandatory", "lb-vrrp-priorities": "mandatory", "lb-vip": "mandatory",
    "lb-stacked-ports": "mandatory", "cp-taint": "mandatory", "cp-static-pod-qos": "mandatory",
    "cp-cpu-manager": "advisory", "workload-isolation": "mandatory", "secrets": "mandatory",
    "etcd-offsite-snapshots": "mandatory", "encryption-at-rest": "mandatory",
}


def test_pack_names_every_rule_with_its_documented_level() -> None:
    assert {p.name: p.enforcement_level.value for p in pack.POLICIES} == LEVELS
    readme = (REPO / "README.md").read_text()
    for name, level in LEVELS.items():
        assert f"| `{name}` | {level} |" in readme, f"README's policy table lacks {name}"


def test_edge_config_lowers_quorum_workload_isolation_offsite_snapshots_and_encryption_only() -> None:
    edge = pack.stack_config("edge")
    lowered = {p.name for p in pack.POLICIES
               if pack.enforcement_level(p, edge) != pack.enforcement_level(p, pack.stack_config("dev"))}
    assert lowered == {"quorum", "workload-isolation", "etcd-offsite-snapshots", "encryption-at-rest"}
    assert all(pack.enforcement_level(POLICY[n], edge) == EnforcementLevel.ADVISORY for n in lowered)
    assert pack.enforcement_level(POLICY["quorum"], {"all": "disabled"}) == EnforcementLevel.DISABLED
    assert pack.enforcement_level(POLICY["quorum"], {"all": "advisory", "quorum": "mandatory"}) == pack.MANDATORY


@pytest.mark.parametrize("stack", ["dev", "edge", "prod"])
def test_committed_stacks_pass_every_rule(stack: str) -> None:
    run = run_of(stack)
    for policy in pack.POLICIES:
        check = stack_violations if isinstance(policy, StackValidationPolicy) else resource_violations
        assert check(policy.name, run) == [], policy.name


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    """policies/__main__.py started the way the CLI starts a Python pack; yields a gRPC stub."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
                            cwd=REPO / "policies", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip() if proc.stdout else ""
        assert port.isdigit(), f"pack did not start: {port!r} {proc.stderr.read() if proc.stderr else ''}"
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=20)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _struct(value: dict[str, Any]) -> Any:
    from google.protobuf import json_format, struct_pb2

    return json_format.ParseDict(json.loads(json.dumps(value)), struct_pb2.Struct())


def _analyzer_resource(proto: Any, run: MockRun, record: Record, secret_outputs: list[str] | None = None) -> Any:
    """An AnalyzerResource as the engine marshals it (secrets in their wire form, KeepSecrets)."""
    provider = next((r for r in run.records if r.name == record.provider), None) if record.provider else None
    return proto.AnalyzerResource(
        urn=record.urn, type=record.type, name=record.name, properties=_struct(record.inputs),
        options=proto.AnalyzerResourceOptions(
            additionalSecretOutputs=record.additional_secret_outputs if secret_outputs is None else secret_outputs),
        provider=proto.AnalyzerProviderResource(type=provider.type, urn=provider.urn, name=provider.name,
                                                properties=_struct(provider.inputs)) if provider else None,
        parent=record.parent or "", dependencies=record.dependencies,
        propertyDependencies={k: proto.AnalyzerPropertyDependencies(urns=v)
                              for k, v in record.property_dependencies.items()},
    )


def test_the_cli_pack_lists_every_policy(analyzer: Any) -> None:
    from google.protobuf import empty_pb2

    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == pack.PACK_NAME and info.supportsConfig
    levels = {0: "advisory", 1: "mandatory"}
    assert {p.name: levels[p.enforcementLevel] for p in info.policies} == LEVELS


def test_the_cli_pack_refuses_two_vms_on_one_hypervisor(analyzer: Any, moved: MockRun) -> None:
    from pulumi.runtime.proto import analyzer_pb2 as proto

    started = time.monotonic()
    response = analyzer.AnalyzeStack(proto.AnalyzeStackRequest(
        resources=[_analyzer_resource(proto, moved, r) for r in moved.records]))
    found = [(d.policyName, d.enforcementLevel) for d in response.diagnostics]
    assert found == [("cp-spread", proto.MANDATORY)], [d.message for d in response.diagnostics]
    assert time.monotonic() - started < 10


def test_the_engine_strips_secrets_before_a_python_policy_sees_them(analyzer: Any) -> None:
    """Why the secret rule also reads additionalSecretOutputs: a wrapped secret reaches a Python
    policy as plain text, indistinguishable from a value that never was secret."""
    from pulumi.runtime.proto import analyzer_pb2 as proto

    run = run_of("dev")
    record = rec(run, "w1-prereqs")
    assert _data.is_secret(record.inputs["connection"])

    def analyze(secret_outputs: list[str]) -> list[str]:
        r = _analyzer_resource(proto, run, record, secret_outputs)
        response = analyzer.Analyze(proto.AnalyzeRequest(urn=r.urn, type=r.type, name=r.name,
                                                          properties=r.properties, options=r.options))
        return [d.message for d in response.diagnostics if d.policyName == "secrets"]

    assert analyze(["connection"]) == []
    assert any("connection (SSH private key) is not secret" in m for m in analyze([]))
