"""Linux cpuset strings ("0-1,4,6-7") parsed into sorted core numbers."""

from __future__ import annotations

import re

from policies.contract import CPUSET_PART, MAX_CORE

_PART = re.compile(CPUSET_PART)


class CpusetError(ValueError):
    """A cpuset string that the kernel (and libvirt) would refuse."""


def parse_cpuset(text: str) -> tuple[int, ...]:
    """Return the cores named by a cpuset such as "0-1,4"; reject empty, reversed or repeated parts."""
    if not text.strip():
        raise CpusetError("empty cpuset")
    cores: list[int] = []
    for part in text.split(","):
        match = _PART.fullmatch(part)
        if not match:
            raise CpusetError(f"{part!r} is not a core number or range like 2-5")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise CpusetError(f"range {part} runs backwards")
        if last > MAX_CORE:
            raise CpusetError(f"core {last} is beyond Linux's highest core number {MAX_CORE}")
        cores.extend(range(first, last + 1))
    if len(set(cores)) != len(cores):
        raise CpusetError(f"{text} names a core twice")
    return tuple(sorted(cores))


def format_cpuset(cores: tuple[int, ...] | list[int]) -> str:
    """The shortest cpuset string for a set of cores: (0, 1, 2, 5) -> "0-2,5"."""
    ordered = sorted(set(cores))
    parts: list[str] = []
    start: int | None = None
    prev = 0  # set with start; read only once start is
    for core in ordered:
        if start is None:
            start = prev = core
        elif core == prev + 1:
            prev = core
        else:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = core
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)
