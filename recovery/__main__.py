"""./scripts/restore-etcd STACK SNAPSHOT | STACK --recover-from NODE  [--plan] [--yes] [--identity KEY]

Restore: every control-plane node of the stack (as the stack file lists them now: the same nodes,
or replacement nodes with new names and addresses) gets its etcd data replaced by SNAPSHOT, a file
on this machine (e.g. copied from the backup target); the restored members are the stack's nodes
at their controlPlaneAddress, whatever the snapshot's own cluster was. Every write after the
snapshot is lost.
Recovery (--recover-from NODE): quorum is lost but NODE's etcd data is intact; the cluster is
rebuilt around NODE's data (nothing is lost) and the other members rejoin with empty data.

Either way the old data stays on each node, moved aside under the etcd data directory. Exit 0
when done, 1 when a step failed (run the same command again once its cause is fixed: each step can
be run twice), 2 for a bad stack file, node or snapshot.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from datetime import UTC, datetime
from pathlib import Path

from configs import etcd_recovery
from dryrun.paths import REPO
from recovery.run import SshRunner, StepFailed, execute, plan_text
from topology import TopologyError, load_stack_file

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./scripts/restore-etcd", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack name (Pulumi.NAME.yaml beside Pulumi.yaml) or a stack file")
    parser.add_argument("snapshot", nargs="?", type=Path, help="the snapshot file to restore from")
    parser.add_argument("--recover-from", metavar="NODE", help="recover after a loss of quorum from NODE's data")
    parser.add_argument("--plan", action="store_true", help="print the steps and stop")
    parser.add_argument("--yes", action="store_true", help="run without asking")
    parser.add_argument("--identity", type=Path, help="SSH private key for the hosts (default: agent, ~/.ssh)")
    args = parser.parse_args(argv)
    if (args.snapshot is None) == (args.recover_from is None):
        parser.error("give a SNAPSHOT to restore, or --recover-from NODE, not both")
    return args


def stack_path(stack: str) -> Path:
    path = Path(stack)
    return path if path.suffix in (".yaml", ".yml") and path.exists() else REPO / f"Pulumi.{stack}.yaml"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def confirmed(question: str, cluster: str) -> bool:
    if not sys.stdin.isatty():
        print("refusing to run without --yes (stdin is not a terminal)", file=sys.stderr)
        return False
    answer = input(f"{question}\ntype the cluster name ({cluster}) to go on: ")
    return answer.strip() == cluster


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cluster = load_stack_file(stack_path(args.stack))
    except TopologyError as err:
        print("\n".join(err.lines), file=sys.stderr)
        return EXIT_BAD_INPUT
    members = etcd_recovery.members(cluster)
    when = etcd_recovery.stamp(datetime.now(UTC))
    snapshot: bytes | None = None
    if args.snapshot is not None:
        if not args.snapshot.is_file():
            print(f"{args.snapshot}: no such snapshot file", file=sys.stderr)
            return EXIT_BAD_INPUT
        steps = etcd_recovery.restore_plan(members, cluster.name, sha256(args.snapshot), when)
        question = (f"This replaces the etcd data of {', '.join(m.name for m in members)} with {args.snapshot};"
                    " every write since that snapshot is lost.")
    else:
        if args.recover_from not in {m.name for m in members}:
            print(f"--recover-from {args.recover_from}: not a control-plane node of {cluster.name}"
                  f" ({', '.join(m.name for m in members)})", file=sys.stderr)
            return EXIT_BAD_INPUT
        steps = etcd_recovery.recovery_plan(members, args.recover_from, when)
        question = (f"This rebuilds etcd around {args.recover_from}'s data; the other members' data is moved"
                    " aside and they rejoin empty.")
    print(plan_text(steps))
    if args.plan:
        return 0
    if not args.yes and not confirmed(question, cluster.name):
        return EXIT_FAILED
    if args.snapshot is not None:
        snapshot = args.snapshot.read_bytes()
    try:
        execute(steps, members, SshRunner(cluster.ssh.user, cluster.ssh.port, args.identity), snapshot)
    except StepFailed as err:
        print(f"{err}\nfix the cause and run the same command again: every step can be run twice", file=sys.stderr)
        return EXIT_FAILED
    print(f"done: etcd of {cluster.name} runs with members {', '.join(m.name for m in members)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
