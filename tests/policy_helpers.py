"""Calling the policy pack the way the engine does (`policy.validate(StackValidationArgs |
ResourceValidationArgs, report)`) on a mocked run of the real program with one real input broken;
kubeadm inputs edited the way a broken program would place them. Shared by tests/test_polic*.py."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import yaml
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from configs import kubeadm
from dryrun import policy_check
from dryrun.mockrun import MockRun, Record
from policies import _data, contract, pack
from tests.mockgraph import cluster_copy, graph, stack_graph

POLICY = {p.name: p for p in pack.POLICIES}


SECRET = {_data._SIG_KEY: _data._SECRET_SIG}  # the engine's wire form of a secret


def stack_violations(name: str, run: MockRun, config: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(resource name, message) for every report_violation a stack policy makes on `run`."""
    resources = policy_check.policy_resources(run)
    names = {r.urn: r.name for r in resources}
    got: list[tuple[str, str]] = []

    def report_violation(message: str, urn: str | None = None) -> None:
        got.append((names.get(urn or "", ""), message))

    assert POLICY[name].validate(StackValidationArgs(resources, config), report_violation) is None
    return got


def resource_violations(name: str, run: MockRun, config: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    got: list[tuple[str, str]] = []
    for r in policy_check.policy_resources(run):
        def report_violation(message: str, urn: str | None = None, _name: str = r.name) -> None:
            got.append((_name, message))

        args = ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, r.provider, config)
        assert POLICY[name].validate(args, report_violation) is None
    return got


def check_resource(policy: str, type_: str, props: dict[str, Any], *, name: str = "x",
                   secret_outputs: tuple[str, ...] = (), config: dict[str, Any] | None = None) -> list[str]:
    """One resource through a resource policy, as Analyze would pass it."""
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), list(secret_outputs), None)
    got: list[str] = []
    args = ResourceValidationArgs(type_, props, f"urn:pulumi:dev::hakube::{type_}::{name}", name, opts, None, config)
    POLICY[policy].validate(args, lambda message, urn=None: got.append(message))
    return got


def run_of(stack: str) -> MockRun:
    return copy.deepcopy(stack_graph(stack).run)


def rec(run: MockRun, name: str) -> Record:
    return next(r for r in run.records if r.name == name)


def replace_in(run: MockRun, name: str, old: str, new: str, *path: str) -> None:
    """Edit one text input (e.g. the domain's xml.xslt) of a recorded resource."""
    holder = rec(run, name).inputs
    for key in path[:-1]:
        holder = holder[key]
    assert old in holder[path[-1]], f"{old!r} not in {name}.{'.'.join(path)}"
    holder[path[-1]] = holder[path[-1]].replace(old, new)


def drop(run: MockRun, *names: str) -> None:
    """Remove resources and everything under them, as if the program had not created them."""
    gone = {r.urn for r in run.records if r.name in names}
    changed = True
    while changed:
        more = {r.urn for r in run.records if r.parent in gone} - gone
        changed, gone = bool(more), gone | more
    run.records = [r for r in run.records if r.urn not in gone]


def messages(found: list[tuple[str, str]]) -> str:
    return "\n".join(f"{r}: {m}" for r, m in found)


def graph_has(stack: str, predicate: Callable[[Record], bool], what: str) -> MockRun:
    """The stack's run, which must hold a record matching `predicate` (the program creates every
    kind of resource the rules read: kubeadm configs, credential commands, workloads)."""
    run = run_of(stack)
    assert any(predicate(r) for r in run.records), f"the program creates no {what} any more"
    return run


@functools.cache
def moved_run() -> MockRun:
    """dev with cp2 moved onto hv1 with a valid, disjoint pin set (a topology the loader accepts)."""
    cluster = cluster_copy("dev")
    cp2 = next(n for n in cluster["controlPlane"]["nodes"] if n["name"] == "cp2")
    cp2.update(hypervisor="hv1", pinnedCpus="6-9")
    return graph(cluster).run


@functools.cache
def two_hypervisors_run() -> MockRun:
    """dev on two hypervisors: hv3 gone, cp3 on hv1 (6-9)."""
    cluster = cluster_copy("dev")
    cluster["hypervisors"] = [h for h in cluster["hypervisors"] if h["name"] != "hv3"]
    cp3 = next(n for n in cluster["controlPlane"]["nodes"] if n["name"] == "cp3")
    cp3.update(hypervisor="hv1", pinnedCpus="6-9")
    return graph(cluster).run


