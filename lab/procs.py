"""Processes and namespaces of a lab: which PIDs live in its namespaces, and killing them by PID.

A namespace is named by the (device, inode) of its nsfs file (`/proc/PID/ns/net`,
`/run/netns/NAME`). Teardown kills exactly the processes found in the lab's own namespaces,
through a pidfd opened and checked against the namespace first, so a recycled PID is never hit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Collection
from pathlib import Path

NsId = tuple[int, int]
NS_KINDS = ("net", "mnt", "pid")


def ns_id(path: str | Path) -> NsId | None:
    """The namespace a nsfs path stands for, or None once it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def process_ns(pid: int, kind: str) -> NsId | None:
    return ns_id(f"/proc/{pid}/ns/{kind}")


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def start_time(pid: int) -> str:
    """The process's start time (clock ticks since boot), or "" once it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    return "" if fields[0] == "Z" else fields[19]


def in_namespaces(pid: int, namespaces: Collection[NsId]) -> bool:
    return any(process_ns(pid, kind) in namespaces for kind in NS_KINDS)


def processes_in(namespaces: Collection[NsId]) -> list[int]:
    """Every live process in any of `namespaces` (a zombie is dead already: its parent reaps it)."""
    me = os.getpid()
    return [pid for pid in all_pids() if pid != me and in_namespaces(pid, namespaces) and start_time(pid)]


def kill_in(namespaces: Collection[NsId], timeout: float = 10) -> list[int]:
    """SIGKILL every process in `namespaces`, scanning again until none is left (a process may
    fork between a scan and its kill). Returns the PIDs still there at the deadline."""
    deadline = time.monotonic() + timeout
    while (pids := processes_in(namespaces)) and time.monotonic() < deadline:
        for pid in pids:
            kill_checked(pid, namespaces)
        time.sleep(0.02)
    return processes_in(namespaces)


def kill_checked(pid: int, namespaces: Collection[NsId], sig: int = signal.SIGKILL) -> None:
    """Signal `pid` only if, once pinned by a pidfd, it is still in one of `namespaces`."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if in_namespaces(pid, namespaces):
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(fd, sig)
    finally:
        os.close(fd)


def children(pid: int) -> list[int]:
    """The direct children of `pid` (its main thread's), from /proc."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)
