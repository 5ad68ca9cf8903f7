"""Secrets at rest and the audit log against the real thing: 3 etcd 3.6 members and 3 kube-apiservers
started from kubeadm's own manifests (lab/realcp.py), each apiserver reading the encryption
configuration and audit policy that hakube renders, placed by the real file-set.sh with the keys.

A Secret created through the API is stored in etcd with secretbox's `k8s:enc:secretbox:v1:<key>:`
prefix and never in plain text; a key rotation, done as hakube rolls it out (each step's files on
every node, then the apiservers restarted one at a time, the real secrets-rewrite.sh after the
promote step), keeps every Secret readable through every apiserver at every point, including the
moments when only some apiservers run the new step. The restart stands in for apiserver-restart.sh
(there is no kubelet here: the lab stops and starts the process; the script itself is tested on a
scratch root in tests/components/test_encryption.py). The audit log records a Secret's creation at Metadata,
without its value, and no health checks."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from configs import apiserver
from lab.realcplab import REAL_TOOLS, Running, place_encryption_step, real_control_plane, rewrite_secrets
from tests.mockgraph import cluster_copy
from topology import load_cluster

pytestmark = [pytest.mark.root, pytest.mark.realtool(*REAL_TOOLS), pytest.mark.tool("curl")]

VALUE = "hakube-plain-text-canary"  # a Secret value that must never appear in etcd or the audit log


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    with real_control_plane("dev") as cp:
        yield cp


def _stored(running: Running, name: str) -> bytes:
    """The raw value etcd holds for Secret default/<name>."""
    out = running.etcdctl("get", f"/registry/secrets/default/{name}", "-w", "json").stdout
    (kv,) = json.loads(out)["kvs"]
    return base64.b64decode(kv["value"])


def _secret(running: Running, name: str, node: str | None = None) -> str:
    out = running.kubectl("get", "secret", name, "-o", "jsonpath={.data.v}", node=node).stdout
    return base64.b64decode(out).decode()


def _create(running: Running, name: str, node: str | None = None) -> None:
    running.kubectl("create", "secret", "generic", name, f"--from-literal=v={VALUE}-{name}", node=node)


def _prefix(key: str) -> bytes:
    return f"{apiserver.STORED_PREFIX}{key}:".encode()


def _readable_everywhere(running: Running, *names: str) -> None:
    for node in running.cp.members:
        for name in names:
            assert _secret(running, name, node) == f"{VALUE}-{name}", (node, name)


def test_a_secret_is_stored_encrypted_with_the_write_key(running: Running) -> None:
    _create(running, "hk-first")
    stored = _stored(running, "hk-first")
    assert stored.startswith(_prefix("key1")), stored[:40]
    assert VALUE.encode() not in stored and base64.b64encode(VALUE.encode()) not in stored
    assert _secret(running, "hk-first", list(running.cp.members)[-1]) == f"{VALUE}-hk-first"
    config = running.cp.members[running.first].built.host_path(apiserver.ENCRYPTION_CONFIG_PATH)
    assert oct(config.stat().st_mode & 0o777) == "0o600" and "${" not in config.read_text()


def test_the_audit_log_has_the_request_at_metadata_without_the_value(running: Running) -> None:
    log_path = running.cp.members[running.first].built.host_path(load_cluster(cluster_copy("dev")).audit.path)
    deadline = time.monotonic() + 10
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:  # the audit backend writes in batches
        events = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.exists() else []
        if any((e.get("objectRef") or {}).get("name") == "hk-first" for e in events):
            break
        time.sleep(0.2)
    created = [e for e in events if e.get("verb") == "create" and (e.get("objectRef") or {}).get("name") == "hk-first"]
    assert created and all(e["level"] == "Metadata" for e in created)
    assert created[0]["objectRef"]["resource"] == "secrets" and created[0]["stage"] == "ResponseComplete"
    assert not any("requestObject" in e or "responseObject" in e for e in events)
    text = log_path.read_text()
    assert VALUE not in text and base64.b64encode(VALUE.encode()).decode() not in text
    assert not [e for e in events if str(e.get("requestURI", "")).startswith(("/readyz", "/livez", "/healthz"))]


def test_a_rotation_keeps_every_secret_readable_one_apiserver_at_a_time(running: Running) -> None:
    nodes = list(running.cp.members)
    _create(running, "hk-rotated")
    timings: dict[str, float] = {}

    # 1. add: key2 readable everywhere. Halfway (one apiserver restarted), everything still reads.
    started = time.monotonic()
    place_encryption_step(running, ["key1", "key2"])
    running.cp.restart_apiserver(running.lab, nodes[0])
    _readable_everywhere(running, "hk-rotated")
    for node in nodes[1:]:
        running.cp.restart_apiserver(running.lab, node)
    timings["add"] = time.monotonic() - started

    # 2. promote: writes use key2. A Secret written by the first restarted apiserver is read by the
    # ones not yet restarted, which learned key2 in step 1 (why the add step comes first).
    started = time.monotonic()
    place_encryption_step(running, ["key2", "key1"])
    running.cp.restart_apiserver(running.lab, nodes[0])
    _create(running, "hk-during", node=nodes[0])
    assert _stored(running, "hk-during").startswith(_prefix("key2"))
    _readable_everywhere(running, "hk-during", "hk-rotated")
    for node in nodes[1:]:
        running.cp.restart_apiserver(running.lab, node)
    assert _stored(running, "hk-rotated").startswith(_prefix("key1"))  # not rewritten yet
    log = rewrite_secrets(running, "key2")
    assert "with key2" in log and VALUE not in log
    for name in ("hk-first", "hk-rotated", "hk-during"):
        assert _stored(running, name).startswith(_prefix("key2")), name
    timings["promote"] = time.monotonic() - started

    # 3. retire: key1 gone from every node, every Secret still reads.
    started = time.monotonic()
    place_encryption_step(running, ["key2"])
    for node in nodes:
        running.cp.restart_apiserver(running.lab, node)
    _readable_everywhere(running, "hk-first", "hk-rotated", "hk-during")
    timings["retire"] = time.monotonic() - started
    for member in running.cp.members.values():
        config = member.built.host_path(apiserver.ENCRYPTION_CONFIG_PATH)
        assert running.cp.keys["HAKUBE_ENCRYPTION_KEY_KEY1"] not in config.read_text()
        assert not list(Path(config.parent).glob("*.hakube-prev"))
    print("\nrotation seconds per step (3 apiservers, one at a time): "
          + ", ".join(f"{step} {seconds:.1f}" for step, seconds in timings.items()))
