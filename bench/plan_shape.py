"""Plan shape: how much of a plan one change touches, and how deep the plan is.

(a) Blast radius: compares two dry-run plans resource by resource (names are ids, see
docs/RESOURCES.md): added, removed, and changed (inputs differ, leaving out the inputs a
resource lists in ignoreChanges; a changed type or parent counts too, as it changes the URN).
Scenarios on a bench topology (bench/scale.py): one worker added, one removed (from the middle
of the list), two control-plane VMs added (cp4 and cp5 on new hypervisors hv4 and hv5, keeping
the count odd), and kubernetesVersion 1.37.2 -> 1.37.3 (a patch release).
(b) Critical path: the longest dependency chain, with the dry run's own semantics
(`dryrun.plan.waves`: a dependency on a component waits for everything inside it, and a
resource also waits for what its ancestors wait for), for 10 and for 1,000 workers.

    .venv/bin/python bench/plan_shape.py [--workers 10] [--large 1000]
    .venv/bin/python bench/plan_shape.py --compare build/a/plan.json build/b/plan.json

Targets (issue 7): adding or removing a worker changes 0 existing resources; the critical path
does not grow with workers. Exit status 1 when a target is missed.
Secrets show as "[secret]" in plans, so a change of a secret value alone is not seen here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.scale import topology  # noqa: E402

Table = list[dict[str, Any]]
_PATH_PART = re.compile(r'\[(\d+|\*)\]|\["([^"]*)"\]|([^.\[\]]+)')


@dataclass
class Blast:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # name -> the top-level keys that differ
    rewired: list[str] = field(default_factory=list)  # dependencies differ (no update by itself)


def plan_table(cluster: dict[str, Any], stack: str = "bench") -> Table:
    """The plan.json resource table of one mocked run of the real program."""
    from dryrun.mockrun import run_program  # Pulumi: imported only when a plan is computed
    from dryrun.plan import resource_table

    return resource_table(run_program(cluster, stack))


def load_plan(path: Path) -> Table:
    return json.loads(path.read_text())["resources"]


def _path_parts(path: str) -> list[str | int]:
    """`spec.ports[0]["name"]` -> ["spec", "ports", 0, "name"]; `*` stays a wildcard."""
    return [int(index) if index.isdigit() else (index or quoted or key)
            for index, quoted, key in _PATH_PART.findall(path)]


def _without(value: Any, parts: list[str | int]) -> Any:
    """`value` with the property at `parts` removed (a list element becomes None, keeping indexes)."""
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        keys = list(value) if head == "*" else [head] if head in value else []
        copy = dict(value)
        for key in keys:
            if rest:
                copy[key] = _without(copy[key], rest)
            else:
                del copy[key]
        return copy
    if isinstance(value, list):
        indexes = range(len(value)) if head == "*" else [head] if isinstance(head, int) and head < len(value) else []
        copy = list(value)
        for i in indexes:
            copy[i] = _without(copy[i], rest) if rest else None
        return copy
    return value


def compared_inputs(row: dict[str, Any]) -> dict[str, Any]:
    """The inputs the engine diffs: everything except what the resource ignores."""
    inputs = row["inputs"]
    for path in row.get("ignoreChanges", []):
        inputs = _without(inputs, _path_parts(path))
    return inputs


def blast_radius(before: Table, after: Table) -> Blast:
    old = {row["name"]: row for row in before}
    new = {row["name"]: row for row in after}
    blast = Blast(added=sorted(new.keys() - old.keys()), removed=sorted(old.keys() - new.keys()))
    for name in sorted(old.keys() & new.keys()):
        a, b = old[name], new[name]
        # The engine diffs with the new program's ignoreChanges.
        ins_a, ins_b = compared_inputs({**a, "ignoreChanges": b.get("ignoreChanges", [])}), compared_inputs(b)
        keys = sorted(k for k in ins_a.keys() | ins_b.keys() if ins_a.get(k) != ins_b.get(k))
        keys += [f"({what})" for what in ("type", "parent") if a[what] != b[what]]
        if keys:
            blast.changed[name] = keys
        if a["dependencies"] != b["dependencies"]:
            blast.rewired.append(name)
    return blast


def critical_path(table: Table) -> list[str]:
    """The longest chain of resources that must run one after another (one per plan step)."""
    from dryrun.plan import waves

    steps = waves(table)
    if not steps:
        return []
    depth = {row["name"]: i for i, step in enumerate(steps) for row in step}
    waits = {row["name"]: row["waits_for"] for step in steps for row in step}
    chain = [min(row["name"] for row in steps[-1])]
    while depth[chain[-1]] > 0:
        level = depth[chain[-1]] - 1
        chain.append(min(w for w in waits[chain[-1]] if depth.get(w) == level))
    return chain[::-1]


def scenarios(workers: int) -> dict[str, dict[str, Any]]:
    """Each change as the topology after it; the base is `workers` workers and 3 control planes."""
    middle = workers // 2 + 1
    return {
        f"add worker w{workers + 1:04d}": topology(workers + 1),
        f"remove worker w{middle:04d}": topology([n for n in range(1, workers + 1) if n != middle]),
        "add control planes cp4, cp5 (hv4, hv5)": topology(workers, extra_control_planes=2),
        "kubernetesVersion 1.37.2 -> 1.37.3": topology(workers, kubernetesVersion="1.37.3"),
    }


def _names(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def blast_report(title: str, blast: Blast, rows: dict[str, dict[str, Any]]) -> list[str]:
    """What one change does, as lines: counts first, then the names (changed ones with the keys)."""
    custom_changed = [n for n in blast.changed if rows[n]["custom"]]
    lines = [f"{title}: {len(blast.added)} added, {len(blast.removed)} removed, {len(blast.changed)} changed"
             f" ({len(custom_changed)} that act), {len(blast.rewired)} rewired"]
    if blast.added:
        lines.append(f"    added: {_names(blast.added)}")
    if blast.removed:
        lines.append(f"    removed: {_names(blast.removed)}")
    for name, keys in list(blast.changed.items())[:25]:
        lines.append(f"    changed: {name} [{rows[name]['type']}]: {', '.join(keys)}")
    if len(blast.changed) > 25:
        lines.append(f"    changed: ... and {len(blast.changed) - 25} more")
    if blast.rewired:
        lines.append(f"    rewired (dependencies only): {_names(blast.rewired)}")
    return lines


def run_scenarios(workers: int) -> tuple[bool, list[str]]:
    base = plan_table(topology(workers))
    lines = [f"Blast radius (base: 3 control-plane VMs, external LB, {workers} workers; {len(base)} resources)"]
    ok = True
    for title, cluster in scenarios(workers).items():
        after = plan_table(cluster)
        blast = blast_radius(base, after)
        lines += blast_report(title, blast, {row["name"]: row for row in base + after})
        if "worker" in title and blast.changed:
            ok = False
            lines.append("    MISSED: a worker change must leave every existing resource unchanged")
    return ok, lines


def path_report(sizes: list[int]) -> tuple[bool, list[str]]:
    lines = ["", "Critical path (longest dependency chain, one resource per plan step):"]
    lengths = []
    for size in sizes:
        table = plan_table(topology(size))
        chain = critical_path(table)
        lengths.append(len(chain))
        customs = sum(1 for row in table if row["custom"])
        lines.append(f"  {size:>5} workers: {len(chain)} steps over {customs} resources that act: {' -> '.join(chain)}")
    ok = len(set(lengths)) <= 1
    lines.append(f"  target (no growth with workers): {'met' if ok else 'MISSED'}")
    return ok, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10, help="workers in the blast-radius base (default 10)")
    parser.add_argument("--large", type=int, default=1000, help="the large size for the critical path")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="two plan.json files")
    args = parser.parse_args()
    if args.compare:
        before, after = (load_plan(p) for p in args.compare)
        rows = {row["name"]: row for row in before + after}
        print("\n".join(blast_report(f"{args.compare[0]} -> {args.compare[1]}", blast_radius(before, after), rows)))
        return 0
    ok_blast, blast_lines = run_scenarios(args.workers)
    ok_path, path_lines = path_report([args.workers, args.large])
    print("\n".join(blast_lines + path_lines))
    return 0 if ok_blast and ok_path else 1


if __name__ == "__main__":
    sys.exit(main())
