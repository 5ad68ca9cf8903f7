"""YAML text of hakube's own files (kubeadm's, the apiserver's), dumped from data with PyYAML."""

from __future__ import annotations

from typing import Any

import yaml


class Quoted(str):
    """A string always written double-quoted (placeholders, cpusets such as "0" that look like numbers)."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]  # libyaml: ~3x faster
    pass


_Dumper.add_representer(
    Quoted, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')
)


def dump(*docs: dict[str, Any]) -> str:
    """One or more documents, keys in the order given, block style."""
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
