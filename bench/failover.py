"""Failover benchmark: hakube's rendered LB configs against the kubeadm HA guide's, side by side.

Runs every scenario of lab/netlab.py (master LB link down, killed, hung, graceful keepalived
stop, HAProxy killed on the master, one apiserver killed or unreachable, old master back) in a
network-namespace lab, first with the files hakube renders for a stack, then with a baseline in
the style of the kubeadm HA guide (bench/templates/baseline-*), and prints one table: failed
requests, the longest client gap, and hakube's ratio to the baseline. `--backends real` adds hakube's
pair in front of real etcd + kube-apiservers (kubeadm's manifests), where every scenario also runs real
ConfigMap watches through the VIP (lab/netlab.py WatchSession): their breaks, the longest time without
an open watch, and the events missed or delivered twice (the fake apiservers cannot watch: n/a). Needs
root, haproxy, keepalived, curl and openssl; all traffic stays in 198.18.0.0/15 inside namespaces it
creates.

    sudo .venv/bin/python bench/failover.py [--stack dev] [--only link_down,failback] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import jinja2  # noqa: E402

from configs.loadbalancer import apiserver_backends, lb_nodes  # noqa: E402
from lab.netlab import (  # noqa: E402
    SCENARIOS,
    WATCH_IDLE_S,
    WATCHES,
    WRITE_INTERVAL_S,
    LbLab,
    Measurement,
    PairSetup,
    client_address,
    hakube_setup,
    run_scenario,
    setup_from_cluster,
)
from lab.realcplab import RealLbLab  # noqa: E402
from topology import Cluster, load_stack_file  # noqa: E402

# The targets for hakube (issue 9): (description, predicate on a measurement).
TARGETS: dict[str, tuple[str, Callable[[Measurement], bool]]] = {
    "link_down": ("gap <= 500 ms", lambda m: m.longest_gap_ms <= 500),
    "killed": ("gap <= 500 ms", lambda m: m.longest_gap_ms <= 500),
    "hung": ("gap <= 500 ms", lambda m: m.longest_gap_ms <= 500),
    "keepalived_sigterm": ("0 failed", lambda m: m.failed == 0),
    "haproxy_killed": ("VIP moves, gap <= 2 s", lambda m: m.holder_after not in (m.holder_before, "none")
                       and "," not in m.holder_after and m.longest_gap_ms <= 2000),
    "apiserver_killed": ("<= 1 failed", lambda m: m.failed <= 1),
    "apiserver_sigterm": ("0 failed", lambda m: m.failed == 0),
    "apiserver_unreachable": ("<= 1 failed", lambda m: m.failed <= 1),
    "failback": ("0 reset connections", lambda m: m.stream_broken is None),
    "hung_resumed": ("none (documented limit)", lambda m: True),
}
# Real apiservers, every scenario: each watch resumes from its resourceVersion with nothing lost or repeated.
WATCH_TARGET = ("watch 0 missed, 0 dup", lambda w: w.missed == 0 and w.duplicates == 0 and w.gone == 0)


def met(key: str, m: Measurement) -> bool:
    """The scenario's target, and the watch target where the lab ran watches."""
    return TARGETS[key][1](m) and (m.watch is None or WATCH_TARGET[1](m.watch))


