"""The users' CI workflow (.github/workflows/preview.yml): valid against GitHub's workflow schema
(check-jsonschema's vendored copy, offline), previews every stack with the policy pack on pull
requests, and runs `pulumi up` for dev on main only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dryrun.mockrun import REPO

WORKFLOW = REPO / ".github/workflows/preview.yml"
CHECK = Path(sys.executable).with_name("check-jsonschema")


def load() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as True.
    return workflow.get("on", workflow.get(True))


def pulumi_steps(job: dict[str, Any], command: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")
            and (s.get("with") or {}).get("command") == command]


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHECK), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_workflow_matches_the_github_workflow_schema() -> None:
    result = validate(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = load()
    broken["jobs"]["preview"]["runs-on"] = None
    broken["jobs"]["preview"]["strategy"]["fail-fast"] = "sometimes"
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken).replace("true:", "on:", 1))
    assert validate(path).returncode != 0


def test_pull_requests_preview_every_stack_with_the_policy_pack() -> None:
    workflow = load()
    assert "pull_request" in triggers(workflow)
    job = workflow["jobs"]["preview"]
    assert job["if"] == "github.event_name == 'pull_request'"
    assert sorted(job["strategy"]["matrix"]["stack"]) == sorted(
        p.name.split(".")[1] for p in REPO.glob("Pulumi.*.yaml"))
    (step,) = pulumi_steps(job, "preview")
    assert step["uses"] == "pulumi/actions@v6"  # Pulumi's official action, pinned major
    assert step["with"]["stack-name"] == "${{ matrix.stack }}"
    assert step["with"]["policyPacks"] == "policies"  # = pulumi preview --policy-pack policies
    assert step["with"]["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
    for stack in job["strategy"]["matrix"]["stack"]:
        assert (REPO / "policies/config" / f"{stack}.json").exists()


def test_up_runs_for_dev_on_main_only() -> None:
    workflow = load()
    assert triggers(workflow)["push"]["branches"] == ["main"]
    ups = {name: job for name, job in workflow["jobs"].items() if pulumi_steps(job, "up")}
    assert list(ups) == ["up"]
    job = ups["up"]
    assert job["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    (step,) = pulumi_steps(job, "up")
    assert step["with"]["stack-name"] == "dev" and step["with"]["policyPacks"] == "policies"
    assert not pulumi_steps(workflow["jobs"]["preview"], "up")


@pytest.mark.parametrize("job", ["preview", "up"])
def test_secrets_come_from_the_secret_store_and_never_reach_argv(job: str) -> None:
    workflow = load()
    assert workflow["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    steps = workflow["jobs"][job]["steps"]
    keyed = [s for s in steps if "HAKUBE_SSH_PRIVATE_KEY" in (s.get("env") or {})]
    assert keyed and all(s["env"]["HAKUBE_SSH_PRIVATE_KEY"] == "${{ secrets.HAKUBE_SSH_PRIVATE_KEY }}" for s in keyed)
    for step in keyed:
        # The key reaches `pulumi config set --secret` on stdin, never as an argument or a literal.
        assert "| pulumi config set --secret hakube:sshPrivateKey" in step["run"]
        assert "secrets." not in step["run"]
    installs = " ".join(s.get("run", "") for s in steps)
    assert "--require-hashes -r requirements.txt" in installs
    assert "--require-hashes -r policies/requirements.txt" in installs
