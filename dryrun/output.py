"""Write the dry run's output tree from one mocked run of the program."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dryrun.mockrun import MockRun, public, run_program
from dryrun.plan import files_for_hosts, plan_text, resource_table
from dryrun.policy_check import evaluate, policy_text
from dryrun.topology_svg import write_dry_run_svg
from topology import ROOT, load_cluster


@dataclass(frozen=True)
class Verdict:
    resources: int
    mandatory: int
    summary: str


def build(config: dict[str, Any], stack: str, out: Path, previous_version: str | None = None,
          reclaim: bool = True) -> Verdict:
    """`reclaim=False` when the process ends soon after (mockrun.run_function)."""
    run = run_program(config[ROOT], stack, previous_version=previous_version, previous=committed_outputs(stack),
                      reclaim=reclaim)
    table = resource_table(run)
    write_tree(out, run, table, stack)
    write_vm_domains(out, config[ROOT])
    write_dry_run_svg(config[ROOT], out)  # topology.svg; a warning instead when Graphviz is missing
    verdicts = evaluate(run, stack)
    (out / "policy.txt").write_text(policy_text(stack, verdicts))
    mandatory = sum(len(v.violations) for v in verdicts if v.status == "mandatory")
    failed = ", ".join(v.name for v in verdicts if v.status == "mandatory")
    summary = f"{len(table)} resources; policy: " + (f"{mandatory} mandatory violation(s) ({failed})" if failed
                                                      else f"{len(verdicts)} rules, no mandatory violation")
    return Verdict(resources=len(table), mandatory=mandatory, summary=summary)


def write_tree(out: Path, run: MockRun, table: list[dict[str, Any]], stack: str) -> None:
    for rel, content in files_for_hosts(run).items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    plan = {"stack": stack, "outputs": public(run.outputs), "resources": table}
    (out / "plan.json").write_text(json.dumps(plan, indent=1, sort_keys=True) + "\n")
    (out / "plan.txt").write_text(plan_text(stack, table, run.outputs))


def write_vm_domains(out: Path, cluster: dict[str, Any]) -> None:
    """vms/<node>/domain.xml: what libvirt is asked to define for each control-plane VM, the provider's
    domain (as dryrun/libvirt_domain.py models it) through the node's stylesheet."""
    from dryrun.libvirt_domain import transformed_domain_xml

    model = load_cluster(cluster)
    for node in model.control_plane.nodes:
        if node.is_vm:
            target = out / "vms" / node.name / "domain.xml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(transformed_domain_xml(model, node, source="network"))


def committed_outputs(stack: str) -> dict[str, Any]:
    """What a deployment of the committed Pulumi.<stack>.yaml recorded for the day-2 checks
    (topology/bootstrap.py); {} when there is no such valid file (a stack never deployed)."""
    from dryrun.paths import REPO
    from topology import TopologyError, load_cluster, read_stack_file
    from topology.bootstrap import bootstrap_roles
    from topology.bootstrap import outputs as bootstrap_outputs

    try:
        cluster = load_cluster(read_stack_file(REPO / f"Pulumi.{stack}.yaml")[ROOT])
    except (OSError, KeyError, TopologyError):
        return {}
    return bootstrap_outputs(cluster, bootstrap_roles(cluster, {}))
