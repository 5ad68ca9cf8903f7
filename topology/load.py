"""Load and check a topology from Pulumi config or a stack file; every problem names its path."""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from topology.model import Cluster
from topology.rules import Loc, check

ROOT = "hakube:cluster"
# Keys shown bare after a dot; any other key (a label like "kubernetes.io/os", a typo with a space
# or newline) is quoted in brackets so one problem stays one unambiguous line.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


class TopologyError(ValueError):
    """A stack configuration that hakube refuses; `lines` holds one line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def yaml_kind(value: object) -> str:
    """A value's type as a stack-file author knows it ("null", "a list"), not Python's name."""
    kinds = ((type(None), "null"), (bool, "a boolean"), ((int, float), "a number"), (str, "a string"),
             (list, "a list"), (dict, "a mapping"))
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


def _shown(value: object, limit: int = 60) -> str:
    """repr() of a refused value, cut short so one problem stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render_loc(loc: Loc, root: str = ROOT) -> str:
    text = root
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            text += f".{part}"
        else:
            text += f"[{part!r}]"
    return text


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The config model that owns the key at `loc` (so unknown keys get a suggestion)."""
    model: type[BaseModel] = Cluster
    for part in loc:
        if isinstance(part, int):
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        if part not in fields:
            return None
        found = _unwrap(fields[part].annotation)
        if found is None:
            return None
        model = found
    return model


def _unwrap(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _unwrap(arg)
            if found is not None:
                return found
    return None


def _problem(error: ErrorDetails) -> tuple[Loc, str]:
    """(path, message) of one pydantic error; a non-string key is reported at its mapping."""
    loc = tuple(error["loc"])
    if error["type"] == "invalid_key" or (loc[-1:] == ("[key]",) and loc[-2:-1] == (error["input"],)):
        parent = loc[:-1] if error["type"] == "invalid_key" else loc[:-2]
        # YAML 1.1 reads yes/no/on/off/true/false, numbers and ~ as non-strings.
        return parent, f"key {_shown(error['input'])} is not a string; quote it"
    return loc, _message(error)


def _message(error: ErrorDetails) -> str:
    kind, loc = error["type"], tuple(error["loc"])
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = [f.alias or n for n, f in model.model_fields.items()] if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f"; known keys: {', '.join(known)}"
        return "unknown key" + hint
    if kind == "missing":
        return "required key is missing"
    text = error["msg"].removeprefix("Value error, ")
    if kind in ("model_type", "dict_type"):
        return f"must be a mapping, not {yaml_kind(error['input'])}"
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "literal_error":
        return f"{text} (got {_shown(error['input'])})"
    return text


def load_cluster(data: object) -> Cluster:
    """Validate one `hakube:cluster` value; raise TopologyError listing every problem."""
    if not isinstance(data, dict):
        raise TopologyError([f"{ROOT}: must be a mapping, not {yaml_kind(data)}"])
    try:
        cluster = Cluster.model_validate(data)
    except ValidationError as err:
        lines = [f"{render_loc(loc)}: {message}" for loc, message in map(_problem, err.errors())]
        raise TopologyError(lines) from None
    problems = check(cluster)
    if problems:
        raise TopologyError([f"{render_loc(p.loc)}: {p.message}" for p in problems])
    return cluster


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key written twice in one mapping; PyYAML would silently keep the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<:` merges may legitimately be overridden; complex keys PyYAML refuses itself
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(err: yaml.YAMLError, text: str) -> str:
    """" at line N: what" on one line (PyYAML's own str() spans several lines)."""
    if isinstance(err, yaml.reader.ReaderError):  # a character YAML forbids, e.g. a control character
        return f" at line {text.count(chr(10), 0, err.position) + 1}: {str(err).splitlines()[0]}"
    where = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"{f' at line {where.line + 1}' if where else ''}: {problem}"


def read_stack_file(path: str | Path) -> dict[str, Any]:
    """The `config:` mapping of a Pulumi stack file, with file-level problems as TopologyError."""
    name = str(path)
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise TopologyError([f"{name}: cannot read: {err.strerror}"]) from None
    except UnicodeDecodeError as err:
        raise TopologyError([f"{name}: not UTF-8 text (byte {err.start})"]) from None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as err:
        raise TopologyError([f"{name}: not valid YAML{_yaml_problem(err, text)}"]) from None
    if not isinstance(document, dict):
        what = "empty" if document is None else f"{yaml_kind(document)}, not a mapping"
        raise TopologyError([f"{name}: the stack file is {what}; expected a mapping with a config: key"])
    config = document.get("config")
    if not isinstance(config, dict):
        raise TopologyError([f"{name}: config: must be a mapping holding {ROOT}"])
    if ROOT not in config:
        raise TopologyError([f"{ROOT}: required key is missing from {name}"])
    return config


def load_stack_file(path: str | Path) -> Cluster:
    return load_cluster(read_stack_file(path)[ROOT])
