"""Run a restore or recovery plan (configs/etcd_recovery.py) step by step, each on its node.

A `Runner` runs one step's host script on one member's host and returns what it printed; the
command uses `SshRunner` (the same command line pulumi-command sends, configs/remote.py), the lab
tests a runner that enters a network namespace. Steps run strictly in order; the first failure
stops the run with the step, its node and the script's own message. Every step can be run again,
so after fixing the cause the same command continues.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from configs.etcd_recovery import Member, Step
from configs.remote import command_line

STEP_TIMEOUT_S = 900  # the longest a script waits for etcd is WAIT_S (180 s) a few times over


class StepFailed(RuntimeError):
    def __init__(self, number: int, step: Step, output: str) -> None:
        super().__init__(f"step {number} ({step.what}) failed on {step.member}:\n{output.strip()}")
        self.number = number
        self.step = step


class Runner(Protocol):
    def run(self, member: Member, step: Step, stdin: bytes | None) -> tuple[int, str]:
        """Run `step` on `member`'s host; (exit code, what it printed on stderr and stdout)."""


@dataclass(frozen=True)
class SshRunner:
    """Each step as `ssh user@host sudo -n env ... bash -c '<script>'`; the operator's SSH setup
    (agent, ~/.ssh/config or `identity`) reaches the hosts, as it does for `pulumi up`."""

    user: str
    port: int
    identity: Path | None = None

    def run(self, member: Member, step: Step, stdin: bytes | None) -> tuple[int, str]:
        argv = ["ssh", "-p", str(self.port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=15",
                *(["-i", str(self.identity)] if self.identity else []),
                f"{self.user}@{member.host}", command_line(step.script, step.env)]
        result = subprocess.run(argv, input=stdin or b"", capture_output=True, timeout=STEP_TIMEOUT_S, check=False)
        return result.returncode, (result.stderr + result.stdout).decode(errors="replace")


def execute(steps: Sequence[Step], listed: Sequence[Member], runner: Runner, snapshot: bytes | None = None,
            say: Callable[[str], None] = print) -> None:
    """Run every step in order; raises StepFailed at the first that fails."""
    by_name = {m.name: m for m in listed}
    for number, step in enumerate(steps, 1):
        say(f"[{number}/{len(steps)}] {step.what}")
        if step.sends_snapshot and snapshot is None:
            raise ValueError(f"step {number} sends the snapshot, but none was given")
        code, output = runner.run(by_name[step.member], step, snapshot if step.sends_snapshot else None)
        if code != 0:
            raise StepFailed(number, step, output)


def plan_text(steps: Sequence[Step]) -> str:
    return "\n".join(f"{number:>3}. on {step.member}: {step.what}" for number, step in enumerate(steps, 1))
