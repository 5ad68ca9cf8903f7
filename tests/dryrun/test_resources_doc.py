"""docs/RESOURCES.md against the dry run: every resource of every example stack (and of dev with
every optional add-on on) matches a row of the doc's tables, and every row matches a resource.

A row matches a resource when one of its backticked names, placeholders filled with that stack's
names, is the resource's name, its type is one the row lists, and (when the parent cell gives
backticked patterns) its parent matches one of them; a dash there means no parent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from dryrun.mockrun import REPO
from tests.mockgraph import Graph, cluster_copy, graph, stack_graph
from tests.sites import site_cluster
from topology.model import Encryption

DOC = REPO / "docs" / "RESOURCES.md"
STACKS = ("dev", "edge", "prod")
_TICKED = re.compile(r"`([^`]+)`")
_PLACEHOLDER = re.compile(r"<([a-z.]+)>")
NO_PARENT = "\N{EN DASH}"


@dataclass(frozen=True)
class Row:
    line: int
    names: tuple[str, ...]
    types: tuple[str, ...]
    parents: tuple[str, ...] | None  # None: the parent is not checked; (): no parent


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def doc_rows(text: str) -> list[Row]:
    """Every row of every table whose header has name, type and parent columns."""
    rows: list[Row] = []
    lines = text.splitlines()
    header: list[str] | None = None
    for number, line in enumerate(lines, 1):
        if not line.startswith("|"):
            header = None
        elif header is None:
            header = _cells(line)
        elif not set(line) <= set("|-: "):
            cells = dict(zip(header, _cells(line), strict=True))
            parent = cells["parent"]
            parents = () if parent == NO_PARENT else tuple(_TICKED.findall(parent)) or None
            rows.append(Row(number, tuple(_TICKED.findall(cells["name"])),
                            tuple(t for t in _TICKED.findall(cells["type"]) if ":" in t), parents))
    return rows


def placeholders(cluster: dict[str, Any]) -> dict[str, list[str]]:
    """What each placeholder of the doc stands for in this stack."""
    cps = [n["name"] for n in cluster["controlPlane"]["nodes"]]
    workers = [w["name"] for w in cluster.get("workers", [])]
    lbs = [n["name"] for n in cluster["loadBalancer"]["nodes"]]
    hypervisors = cluster.get("hypervisors", [])
    return {
        "cluster.name": [cluster["name"]], "hv": [h["name"] for h in hypervisors],
        "pool": sorted({p["name"] for h in hypervisors for p in h["pools"]}),
        "node": cps + workers, "cp": cps, "lb": lbs, "host": lbs, "namespace": [r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"],
        "key": list(cluster.get("encryption", {}).get("keys", Encryption().keys)),
    }


def pattern(text: str, values: dict[str, list[str]]) -> re.Pattern[str]:
    parts, last = [], 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(re.escape(text[last:match.start()]))
        names = values[match.group(1)]  # KeyError: the doc uses a placeholder this test does not know
        parts.append("(?:" + "|".join(n if match.group(1) == "namespace" else re.escape(n) for n in names) + ")")
        last = match.end()
    parts.append(re.escape(text[last:]))
    return re.compile("".join(parts))


def _matches(text: str, value: str | None, values: dict[str, list[str]]) -> bool:
    return value is not None and pattern(text, values).fullmatch(value) is not None


def row_matches(row: Row, resource: dict[str, Any], values: dict[str, list[str]]) -> bool:
    if resource["type"] not in row.types or not any(_matches(n, resource["name"], values) for n in row.names):
        return False
    if row.parents is None:
        return True
    if not row.parents:
        return resource["parent"] is None
    return any(_matches(p, resource["parent"], values) for p in row.parents)


@cache
def every_addon_graph() -> Graph:
    # Every optional add-on on, and the README's site lines (proxy, registries), so their rows are checked too.
    cluster = site_cluster("dev")
    cluster["addons"]["metallb"] = {"enabled": True, "addresses": ["198.18.0.200/29"]}
    cluster["addons"]["gateway"] = {"enabled": True}
    return graph(cluster, "dev")


def graphs() -> list[tuple[str, Graph, dict[str, list[str]]]]:
    runs = [(stack, stack_graph(stack), placeholders(cluster_copy(stack))) for stack in STACKS]
    return [*runs, ("dev+addons", every_addon_graph(), placeholders(cluster_copy("dev")))]


ROWS = doc_rows(DOC.read_text())


def test_the_doc_has_its_tables() -> None:
    assert len(ROWS) >= 40
    for row in ROWS:
        assert row.names and row.types, f"RESOURCES.md:{row.line} needs backticked names and full types"
        assert all(t.count(":") >= 2 for t in row.types), row


@pytest.mark.parametrize("which", [*STACKS, "dev+addons"])
def test_every_resource_of_the_dry_run_is_in_the_doc(which: str) -> None:
    _, g, values = next(run for run in graphs() if run[0] == which)
    missing = [f"{r['name']} ({r['type']}, parent {r['parent']})" for r in g.table
               if not any(row_matches(row, r, values) for row in ROWS)]
    assert not missing, "not in docs/RESOURCES.md:\n  " + "\n  ".join(missing)


def test_every_row_of_the_doc_is_in_some_dry_run() -> None:
    runs = graphs()
    stale = []
    for row in ROWS:
        for name in row.names:
            if not any(_matches(name, r["name"], values) and row_matches(row, r, values)
                       for _, g, values in runs for r in g.table):
                stale.append(f"RESOURCES.md:{row.line} {name}")
        for type_ in row.types:
            if not any(r["type"] == type_ and row_matches(row, r, values) for _, g, values in runs for r in g.table):
                stale.append(f"RESOURCES.md:{row.line} {type_}")
    assert not stale, "rows no dry run has:\n  " + "\n  ".join(stale)


def test_the_checker_catches_drift() -> None:
    """A renamed resource, a wrong type and a wrong parent each fail to match."""
    values = placeholders(cluster_copy("dev"))
    row = next(r for r in ROWS if "admin-kubeconfig" in r.names)
    resource = {"name": "admin-kubeconfig", "type": "command:remote:Command", "parent": "cp1"}
    assert row_matches(row, resource, values)
    assert not row_matches(row, {**resource, "name": "kubeconfig"}, values)
    assert not row_matches(row, {**resource, "type": "hakube:index:FileDrop"}, values)
    assert not row_matches(row, {**resource, "parent": "dev"}, values)
    pool = next(r for r in ROWS if "<hv>-pool-<pool>" in r.names)
    assert row_matches(pool, {"name": "hv2-pool-general", "type": pool.types[0], "parent": "hv2"}, values)
    assert not row_matches(pool, {"name": "hv2-pool-other", "type": pool.types[0], "parent": "hv2"}, values)
