"""A network-namespace lab for the load-balancer pair (see /work/shared/design/NETNS-LAB.md).

`Lab` builds one bridge namespace and one namespace per host, each host's `eth0` a veth whose
other end sits on the bridge; every namespace name carries a unique prefix (hk<pid><random>), and
every address lies in 198.18.0.0/15. On it run real keepalived and HAProxy (own -f paths and pid
files per namespace), fake TLS kube-apiservers answering any GET with `ok`, and a client that polls the
VIP. Faults: link down, veth removal, SIGKILL, SIGSTOP/SIGCONT, SIGTERM. Teardown kills every
process it started by PID and deletes its namespaces, even when the test failed.

`LbLab` adds the pair on top (start, fault, restore) and `SCENARIOS`, the failover scenarios that
tests/lab/test_failover_netns.py asserts on and bench/failover.py tabulates.

Against real apiservers (lab/realcplab.py RealLbLab sets `watch_setup`) every scenario also runs
`WatchSession`: real ConfigMap watches through the VIP as kubeadm's admin, resumed from their last
resourceVersion when they break, and a writer creating ConfigMaps; `Measurement.watch` counts the
reconnects, the longest time without an open watch, and the events missed or delivered twice. The
fake apiservers cannot watch: there the long-lived connection is a keep-alive /livez stream.

This file is also a small program run inside the namespaces (stdlib only at import time):
`python netlab.py apiserver|poll|stream|watch|write ...`. HAKUBE_LAB_KEEP=1 keeps the lab's directory
(every daemon's config and log) after teardown for a post-mortem.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import ipaddress
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    from lab.procs import wait_until
except ImportError:  # run by path inside a namespace (stdlib only): lab/ itself is on sys.path
    from procs import wait_until  # type: ignore[no-redef]

LAB_RANGE = ipaddress.ip_network("198.18.0.0/15")
BRIDGE_NS = "sw"
POLL_INTERVAL_S = 0.04  # a client request every 40 ms
REQUEST_TIMEOUT_S = 0.8  # below the kernel's 1 s SYN retransmit: a black-holed attempt counts as failed
# What the client asks for: an ordinary request that every apiserver answers "ok" anonymously. Not /readyz:
# a real apiserver told to stop fails /readyz on purpose (that is how HAProxy's check learns to drain it)
# while it still serves every other request, so a /readyz client would count the drain itself as failures.
CLIENT_PATH = "/livez"
THIS_FILE = Path(__file__).resolve()


# ----------------------------------------------------------------------------------------------
# The programs run inside namespaces.


def _tls_client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _connect_tls(host: str, port: int, ctx: ssl.SSLContext, deadline: float) -> ssl.SSLSocket:
    raw = socket.create_connection((host, port), timeout=max(deadline - time.monotonic(), 0.001))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        raw.settimeout(max(deadline - time.monotonic(), 0.001))
        return ctx.wrap_socket(raw)
    except BaseException:
        raw.close()
        raise


def _request(conn: ssl.SSLSocket, deadline: float, keep_alive: bool) -> bool:
    """One GET CLIENT_PATH on `conn`; True on a complete 200 `ok` response."""
    conn.settimeout(max(deadline - time.monotonic(), 0.001))
    header = "" if keep_alive else "Connection: close\r\n"
    conn.sendall(f"GET {CLIENT_PATH} HTTP/1.1\r\nHost: kubernetes\r\n{header}\r\n".encode())
    data = b""
    while b"\r\n\r\nok" not in data:
        conn.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = conn.recv(4096)
        if not chunk:
            return False
        data += chunk
    return data.startswith(b"HTTP/1.1 200")


def _attempt(host: str, port: int, ctx: ssl.SSLContext, timeout: float) -> tuple[float, float, bool]:
    start = time.monotonic()
    deadline = start + timeout
    try:
        with _connect_tls(host, port, ctx, deadline) as conn:
            ok = _request(conn, deadline, keep_alive=False)
    except (OSError, ssl.SSLError):
        ok = False
    return start, time.monotonic(), ok


def _longest_gap(successes: list[float], start: float, end: float) -> float:
    """Longest time without a successful answer, counting the window's own edges."""
    points = [start, *sorted(successes), end]
    return max(b - a for a, b in itertools.pairwise(points))


def poll_main(host: str, port: int, duration: float, interval: float, timeout: float) -> dict[str, Any]:
    """Every `interval` a new TCP connection + TLS + GET CLIENT_PATH (concurrently, so one stalled
    attempt does not hide the next), for `duration` seconds after the path first works."""
    ctx = _tls_client_context()
    warmup_deadline = time.monotonic() + 10
    while not _attempt(host, port, ctx, timeout)[2]:
        if time.monotonic() > warmup_deadline:
            return {"error": "the VIP never answered before the poll"}
        time.sleep(interval)
    start = time.monotonic()
    print(f"ready {start}", flush=True)
    futures = []
    with ThreadPoolExecutor(max_workers=int(timeout / interval) + 8) as pool:
        for i in range(int(duration / interval)):
            time.sleep(max(start + i * interval - time.monotonic(), 0))
            futures.append(pool.submit(_attempt, host, port, ctx, timeout))
    results = [f.result() for f in futures]
    end = max([start + duration, *(r[1] for r in results)])
    failed = [r for r in results if not r[2]]
    return {
        "start": start,
        "requests": len(results),
        "failed": len(failed),
        "failed_at": [round(r[0] - start, 3) for r in failed],
        "longest_gap_ms": round(1000 * _longest_gap([r[1] for r in results if r[2]], start, end), 1),
    }


