"""The plain data every rule reads: a resource as a rule sees it, a violation, and `Stack`, the index
over one stack's resources that every stack rule of one evaluation shares.

Nothing here needs the Pulumi engine: `_engine.py` turns what the engine (or the dry run) hands a
policy into `Resource`s. Rules treat all of it as read-only (`Resource` is frozen; props are shared).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import yaml

from .contract import CLUSTER, CPUSET_PART, FILE_DROP, FILE_SET, HYPERVISOR, KUBEADM_DIR, MAX_CORE, NODE

KUBEADM_PREFIX = f"{KUBEADM_DIR}/"  # what the path of every kubeadm config starts with

# The engine's wire form of a secret (sdk/go/common/resource/properties.go); the dry run keeps it.
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
# Types that never hold a secret: checked first by the helpers below, before the slower Mapping (ABC) test.
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
# During `pulumi preview` a value computed from another resource's output arrives as one of
# these sentinels (pulumi_policy/proxy.py); rules treat it as "not known yet", never as a value.
UNKNOWNS = frozenset({
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58", "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
})


@dataclass(frozen=True)
class Resource:
    """One resource as a rule sees it. `parent`, `dependencies` and `provider` are URNs."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any] = field(default_factory=dict)
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    provider: str | None = None
    # Top-level properties that are Pulumi secrets (wrapped values or additionalSecretOutputs).
    secrets: frozenset[str] = frozenset()

    @cached_property
    def placed(self) -> tuple[Resource, ...]:
        """A FileSet's files as FileDrop-shaped resources (set_files), made once: every stack rule
        and scope reads them."""
        return tuple(set_files(self)) if self.type == FILE_SET else ()


@dataclass(frozen=True)
class Violation:
    urn: str
    message: str


def is_secret(value: Any) -> bool:
    """A value in the engine's secret wire form, or a pulumi_policy.Secret (duck-typed)."""
    if type(value) in _PLAIN_SCALARS:
        return False
    if isinstance(value, Mapping):
        return value.get(_SIG_KEY) == _SECRET_SIG
    return type(value).__name__ == "Secret" and hasattr(value, "value")


def contains_secret(value: Any) -> bool:
    if type(value) in _PLAIN_SCALARS:
        return False
    if is_secret(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_secret(v) for v in value)
    return False


def reveal(value: Any) -> Any:
    """The value with every secret wrapper removed (rules read the plain text)."""
    if type(value) in _PLAIN_SCALARS:
        return value
    if is_secret(value):
        return reveal(value["value"] if isinstance(value, Mapping) else value.value)
    if isinstance(value, Mapping):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [reveal(v) for v in value]
    return value


def known(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and value in UNKNOWNS)


def dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def as_int(value: Any) -> int | None:
    """Numbers arrive as floats from the engine and the mocks (4.0)."""
    if isinstance(value, bool) or not known(value):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


# The Linux cpuset list format as topology/cpuset.py accepts it (the pack cannot import topology/;
# tests/topology/test_cpuset.py holds the two parsers to the same verdicts): ASCII digits, no reversed range,
# no core above MAX_CORE, no core named twice.
_CPUSET_PART = re.compile(CPUSET_PART)


def parse_cpuset(text: str) -> set[int]:
    """'0-3,8' -> {0, 1, 2, 3, 8}; ValueError on anything the kernel (and topology/) refuses."""
    cores: list[int] = []
    for part in str(text).split(","):
        match = _CPUSET_PART.fullmatch(part)
        if match is None:
            raise ValueError(f"bad cpuset part {part!r}")
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) is not None else start
        if end < start or end > MAX_CORE:
            raise ValueError(f"bad cpuset range {part!r}")
        cores += range(start, end + 1)
    if len(set(cores)) != len(cores):
        raise ValueError(f"cpuset {text!r} names a core twice")
    return set(cores)


def fmt_cores(cores: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(cores))


# libyaml's parser when PyYAML has it (its wheels do): the pure-Python one took a third of the
# policy time on 1,000 workers (bench/scale.py).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=4096)
def _parsed_yaml(text: str) -> tuple[Any, ...]:
    """Every document of `text`, parsed once however many rules read the same file; rules treat
    the result as read-only. Raises yaml.YAMLError."""
    return tuple(yaml.load_all(text, Loader=_YAML_LOADER))


def load_yaml_docs(text: Any) -> list[dict[str, Any]]:
    if not isinstance(text, str) or not known(text):
        return []
    try:
        return [d for d in _parsed_yaml(text) if isinstance(d, dict)]
    except yaml.YAMLError:
        return []


