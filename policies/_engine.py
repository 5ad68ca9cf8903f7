"""How a policy reaches a rule: what the engine (or the dry run) hands a policy, converted once to
plain `Resource`s; one `Stack` over them shared by every stack rule; and `stack_policy` /
`resource_policy`, which wrap a rule into the CrossGuard policy its module lists.

What a Python policy receives from the engine (pulumi 3.272, pulumi-policy 1.21): the engine
sends properties with secrets and unknowns kept (KeepSecrets, KeepUnknowns), but the Python SDK
deserializes them for Analyze/AnalyzeStack without `proxy_secrets`, so a secret arrives as its
plain value and a policy cannot see that it was secret; what it can see is
`opts.additional_secret_outputs`, so that is what the secret rule reads (a value still in the
wire form, e.g. built by hand in a test, counts too). A value still unknown during preview arrives
as a sentinel string behind a proxy that raises UnknownValueError when read; `_plain` reads
through that proxy (sentinels stay, _data.known() tells them apart).

Resource policies see a resource's inputs; stack policies see every resource's *outputs*, and a
component's outputs are what it passed to register_outputs: hakube components register their
inputs as outputs so the stack rules read the same facts under the engine as in the dry run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._data import Resource, Stack, StackRule, contains_secret, placed_files, reveal

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

Policy = ResourceValidationPolicy | StackValidationPolicy


@dataclass(frozen=True)
class Scope:
    """What a policy inspects, so a report can tell "passed" from "nothing to check yet"."""

    types: tuple[str, ...]
    path_prefix: str = ""

    def count(self, resources: Iterable[Resource]) -> int:
        """The resources in scope; a FileSet is when one of its files is (placed_files)."""
        return len({r.urn for r in placed_files(resources) if r.type in self.types
                    and str(r.props.get("path") or "").startswith(self.path_prefix)})


def _plain(value: Any) -> Any:
    """Dicts and lists out of pulumi_policy's proxies, read through their raw targets so an
    unknown value stays a sentinel (rules skip it) instead of aborting the whole policy."""
    if isinstance(value, str | bytes | int | float | None):  # before the slower Mapping (ABC) checks
        return value
    if isinstance(value, Mapping):
        target = value if isinstance(value, dict) else value["__target"]
        return {k: _plain(v) for k, v in target.items()}
    if isinstance(value, Sequence):
        # A proxied list answers its raw target to this key, though Sequence declares int keys only.
        target = value if isinstance(value, list | tuple) else cast(Any, value)["__target"]
        return [_plain(v) for v in target]
    return value


def to_resource(type_: str, name: str, urn: str, props: Any, opts: PolicyResourceOptions | None, *,
                parent: str | None = None, dependencies: Sequence[str] = (),
                property_dependencies: Mapping[str, Sequence[str]] | None = None,
                provider: str | None = None) -> Resource:
    revealed, secret = _once("props", props, lambda: _revealed(props))
    secret |= frozenset(getattr(opts, "additional_secret_outputs", None) or [])
    return Resource(
        urn=urn, type=type_, name=name, props=revealed,
        parent=parent or (getattr(opts, "parent", None) or None),
        dependencies=tuple(dependencies),
        property_dependencies={k: tuple(v) for k, v in (property_dependencies or {}).items()},
        provider=provider, secrets=frozenset(secret),
    )


def _revealed(props: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """The props as plain data with secrets unwrapped, and the names of those that held one."""
    raw = _plain(props) or {}
    return reveal(raw), frozenset(k for k, v in raw.items() if contains_secret(v))


# URN -> the inputs the engine last handed a resource policy. The engine runs Analyze (resource
# policies, on inputs) for every resource before AnalyzeStack (stack policies, on outputs), in this one
# pack process. In a preview it knows no outputs for a resource whose provider is not configured yet
# (libvirt before its hypervisor is prepared, kubernetes before the cluster exists: their inputs are
# unknown) and hands stack policies an empty map for it, which a rule would read as "no xml.xslt",
# "no NIC", ...; a configured provider's preview echoes the inputs, as the dry run's mocks do, so a
# stack rule reads those instead.
_INPUTS: dict[str, Any] = {}


def _known_props(r: PolicyResource) -> Any:
    """The resource's outputs, or its inputs while the engine knows no outputs (see _INPUTS)."""
    if r.props is not None and not _plain(r.props):
        return _INPUTS.get(r.urn, r.props)
    return r.props


