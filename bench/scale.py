"""Scale benchmark: the dry run of 3 control-plane VMs and 10, 100 and 1,000 bare-metal workers.

Topologies grow from the dev stack (3 control-plane VMs on 3 hypervisors, external LB pair):
the node network is widened to 198.18.0.0/16 and the control-plane network moves to
198.19.0.0/24, so every address stays in 198.18.0.0/15 and the CIDR rules hold; workers are
w0001, w0002, ... from 198.18.16.1 on. Every generated topology passes `topology.load_cluster`.

Each size runs in a fresh interpreter (so its peak RSS is its own) and does what
`python -m dryrun` does after reading the stack file: validate, run the real program under
Pulumi mocks, and write the whole output tree (files, plan.json, plan.txt, policy.txt, svg)
into a temporary directory. Prints one row a size and t(1000)/t(100).

    .venv/bin/python bench/scale.py [--sizes 10,100,1000] [--json out.json]

Also measured, in a fresh interpreter of its own: the Pulumi SDK's own cost of one resource under
the same mocks (FLOOR_RESOURCES bare remote.Commands, nothing of hakube's), so the table shows how
much of each dry run no change to hakube can remove while it registers that many resources.

Targets (issue 7): 1,000 workers under 20 s on 2 cores, t(1000)/t(100) <= 12. Exit status 1
when a target is missed.
"""

from __future__ import annotations

import argparse
import copy
import ipaddress
import json
import resource
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from topology import ROOT, load_cluster, read_stack_file  # noqa: E402
from topology.rules import MAX_UPGRADE_LANE  # noqa: E402

BASE_STACK = REPO / "Pulumi.dev.yaml"
NODE_CIDR = "198.18.0.0/16"  # room for ~60,000 hosts; the dev stack's addresses all stay valid
CONTROL_PLANE_CIDR = "198.19.0.0/24"  # the other half of 198.18.0.0/15, clear of nodeCidr
FIRST_WORKER = ipaddress.IPv4Address("198.18.16.1")  # above every address the dev stack uses
SIZES = (10, 100, 1000)
FLOOR_RESOURCES = 2000
TARGET_SECONDS = 20.0
TARGET_RATIO = 12.0


@cache
def _dev() -> dict[str, Any]:
    return read_stack_file(BASE_STACK)[ROOT]


def worker(number: int) -> dict[str, Any]:
    """Worker `number` (1-based): its name and address depend on the number only, so adding or
    removing one worker leaves every other worker exactly as it was."""
    return {"name": f"w{number:04d}", "address": str(FIRST_WORKER + number - 1), "reservedCpus": "0",
            "labels": {"zone": "ab"[number % 2]}}


