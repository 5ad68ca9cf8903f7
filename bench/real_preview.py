"""The real `pulumi preview` of bench/scale.py's topologies (default 1,000 workers), beside their dry run.

For each size: the topology bench/scale.py generates (its `topology`), a fresh throwaway project and
file backend (lab/pulumi_cli.py), `pulumi preview` with the real CLI, language host and providers that
./scripts/tools builds (lab/realtools.py finds them), then once more with the policy pack
(`--policy-pack policies`, its venv made once); and the dry run of the same topology in a fresh
interpreter (bench/scale.py --measure). Prints one row a size. Connects to no host: a first preview
configures no provider that would (README, Policy pack / CI).

    .venv/bin/python bench/real_preview.py [--sizes 1000] [--no-pack] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import scale  # noqa: E402
from lab import realtools  # noqa: E402
from lab.pulumi_cli import Workspace, make_policy_pack  # noqa: E402

STACK = "scale"
TOOLS = ("pulumi", "pulumi-language-python", "pulumi-resource-command", "pulumi-resource-kubernetes",
         "pulumi-resource-libvirt")
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key: a preview reaches no host\n-----END OPENSSH PRIVATE KEY-----\n"


def real_preview(workers: int, tools: Path, scratch: Path, pack: Path | None) -> dict[str, Any]:
    ws = Workspace(scratch / f"w{workers}-{'pack' if pack else 'plain'}", tools)
    ws.init_stack(STACK, {"config": {"hakube:cluster": scale.topology(workers)}})
    ws.set_secret(STACK, "hakube:sshPrivateKey", KEY)
    events, result, seconds = ws.preview(STACK, policy_pack=pack, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"preview of {workers} workers failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    verdicts = events.verdicts()
    return {"seconds": seconds, "steps": len(events.steps), "creates": len(events.resources(ops=["create"])),
            "policies": len(verdicts), "violations": sorted(k for k, v in verdicts.items() if v != "pass")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000", help="worker counts, comma-separated")
    parser.add_argument("--no-pack", action="store_true", help="skip the preview with the policy pack")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    missing = realtools.missing(TOOLS)
    if missing:
        why = [f"{t}: {realtools.NOT_BUILT[t]}" if t in realtools.NOT_BUILT else t for t in missing]
        print(f"needs {'; '.join(why)} in ${realtools.TOOLS_DIR_ENV} or ./scripts/tools' directory", file=sys.stderr)
        return 2
    tools = realtools.tools_dir()
    assert tools is not None
    rows = []
    with tempfile.TemporaryDirectory(prefix="hk-real-preview-") as tmp:
        scratch = Path(tmp)
        pack = None
        if not args.no_pack:
            started = time.monotonic()
            pack = make_policy_pack(scratch / "policies")
            print(f"policy pack venv made in {time.monotonic() - started:.1f} s", file=sys.stderr)
        for size in (int(s) for s in args.sizes.split(",")):
            dry = scale.in_subprocess("--measure", str(size))
            plain = real_preview(size, tools, scratch, None)
            with_pack = real_preview(size, tools, scratch, pack) if pack else None
            rows.append({"workers": size, "resources": dry["resources"], "dryrun_s": dry["dryrun_s"],
                         "program_s": dry["program_s"], "preview": plain, "preview_with_pack": with_pack})
            print(f"measured {size} workers", file=sys.stderr, flush=True)
    head = f"{'workers':>7} {'resources':>9} {'dry run s':>9} {'preview s':>9} {'+ pack s':>8} {'creates':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        packed = f"{r['preview_with_pack']['seconds']:>8.1f}" if r["preview_with_pack"] else f"{'-':>8}"
        print(f"{r['workers']:>7} {r['resources']:>9} {r['dryrun_s']:>9.1f} {r['preview']['seconds']:>9.1f} "
              f"{packed} {r['preview']['creates']:>7}")
    for r in rows:
        if r["preview"]["creates"] != r["resources"]:
            print(f"{r['workers']} workers: the preview creates {r['preview']['creates']} resources, the dry run"
                  f" registers {r['resources']}", file=sys.stderr)
            return 1
        if r["preview_with_pack"] and r["preview_with_pack"]["violations"]:
            print(f"{r['workers']} workers: policy violations {r['preview_with_pack']['violations']}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
