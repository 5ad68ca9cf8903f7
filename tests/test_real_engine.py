"""hakube under the real Pulumi engine: the CLI, the Python language host, the providers and the policy
pack that ./scripts/tools builds (tests/realtools.py finds them), on a throwaway project with a local
file backend (lab/pulumi_cli.py).

Previews: each committed stack previews with `--policy-pack policies` and its pack config, with the
same resources (type, name, count) and the same policy verdicts as the dry run of a first deployment,
and a stack with two control-plane VMs on one hypervisor fails naming cp-spread.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dryrun import policy_check
from lab.pulumi_cli import Events, Workspace, make_policy_pack
from tests import realtools
from tests.mockgraph import cluster_copy, graph

ENGINE = ("pulumi", "pulumi-language-python", "pulumi-resource-command", "pulumi-resource-kubernetes")
LIBVIRT = "pulumi-resource-libvirt"
pytestmark = [pytest.mark.realtool(*ENGINE)]

# Never used to reach a host: previews connect to none.
PREVIEW_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n"
TIMES: dict[str, float] = {}


@pytest.fixture(scope="session")
def policy_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """policies/ with its own venv from policies/requirements.txt, made once per test session."""
    return make_policy_pack(tmp_path_factory.mktemp("pack") / "policies")


@pytest.fixture(scope="module")
def tools() -> Path:
    directory = realtools.tools_dir()
    assert directory is not None  # the realtool marker skipped (or failed, under CI) otherwise
    return directory


@pytest.fixture(scope="module", autouse=True)
def report_times() -> Iterator[None]:
    yield
    if TIMES:
        print("\nreal engine times: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMES.items()))


def workspace(root: Path, tools: Path, stack: str, cluster: dict[str, Any], **kwargs: Any) -> Workspace:
    ws = Workspace(root, tools, **kwargs)
    ws.init_stack(stack, {"config": {"hakube:cluster": cluster}})
    ws.set_secret(stack, "hakube:sshPrivateKey", PREVIEW_KEY)
    return ws


def dry_run(cluster: dict[str, Any], stack: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(type, name) of every resource and each policy's verdict, from the program under mocks (a first
    deployment: no previous outputs)."""
    dry = graph(cluster, stack)
    verdicts = {v.name: v.status for v in policy_check.evaluate(dry.run, stack)}
    return sorted((row["type"], row["name"]) for row in dry.table), verdicts


def real_preview(tmp_path: Path, tools: Path, policy_pack: Path, stack: str, cluster: dict[str, Any],
                 **kwargs: Any) -> tuple[Events, subprocess.CompletedProcess[str], float]:
    ws = workspace(tmp_path, tools, stack, cluster, **kwargs)
    return ws.preview(stack, policy_pack=policy_pack)


def stack_param(stack: str) -> Any:
    needs_vms = bool(cluster_copy(stack).get("hypervisors"))
    return pytest.param(stack, marks=[pytest.mark.realtool(LIBVIRT)] if needs_vms else [], id=stack)


# ------------------------------------------------------------------------------------------------
# Previews


@pytest.mark.parametrize("stack", [stack_param(s) for s in ("edge", "dev", "prod")])
def test_a_real_preview_passes_the_pack_with_the_dry_runs_resources_and_verdicts(
        stack: str, tmp_path: Path, tools: Path, policy_pack: Path) -> None:
    cluster = cluster_copy(stack)
    events, result, seconds = real_preview(tmp_path, tools, policy_pack, stack, cluster)
    TIMES[f"preview {stack}"] = seconds
    assert result.returncode == 0, result.stderr[-4000:] + "\n".join(events.diagnostics)[-4000:]
    resources, verdicts = dry_run(cluster, stack)
    # Every resource the dry run registers is a create; the stack's read of its own last outputs
    # (components/previous.py) works on a stack never deployed.
    assert events.resources(ops=["create"]) == resources
    assert sorted({op for op, _, _ in events.steps}) == ["create", "read"]
    assert [(t, n) for op, t, n in events.steps if op == "read"] == [
        ("pulumi:pulumi:StackReference", "previous-deployment")]
    assert events.verdicts() == verdicts
    assert set(verdicts) == {p.name for p in policy_check.pack.POLICIES}


def two_vms_on_one_hypervisor() -> dict[str, Any]:
    """dev with cp2 moved onto hv1, on cores of its own there: every other rule still holds."""
    cluster = cluster_copy("dev")
    cp2 = cluster["controlPlane"]["nodes"][1]
    cp2["hypervisor"], cp2["pinnedCpus"] = "hv1", "6-9"
    return cluster


@pytest.mark.realtool(LIBVIRT)
def test_two_control_plane_vms_on_one_hypervisor_fail_the_real_preview_naming_cp_spread(
        tmp_path: Path, tools: Path, policy_pack: Path) -> None:
    cluster = two_vms_on_one_hypervisor()
    events, result, _ = real_preview(tmp_path, tools, policy_pack, "breach", cluster)
    assert result.returncode != 0
    resources, verdicts = dry_run(cluster, "breach")
    assert verdicts["cp-spread"] == "mandatory"
    assert events.verdicts() == verdicts
    [violation] = [v for v in events.violations if v["policyName"] == "cp-spread"]
    assert violation["enforcementLevel"] == "mandatory"
    assert "hv1: hosts cp1-vm, cp2-vm" in violation["message"]
    assert violation["resourceUrn"].endswith("::hv1")
    assert events.resources(ops=["create"]) == resources  # the preview still shows the whole plan


@pytest.mark.root
@pytest.mark.realtool(LIBVIRT)
def test_a_first_preview_dials_no_host(tmp_path: Path, tools: Path, policy_pack: Path) -> None:
    """What CI needs: the dev preview passes in a network namespace with nothing but loopback, so it
    reaches no hypervisor (libvirt), no node (SSH) and no cluster (kubernetes)."""
    assert shutil.which("unshare") and shutil.which("ip")

    def offline(argv: list[str]) -> list[str]:
        return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "offline", *argv]

    events, result, _ = real_preview(tmp_path, tools, policy_pack, "dev", cluster_copy("dev"), wrap=offline)
    assert result.returncode == 0, result.stderr[-4000:] + "\n".join(events.diagnostics)[-4000:]
    assert set(events.verdicts().values()) == {"pass"}
