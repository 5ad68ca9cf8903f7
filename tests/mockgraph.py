"""Run the program under mocks for a stack dict and query the recorded resource graph."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any

from dryrun.mockrun import REPO, MockRun, Record, run_program
from dryrun.plan import files_for_hosts, resource_table, waves
from topology import ROOT, read_stack_file


@cache
def stack_cluster(stack: str) -> dict[str, Any]:
    return read_stack_file(REPO / f"Pulumi.{stack}.yaml")[ROOT]


def cluster_copy(stack: str) -> dict[str, Any]:
    return copy.deepcopy(stack_cluster(stack))


@dataclass
class Graph:
    run: MockRun
    table: list[dict[str, Any]]

    @property
    def by_name(self) -> dict[str, dict[str, Any]]:
        return {row["name"]: row for row in self.table}

    def record(self, name: str) -> Record:
        return next(r for r in self.run.records if r.name == name)

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [row for row in self.table if row["type"] == type_]

    def children(self, parent: str) -> list[dict[str, Any]]:
        return [row for row in self.table if row["parent"] == parent]


def graph(cluster: dict[str, Any], stack: str = "dev") -> Graph:
    run = run_program(cluster, stack)
    return Graph(run, resource_table(run))


@cache
def stack_graph(stack: str) -> Graph:
    return graph(stack_cluster(stack), stack)


@cache
def stack_hosts(stack: str) -> dict[str, str]:
    """The committed stack's dry-run host files: hosts/<host>/<path> -> content, as the dry run writes them."""
    return files_for_hosts(stack_graph(stack).run)


def closure_of(g: Graph, name: str) -> set[str]:
    """Every step `name` waits for, directly or through others."""
    direct = {row["name"]: set(row["waits_for"]) for step in waves(g.table) for row in step}
    seen: set[str] = set()
    todo = [name]
    while todo:
        for dep in direct[todo.pop()] - seen:
            seen.add(dep)
            todo.append(dep)
    return seen
