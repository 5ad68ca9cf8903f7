"""python -m dryrun --stack NAME | --config FILE [--out DIR] [--previous-version X.Y.Z] [--list-images]

Runs the real program under Pulumi mocks (no CLI, no hosts) and writes what each host would
receive, plan.json, plan.txt and policy.txt. Exit 0 when all is well, 2 for a bad stack file
(one path-named line per problem, nothing written), 1 for a mandatory policy violation.
--list-images prints every image the stack's cluster pulls instead (nothing written): one a line,
followed by its upstream name when images.repository renames it; what could not be listed goes to
stderr with how to list it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from dryrun.paths import REPO
from topology import ROOT, Cluster, TopologyError, load_cluster, read_stack_file
from topology.upgrade import refuse_bad_upgrade

EXIT_BAD_CONFIG = 2
EXIT_POLICY = 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dryrun", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="stack name: reads Pulumi.NAME.yaml beside Pulumi.yaml")
    source.add_argument("--config", type=Path, help="any stack file")
    parser.add_argument("--out", type=Path, help="output directory (default build/<stack>)")
    parser.add_argument("--list-images", action="store_true",
                        help="print every image the cluster pulls (and its upstream name) and exit; writes nothing")
    parser.add_argument(
        "--previous-version", metavar="X.Y.Z",
        help="the kubernetesVersion the stack runs now (what a real run reads from the stack's own"
        " kubernetesVersion output); the plan is then the upgrade to the file's version, and a skipped"
        " minor or a downgrade exits 2. Default: the version in the committed Pulumi.<stack>.yaml (the"
        " stand-in for the last deployment); 'none' for a first deployment",
    )
    return parser.parse_args(argv)


def committed_version(stack: str) -> str | None:
    """kubernetesVersion of the committed Pulumi.<stack>.yaml, if there is a readable one."""
    try:
        return str(read_stack_file(REPO / f"Pulumi.{stack}.yaml")[ROOT]["kubernetesVersion"])
    except (TopologyError, KeyError, TypeError):
        return None


def list_images(cluster: Cluster) -> int:
    from configs.addons import cluster_images, unlisted_images

    for pulled, upstream in cluster_images(cluster):
        print(pulled if pulled == upstream else f"{pulled} {upstream}")
    for note in unlisted_images(cluster):
        print(f"not listed: {note}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    path = REPO / f"Pulumi.{args.stack}.yaml" if args.stack else args.config
    stack = args.stack or path.stem.removeprefix("Pulumi.")
    out: Path = args.out or REPO / "build" / stack
    previous = committed_version(stack) if args.previous_version is None else args.previous_version
    previous = None if previous == "none" else previous
    try:
        config = read_stack_file(path)
        cluster = load_cluster(config[ROOT])
        refuse_bad_upgrade(previous, cluster)
    except TopologyError as err:
        print("\n".join(err.lines), file=sys.stderr)
        print(f"{path}: {len(err.lines)} problem(s); nothing written", file=sys.stderr)
        return EXIT_BAD_CONFIG
    if args.list_images:
        return list_images(cluster)
    from dryrun.output import build  # after validation: importing Pulumi costs a second

    # Build in a scratch directory and move it into place whole: a failed run leaves no half tree.
    scratch = Path(tempfile.mkdtemp(prefix=".dryrun-", dir=out.parent if out.parent.exists() else None))
    try:
        verdict = build(config, stack, scratch, previous_version=previous, reclaim=False)  # the process ends next
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(scratch), str(out))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"dry run of {stack}: {verdict.summary}")
    written = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
    print(f"wrote {out}/: {' '.join(written)}")
    print(json.dumps({"resources": verdict.resources, "mandatoryViolations": verdict.mandatory}))
    return EXIT_POLICY if verdict.mandatory else 0


if __name__ == "__main__":
    sys.exit(main())
