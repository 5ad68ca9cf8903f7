"""Spread and quorum (policies/cluster.py) on real inputs with one thing broken."""

from __future__ import annotations

import pytest

from dryrun import policy_check
from dryrun.mockrun import MockRun
from tests.policy_helpers import (
    drop,
    messages,
    moved_run,
    rec,
    run_of,
    stack_violations,
    two_hypervisors_run,
)


@pytest.fixture(scope="module")
def moved() -> MockRun:
    return moved_run()


@pytest.fixture(scope="module")
def two_hypervisors() -> MockRun:
    return two_hypervisors_run()


def test_spread_is_mandatory_with_enough_hypervisors(moved: MockRun) -> None:
    assert stack_violations("cp-spread", run_of("dev")) == []
    found = stack_violations("cp-spread", moved)
    assert found == [("hv1", "hv1: hosts cp1-vm, cp2-vm although 3 hypervisors are declared for 3 control-plane "
                             "VMs")]
    assert stack_violations("cp-spread-best-effort", moved) == []


def test_spread_is_advisory_with_too_few_hypervisors(two_hypervisors: MockRun) -> None:
    assert stack_violations("cp-spread", two_hypervisors) == []
    found = stack_violations("cp-spread-best-effort", two_hypervisors)
    assert [r for r, _ in found] == ["hv1"] and "losing it loses 2 members" in found[0][1]
    assert stack_violations("cp-spread-best-effort", run_of("dev")) == []


@pytest.mark.parametrize(("count", "fails"), [(1, True), (2, True), (3, False), (4, True), (5, False)])
def test_quorum_needs_an_odd_count_of_at_least_three(count: int, fails: bool) -> None:
    run = run_of("prod")
    rec(run, "prod").inputs["controlPlaneCount"] = float(count)
    assert bool(stack_violations("quorum", run)) == fails


def test_quorum_counts_control_plane_nodes_without_the_declared_count() -> None:
    run = run_of("edge")
    del rec(run, "edge").inputs["controlPlaneCount"]
    assert stack_violations("quorum", run) == []
    drop(run, "edge3")
    assert "2 control-plane node(s)" in messages(stack_violations("quorum", run))


def test_edge_reports_a_quorum_violation_as_advisory() -> None:
    run = run_of("edge")
    rec(run, "edge").inputs["controlPlaneCount"] = 2.0
    verdicts = {v.name: v for v in policy_check.evaluate(run, "edge")}
    assert verdicts["quorum"].status == "advisory" and verdicts["quorum"].violations
    dev_like = {v.name: v for v in policy_check.evaluate(run, "prod")}
    assert dev_like["quorum"].status == "mandatory"