def baseline_setup(cluster: Cluster, workdir: Path) -> PairSetup:
    """The same lab hosts running the kubeadm guide's configuration."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    port, vip = cluster.api_endpoint.port, str(cluster.api_endpoint.vip)
    check = workdir / "check_apiserver.sh"
    check.write_text(env.get_template("baseline-check_apiserver.sh.j2").render(port=port, vip=vip))
    check.chmod(check.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    nodes = sorted(lb_nodes(cluster), key=lambda n: -n.priority)
    guide_priority = {n.name: 101 - rank for rank, n in enumerate(nodes)}  # the guide: 101 then 100
    haproxy = env.get_template("baseline-haproxy.cfg.j2").render(port=port, servers=apiserver_backends(cluster))

    def keepalived(node: str) -> str:
        me = next(n for n in nodes if n.name == node)
        return env.get_template("baseline-keepalived.conf.j2").render(
            check_script=check, state="MASTER" if me == nodes[0] else "BACKUP", interface=me.interface,
            router_id=cluster.load_balancer.vrrp.router_id, priority=guide_priority[node], vip=vip)

    # The guide's track script needs rise 2 x interval 3 s before the priorities settle.
    return setup_from_cluster(cluster, lambda _: haproxy, keepalived, client_address(cluster), settle_s=7)


def run_all(setup: PairSetup, keys: list[str], label: str,
            make_lab: Callable[[PairSetup], LbLab] = LbLab) -> dict[str, Measurement]:
    results = {}
    with make_lab(setup) as lab:
        if isinstance(lab, RealLbLab) and lab.cp is not None:
            print(f"  {label:8} real control plane (3 etcd + 3 kube-apiserver) ready in {lab.cp.start_seconds}s",
                  file=sys.stderr, flush=True)
        for key in keys:
            started = time.monotonic()
            results[key] = run_scenario(lab, key)
            m = results[key]
            print(f"  {label:8} {key:22} failed {m.failed:3}  gap {m.longest_gap_ms:7.0f} ms"
                  f"  holder {m.holder_before}->{m.holder_after}  stream {m.stream_broken or 'kept'}"
                  + (f"  {m.watch.summary()}" if m.watch else "")
                  + f"  ({time.monotonic() - started:.0f}s)", file=sys.stderr, flush=True)
    return results


def _ratio(ours: float, theirs: float) -> str:
    if theirs == 0:
        return "-" if ours == 0 else "inf"
    return f"{ours / theirs:.2f}"


def _figures(m: Measurement | None) -> tuple[str, str]:
    return ("", "") if m is None else (str(m.failed), f"{m.longest_gap_ms:.0f}")


WATCH_HEAD = ("real watch breaks", "real unwatched ms", "real missed", "real dup")


def _watch_figures(m: Measurement) -> tuple[str, ...]:
    w = m.watch
    if w is None:
        return ("n/a",) * len(WATCH_HEAD)
    return str(w.reconnects), f"{w.longest_unwatched_ms:.0f}", f"{w.missed}/{w.created * w.watches}", str(w.duplicates)


def table(hakube: dict[str, Measurement], baseline: dict[str, Measurement],
          real: dict[str, Measurement] | None = None) -> str:
    """One row per scenario: hakube (fake apiservers, which cannot watch), hakube against real apiservers
    when measured (poll figures, then the watches': breaks, longest time without an open watch, missed of
    created x watches, duplicates), the guide (blank when skipped), the ratios (fake vs fake) and hakube's
    target, met only when both hakube columns meet it (and, with real apiservers, the watch target)."""
    real_head = ("real failed", "real gap ms", *WATCH_HEAD) if real is not None else ()
    head = ("scenario", "hakube failed", "hakube gap ms", "hakube watch", *real_head, "guide failed",
            "guide gap ms", "failed ratio", "gap ratio", "target (hakube)")
    rows = [head]
    for key, ours in hakube.items():
        theirs = baseline.get(key)
        target = TARGETS[key][0]
        judged = real[key] if real is not None else ours
        extra = ""
        if key in ("failback", "hung_resumed"):
            extra = f"; stream {'kept' if judged.stream_broken is None else 'reset'}"
            if theirs is not None:
                extra += f" vs {'kept' if theirs.stream_broken is None else 'reset'}"
        elif key == "haproxy_killed":
            extra = f"; VIP {judged.holder_before}->{judged.holder_after}"
            if theirs is not None:
                extra += f" vs {theirs.holder_before}->{theirs.holder_after}"
        if judged.watch is not None:
            extra += f"; {WATCH_TARGET[0]}: {'met' if WATCH_TARGET[1](judged.watch) else 'MISSED'}"
        real_cells = (*_figures(real[key]), *_watch_figures(real[key])) if real is not None else ()
        ratios = ("", "") if theirs is None else (_ratio(ours.failed, theirs.failed),
                                                  _ratio(ours.longest_gap_ms, theirs.longest_gap_ms))
        ok = TARGETS[key][1](judged) and TARGETS[key][1](ours)
        rows.append((ours.scenario, *_figures(ours), "n/a", *real_cells, *_figures(theirs), *ratios,
                     f"{target}: {'met' if ok else 'MISSED'}{extra}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack whose LB pair is measured (external placement)")
    parser.add_argument("--only", default="", help="comma-separated scenario keys: " + ", ".join(SCENARIOS))
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--backends", choices=("fake", "real"), default="fake",
                        help="real: also measure hakube's pair in front of real etcd + kube-apiservers started from"
                             " kubeadm's own manifests (needs the ./scripts/tools binaries)")
    parser.add_argument("--no-guide", action="store_true", help="skip the guide's configuration")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces)")
    keys = [k for k in args.only.split(",") if k] or list(SCENARIOS)
    unknown = set(keys) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    cluster = load_stack_file(REPO / f"Pulumi.{args.stack}.yaml")
    if cluster.load_balancer.placement != "external":
        parser.error(f"{args.stack}: the lab models an external LB pair; pick an external-placement stack")
    print(f"client: a new TCP+TLS request through {cluster.api_endpoint.vip}:{cluster.api_endpoint.port} every"
          " 40 ms, failed = no answer within 0.8 s", file=sys.stderr)
    if args.backends == "real":
        print(f"real: also {WATCHES} ConfigMap watches through the VIP as kubeadm's admin, resumed from their last"
              f" resourceVersion (dead after {WATCH_IDLE_S:.0f} s of silence), a ConfigMap created every"
              f" {1000 * WRITE_INTERVAL_S:.0f} ms", file=sys.stderr)
    hakube = run_all(hakube_setup(cluster), keys, "hakube")
    real = None
    if args.backends == "real":
        real = run_all(hakube_setup(cluster), keys, "real", lambda setup: RealLbLab(setup, args.stack))
    baseline = {}
    if not args.no_guide:
        with tempfile.TemporaryDirectory(prefix="hk-bench-") as workdir:
            baseline = run_all(baseline_setup(cluster, Path(workdir)), keys, "guide")
    print(table(hakube, baseline, real))
    if args.json:
        runs = {"hakube": hakube, "guide": baseline, "real": real or {}}
        args.json.write_text(json.dumps({label: {k: dataclasses.asdict(v) for k, v in run.items()}
                                         for label, run in runs.items()}, indent=2))
    judged = [*hakube.items(), *(real or {}).items()]
    return 0 if all(met(k, m) for k, m in judged) else 1


if __name__ == "__main__":
    sys.exit(main())
