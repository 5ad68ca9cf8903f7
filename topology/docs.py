"""Print the README's configuration table from the model's field descriptions.

`python -m topology.docs` prints it, `--write README.md` updates it; a test keeps README.md in
step with the model.
"""

from __future__ import annotations

import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from topology.model import Cluster

BEGIN = "<!-- config-table:begin (python -m topology.docs) -->"
END = "<!-- config-table:end -->"


def _submodel(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(model inside the annotation, whether it is a list of them)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    for arg in typing.get_args(annotation):
        found, _ = _submodel(arg)
        if found is not None:
            return found, origin is list
    return None, False


def rows(model: type[BaseModel] = Cluster, prefix: str = "") -> list[tuple[str, str, str]]:
    out = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        sub, is_list = _submodel(info.annotation)
        required = info.default is PydanticUndefined and info.default_factory is None
        # A removed key stays in the model only to be refused with its reason (e.g. addons.ingress).
        need = "removed" if info.deprecated else "required" if required else "optional"
        if sub is not None:
            out.append((key + ("[]" if is_list else ""), need, info.description or ""))
            out.extend(rows(sub, key + ("[]." if is_list else ".")))
        else:
            out.append((key, need, info.description or ""))
    return out


def table() -> str:
    lines = [BEGIN, "| key (under `hakube:cluster`) | | meaning and default |", "|---|---|---|"]
    lines += [f"| `{key}` | {need} | {text} |" for key, need, text in rows()]
    lines.append(END)
    return "\n".join(lines)


def write_readme(path: Path) -> None:
    """Replace the table between the markers in README.md."""
    text = path.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    path.write_text(text[:start] + table() + text[end:])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        write_readme(Path(sys.argv[2]))
    else:
        print(table())