def from_policy_resource(r: PolicyResource) -> Resource:
    return to_resource(
        r.resource_type, r.name, r.urn, _known_props(r), r.opts,
        parent=r.parent.urn if r.parent is not None else None,
        dependencies=[d.urn for d in r.dependencies],
        property_dependencies={k: [d.urn for d in v] for k, v in (r.property_dependencies or {}).items()},
        provider=r.provider.urn if r.provider is not None else None,
    )


def from_args(args: ResourceValidationArgs) -> Resource:
    return to_resource(args.resource_type, args.name, args.urn, args.props, args.opts,
                       provider=args.provider.urn if args.provider is not None else None)


T = TypeVar("T")
# Conversions shared between policies while `shared_conversions()` is active: id(object) -> (the
# object, kept alive so its id is not reused, and its conversion). None: convert on every call.
_SHARED: dict[tuple[str, int], tuple[Any, Any]] | None = None


@contextmanager
def shared_conversions() -> Iterator[None]:
    """Within this block every stack-policy resource list and every resource policy's props object
    is converted once, and that conversion is shared by every policy handed the same object.

    The dry run evaluates all policies over one set of PolicyResources, so without this it converted
    the whole stack, and built a Stack over it, again for each stack policy; within it, a resource's
    props are converted once for the stack and the resource policies alike, and one Stack serves
    every stack rule. The engine's policy server builds fresh
    objects for every policy call and never enters this block: there each call converts, as before.
    Rules must treat what they get as read-only (Resource is frozen; its props are shared).
    """
    global _SHARED
    outer, _SHARED = _SHARED, {}
    try:
        yield
    finally:
        _SHARED = outer


def _once(kind: str, key: Any, convert: Callable[[], T]) -> T:
    if _SHARED is None:
        return convert()
    hit = _SHARED.get((kind, id(key)))
    if hit is None or hit[0] is not key:
        hit = _SHARED[(kind, id(key))] = (key, convert())
    return cast(T, hit[1])  # stored under (kind, key) by this function, so of convert's type


def stack_resources(resources: Sequence[PolicyResource]) -> list[Resource]:
    """What a stack rule checks: every resource of `StackValidationArgs.resources`, converted."""
    return list(_once("stack", resources, lambda: [from_policy_resource(r) for r in resources]))


def stack_index(resources: Sequence[PolicyResource]) -> Stack:
    """The Stack every stack rule reads for `StackValidationArgs.resources` (one per evaluation)."""
    return _once("index", resources, lambda: Stack(stack_resources(resources)))


def _args_resource(args: ResourceValidationArgs) -> Resource:
    if args.props is None:
        return from_args(args)
    return _once(f"props {args.urn}", args.props, lambda: from_args(args))


# Policy name -> what it inspects, filled as each module builds its policies (pack.SCOPES).
SCOPES: dict[str, Scope] = {}


def stack_policy(name: str, description: str, check: StackRule, level: EnforcementLevel,
                 scope: Scope) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for violation in check(stack_index(args.resources)):
            report(violation.message, violation.urn or None)

    policy = StackValidationPolicy(name=name, description=description, validate=validate, enforcement_level=level)
    SCOPES[name] = scope
    return policy


def resource_policy(name: str, description: str, check: Callable[[Resource, Mapping[str, Any]], list[str]],
                    level: EnforcementLevel, scope: Scope,
                    config_schema: PolicyConfigSchema | None = None) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        _INPUTS[args.urn] = args.props
        for message in check(_args_resource(args), args.get_config() or {}):
            report(message, args.urn)

    policy = ResourceValidationPolicy(name=name, description=description, validate=validate,
                                      enforcement_level=level, config_schema=config_schema)
    SCOPES[name] = scope
    return policy


