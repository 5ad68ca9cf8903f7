"""Run the real policy pack over a mocked run, the way `pulumi preview --policy-pack` does.

The recorded resources become pulumi_policy `PolicyResource`s (type, inputs, URN, name, options,
provider, parent, dependencies, property dependencies); every policy is called with
`policy.validate(args, report_violation)` (awaited when it returns a coroutine) at the
enforcement level the stack's pack config gives it. Inputs are deserialized as the Python policy
SDK does for the engine's requests: secret wrappers dropped (a policy sees plain text and learns
what is secret only from additionalSecretOutputs), so the dry run and `pulumi preview` agree.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from dryrun.mockrun import MockRun, Record
from policies import pack


@dataclass
class RuleVerdict:
    name: str
    description: str
    level: EnforcementLevel
    subjects: int
    violations: list[tuple[str, str]] = field(default_factory=list)  # (resource name, message)

    @property
    def status(self) -> str:
        if not self.violations:
            return "pass"
        return "mandatory" if self.level == EnforcementLevel.MANDATORY else "advisory"


def _options(record: Record) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False, ignore_changes=list(record.ignore_changes), delete_before_replace=None, aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=list(record.additional_secret_outputs), parent=record.parent,
    )


def engine_props(inputs: dict[str, Any]) -> Any:
    """Inputs as pulumi-policy hands them to a policy: secrets unwrapped, unknowns behind a proxy."""
    return unknown_checking_proxy(deserialize_properties(copy.deepcopy(inputs)))


def policy_resources(run: MockRun) -> list[PolicyResource]:
    """The engine's view of the stack: parents, dependencies and providers as PolicyResources."""
    by_name = {r.name: r for r in run.records}
    providers = {name: _provider(by_name, name) for name in {r.provider for r in run.records if r.provider}}
    resources = {
        r.urn: PolicyResource(r.type, engine_props(r.inputs), r.urn, r.name, _options(r),
                              providers.get(r.provider) if r.provider else None, None, [], {})
        for r in run.records
    }
    for r in run.records:
        res = resources[r.urn]
        res.parent = resources.get(r.parent) if r.parent else None
        res.dependencies = [resources[d] for d in r.dependencies if d in resources]
        res.property_dependencies = {k: [resources[u] for u in urns if u in resources]
                                     for k, urns in r.property_dependencies.items()}
    return list(resources.values())


def _provider(by_name: dict[str, Record], name: str) -> PolicyProviderResource | None:
    """One PolicyProviderResource per provider, shared by its resources (as read-only as the engine's)."""
    provider = by_name.get(name)
    if provider is None:
        return None
    return PolicyProviderResource(provider.type, engine_props(provider.inputs), provider.urn, provider.name)


def _call(policy: pack.Policy, args: Any, report: Any) -> None:
    result = policy.validate(args, report)
    if inspect.isawaitable(result):
        asyncio.run(_awaited(result))


async def _awaited(result: Any) -> None:
    await result


def evaluate(run: MockRun, stack: str) -> list[RuleVerdict]:
    """Every policy's verdict on the run, at the levels `policies/config/<stack>.json` sets."""
    with pack.shared_conversions():  # one list for every policy: each resource is converted once
        return _evaluate(run, stack)


def _evaluate(run: MockRun, stack: str) -> list[RuleVerdict]:
    config = pack.stack_config(stack)
    resources = policy_resources(run)
    names = {r.urn: r.name for r in resources}
    plain = pack.stack_resources(resources)
    verdicts = []
    for policy in pack.POLICIES:
        level = pack.enforcement_level(policy, config)
        verdict = RuleVerdict(policy.name, policy.description, level, pack.SCOPES[policy.name].count(plain))
        if level == EnforcementLevel.DISABLED:
            verdicts.append(verdict)
            continue

        def report(message: str, urn: str | None = None, _v: RuleVerdict = verdict) -> None:
            _v.violations.append((names.get(urn or "", "stack"), message))

        policy_config = pack.policy_config(policy, config)
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                _call(policy, ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, r.provider,
                                                     policy_config), report)
        else:
            _call(policy, StackValidationArgs(resources, policy_config), report)
        verdicts.append(verdict)
    return verdicts


def policy_text(stack: str, verdicts: list[RuleVerdict]) -> str:
    """policy.txt: one block per rule, its status, and every violation with its resource."""
    counts = {s: sum(v.status == s for v in verdicts) for s in ("pass", "advisory", "mandatory")}
    lines = [
        f"hakube policy pack {pack.PACK_NAME} {pack.PACK_VERSION} on stack {stack}: {len(verdicts)} rules, "
        f"{counts['pass']} passed, {counts['advisory']} advisory violation(s), "
        f"{counts['mandatory']} mandatory violation(s)",
        f"pack config: policies/config/{stack}.json" if (pack.CONFIG_DIR / f"{stack}.json").exists()
        else "pack config: none (every policy at its own level)",
        "",
    ]
    for v in verdicts:
        checked = f"{v.subjects} resource(s) in scope" if v.subjects else "nothing in scope in this stack"
        lines.append(f"{v.status.upper():9} {v.name} [{v.level.value}; {checked}]")
        lines.append(f"          {v.description}")
        lines += [f"          - {m if m.startswith(f'{r}:') else f'{r}: {m}'}" for r, m in v.violations]
    return "\n".join(lines) + "\n"
