"""Plan shape (bench/plan_shape.py): a worker change touches only that worker's resources, and the
plan gets no deeper with more workers. Small stacks, so the real program runs in a second each."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from bench.plan_shape import blast_radius, critical_path, plan_table
from bench.scale import topology

BASE_WORKERS = 3


@cache
def plan(workers: tuple[int, ...]) -> tuple[dict[str, Any], ...]:
    return tuple(plan_table(topology(list(workers))))


def base() -> list[dict[str, Any]]:
    return list(plan(tuple(range(1, BASE_WORKERS + 1))))


def owned_by(worker: str, names: list[str], table: list[dict[str, Any]]) -> bool:
    """Every name is the worker's component or lies (transitively) inside it."""
    parents = {row["name"]: row["parent"] for row in table}

    def inside(name: str | None) -> bool:
        return name is not None and (name == worker or inside(parents.get(name)))

    return all(inside(name) for name in names)


def test_adding_a_worker_changes_no_existing_resource() -> None:
    after = list(plan(tuple(range(1, BASE_WORKERS + 2))))
    blast = blast_radius(base(), after)
    assert blast.changed == {}
    assert blast.removed == []
    assert blast.added and owned_by("w0004", blast.added, after)


def test_removing_a_worker_from_the_middle_changes_no_other_resource() -> None:
    after = list(plan((1, 3)))
    blast = blast_radius(base(), after)
    assert blast.changed == {}
    assert blast.added == []
    assert blast.removed and owned_by("w0002", blast.removed, base())


def test_critical_path_does_not_grow_with_workers() -> None:
    small, large = critical_path(base()), critical_path(list(plan(tuple(range(1, 13)))))
    assert len(small) == len(large) > 1


def row(name: str, inputs: dict[str, Any], *, parent: str | None = None, custom: bool = True,
        deps: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"name": name, "type": "t:index:T", "custom": custom, "parent": parent, "dependencies": list(deps),
            "provider": None, "inputs": inputs, **({"ignoreChanges": list(ignore)} if ignore else {})}


@pytest.mark.parametrize(("ignore", "changed"), [
    ((), {"a": ["create", "spec"]}),
    (("create",), {"a": ["spec"]}),
    (("create", "spec.ports[0].port"), {}),
    (("create", "spec.ports[*]"), {}),
])
def test_blast_radius_leaves_out_ignored_inputs(ignore: tuple[str, ...], changed: dict[str, list[str]]) -> None:
    before = [row("a", {"create": "v1", "spec": {"ports": [{"port": 1}]}})]
    after = [row("a", {"create": "v2", "spec": {"ports": [{"port": 2}]}}, ignore=ignore)]
    assert blast_radius(before, after).changed == changed


def test_blast_radius_counts_a_new_parent_and_reports_added_and_removed() -> None:
    blast = blast_radius([row("a", {}), row("old", {})], [row("a", {}, parent="p"), row("p", {}, custom=False)])
    assert (blast.added, blast.removed, blast.changed) == (["p"], ["old"], {"a": ["(parent)"]})


def test_critical_path_follows_component_dependencies() -> None:
    # c waits for component g, i.e. for both resources inside it, and b runs after a.
    table = [row("a", {}), row("g", {}, custom=False), row("b", {}, parent="g", deps=("a",)),
             row("x", {}, parent="g"), row("c", {}, deps=("g",))]
    assert critical_path(table) == ["a", "b", "c"]


def test_plan_steps_handle_a_chain_deeper_than_the_recursion_limit() -> None:
    # A rolling upgrade of thousands of workers, one at a time, is one long chain of steps.
    length = 5000
    table = [row(f"s{i:05d}", {}, deps=(f"s{i - 1:05d}",) if i else ()) for i in range(length)]
    assert critical_path(table) == [f"s{i:05d}" for i in range(length)]


def test_plan_steps_name_a_dependency_cycle() -> None:
    from dryrun.plan import PlanError, waves

    table = [row("a", {}, deps=("c",)), row("b", {}, deps=("a",)), row("c", {}, deps=("b",)), row("d", {}, deps=("a",))]
    with pytest.raises(PlanError, match=r"dependency cycle: (a -> c -> b -> a|b -> a -> c -> b|c -> b -> a -> c)$"):
        waves(table)


def test_scale_bench_measures_the_sdk_floor_and_reports_against_it() -> None:
    """bench/scale.py's floor child registers exactly the bare resources it times, and the table
    prices each size's resources at that floor (so the reader sees what hakube cannot remove)."""
    from bench import scale

    floor = scale.sdk_floor(40)
    assert floor["resources"] == 40 and 0 < floor["seconds_per_resource"] < 1
    row = {"workers": 10, "resources": 223, "program_s": 1.0, "dryrun_s": 1.2, "cpu_s": 1.2, "import_s": 0.2,
           "peak_rss_mib": 100, "rss_imported_mib": 60}
    text = scale.table([row], {"resources": 40, "seconds_per_resource": 0.002})
    assert "     0.45 " in text.splitlines()[2]  # 223 resources x 2 ms
    assert scale.verdict([{**row, "workers": 1000, "dryrun_s": 25.0}])[0] is False


def test_a_reserved_cpu_change_touches_only_that_workers_file_step_which_applies_it() -> None:
    """The kubelet's CPU manager follows the stack file through the node's one file step: the
    changed patch and record are placed, then kubelet-cpu-manager.sh runs on the joined node."""
    changed = topology(BASE_WORKERS)
    changed["workers"][1]["reservedCpus"] = "0-1"
    after = plan_table(changed)
    blast = blast_radius(base(), after)
    assert (blast.added, blast.removed) == ([], [])
    assert sorted(blast.changed) == ["w0002-kubeadm-files", "w0002-kubeadm-files-apply"]
    apply = next(row for row in after if row["name"] == "w0002-kubeadm-files-apply")
    assert "file-set && sudo -n env KUBELET_RECORD=/var/lib/kubelet/hakube-config.yaml" in apply["inputs"]["create"]