def topology(workers: int | list[int], *, extra_control_planes: int = 0, **overrides: Any) -> dict[str, Any]:
    """A `hakube:cluster` value: the dev stack's control plane and LB, plus the given workers.

    `workers` is a count (w0001..wN) or the worker numbers to declare. `extra_control_planes`
    adds cp4, cp5, ... as VMs on new hypervisors hv4, hv5, ... (keep the total odd).
    `overrides` replace top-level keys (e.g. kubernetesVersion="1.37.3").
    """
    data = copy.deepcopy(_dev())
    data["network"]["nodeCidr"] = NODE_CIDR
    data["network"]["controlPlaneCidr"] = CONTROL_PLANE_CIDR
    net = ipaddress.IPv4Network(CONTROL_PLANE_CIDR)
    nodes = data["controlPlane"]["nodes"]
    for _ in range(extra_control_planes):
        _add_control_plane_vm(data, len(nodes) + 1)
    for node in nodes:
        # The control-plane address keeps the node-network host number, in the new network.
        node["controlPlaneAddress"] = str(net.network_address + ipaddress.IPv4Address(node["address"]).packed[-1])
    numbers = range(1, workers + 1) if isinstance(workers, int) else workers
    data["workers"] = [worker(n) for n in numbers]
    # As an operator of a large fleet must: upgrade lanes stay within topology.rules.MAX_UPGRADE_LANE.
    data["upgrade"] = {"workerParallelism": max(1, -(-len(data["workers"]) // MAX_UPGRADE_LANE))}
    data.update(overrides)
    load_cluster(data)  # a generated topology that the program would refuse measures nothing
    return data


def _add_control_plane_vm(data: dict[str, Any], number: int) -> None:
    """cp<number> as a VM on its own new hypervisor hv<number>, shaped like the last ones."""
    hv = copy.deepcopy(data["hypervisors"][-1])
    hv_address = ipaddress.IPv4Address(hv["address"]) + 1
    hv.update(name=f"hv{number}", address=str(hv_address))
    data["hypervisors"].append(hv)
    cp = copy.deepcopy(data["controlPlane"]["nodes"][-1])
    cp.update(name=f"cp{number}", hypervisor=hv["name"], address=str(ipaddress.IPv4Address(cp["address"]) + 1))
    data["controlPlane"]["nodes"].append(cp)


def measure(workers: int) -> dict[str, Any]:
    """One dry run of `workers` workers in this process (call it in a fresh one)."""
    started = time.perf_counter()
    from dryrun import output  # Pulumi and the providers' SDKs: imported once, timed apart
    imported = time.perf_counter()
    rss_imported = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    config = {ROOT: topology(workers)}
    program_seconds: list[float] = []
    real_run = output.run_program

    def timed_run(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real_run(*args, **kwargs)
        finally:
            program_seconds.append(time.perf_counter() - t0)

    output.run_program = timed_run  # type: ignore[assignment]  # to report the program's share
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hk-scale-") as out:
        load_cluster(config[ROOT])  # as `python -m dryrun` validates before it builds
        verdict = output.build(config, "scale", Path(out), reclaim=False)  # as `python -m dryrun` does
        total = time.perf_counter() - t0
    return {
        "workers": workers, "resources": verdict.resources, "import_s": imported - started,
        "program_s": program_seconds[0], "dryrun_s": total, "cpu_s": _cpu_seconds() - cpu0,
        "rss_imported_mib": rss_imported / 1024,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def sdk_floor(count: int = FLOOR_RESOURCES) -> dict[str, Any]:
    """Seconds one resource costs the Pulumi SDK alone under the dry run's mocks: `count` bare
    remote.Commands shaped like hakube's (a secret SSH key, a 4 KB script, one dependency)."""
    import pulumi
    from pulumi_command import remote

    from dryrun.mockrun import run_function

    def program() -> None:
        connection = remote.ConnectionArgs(host="198.18.0.1", user="hakube", private_key=pulumi.Output.secret("k"))
        first = remote.Command("step-0", connection=connection, create="true")
        for i in range(1, count):
            remote.Command(f"step-{i}", connection=connection, create="true # " + "x" * 4096, triggers=[str(i)],
                           opts=pulumi.ResourceOptions(depends_on=[first]))

    t0 = time.perf_counter()
    run = run_function(program, "floor", reclaim=False)
    assert len(run.records) == count
    return {"resources": count, "seconds_per_resource": (time.perf_counter() - t0) / count}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def in_subprocess(*args: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                            timeout=600, check=False, cwd=REPO)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {result.returncode}\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(rows: list[dict[str, Any]], floor: dict[str, Any]) -> str:
    head = (f"{'workers':>7} {'resources':>9} {'program s':>9} {'SDK floor s':>11} {'dry run s':>9} {'cpu s':>7} "
            f"{'import s':>8} {'peak MiB':>8} {'after import MiB':>16}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['workers']:>7} {r['resources']:>9} {r['program_s']:>9.2f} "
                     f"{r['resources'] * floor['seconds_per_resource']:>11.2f} {r['dryrun_s']:>9.2f} "
                     f"{r['cpu_s']:>7.2f} {r['import_s']:>8.2f} {r['peak_rss_mib']:>8.0f} "
                     f"{r['rss_imported_mib']:>16.0f}")
    lines.append(f"SDK floor: {floor['seconds_per_resource'] * 1000:.2f} ms a resource ({floor['resources']} bare "
                 f"remote.Commands under the same mocks); 'SDK floor s' = resources x that")
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]]) -> tuple[bool, list[str]]:
    """The targets, as printed lines, and whether every measured one is met."""
    by_size = {r["workers"]: r for r in rows}
    lines, ok = [], True
    if 1000 in by_size:
        t = by_size[1000]["dryrun_s"]
        met = t < TARGET_SECONDS
        ok &= met
        lines.append(f"1,000 workers: dry run {t:.2f} s (target < {TARGET_SECONDS:.0f} s): "
                     f"{'met' if met else 'MISSED'}")
    if 1000 in by_size and 100 in by_size:
        for key, what in (("dryrun_s", "dry run"), ("program_s", "program"), ("cpu_s", "cpu")):
            ratio = by_size[1000][key] / by_size[100][key]
            met = ratio <= TARGET_RATIO
            if key == "dryrun_s":
                ok &= met
            lines.append(f"t(1000)/t(100) {what}: {ratio:.1f} (target <= {TARGET_RATIO:.0f}): "
                         f"{'met' if met else 'MISSED'}")
    return ok, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="worker counts, comma-separated")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # the per-size child
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)  # the SDK-floor child
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure)))
        return 0
    if args.floor:
        print(json.dumps(sdk_floor()))
        return 0
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows.append(in_subprocess("--measure", str(size)))
        print(f"measured {size} workers", file=sys.stderr, flush=True)
    floor = in_subprocess("--floor")
    print(table(rows, floor))
    ok, lines = verdict(rows)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"sizes": rows, "sdkFloor": floor}, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
