"""Key rotation benchmark: the three steps of a secrets-encryption key rotation (topology/encryption.py)
against a real 3-node control plane (lab/realcplab.py: etcd 3.6 and kube-apiserver from kubeadm's
manifests, one network namespace per node), rolled out as hakube does: each step's files on every node,
then the apiservers restarted one at a time, the real secrets-rewrite.sh after the promote step.
Prints, per step, the seconds in all and per apiserver restart, the rewrite's seconds for `--secrets`
Secrets, and whether every Secret read back through every apiserver afterwards. A restart here is the
lab's (SIGTERM, wait, start: there is no kubelet); on a node apiserver-restart.sh adds kubelet's
file check (up to 20 s). Needs root and ./scripts/tools' binaries; traffic stays inside its namespaces.

    sudo .venv/bin/python bench/rotation.py [--secrets 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from configs import apiserver  # noqa: E402
from lab.realcplab import Running, place_encryption_step, real_control_plane, rewrite_secrets  # noqa: E402

STEPS = (("add", ["key1", "key2"], None), ("promote", ["key2", "key1"], "key2"), ("retire", ["key2"], None))


def _create(running: Running, count: int) -> float:
    started = time.monotonic()
    manifest = "".join(f"---\napiVersion: v1\nkind: Secret\nmetadata: {{name: bench-{i}, namespace: default}}\n"
                       f"stringData: {{v: value-{i}}}\n" for i in range(count))
    running.kubectl("apply", "-f", "-", stdin=manifest, timeout=120)
    return time.monotonic() - started


def _all_readable(running: Running, count: int) -> bool:
    for node in running.cp.members:
        out = running.kubectl("get", "secrets", "-n", "default", "-o", "name", node=node, timeout=60).stdout
        if sum(1 for line in out.splitlines() if line.startswith("secret/bench-")) != count:
            return False
    return True


def _stored_with(running: Running, key: str, count: int) -> int:
    prefix = f"{apiserver.STORED_PREFIX}{key}:"
    out = running.etcdctl("get", "/registry/secrets/default/bench-", "--prefix", "-w", "fields").stdout
    return sum(1 for line in out.splitlines() if line.startswith('"Value"') and prefix in line) if count else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with real_control_plane("dev") as running:
        created = _create(running, args.secrets)
        print(f"3-node control plane ready in {running.cp.start_seconds}s; {args.secrets} Secrets in {created:.1f}s")
        for step, keys, write_key in STEPS:
            started = time.monotonic()
            place_encryption_step(running, keys)
            restarts = [running.cp.restart_apiserver(running.lab, node) for node in running.cp.members]
            rewrite = None
            if write_key is not None:
                before = time.monotonic()
                rewrite_secrets(running, write_key)
                rewrite = round(time.monotonic() - before, 2)
            rows.append({"step": step, "keys": keys, "seconds": round(time.monotonic() - started, 2),
                         "restarts": restarts, "rewriteSeconds": rewrite,
                         "readable": _all_readable(running, args.secrets),
                         "storedWithWriteKey": _stored_with(running, keys[0], args.secrets)})
    print(f"{'step':8} {'keys':16} {'seconds':>8} {'restarts (s)':>20} {'rewrite':>8} readable  stored-with-write-key")
    for r in rows:
        restarts = "/".join(f"{s:.1f}" for s in r["restarts"])
        rewrite = "-" if r["rewriteSeconds"] is None else f"{r['rewriteSeconds']:.1f}"
        print(f"{r['step']:8} {','.join(r['keys']):16} {r['seconds']:8.1f} {restarts:>20} {rewrite:>8} "
              f"{r['readable']!s:8}  {r['storedWithWriteKey']}/{args.secrets}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    ok = all(r["readable"] for r in rows) and rows[-1]["storedWithWriteKey"] == args.secrets
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