def stream_main(host: str, port: int, duration: float, interval: float) -> dict[str, Any]:
    """One long-lived TLS connection (like a watch) with a keep-alive request every `interval`."""
    ctx = _tls_client_context()
    try:
        conn = _connect_tls(host, port, ctx, time.monotonic() + 5)
    except (OSError, ssl.SSLError) as err:
        return {"error": f"could not open the stream: {err}"}
    print(f"ready {time.monotonic()}", flush=True)
    start, requests, broken = time.monotonic(), 0, None
    with conn:
        while time.monotonic() - start < duration:
            requests += 1
            try:
                if not _request(conn, time.monotonic() + 2, keep_alive=True):
                    broken = "closed by the far end"
            except (OSError, ssl.SSLError) as err:
                broken = f"{type(err).__name__}: {err}"
            if broken:
                break
            time.sleep(interval)
    return {"requests": requests, "broken": broken, "broken_at": round(time.monotonic() - start, 3) if broken else None}


# A real Kubernetes watch (lab/realcplab.py's lab only: fake apiservers cannot watch). The watcher lists
# ConfigMaps carrying the run's label for a start resourceVersion, then keeps WATCHES watches open through
# the VIP and resumes each broken one from the last resourceVersion it saw; the writer creates one
# labelled ConfigMap every WRITE_INTERVAL_S. Both authenticate with kubeadm's admin client certificate.
WATCHES = 3  # one per apiserver: HAProxy balances leastconn, so each backend carries one watch
WATCH_NAMESPACE = "default"  # the apiserver creates it itself (no controller-manager runs in the lab)
WATCH_LABEL = "hakube.lab/watch-run"
WRITE_INTERVAL_S = 0.05
WRITE_TIMEOUT_S = 2.0
# Silence after which a watch counts as dead. HTTP/1.1 has no ping, and a watch whose TCP path vanished
# (an LB link down, an apiserver host unplugged: HAProxy keeps such a session open) hears nothing, not a
# reset. With an event every 50 ms, 1 s of silence means the stream is gone. client-go's equivalent is
# HTTP/2's read-idle health check (30 s + 15 s ping timeout by default), so its watches notice later.
WATCH_IDLE_S = 1.0
WATCH_OPEN_TIMEOUT_S = 1.0  # connect + TLS + response headers; a black-holed SYN counts as a failed open
WATCH_RETRY_S = 0.1  # between failed opens: the LB, not a backoff, should set the gap
WATCH_MAX_OPENS = 300  # per watch and run: bounds the retry loop in count (30 s of failed opens)
WATCH_CATCH_UP_S = 10.0  # after the writer stopped: time for every watch to deliver its last object
WATCH_MAX_S = 180.0  # a run's hard limit, in case the harness never says stop


@dataclass(frozen=True)
class KubeClient:
    """Where and as whom: the apiserver address and kubeadm's admin client certificate (CA-verified TLS)."""

    host: str
    port: int
    ca: str
    cert: str
    key: str

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca)  # verifies the serving cert, its IP SANs included
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def connection(self, ctx: ssl.SSLContext, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=ctx, timeout=timeout)


def _configmaps_path(query: dict[str, str]) -> str:
    return f"/api/v1/namespaces/{WATCH_NAMESPACE}/configmaps?{urllib.parse.urlencode(query)}"


def _list_resource_version(client: KubeClient, ctx: ssl.SSLContext, run: str) -> str:
    conn = client.connection(ctx, WATCH_OPEN_TIMEOUT_S * 5)
    try:
        conn.request("GET", _configmaps_path({"labelSelector": f"{WATCH_LABEL}={run}"}))
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"list: HTTP {resp.status} {body[:200]!r}")
        return str(json.loads(body)["metadata"]["resourceVersion"])
    finally:
        conn.close()


class _Gone(Exception):
    """The apiserver no longer has the history from our resourceVersion (410 Gone): events were lost."""


@dataclass
class _Watch:
    """One watch that resumes from the last resourceVersion it saw."""

    client: KubeClient
    ctx: ssl.SSLContext
    run: str
    rv: str
    stop: threading.Event
    target: list[str]  # the writer's last name, set before `stop`
    seen: list[str] = field(default_factory=list)  # ADDED names, in order
    names: set[str] = field(default_factory=set)
    opened: threading.Event = field(default_factory=threading.Event)  # the first open succeeded
    breaks: list[dict[str, Any]] = field(default_factory=list)  # cause, last data, reopened (monotonic)
    gone: int = 0
    opens: int = 0
    last_data: float = 0.0

    def path(self) -> str:
        return _configmaps_path({"watch": "1", "resourceVersion": self.rv, "allowWatchBookmarks": "true",
                                 "labelSelector": f"{WATCH_LABEL}={self.run}"})

    def open(self) -> tuple[http.client.HTTPSConnection, http.client.HTTPResponse]:
        self.opens += 1
        conn = self.client.connection(self.ctx, WATCH_OPEN_TIMEOUT_S)
        try:
            conn.request("GET", self.path())
            resp = conn.getresponse()
            if resp.status == 410:
                raise _Gone(f"HTTP 410 for resourceVersion {self.rv}")
            if resp.status != 200:
                raise http.client.HTTPException(f"HTTP {resp.status}: {resp.read(300)!r}")
        except BaseException:
            conn.close()
            raise
        if conn.sock is not None:
            conn.sock.settimeout(WATCH_IDLE_S)
        if self.breaks and "reopened" not in self.breaks[-1]:
            self.breaks[-1]["reopened"] = time.monotonic()
        self.last_data = time.monotonic()
        self.opened.set()
        return conn, resp

    def done(self) -> bool:
        """The harness said stop and this watch has delivered the writer's last object."""
        return self.stop.is_set() and (not self.target[0] or self.target[0] in self.names)

    def event(self, line: bytes) -> None:
        event = json.loads(line)
        obj = event["object"]
        if event["type"] == "ERROR":
            if obj.get("code") == 410:
                raise _Gone(obj.get("message", "410 in the stream"))
            raise http.client.HTTPException(f"watch error event: {obj.get('message')}")
        self.rv = obj["metadata"]["resourceVersion"]  # bookmarks carry one too
        if event["type"] == "ADDED":
            self.seen.append(obj["metadata"]["name"])
            self.names.add(obj["metadata"]["name"])

    def stream(self, deadline: float) -> bool:
        """One open watch until it breaks (raises or returns False), has everything or hits `deadline` (True)."""
        conn, resp = self.open()
        with contextlib.closing(conn):
            while line := resp.readline():
                self.last_data = time.monotonic()
                if line.strip():
                    self.event(line)
                if self.done() or self.last_data > deadline:
                    return True
        return False

    def relist(self) -> None:
        """After a 410 an informer lists again: its objects arrive as a list, not as watch events."""
        self.gone += 1
        self.rv = _list_resource_version(self.client, self.ctx, self.run)

    def loop(self, deadline: float) -> None:
        while time.monotonic() < deadline and self.opens < WATCH_MAX_OPENS and not self.done():
            try:
                if self.stream(deadline):
                    return
                cause = "closed by the far end"
            except _Gone as err:
                cause = f"gone: {err}"
                with contextlib.suppress(OSError, ssl.SSLError, http.client.HTTPException, RuntimeError):
                    self.relist()
            except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as err:
                cause = f"{type(err).__name__}: {err}"
            if self.done():  # the idle timeout after the writer's last object is no break
                return
            # Failed re-opens belong to the same break; failures before the first open are none (the
            # harness waits for every watch to open before the scenario starts).
            if self.opened.is_set() and (not self.breaks or "reopened" in self.breaks[-1]):
                self.breaks.append({"cause": cause, "last_data": self.last_data})
            time.sleep(WATCH_RETRY_S)

    def report(self, start: float, end: float) -> dict[str, Any]:
        unwatched = [b.get("reopened", end) - b["last_data"] for b in self.breaks]
        return {
            "seen": self.seen,
            "reconnects": len(self.breaks),
            "gone": self.gone,
            "opens": self.opens,
            "longest_unwatched_ms": round(1000 * max(unwatched, default=0.0), 1),
            "breaks": [{"cause": b["cause"], "at": round(b["last_data"] - start, 3),
                        "unwatched_ms": round(1000 * (b.get("reopened", end) - b["last_data"]), 1)}
                       for b in self.breaks],
        }