def kubeadm_doc(kind: str, *, bind_port: int | None = None, taints: list[dict[str, str]] | None = None,
                patches: str | None = contract.PATCHES_DIR) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": kind,
                           "nodeRegistration": {"criSocket": "unix:///run/containerd/containerd.sock"}}
    endpoint = {"advertiseAddress": "198.18.5.21", **({"bindPort": bind_port} if bind_port else {})}
    if kind == "InitConfiguration":
        doc["localAPIEndpoint"] = endpoint
    else:
        doc["controlPlane"] = {"localAPIEndpoint": endpoint}
        doc["discovery"] = {"bootstrapToken": {"apiServerEndpoint": "198.18.4.100:6443"}}
    if taints is not None:
        doc["nodeRegistration"]["taints"] = taints
    if patches:
        doc["patches"] = {"directory": patches}
    return doc


def guaranteed_patch(target: str, cpu: str = "1", memory: str = "1Gi", limit_cpu: str | None = None) -> str:
    resources = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": limit_cpu or cpu, "memory": memory}}
    return yaml.safe_dump({"spec": {"containers": [{"name": target, "resources": resources}]}})


KUBELET = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
           "cpuManagerPolicy": "static", "reservedSystemCPUs": "0-1",
           "cpuManagerPolicyOptions": {"full-pcpus-only": "true", "strict-cpu-reservation": "true"}}


def add_drop(run: MockRun, node: str, suffix: str, path: str, content: str) -> None:
    """A FileDrop under `node`, shaped like components/remote.FileDrop's inputs."""
    parent = rec(run, node)
    urn = parent.urn.rsplit("::", 1)[0] + f"$hakube:index:FileDrop::{node}-{suffix}"
    run.records.append(Record(urn=urn, type="hakube:index:FileDrop", name=f"{node}-{suffix}", custom=False,
                              parent=parent.urn, dependencies=[], provider=None,
                              inputs={"host": node, "path": path, "content": content, "mode": "0644"}))


def placed(run: MockRun, node: str, path: str) -> dict[str, Any]:
    """The recorded inputs that hold file `path` on `node`: a FileDrop's, or its FileSet's entry (a
    dict with "content" either way, edited in place by the tests)."""
    for r in run.records:
        if r.type == contract.FILE_DROP and r.inputs.get("host") == node and r.inputs.get("path") == path:
            return r.inputs
        if r.type == contract.FILE_SET and r.inputs.get("host") == node:
            found = [entry for entry in r.inputs["files"] if entry["path"] == path]
            if found:
                return found[0]
    raise KeyError(f"no {path} on {node}")


def unplace(run: MockRun, node: str, path: str) -> None:
    """As if the program placed no `path` on `node`."""
    holder = placed(run, node, path)
    for r in run.records:
        if r.type == contract.FILE_SET and holder in r.inputs["files"]:
            r.inputs["files"].remove(holder)
    run.records = [r for r in run.records if r.inputs is not holder]


def kubeadm_config_path(run: MockRun, node: str) -> str:
    init = any(r.name == "kubeadm-init" and r.parent and r.parent.endswith(f"::{node}") for r in run.records)
    return kubeadm.INIT_CONFIG_PATH if init else kubeadm.JOIN_CONFIG_PATH


def patch_path(target: str) -> str:
    return f"{contract.PATCHES_DIR}/{target}+strategic.yaml"


def set_entry(node: str, path: str) -> str:
    """How a rule names one file of a node's kubeadm FileSet (_data.set_files)."""
    return f"{node}-kubeadm-files[{path}]"


def with_kubeadm(stack: str, edit: Callable[[str, dict[str, Any]], None] = lambda node, doc: None,
                 patch: Callable[[str, str], str] | None = None) -> MockRun:
    """The stack's run with each control-plane node's real kubeadm config (Init/JoinConfiguration
    document) passed through `edit`, and its static-pod patches replaced by `patch` when given."""
    run = run_of(stack)
    for node in [n["name"] for n in cluster_copy(stack)["controlPlane"]["nodes"]]:
        config = placed(run, node, kubeadm_config_path(run, node))
        docs = list(yaml.safe_load_all(config["content"]))
        for doc in docs:
            if doc.get("kind") in ("InitConfiguration", "JoinConfiguration"):
                edit(node, doc)
        config["content"] = yaml.safe_dump_all(docs)
        for target in contract.STATIC_PODS if patch else ():
            placed(run, node, patch_path(target))["content"] = patch(node, target)
    return run

