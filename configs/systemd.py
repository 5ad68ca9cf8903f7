"""systemd unit files as data: {section: [(key, value), ...]} -> the unit's text.

A list of pairs, not a mapping: a unit may repeat a key (ExecStartPre=, After=), and the order
of keys is kept as written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Unit = Mapping[str, Sequence[tuple[str, str]]]


def unit_text(unit: Unit) -> str:
    """The INI-like text systemd reads (systemd.syntax(7)); refuses what would change its meaning."""
    blocks = []
    for section, entries in unit.items():
        if not section or any(c in section for c in "[]\n"):
            raise ValueError(f"bad unit section name {section!r}")
        lines = [f"[{section}]"]
        for key, value in entries:
            if not key.replace("-", "").isalnum():
                raise ValueError(f"[{section}]: bad key {key!r}")
            if "\n" in value or value != value.strip():
                raise ValueError(f"[{section}] {key}: the value must be one line without surrounding blanks")
            lines.append(f"{key}={value}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def environment_file(env: Mapping[str, str]) -> str:
    """An EnvironmentFile= (systemd.exec(5)): NAME=value lines, each value double-quoted with \\ and " escaped.
    `$` is refused: systemd expands $NAME references of earlier lines in such a file."""
    lines = []
    for name, value in sorted(env.items()):
        if not name.replace("_", "").isalnum() or not name[0].isalpha() or "\n" in value or "$" in value:
            raise ValueError(f"bad environment entry {name!r}")
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{name}="{escaped}"')
    return "\n".join(lines) + "\n"
