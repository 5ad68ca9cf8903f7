"""A small TOML writer for configuration built as data (containerd's config.toml).

Enough TOML for nested tables of scalars: tables become `[a.'b.c'.d]` headers, keys that are not
bare (containerd's plugin ids have dots) are single-quoted literal keys, strings are basic strings
with JSON's escapes (a subset of TOML's). tests/configs/test_containerd.py reads every output back with
tomllib, which must give the data again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    if _BARE_KEY.fullmatch(name):
        return name
    if "'" in name or "\n" in name:
        raise ValueError(f"key {name!r} needs a basic-string key, which this writer does not write")
    return f"'{name}'"


def _value(value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # JSON's escapes are TOML's, but for characters outside the BMP (JSON's surrogate pairs are not
        # TOML) and DEL (TOML escapes it): so non-ASCII goes literally, DEL escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def _table(path: tuple[str, ...], table: Mapping[str, Any], out: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
    # A table with only sub-tables needs no header of its own: TOML creates it implicitly.
    if path and (scalars or not table):
        out.extend(["", "[" + ".".join(map(_key, path)) + "]"])
    out.extend(f"{'  ' * bool(path)}{_key(k)} = {_value(v)}" for k, v in scalars.items())
    for name, sub in table.items():
        if isinstance(sub, Mapping):
            _table((*path, name), sub, out)


def dumps(data: Mapping[str, Any]) -> str:
    """TOML text of `data` (str keys; str, int, bool and list values; nested mappings as tables)."""
    out: list[str] = []
    _table((), data, out)
    return "\n".join(out).lstrip("\n") + "\n"
