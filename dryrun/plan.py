"""Turn recorded resources into plan.json (machine-readable) and plan.txt (ordered steps)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from dryrun.mockrun import SECRET_MARK, MockRun, public
from policies.contract import FILE_DROP, FILE_SET, NODE


class PlanError(RuntimeError):
    """The program broke a rule the dry run relies on (e.g. two resources with one name)."""


def resource_table(run: MockRun) -> list[dict[str, Any]]:
    """Every resource as plan.json holds it; parent, dependencies and provider by name."""
    names = _names(run)
    table = []
    for r in run.records:
        table.append({
            "name": r.name,
            "type": r.type,
            # A remote component acts too: it is where its unseen children are applied.
            "custom": r.custom or r.remote,
            "parent": names.get(r.parent) if r.parent else None,
            "dependencies": sorted({names[d] for d in r.dependencies if d in names}),
            "provider": r.provider,
            "inputs": public(r.inputs),
            **({"ignoreChanges": r.ignore_changes} if r.ignore_changes else {}),
        })
    table.sort(key=lambda row: (row["type"], row["name"]))
    return table


def _names(run: MockRun) -> dict[str, str]:
    seen: dict[str, str] = {}
    names: dict[str, str] = {}
    for r in run.records:
        if r.name in seen:
            raise PlanError(f"two resources are named {r.name}: {seen[r.name]} and {r.type}")
        seen[r.name] = r.type
        names[r.urn] = r.name
    return names


def waves(table: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Custom resources grouped by the earliest step they can run in.

    A dependency on a component means "after everything inside it" (as the engine does), so
    component dependencies are expanded to their custom descendants, and a resource also waits
    for whatever its ancestor components depend on.
    """
    by_name = {row["name"]: row for row in table}
    children: dict[str, list[str]] = defaultdict(list)
    for row in table:
        if row["parent"]:
            children[row["parent"]].append(row["name"])

    def customs_within(name: str) -> set[str]:
        row = by_name[name]
        if row["custom"]:
            return {name}
        found: set[str] = set()
        for child in children[name]:
            found |= customs_within(child)
        return found

    expanded_cache: dict[str, set[str]] = {}

    def waits_for(name: str) -> set[str]:
        if name in expanded_cache:
            return expanded_cache[name]
        row = by_name[name]
        deps: set[str] = set()
        for dep in row["dependencies"]:
            deps |= customs_within(dep)
        # The engine also waits for a resource's explicit provider (e.g. `k8s` for in-cluster objects).
        if row.get("provider") in by_name:
            deps |= customs_within(row["provider"])
        if row["parent"]:
            deps |= waits_for(row["parent"])
        expanded_cache[name] = deps
        return deps

    customs = [row for row in table if row["custom"]]
    depth = _levels([row["name"] for row in customs], lambda name: waits_for(name) - {name})
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in customs:
        grouped[depth[row["name"]]].append({**row, "waits_for": sorted(waits_for(row["name"]) - {row["name"]})})
    return [sorted(grouped[i], key=lambda r: r["name"]) for i in sorted(grouped)]


def _levels(names: list[str], deps_of: Callable[[str], set[str]]) -> dict[str, int]:
    """name -> 1 + the deepest of its dependencies (0 without any), by an explicit-stack walk: a
    rolling upgrade chains thousands of steps, deeper than Python's recursion limit."""
    depth: dict[str, int] = {}
    for start in names:
        if start in depth:
            continue
        trail: list[str] = []  # the path being walked, for the cycle message
        on_trail: set[str] = set()
        stack: list[tuple[str, list[str]]] = [(start, sorted(deps_of(start)))]
        trail.append(start)
        on_trail.add(start)
        while stack:
            name, pending = stack[-1]
            while pending and pending[-1] in depth:
                pending.pop()
            if pending:
                dep = pending.pop()
                if dep in on_trail:
                    raise PlanError("dependency cycle: " + " -> ".join((*trail[trail.index(dep):], dep)))
                stack.append((dep, sorted(deps_of(dep))))
                trail.append(dep)
                on_trail.add(dep)
                continue
            depth[name] = 1 + max((depth[d] for d in deps_of(name)), default=-1)
            stack.pop()
            on_trail.discard(trail.pop())
    return depth


def describe(row: dict[str, Any]) -> str:
    """One readable line: what runs, where."""
    where = f" (in {row['parent']})" if row["parent"] else ""
    return f"{row['name']}  [{row['type']}]{where}"


def plan_text(stack: str, table: list[dict[str, Any]], outputs: dict[str, Any]) -> str:
    steps = waves(table)
    customs = sum(len(s) for s in steps)
    lines = [
        f"hakube plan for stack {stack}: {len(table)} resources ({customs} that act, {len(steps)} steps)",
        "Resources within one step run in parallel; each step waits for the ones it names.",
        "",
    ]
    for number, step in enumerate(steps, 1):
        lines.append(f"Step {number}:")
        for row in step:
            lines.append(f"  - {describe(row)}")
            if row["waits_for"] and len(row["waits_for"]) <= 6:
                lines.append(f"      after: {', '.join(row['waits_for'])}")
            elif row["waits_for"]:
                lines.append(f"      after: {', '.join(row['waits_for'][:5])} and {len(row['waits_for']) - 5} more")
        lines.append("")
    lines.append("Stack outputs:")
    for key, value in sorted(outputs.items()):
        shown = public(value)
        lines.append(f"  {key}: {shown if isinstance(shown, str) else json.dumps(shown)}")
    return "\n".join(lines) + "\n"


# Components that list the files their step places ({path, content, mode}): a FileSet, and a Node
# (node-prereqs.sh's containerd configuration).
_LISTING = (FILE_SET, NODE)
_PLACING = (FILE_DROP, *_LISTING)


def _hide_secrets(content: str, names: list[str]) -> str:
    """A placed file as the host holds it, each secret its step puts in place of ${NAME} shown as [secret]."""
    for name in names:
        content = content.replace(f"${{{name}}}", SECRET_MARK)
    return content


def files_for_hosts(run: MockRun) -> dict[str, str]:
    """Relative output path -> content for every file a host or VM would receive."""
    files: dict[str, str] = {}
    for r in run.records:
        if r.type not in _PLACING and "artifacts" not in r.inputs:
            continue  # most records: nothing to place, so no copy of their inputs
        inputs = public(r.inputs)
        if r.type == FILE_DROP:
            files[f"hosts/{inputs['host']}/{inputs['path'].lstrip('/')}"] = inputs["content"]
        for placed in inputs.get("files") or [] if r.type in _LISTING else []:
            files[f"hosts/{inputs['host']}/{placed['path'].lstrip('/')}"] = _hide_secrets(
                placed["content"], inputs.get("secretNames") or [])
        for rel, content in (inputs.get("artifacts") or {}).items():
            files[rel] = content
    return files
