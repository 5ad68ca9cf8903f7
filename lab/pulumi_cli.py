"""The real Pulumi CLI on a throwaway project: a copy of hakube's program, a local file backend and a
Pulumi home of its own, so a test (or bench) runs `pulumi preview` / `up` / `destroy` as a user would,
offline and without touching ~/.pulumi.

`Workspace(root, tools)` lays out under ROOT:
  project/   __main__.py, components/, configs/, topology/ and Pulumi.yaml (its runtime's virtualenv
             pointing at the Python environment with the pinned SDKs), plus Pulumi.<stack>.yaml files
  state/     the backend (PULUMI_BACKEND_URL=file://...)
  home/      PULUMI_HOME (plugins, credentials, logs)
and runs `pulumi` from TOOLS (./scripts/tools' bin directory, first on PATH: the language host and the
providers are found there) with the passphrase secrets provider and no update checks or plugin
downloads. `make_policy_pack(dest)` copies policies/ and installs its pinned requirements into its
own venv, as PulumiPolicy.yaml expects. Streaming JSON output (`events=True`) is parsed into
`Events`: every step, and every policy's verdict as the engine reports it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
PROGRAM = ("__main__.py", "components", "configs", "topology")  # what `pulumi` runs (Pulumi.yaml aside)
POLICY_PACK = REPO / "policies"
PACK_CONFIG_DIR = POLICY_PACK / "config"
STACK_RESOURCE = "pulumi:pulumi:Stack"
DEFAULT_TIMEOUT_S = 600

Wrap = Callable[[list[str]], list[str]]  # e.g. SshLab.runner_argv: where the CLI runs


class PulumiError(RuntimeError):
    """A pulumi command failed; the message carries its output."""


@dataclass
class Events:
    """What one `pulumi preview/up --json` (streaming) reported."""

    steps: list[tuple[str, str, str]] = field(default_factory=list)  # (op, type, name)
    passed: set[str] = field(default_factory=set)  # policy names that passed somewhere
    failed: set[str] = field(default_factory=set)
    violations: list[dict[str, Any]] = field(default_factory=list)  # the engine's policyEvents
    summary: dict[str, Any] = field(default_factory=dict)
    diagnostics: list[str] = field(default_factory=list)

    def verdicts(self) -> dict[str, str]:
        """Each policy -> pass | advisory | mandatory (its worst violation), as the dry run says."""
        worst: dict[str, str] = {}
        for v in self.violations:
            level = v["enforcementLevel"]
            if worst.get(v["policyName"]) != "mandatory":
                worst[v["policyName"]] = level
        return {name: worst.get(name, "pass") for name in self.passed | self.failed | set(worst)}

    def resources(self, *, ops: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """(type, name) of every program resource stepped on (the Stack aside)."""
        return sorted((t, n) for op, t, n in self.steps if t != STACK_RESOURCE
                      and (ops is None or op in ops))


def parse_events(lines: str) -> Events:
    events = Events()
    for line in lines.splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if "resourcePreEvent" in event:
            meta = event["resourcePreEvent"]["metadata"]
            urn = meta["urn"]
            events.steps.append((meta["op"], meta["type"], urn.rsplit("::", 1)[-1]))
        elif "policyEvent" in event:
            events.violations.append(event["policyEvent"])
        elif "policyAnalyzeSummaryEvent" in event or "policyAnalyzeStackSummaryEvent" in event:
            summary = event.get("policyAnalyzeSummaryEvent") or event["policyAnalyzeStackSummaryEvent"]
            events.passed.update(summary.get("passed") or [])
            events.failed.update(summary.get("failed") or [])
        elif "summaryEvent" in event:
            events.summary = event["summaryEvent"]
        elif "diagnosticEvent" in event:
            events.diagnostics.append(event["diagnosticEvent"].get("message", ""))
    return events


def project_yaml(venv: Path) -> str:
    """The repo's Pulumi.yaml with its Python runtime pointed at `venv` (an absolute path)."""
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    project["runtime"].setdefault("options", {})["virtualenv"] = str(venv)
    return yaml.safe_dump(project, sort_keys=False)


def make_policy_pack(dest: Path, python: str = sys.executable) -> Path:
    """A copy of policies/ at DEST with its own venv from policies/requirements.txt (hash-checked)."""
    shutil.copytree(POLICY_PACK, dest, ignore=shutil.ignore_patterns("__pycache__", "venv"))
    subprocess.run([python, "-m", "venv", str(dest / "venv")], check=True, capture_output=True, timeout=120)
    pip = subprocess.run([str(dest / "venv" / "bin" / "pip"), "install", "--quiet", "--require-hashes",
                          "-r", str(dest / "requirements.txt")], capture_output=True, text=True, timeout=600)
    if pip.returncode != 0:
        raise PulumiError(f"installing {dest}/requirements.txt failed:\n{pip.stdout}\n{pip.stderr}")
    return dest


