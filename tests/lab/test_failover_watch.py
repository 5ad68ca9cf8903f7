"""The failover lab's watch bookkeeping (lab/netlab.py), without a lab: how a watch takes events and
how a scenario's figures are counted. tests/lab/test_failover_real_netns.py runs them against real apiservers."""

from __future__ import annotations

import json
import threading

import pytest

from lab.netlab import KubeClient, WatchFigures, _Gone, _Watch


def _watch() -> _Watch:
    client = KubeClient("198.18.0.100", 6443, "ca", "cert", "key")
    return _Watch(client, None, "wabc", "100", threading.Event(), [""])  # type: ignore[arg-type]


def _line(kind: str, name: str, rv: str) -> bytes:
    return json.dumps({"type": kind, "object": {"metadata": {"name": name, "resourceVersion": rv}}}).encode()


def test_a_watch_resumes_from_the_last_resource_version_it_saw_bookmarks_included() -> None:
    w = _watch()
    w.event(_line("ADDED", "wabc-00000", "101"))
    w.event(_line("MODIFIED", "wabc-00000", "102"))
    w.event(json.dumps({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "150"}}}).encode())
    assert w.seen == ["wabc-00000"] and w.rv == "150"
    assert "resourceVersion=150" in w.path() and "watch=1" in w.path() and "allowWatchBookmarks=true" in w.path()
    assert "labelSelector=hakube.lab%2Fwatch-run%3Dwabc" in w.path()


def test_a_410_in_the_stream_is_lost_history() -> None:
    w = _watch()
    with pytest.raises(_Gone):
        w.event(json.dumps({"type": "ERROR", "object": {"kind": "Status", "code": 410,
                                                        "message": "too old resource version"}}).encode())
    assert w.rv == "100"


def test_a_watch_is_done_only_once_told_to_stop_and_the_writers_last_object_arrived() -> None:
    w = _watch()
    w.event(_line("ADDED", "wabc-00001", "101"))
    assert not w.done()
    w.target[0] = "wabc-00002"
    w.stop.set()
    assert not w.done()
    w.event(_line("ADDED", "wabc-00002", "102"))
    assert w.done()


def _watched(*seen: list[str], breaks: int = 0) -> dict[str, object]:
    return {"watches": [{"seen": names, "reconnects": breaks, "gone": 0, "longest_unwatched_ms": 10.0 * i,
                         "breaks": [{"cause": "closed by the far end"}] * breaks}
                        for i, names in enumerate(seen)]}


def test_figures_count_per_watch_what_it_missed_or_got_twice() -> None:
    written = {"created": ["a", "b", "c"], "failed": 1}
    figures = WatchFigures.of(written, _watched(["a", "b", "c"], ["a", "c", "c", "d"], breaks=1))
    assert (figures.watches, figures.created, figures.create_failures) == (2, 3, 1)
    assert figures.missed == 1  # the second watch never got b
    assert figures.duplicates == 1  # ... and got c twice
    assert figures.unconfirmed == 1  # d: delivered, but its create failed on the writer's side
    assert figures.reconnects == 2 and figures.longest_unwatched_ms == 10.0
    assert figures.causes == ["closed by the far end"] * 2


def test_figures_of_a_clean_run() -> None:
    figures = WatchFigures.of({"created": ["a", "b"], "failed": 0}, _watched(["a", "b"], ["a", "b"]))
    assert (figures.missed, figures.duplicates, figures.unconfirmed, figures.reconnects) == (0, 0, 0, 0)