def watch_main(client: KubeClient, run: str) -> dict[str, Any]:
    """WATCHES watches from one listed resourceVersion; on stdin `stop <last name>` each runs until it has
    seen that name (or WATCH_CATCH_UP_S passes), then the report."""
    ctx = client.context()
    try:
        rv = _list_resource_version(client, ctx, run)
    except (OSError, ssl.SSLError, http.client.HTTPException, RuntimeError) as err:
        return {"error": f"could not list: {err}"}
    stop, target = threading.Event(), [""]
    watches = [_Watch(client, ctx, run, rv, stop, target) for _ in range(WATCHES)]
    start = time.monotonic()
    threads = [threading.Thread(target=w.loop, args=(start + WATCH_MAX_S,), daemon=True) for w in watches]
    for watch, thread in zip(watches, threads, strict=True):
        thread.start()  # one at a time, so HAProxy's leastconn counts the previous one and spreads them
        if not watch.opened.wait(WATCH_OPEN_TIMEOUT_S * 10):
            return {"error": f"watch {len(watch.breaks)} did not open: {watch.breaks[-1:]}"}
    print(f"ready {time.monotonic()}", flush=True)
    words = sys.stdin.readline().split()
    target[0] = words[1] if len(words) > 1 else ""
    stop.set()
    for thread in threads:
        thread.join(timeout=WATCH_CATCH_UP_S + WATCH_IDLE_S + WATCH_OPEN_TIMEOUT_S)
    end = time.monotonic()
    return {"start": start, "watches": [w.report(start, end) for w in watches]}


