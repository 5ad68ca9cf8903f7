"""SSH lab start and stop times (lab/): how long `with SshLab(...)` takes to make and to remove
N hosts (namespaces, overlays, login user, sshd each), and one real SSH + sudo round trip.
Needs root, sshd, ssh and sudo; all traffic stays in 198.18.0.0/15 inside the lab's namespaces.

    sudo .venv/bin/python bench/lab_ssh.py [--hosts 6] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lab import SshLab  # noqa: E402


def one_run(hosts: int) -> tuple[float, float, float]:
    """(start, one SSH + sudo command, stop) in seconds."""
    spec = {f"h{i}": f"198.18.0.{10 + i}" for i in range(1, hosts + 1)}
    started = time.monotonic()
    with SshLab(spec, user="ops") as lab:
        up = time.monotonic()
        result = lab.ssh("h1", "sudo -n true")
        ssh = time.monotonic()
        if result.returncode != 0:
            raise RuntimeError(f"ssh h1 failed: {result.stderr}")
    down = time.monotonic()
    if lab.leftovers():
        raise RuntimeError(f"teardown left {lab.leftovers()}")
    return up - started, ssh - up, down - ssh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=6)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [one_run(args.hosts) for _ in range(args.runs)]
    for label, values in zip(("start", "ssh + sudo", "stop"), zip(*runs, strict=True), strict=True):
        print(f"{args.hosts} hosts, {label:10}: median {statistics.median(values):.2f} s,"
              f" min {min(values):.2f} s, max {max(values):.2f} s ({args.runs} runs)")


if __name__ == "__main__":
    main()
