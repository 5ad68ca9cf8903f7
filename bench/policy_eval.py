"""Policy-evaluation benchmark: the pack over one mocked run, as the dry run evaluates it.

For the dev stack and the dev stack grown to 100 and 1,000 workers (bench/scale.py's topologies),
runs the program once under mocks, then times `dryrun.policy_check.evaluate` (every policy, at the
stack's levels, sharing conversions as the dry run does) REPEATS times and prints, per size: the
resources, the best and median seconds of one evaluation, and how many times the stack index
(policies' `Stack`) is built in one evaluation.

    .venv/bin/python bench/policy_eval.py [--sizes 0,100,1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.scale import _dev, topology  # noqa: E402
from dryrun import policy_check  # noqa: E402
from dryrun.mockrun import MockRun, run_program  # noqa: E402
from policies._data import Stack  # noqa: E402

SIZES = (0, 100, 1000)
REPEATS = 5


def counted_builds(run: MockRun, stack: str) -> int:
    """How many Stack objects one evaluation builds."""
    cls = Stack
    real_init = cls.__init__
    built = [0]

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        built[0] += 1
        real_init(self, *args, **kwargs)

    cls.__init__ = counting_init  # type: ignore[method-assign]  # restored below
    try:
        policy_check.evaluate(run, stack)
    finally:
        cls.__init__ = real_init  # type: ignore[method-assign]
    return built[0]


def measure(workers: int, repeats: int) -> dict[str, Any]:
    cluster = _dev() if workers == 0 else topology(workers)
    stack = "dev" if workers == 0 else "scale"
    run = run_program(cluster, stack, reclaim=False)
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        verdicts = policy_check.evaluate(run, stack)
        seconds.append(time.perf_counter() - t0)
    mandatory = sum(len(v.violations) for v in verdicts if v.status == "mandatory")
    return {"workers": workers, "resources": len(run.records), "best_s": min(seconds),
            "median_s": statistics.median(seconds), "stacks_built": counted_builds(run, stack),
            "policies": len(verdicts), "mandatory": mandatory}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="worker counts (0: the dev stack)")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    head = f"{'workers':>7} {'resources':>9} {'policies':>8} {'best s':>7} {'median s':>8} {'Stacks built':>12}"
    print(head)
    print("-" * len(head))
    for size in (int(s) for s in args.sizes.split(",")):
        r = measure(size, max(1, args.repeats))
        print(f"{r['workers']:>7} {r['resources']:>9} {r['policies']:>8} {r['best_s']:>7.3f} {r['median_s']:>8.3f} "
              f"{r['stacks_built']:>12}")
        if r["mandatory"]:
            print(f"  {r['mandatory']} mandatory violation(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