def _create(conn: http.client.HTTPSConnection, name: str, run: str) -> bool:
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "labels": {WATCH_LABEL: run}}})
    conn.request("POST", f"/api/v1/namespaces/{WATCH_NAMESPACE}/configmaps", body=body,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    return resp.status == 201


def write_main(client: KubeClient, run: str, interval: float) -> dict[str, Any]:
    """A ConfigMap every `interval` (on a fixed schedule) until a line on stdin or WATCH_MAX_S; the names
    the apiserver confirmed (201), and how many creates failed."""
    ctx = client.context()
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    created: list[str] = []
    failed, conn = 0, None
    start = time.monotonic()
    for i in itertools.count():
        if stop.is_set() or time.monotonic() - start > WATCH_MAX_S:
            break
        name = f"{run}-{i:05d}"
        try:
            conn = conn or client.connection(ctx, WRITE_TIMEOUT_S)
            ok = _create(conn, name, run)
        except (OSError, ssl.SSLError, http.client.HTTPException):
            conn, ok = None, False
        if ok:
            created.append(name)
            if len(created) == 1:
                print(f"ready {time.monotonic()}", flush=True)
        else:
            failed += 1
            if not created and i > 50:
                return {"error": "the first creates failed", "failed": failed}
        time.sleep(max(start + (i + 1) * interval - time.monotonic(), 0))
    return {"created": created, "failed": failed}


def apiserver_main(address: str, port: int, cert: str, key: str) -> None:
    """A fake kube-apiserver: TLS, HTTP/1.x keep-alive, 200 `ok` on any GET (/readyz included)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, port))
    listener.listen(512)
    print("ready", flush=True)
    while True:
        raw, _ = listener.accept()
        # Without TCP_NODELAY, HAProxy's checks and the clients see 40 ms delayed-ACK stalls.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_serve, args=(raw, ctx), daemon=True).start()


def _serve(raw: socket.socket, ctx: ssl.SSLContext) -> None:
    with contextlib.suppress(OSError, ssl.SSLError), raw:
        raw.settimeout(30)
        conn = ctx.wrap_socket(raw, server_side=True)
        reader = conn.makefile("rb")
        while True:
            request_line = reader.readline(8192)
            if not request_line:
                return
            headers = []
            while (line := reader.readline(8192)) not in (b"\r\n", b"\n", b""):
                headers.append(line.lower())
            close = (request_line.rstrip().endswith(b"HTTP/1.0")
                     or any(h.startswith(b"connection: close") for h in headers))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                         + (b"Connection: close\r\n" if close else b"") + b"\r\nok")
            if close:
                return


# ----------------------------------------------------------------------------------------------
# The lab.


@dataclass(frozen=True)
class HostSpec:
    """A lab host: addresses (CIDR) on its eth0, extra on-link routes, and sysctls."""

    name: str
    addresses: tuple[str, ...]
    routes: tuple[str, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for cidr in (*self.addresses, *self.routes):
            if not ipaddress.ip_network(cidr, strict=False).subnet_of(LAB_RANGE):
                raise ValueError(f"{self.name}: {cidr} is outside the lab range {LAB_RANGE}")


@dataclass
class Proc:
    popen: subprocess.Popen[str]
    log: Path
    pidfiles: tuple[Path, ...] = ()

    def pids(self) -> list[int]:
        """The main PID, then the children named in pid files (keepalived's VRRP child); empty once
        the main process has exited, so a recycled PID is never signalled."""
        if self.popen.poll() is not None:
            return []
        pids = [self.popen.pid]
        for path in self.pidfiles:
            with contextlib.suppress(OSError, ValueError):
                pid = int(path.read_text().strip())
                if _stat(pid)[1:] == ("alive", self.popen.pid):  # still our child
                    pids.append(pid)
        return pids


def _stat(pid: int) -> tuple[int, str, int]:
    """(pid, 'alive' | 'gone', parent PID) from /proc; a zombie counts as gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return pid, "gone", 0
    return pid, "gone" if fields[0] == "Z" else "alive", int(fields[1])


def _alive(pid: int) -> bool:
    return _stat(pid)[1] == "alive"


class Lab:
    """Namespaces on one bridge; use as a context manager."""

    def __init__(self, hosts: Sequence[HostSpec], tag: str | None = None) -> None:
        self.hosts = {h.name: h for h in hosts}
        if BRIDGE_NS in self.hosts:
            raise ValueError(f"{BRIDGE_NS!r} names the bridge namespace; pick another host name")
        self.tag = tag or f"hk{os.getpid() % 100000}{secrets.token_hex(2)}"
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))
        self.procs: dict[tuple[str, str], Proc] = {}
        self._namespaces: list[str] = []

    # -- building and tearing down
    def __enter__(self) -> Lab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def _ip(self, *args: str, ns: str | None = None) -> None:
        argv = ["ip", *(["-n", ns] if ns else []), *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")

    def _add_ns(self, name: str) -> None:
        self._ip("netns", "add", name)
        self._namespaces.append(name)
        self._ip("link", "set", "lo", "up", ns=name)

    def _build(self) -> None:
        switch = self.ns(BRIDGE_NS)
        self._add_ns(switch)
        self._ip("link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0", ns=switch)
        self._ip("link", "set", "br0", "up", ns=switch)
        for host in self.hosts.values():
            self._add_ns(self.ns(host.name))
            for key, value in host.sysctls:
                self.run(host.name, "sysctl", "-q", "-w", f"{key}={value}")
            self.plug(host.name)

    def _port(self, host: str) -> str:
        return f"v-{host}"[:15]

    def plug(self, host: str) -> None:
        """(Re)create the host's veth on the bridge with its addresses and routes."""
        spec, switch = self.hosts[host], self.ns(BRIDGE_NS)
        self._ip("link", "add", self._port(host), "type", "veth", "peer", "name", "eth0", "netns", self.ns(host),
                 ns=switch)
        self._ip("link", "set", self._port(host), "master", "br0", "up", ns=switch)
        for cidr in spec.addresses:
            self._ip("addr", "add", cidr, "dev", "eth0", ns=self.ns(host))
        self._ip("link", "set", "eth0", "up", ns=self.ns(host))
        for route in spec.routes:
            self._ip("route", "add", route, "dev", "eth0", ns=self.ns(host))

    def close(self) -> None:
        for key in reversed(list(self.procs)):
            with contextlib.suppress(Exception):
                self.kill(*key)
        for name in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10, check=False)
        self._namespaces.clear()
        if not os.environ.get("HAKUBE_LAB_KEEP"):  # keep the logs and configs for a post-mortem
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- running things in a host
    def run(self, host: str, *argv: str, check: bool = True, timeout: float = 10,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["ip", "netns", "exec", self.ns(host), *argv], input=stdin, capture_output=True,
                                text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{host}: {' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
        return result

    def spawn(self, host: str, role: str, argv: Sequence[str], pidfiles: Sequence[Path] = (),
              stdout: int | None = None, stdin: int = subprocess.DEVNULL) -> Proc:
        """Start a long-running process in `host`; `ip netns exec` execs it, so its PID is ours."""
        if self.running(host, role):
            raise RuntimeError(f"{role} already runs in {host}")
        log = self.dir / f"{host}-{role}.log"
        with log.open("a") as log_file:
            popen = subprocess.Popen(["ip", "netns", "exec", self.ns(host), *argv], text=True, stdin=stdin,
                                     stdout=stdout if stdout is not None else log_file, stderr=log_file)
        proc = Proc(popen, log, tuple(pidfiles))
        self.procs[host, role] = proc
        return proc

    def running(self, host: str, role: str) -> bool:
        proc = self.procs.get((host, role))
        return proc is not None and proc.popen.poll() is None

    def signal(self, host: str, role: str, sig: signal.Signals) -> None:
        for pid in self.procs[host, role].pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill(self, host: str, *roles: str) -> None:
        """SIGKILL every PID of the roles at once (a crash); parents are frozen first so none can
        respawn a child in between."""
        procs = [p for p in (self.procs.get((host, r)) for r in roles) if p is not None and p.popen.poll() is None]
        pids = [proc.pids() for proc in procs]
        for group in pids:
            with contextlib.suppress(ProcessLookupError, IndexError):
                os.kill(group[0], signal.SIGSTOP)
        for pid in [pid for group in pids for pid in reversed(group)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc, group in zip(procs, pids, strict=True):
            proc.popen.wait(timeout=5)
            for pid in group[1:]:
                wait_until(lambda p=pid: not _alive(p), 5, what=f"pid {pid} to exit")

    def stop(self, host: str, role: str, timeout: float = 5) -> None:
        """SIGTERM the main PID (a graceful stop), SIGKILL if it does not exit in time."""
        proc = self.procs[host, role]
        if proc.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.popen.pid, signal.SIGCONT)
            os.kill(proc.popen.pid, signal.SIGTERM)
        try:
            proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(host, role)

    # -- network faults
    def link_down(self, host: str) -> None:
        """Pull the cable: the bridge side of the host's veth goes down (the host loses carrier)."""
        self._ip("link", "set", self._port(host), "down", ns=self.ns(BRIDGE_NS))

    def link_up(self, host: str) -> None:
        self._ip("link", "set", self._port(host), "up", ns=self.ns(BRIDGE_NS))

    def unplug(self, host: str) -> None:
        """The host vanishes: its veth pair is deleted (both ends)."""
        self._ip("link", "del", self._port(host), ns=self.ns(BRIDGE_NS))

    def plugged(self, host: str) -> bool:
        links = self.run(BRIDGE_NS, "ip", "-o", "link", "show").stdout
        return any(line.split(": ")[1].split("@")[0] == self._port(host) for line in links.splitlines())

    def addresses(self, host: str) -> list[str]:
        out = self.run(host, "ip", "-4", "-o", "addr", "show").stdout
        return [line.split()[3].split("/")[0] for line in out.splitlines()]

    # -- daemons
    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        return path

    def start_haproxy(self, host: str, config: str) -> Proc:
        path = self.write(f"{host}-haproxy.cfg", config)
        return self.spawn(host, "haproxy", ["haproxy", "-db", "-f", str(path)])

    def start_keepalived(self, host: str, config: str) -> Proc:
        path = self.write(f"{host}-keepalived.conf", config)
        pid, vrrp_pid = self.dir / f"{host}-keepalived.pid", self.dir / f"{host}-keepalived-vrrp.pid"
        vrrp_pid.unlink(missing_ok=True)
        proc = self.spawn(host, "keepalived", ["keepalived", "-n", "-l", "-D", "-P", "-G", "-f", str(path),
                                               "-p", str(pid), "-r", str(vrrp_pid)], pidfiles=[vrrp_pid])
        wait_until(lambda: len(proc.pids()) == 2 or proc.popen.poll() is not None, 10, what=f"keepalived in {host}")
        if proc.popen.poll() is not None:
            raise RuntimeError(f"keepalived in {host} exited: {proc.log.read_text()[-2000:]}")
        return proc

    def certificate(self) -> tuple[Path, Path]:
        cert, key = self.dir / "apiserver.crt", self.dir / "apiserver.key"
        if not cert.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "1", "-subj", "/CN=kube-apiserver",
                            "-keyout", str(key), "-out", str(cert)], capture_output=True, check=True, timeout=30)
        return cert, key

    def start_apiserver(self, host: str, address: str, port: int) -> Proc:
        cert, key = self.certificate()
        proc = self.spawn(host, "apiserver", [sys.executable, str(THIS_FILE), "apiserver", "--address", address,
                                              "--port", str(port), "--cert", str(cert), "--key", str(key)],
                          stdout=subprocess.PIPE)
        line = proc.popen.stdout.readline() if proc.popen.stdout else ""
        if line.strip() != "ready":
            raise RuntimeError(f"fake apiserver in {host} did not start: {proc.log.read_text()[-2000:]}")
        return proc

    # -- the client
    def client(self, host: str, mode: str, *args: str, stdin: bool = False) -> Client:
        """Start `netlab.py poll|stream|watch|write` in `host`; returns once its first request has
        succeeded. `stdin`: a pipe the harness tells it to stop through (Client.result's `say`)."""
        role = f"{mode}-{secrets.token_hex(2)}"
        proc = self.spawn(host, role, [sys.executable, str(THIS_FILE), mode, *args], stdout=subprocess.PIPE,
                          stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
        return Client(self, host, role, proc)


@dataclass
class Client:
    lab: Lab
    host: str
    role: str
    proc: Proc
    started: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        stdout = self.proc.popen.stdout
        line = stdout.readline() if stdout else ""
        if not line.startswith("ready"):
            self.proc.popen.wait(timeout=5)
            raise RuntimeError(f"client {self.role} failed: {line} {stdout.read() if stdout else ''}"
                               f" {self.proc.log.read_text()[-1000:]}")
        self.started = float(line.split()[1])

    def result(self, timeout: float = 60, say: str | None = None) -> dict[str, Any]:
        out, _ = self.proc.popen.communicate(say, timeout=timeout)
        self.lab.procs.pop((self.host, self.role), None)
        return json.loads(out.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------
# The load-balancer pair in the lab.


@dataclass(frozen=True)
class PairSetup:
    """What a pair needs: hosts, addresses and rendered files, whoever rendered them."""

    hosts: tuple[HostSpec, ...]
    lbs: tuple[str, ...]  # LB host names, highest priority first
    apiservers: tuple[tuple[str, str, int], ...]  # (host, bind address, port)
    client: str
    vip: str
    port: int
    haproxy: dict[str, str]  # host -> haproxy.cfg text
    keepalived: dict[str, str]  # host -> keepalived.conf text
    settle_s: float = 3.0  # after (re)starts: track scripts and HAProxy checks have risen


def control_plane_host(cluster: Any, node: Any) -> HostSpec:
    """A control-plane node's lab host: its node address and its control-plane address on eth0 (one
    bridge stands in for both networks)."""
    node_prefix = cluster.network.node_cidr.prefixlen
    cp_prefix = cluster.network.control_plane_cidr.prefixlen
    return HostSpec(node.name, (f"{node.address}/{node_prefix}", f"{node.control_plane_address}/{cp_prefix}"))


CLIENT_ADDRESS_HOST = 50  # the measuring client's host number in the node network


def client_address(cluster: Any) -> str:
    return str(cluster.network.node_cidr.network_address + CLIENT_ADDRESS_HOST)


def hakube_setup(cluster: Any) -> PairSetup:
    """The lab for `cluster` with the LB files hakube renders for it."""
    from configs.loadbalancer import render_haproxy, render_keepalived

    # The lab has no keepalived_script user; any unprivileged user shows the same behaviour.
    return setup_from_cluster(cluster, lambda _: render_haproxy(cluster),
                              lambda node: render_keepalived(cluster, node, script_user="nobody"),
                              client_address(cluster))


def setup_from_cluster(cluster: Any, haproxy: Callable[[str], str], keepalived: Callable[[str], str],
                       client_address: str, settle_s: float = 3.0) -> PairSetup:
    """Lab hosts mirroring an external-placement cluster: LB nodes at their addresses on eth0 with an
    on-link route to the control-plane network; each control-plane host carries both its node
    address and its control-plane address on eth0 (one bridge stands in for both networks)."""
    from configs.loadbalancer import lb_nodes  # the lab itself stays importable without the repo

    node_prefix = cluster.network.node_cidr.prefixlen
    lbs = sorted(lb_nodes(cluster), key=lambda n: -n.priority)
    nonlocal_bind = (("net.ipv4.ip_nonlocal_bind", "1"),)  # what lb-prepare.sh sets on a real LB node
    hosts = [HostSpec(n.name, (f"{n.address}/{node_prefix}",), (str(cluster.network.control_plane_cidr),),
                      nonlocal_bind) for n in lbs]
    hosts += [control_plane_host(cluster, n) for n in cluster.control_plane.nodes]
    hosts.append(HostSpec("client", (f"{client_address}/{node_prefix}",)))
    return PairSetup(
        hosts=tuple(hosts),
        lbs=tuple(n.name for n in lbs),
        apiservers=tuple((n.name, str(n.control_plane_address), cluster.apiserver_port)
                         for n in cluster.control_plane.nodes),
        client="client",
        vip=str(cluster.api_endpoint.vip),
        port=cluster.api_endpoint.port,
        haproxy={n.name: haproxy(n.name) for n in lbs},
        keepalived={n.name: keepalived(n.name) for n in lbs},
        settle_s=settle_s,
    )


class LbLab(Lab):
    """A Lab running one LB pair in front of fake apiservers (lab/realcplab.py: real ones)."""

    BACKEND_ROLES: tuple[str, ...] = ("apiserver",)  # what runs on a backend host, restarted after a replug
    watch_setup: WatchSetup | None = None  # real apiservers: each scenario also runs real watches

    def __init__(self, setup: PairSetup, tag: str | None = None) -> None:
        super().__init__(setup.hosts, tag)
        self.setup = setup

    def __enter__(self) -> LbLab:
        super().__enter__()
        try:
            for host, address, port in self.setup.apiservers:
                self.start_apiserver(host, address, port)
            for host in self.setup.lbs:
                self.start_haproxy(host, self.setup.haproxy[host])
            for host in self.setup.lbs:
                self.start_keepalived(host, self.setup.keepalived[host])
            self.restore()
        except BaseException:
            self.close()
            raise
        return self

    def holders(self) -> list[str]:
        return [h for h in self.setup.lbs if self.setup.vip in self.addresses(h)]

    def holder(self, timeout: float = 10) -> str:
        wait_until(lambda: len(self.holders()) == 1, timeout, what="exactly one VIP holder")
        return self.holders()[0]

    def poll(self, duration: float) -> Client:
        return self.client(self.setup.client, "poll", self.setup.vip, str(self.setup.port), str(duration))

    def stream(self, duration: float) -> Client:
        return self.client(self.setup.client, "stream", self.setup.vip, str(self.setup.port), str(duration))

    def restore(self) -> None:
        """Back to the start state: every link, apiserver and daemon up; the first LB holds the VIP."""
        roles = {host: list(self.BACKEND_ROLES) for host, _, _ in self.setup.apiservers}
        roles.update({host: ["haproxy", "keepalived"] for host in self.setup.lbs})
        for host, host_roles in roles.items():
            if not self.plugged(host):
                self.plug(host)
                self.kill(host, *host_roles)  # restarted below, on the new interface
            self.link_up(host)
        for host, address, port in self.setup.apiservers:
            if not self.running(host, "apiserver"):
                self.start_apiserver(host, address, port)
        for host in self.setup.lbs:
            for role in ("haproxy", "keepalived"):
                if self.running(host, role):
                    self.signal(host, role, signal.SIGCONT)
            if not self.running(host, "haproxy"):
                self.start_haproxy(host, self.setup.haproxy[host])
            if not self.running(host, "keepalived"):
                # A SIGKILLed keepalived leaves its VIP behind; a real host would be rebooted.
                with contextlib.suppress(RuntimeError):
                    self.run(host, "ip", "addr", "del", f"{self.setup.vip}/32", "dev", "eth0")
                self.start_keepalived(host, self.setup.keepalived[host])
        first = self.setup.lbs[0]
        time.sleep(self.setup.settle_s)
        current = self.holder()
        if current != first:
            # Hand the VIP back gracefully: a stopping keepalived sends a priority-0 advert.
            self.stop(current, "keepalived")
            wait_until(lambda: self.holders() == [first], 10, what=f"{first} to take the VIP")
            self.start_keepalived(current, self.setup.keepalived[current])
            time.sleep(self.setup.settle_s)
        if self.holder() != first:
            raise RuntimeError(f"restore: {self.holders()} hold the VIP, not {first}")
        # Every scenario starts with the client resolving the VIP afresh.
        self.run(self.setup.client, "ip", "neigh", "flush", "dev", "eth0")


# ----------------------------------------------------------------------------------------------
# Failover scenarios: each injects one fault while a client polls the VIP, and measures.


@dataclass
class Measurement:
    scenario: str
    requests: int
    failed: int
    longest_gap_ms: float
    holder_before: str
    holder_after: str
    stream_broken: str | None = None  # the long-lived connection's fate, where one is kept (real lab: the watches')
    notes: dict[str, Any] = field(default_factory=dict)
    watch: WatchFigures | None = None  # real apiservers only

    def summary(self) -> str:
        return (f"{self.scenario}: {self.failed}/{self.requests} failed, longest gap {self.longest_gap_ms:.0f} ms,"
                f" VIP {self.holder_before} -> {self.holder_after}"
                + (f", {self.watch.summary()}" if self.watch else ""))


@dataclass(frozen=True)
class WatchSetup:
    """What the real lab's watches need: kubeadm's admin client credentials, and the apiserver the writer
    talks to directly (`writer` host, `address`:`port`)."""

    ca: Path
    cert: Path
    key: Path
    writer: str
    address: str
    port: int

    def args(self, host: str, port: int) -> tuple[str, ...]:
        return (host, str(port), "--ca", str(self.ca), "--cert", str(self.cert), "--key", str(self.key))


@dataclass
class WatchFigures:
    """One scenario's watches, summed over the WATCHES watches (each must see every created object)."""

    watches: int
    created: int  # ConfigMaps the apiserver confirmed (201)
    create_failures: int
    reconnects: int  # breaks, each ended by one successful re-open (or by the end of the run)
    longest_unwatched_ms: float  # last byte on the broken watch -> the new watch's 200
    missed: int  # (watch, created name) pairs never delivered
    duplicates: int  # ADDED events delivered twice to one watch
    gone: int  # 410s: the apiserver had lost the history to resume from
    unconfirmed: int  # delivered names whose create the writer saw fail (a timeout after the commit)
    causes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"watch: {self.reconnects} reconnects, longest unwatched {self.longest_unwatched_ms:.0f} ms,"
                f" {self.missed} missed, {self.duplicates} duplicates of {self.created} created"
                f" x {self.watches} watches, {self.gone} gone")

    @classmethod
    def of(cls, written: dict[str, Any], watched: dict[str, Any]) -> WatchFigures:
        created = set(written["created"])
        seen = [w["seen"] for w in watched["watches"]]
        return cls(
            watches=len(seen), created=len(created), create_failures=written["failed"],
            reconnects=sum(w["reconnects"] for w in watched["watches"]),
            longest_unwatched_ms=max(w["longest_unwatched_ms"] for w in watched["watches"]),
            missed=sum(len(created - set(names)) for names in seen),
            duplicates=sum(len(names) - len(set(names)) for names in seen),
            gone=sum(w["gone"] for w in watched["watches"]),
            unconfirmed=len(set().union(*seen) - created),
            causes=[b["cause"] for w in watched["watches"] for b in w["breaks"]],
        )


WATCH_TAIL_S = 1.0  # writes after the fault returned, so every watch also shows live events again


class WatchSession:
    """The watcher (client namespace, through the VIP) and the writer, for one scenario.

    The writer goes straight to the apiserver of the last control-plane node, which no scenario faults,
    not through the VIP: the writes then go on at a steady rate while the VIP or a backend is failing,
    so the events that happen while a watch is broken are exactly the history its resume must replay.
    Through the VIP the writer would stall in the same window as the watch and hide what is at stake."""

    def __init__(self, lab: LbLab, setup: WatchSetup) -> None:
        run = f"w{secrets.token_hex(3)}"  # label value and name prefix: this scenario's objects only
        self.watcher = lab.client(lab.setup.client, "watch", *setup.args(lab.setup.vip, lab.setup.port), run,
                                  stdin=True)
        self.writer = lab.client(setup.writer, "write", *setup.args(setup.address, setup.port), run, stdin=True)

    def finish(self) -> WatchFigures:
        time.sleep(WATCH_TAIL_S)
        written = self.writer.result(say="stop\n")
        last = written["created"][-1] if written.get("created") else ""
        watched = self.watcher.result(timeout=WATCH_CATCH_UP_S + 20, say=f"stop {last}\n")
        for result in (written, watched):
            if "error" in result:
                raise RuntimeError(f"watch: {result['error']}")
        return WatchFigures.of(written, watched)


LEAD_IN_S = 0.5  # polling before the fault
APISERVER_STOP_S = 40  # a real kube-apiserver drains in-flight requests before it exits


def _holding(lab: LbLab) -> str:
    return ",".join(lab.holders()) or "none"


def _measure(lab: LbLab, name: str, fault: Callable[[str, str], None], window: float,
             with_stream: bool = False) -> Measurement:
    before = _holding(lab)
    other = next((h for h in lab.setup.lbs if h not in before.split(",")), "")
    session = WatchSession(lab, lab.watch_setup) if lab.watch_setup else None
    stream = lab.stream(LEAD_IN_S + window) if with_stream and session is None else None
    poll = lab.poll(LEAD_IN_S + window)
    time.sleep(max(poll.started + LEAD_IN_S - time.monotonic(), 0))
    if _holding(lab) != before:
        raise RuntimeError(f"{name}: the VIP moved by itself before the fault ({before} -> {_holding(lab)});"
                           " the pair had not settled")
    fault(before, other)
    result = poll.result()
    stream_result = stream.result() if stream else None
    watch = session.finish() if session else None
    if "error" in result:
        raise RuntimeError(f"{name}: {result['error']}")
    broken = stream_result.get("broken") if stream_result else None
    if watch is not None and watch.causes:
        broken = f"{len(watch.causes)} watch breaks: " + "; ".join(sorted(set(watch.causes)))
    return Measurement(name, result["requests"], result["failed"], result["longest_gap_ms"], before,
                       _holding(lab), broken, {"failed_at": result["failed_at"]}, watch)


def _first_apiserver(lab: LbLab) -> str:
    return lab.setup.apiservers[0][0]


def master_link_down(lab: LbLab, window: float = 5) -> Measurement:
    return _measure(lab, "master LB link down", lambda m, _: lab.link_down(m), window)


def master_killed(lab: LbLab, window: float = 5) -> Measurement:
    return _measure(lab, "master keepalived+HAProxy killed", lambda m, _: lab.kill(m, "keepalived", "haproxy"), window)


def master_hung(lab: LbLab, window: float = 5) -> Measurement:
    def fault(master: str, _: str) -> None:
        lab.signal(master, "keepalived", signal.SIGSTOP)
        lab.signal(master, "haproxy", signal.SIGSTOP)
    return _measure(lab, "master hung (SIGSTOP)", fault, window)


def keepalived_stopped(lab: LbLab, window: float = 2) -> Measurement:
    return _measure(lab, "master keepalived stopped (SIGTERM)", lambda m, _: lab.stop(m, "keepalived"), window)


def haproxy_killed(lab: LbLab, window: float = 5) -> Measurement:
    return _measure(lab, "HAProxy killed on the master", lambda m, _: lab.kill(m, "haproxy"), window)


def apiserver_killed(lab: LbLab, window: float = 4) -> Measurement:
    return _measure(lab, "one apiserver killed", lambda *_: lab.kill(_first_apiserver(lab), "apiserver"), window)


def apiserver_stopped(lab: LbLab, window: float = 4) -> Measurement:
    """One apiserver stopped gracefully (SIGTERM, as kubelet does when an upgrade replaces its static pod)."""
    exited: list[float] = []

    def fault(*_: str) -> None:
        started = time.monotonic()
        lab.stop(_first_apiserver(lab), "apiserver", timeout=APISERVER_STOP_S)
        exited.append(round(time.monotonic() - started, 2))

    measurement = _measure(lab, "one apiserver stopped (SIGTERM)", fault, window)
    measurement.notes["exit_s"] = exited[0]  # SIGTERM to exit (the real one drains first)
    return measurement


def apiserver_unreachable(lab: LbLab, window: float = 4) -> Measurement:
    return _measure(lab, "one apiserver's host unreachable", lambda *_: lab.unplug(_first_apiserver(lab)), window)


def failback(lab: LbLab, window: float = 4) -> Measurement:
    """The master's link drops (the VIP moves), a long-lived connection opens through the new
    holder, then the old master's link returns: with preempt off, it must stay BACKUP."""
    master = lab.holder()
    lab.link_down(master)
    wait_until(lambda: bool(lab.holders()) and lab.holders() != [master], 10, what="the VIP to move")
    time.sleep(0.5)

    def fault(_: str, __: str) -> None:
        lab.link_up(master)

    measurement = _measure(lab, "old master back (failback)", fault, window, with_stream=True)
    time.sleep(0.5)
    measurement.notes["old_master"] = master
    return measurement


def hung_master_resumes(lab: LbLab, window: float = 4) -> Measurement:
    """Known limit, not a target: a master frozen long enough to lose the VIP resumes as MASTER
    and wins the two-master contest on priority even with nopreempt, so connections through the
    node that took over are reset."""
    master = lab.holder()
    lab.signal(master, "keepalived", signal.SIGSTOP)
    lab.signal(master, "haproxy", signal.SIGSTOP)
    wait_until(lambda: master not in lab.holders() or len(lab.holders()) == 2, 10, what="a second holder")
    time.sleep(0.5)

    def fault(_: str, __: str) -> None:
        lab.signal(master, "haproxy", signal.SIGCONT)
        lab.signal(master, "keepalived", signal.SIGCONT)

    measurement = _measure(lab, "hung master resumes (known limit)", fault, window, with_stream=True)
    measurement.notes["old_master"] = master
    return measurement


SCENARIOS: dict[str, Callable[[LbLab], Measurement]] = {
    "link_down": master_link_down,
    "killed": master_killed,
    "hung": master_hung,
    "keepalived_sigterm": keepalived_stopped,
    "haproxy_killed": haproxy_killed,
    "apiserver_killed": apiserver_killed,
    "apiserver_sigterm": apiserver_stopped,
    "apiserver_unreachable": apiserver_unreachable,
    "failback": failback,
    "hung_resumed": hung_master_resumes,
}


def run_scenario(lab: LbLab, key: str) -> Measurement:
    """Run one scenario from the start state, then put the lab back in it."""
    try:
        return SCENARIOS[key](lab)
    finally:
        lab.restore()


# ----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="netlab.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    api = sub.add_parser("apiserver")
    api.add_argument("--address", required=True)
    api.add_argument("--port", type=int, required=True)
    api.add_argument("--cert", required=True)
    api.add_argument("--key", required=True)
    for mode in ("poll", "stream", "watch", "write"):
        p = sub.add_parser(mode)
        p.add_argument("host")
        p.add_argument("port", type=int)
        if mode in ("poll", "stream"):
            p.add_argument("duration", type=float)
        else:
            for credential in ("--ca", "--cert", "--key"):
                p.add_argument(credential, required=True)
            p.add_argument("run", help="the label value and name prefix of this run's ConfigMaps")
    args = parser.parse_args(argv)
    if args.cmd == "apiserver":
        apiserver_main(args.address, args.port, args.cert, args.key)
    elif args.cmd == "poll":
        print(json.dumps(poll_main(args.host, args.port, args.duration, POLL_INTERVAL_S, REQUEST_TIMEOUT_S)))
    elif args.cmd == "stream":
        print(json.dumps(stream_main(args.host, args.port, args.duration, 0.1)))
    else:
        client = KubeClient(args.host, args.port, args.ca, args.cert, args.key)
        result = watch_main(client, args.run) if args.cmd == "watch" else write_main(client, args.run,
                                                                                    WRITE_INTERVAL_S)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