class Stack:
    """Index over a stack's resources: by URN, by type, children, ancestors, the files on each node.

    Built once per evaluation and shared by every stack rule (`_engine.stack_index`), so the indexes
    below are built once too, on first use.
    """

    def __init__(self, resources: Iterable[Resource]) -> None:
        listed = list(resources)
        self.by_urn = {r.urn: r for r in listed}
        # Each file of a FileSet is seen as a FileDrop (placed_files): rules read one file at a time.
        self.resources = placed_files(listed)
        self._children: dict[str, list[Resource]] = defaultdict(list)
        self._by_type: dict[str, list[Resource]] = defaultdict(list)
        for r in self.resources:
            self._by_type[r.type].append(r)
            if r.parent:
                self._children[r.parent].append(r)

    def of_type(self, type_: str) -> list[Resource]:
        return list(self._by_type.get(type_, ()))

    def get(self, urn: str | None) -> Resource | None:
        return self.by_urn.get(urn) if urn else None

    def children(self, r: Resource, type_: str | None = None) -> list[Resource]:
        return [c for c in self._children[r.urn] if type_ is None or c.type == type_]

    def ancestor(self, r: Resource, type_: str) -> Resource | None:
        seen = 0
        current = self.get(r.parent)
        while current is not None and seen < len(self.resources):
            if current.type == type_:
                return current
            current, seen = self.get(current.parent), seen + 1
        return None

    def hypervisor_of(self, r: Resource) -> Resource | None:
        """The Hypervisor component a libvirt resource lives on: its ancestor, else its provider's."""
        found = self.ancestor(r, HYPERVISOR)
        provider = self.get(r.provider)
        if found is None and provider is not None:
            found = self.ancestor(provider, HYPERVISOR)
        return found

    def cluster(self) -> Resource | None:
        clusters = self._by_type.get(CLUSTER)
        return clusters[0] if clusters else None

    @cached_property
    def _nodes_by_name(self) -> dict[str, Resource]:
        named: dict[str, Resource] = {}
        for n in self._by_type.get(NODE, ()):
            named.setdefault(n.name, n)  # the first of a name, as a search in order finds it
        return named

    def node_of(self, r: Resource) -> Resource | None:
        """The Kubernetes Node component a FileDrop belongs to: its ancestor, else by host name."""
        found = self.ancestor(r, NODE)
        if found is None:
            host = r.props.get("host")
            found = self._nodes_by_name.get(host) if isinstance(host, str) else None
        return found

    @cached_property
    def _files_by_node(self) -> dict[str, list[Resource]]:
        files: dict[str, list[Resource]] = defaultdict(list)
        for drop in self._by_type.get(FILE_DROP, ()):
            owner = self.node_of(drop)
            if owner is not None:
                files[owner.urn].append(drop)
        return files

    def files_on(self, node: Resource) -> list[Resource]:
        """The FileDrops (a FileSet's files included) that belong to `node` (node_of), in order."""
        return list(self._files_by_node.get(node.urn, ()))

    @cached_property
    def control_plane_nodes(self) -> tuple[Resource, ...]:
        return tuple(n for n in self._by_type.get(NODE, ()) if n.props.get("role") == "control-plane")

    @cached_property
    def kubeadm_drops(self) -> tuple[Resource, ...]:
        """Every file placed under the kubeadm directory, on any host."""
        return tuple(d for d in self._by_type.get(FILE_DROP, ())
                     if str(d.props.get("path") or "").startswith(KUBEADM_PREFIX))

    def kubeadm_docs(self, node: Resource) -> list[dict[str, Any]]:
        """Every YAML document of the kubeadm configs placed on `node`."""
        return [doc for d in self.files_on(node) if str(d.props.get("path") or "").startswith(KUBEADM_PREFIX)
                for doc in load_yaml_docs(d.props.get("content"))]


def set_files(file_set: Resource) -> list[Resource]:
    """A FileSet's files, each shaped like a FileDrop beside it: the set's URN (a violation names a
    real resource), its parent and host, and the file's own path, content and mode."""
    files = file_set.props.get("files")
    return [
        Resource(urn=file_set.urn, type=FILE_DROP, name=f"{file_set.name}[{entry.get('path')}]",
                 props={"host": file_set.props.get("host"), **entry}, parent=file_set.parent,
                 secrets=file_set.secrets)
        for entry in (files if isinstance(files, list) else []) if isinstance(entry, Mapping)
    ]


def placed_files(resources: Iterable[Resource]) -> list[Resource]:
    """The resources with each FileSet followed by its files as FileDrop-shaped resources."""
    out = []
    for r in resources:
        out.append(r)
        out += r.placed
    return out


# A stack rule: every violation it finds in one stack.
StackRule = Callable[[Stack], list[Violation]]