def pack_config(stack: str) -> Path | None:
    """policies/config/<stack>.json when the stack has one (the dry run reads the same file)."""
    path = PACK_CONFIG_DIR / f"{stack}.json"
    return path if path.exists() else None


class Workspace:
    """A throwaway project, backend and Pulumi home under `root` (see the module doc)."""

    def __init__(self, root: Path, tools: Path, *, venv: Path | None = None, wrap: Wrap | None = None) -> None:
        self.root = root
        self.tools = tools
        self.venv = venv or Path(sys.prefix)  # the environment running this code has the pinned SDKs
        self.wrap = wrap
        self.project = root / "project"
        self.state = root / "state"
        self.home = root / "home"
        self.passphrase = secrets.token_hex(16)
        for directory in (self.project, self.state, self.home):
            directory.mkdir(parents=True, exist_ok=True)
        self.copy_program()

    def copy_program(self) -> None:
        """(Re)place the program's files: a test may edit a copy, never the repo."""
        for name in PROGRAM:
            source, target = REPO / name, self.project / name
            if source.is_dir():
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target)
        (self.project / "Pulumi.yaml").write_text(project_yaml(self.venv))

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TERM", "TMPDIR", "USER", "HOME")}
        return {
            **keep,
            "PATH": f"{self.tools}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": f"file://{self.state}",
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_ENABLE_STREAMING_JSON_PREVIEW": "true",  # `preview --json` streams engine events
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
        }

    def argv(self, args: Sequence[str]) -> list[str]:
        argv = [str(self.tools / "pulumi"), *args, "--non-interactive", "--cwd", str(self.project)]
        return self.wrap(argv) if self.wrap else argv

    def run(self, args: Sequence[str], *, stdin: str | None = None, check: bool = True,
            timeout: float = DEFAULT_TIMEOUT_S,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.argv(args), input=stdin, capture_output=True, text=True, timeout=timeout,
                                check=False, env={**self.env(), **(env or {})})
        if check and result.returncode != 0:
            raise PulumiError(f"pulumi {' '.join(args)} exited {result.returncode}:\n{result.stdout[-6000:]}\n"
                              f"{result.stderr[-6000:]}")
        return result

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(args), text=True, env=self.env(), **kwargs)

    # -- stacks
    def init_stack(self, stack: str, config: Mapping[str, Any] | Path) -> None:
        """`pulumi stack init STACK` with Pulumi.STACK.yaml in place first (a committed stack file, or
        a `config:` mapping): the CLI adds its encryption salt to that file."""
        path = self.project / f"Pulumi.{stack}.yaml"
        if isinstance(config, Path):
            shutil.copy2(config, path)
        else:
            path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
        self.run(["stack", "init", stack])

    def write_stack_config(self, stack: str, cluster: Mapping[str, Any]) -> None:
        """Replace hakube:cluster in Pulumi.STACK.yaml, keeping its salt and secrets."""
        path = self.project / f"Pulumi.{stack}.yaml"
        data = yaml.safe_load(path.read_text())
        data["config"]["hakube:cluster"] = dict(cluster)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def set_secret(self, stack: str, key: str, value: str) -> None:
        """`pulumi config set --secret KEY` with the value on stdin, never on a command line."""
        self.run(["config", "set", "--secret", key, "--stack", stack], stdin=value)

    # -- operations
    def preview(self, stack: str, *args: str, policy_pack: Path | None = None, check: bool = False,
                timeout: float = DEFAULT_TIMEOUT_S) -> tuple[Events, subprocess.CompletedProcess[str], float]:
        """`pulumi preview --json` (streaming events), with the policy pack and its stack config when given."""
        argv = ["preview", "--stack", stack, "--json", *args]
        if policy_pack is not None:
            argv += ["--policy-pack", str(policy_pack)]
            if (config := pack_config(stack)) is not None:
                argv += ["--policy-pack-config", str(config)]
        started = time.monotonic()
        result = self.run(argv, check=check, timeout=timeout)
        return parse_events(result.stdout), result, time.monotonic() - started

    def up(self, stack: str, *args: str, timeout: float = DEFAULT_TIMEOUT_S) -> tuple[Events, float]:
        started = time.monotonic()
        result = self.run(["up", "--stack", stack, "--yes", "--skip-preview", "--json", *args], timeout=timeout)
        return parse_events(result.stdout), time.monotonic() - started

    def destroy(self, stack: str, *args: str, timeout: float = DEFAULT_TIMEOUT_S) -> tuple[Events, float]:
        started = time.monotonic()
        result = self.run(["destroy", "--stack", stack, "--yes", "--skip-preview", "--json", *args], timeout=timeout)
        return parse_events(result.stdout), time.monotonic() - started

    def export(self, stack: str) -> str:
        """`pulumi stack export`: the state as the backend holds it (secrets encrypted)."""
        return self.run(["stack", "export", "--stack", stack]).stdout

    def outputs(self, stack: str) -> dict[str, Any]:
        return json.loads(self.run(["stack", "output", "--stack", stack, "--json"]).stdout)
