"""A scratch 'host' for running hakube's host scripts for real.

`ScratchHost` gives a root directory (scripts see it as $HAKUBE_ROOT) and a bin directory of
PATH shims. Each shim appends one JSON line to calls.jsonl: its name, argv, and whether it got
stdin; its behaviour is a small bash body you choose (exit codes, output, files it creates).
"""

from __future__ import annotations

import json
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from configs.scripts import SCRIPT_DIR

# Tools a host script may call without a shim (coreutils and friends from the real system).
_PASSTHROUGH_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


@dataclass
class ScratchHost:
    base: Path
    root: Path = field(init=False)
    bin: Path = field(init=False)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.bin = self.base / "bin"
        self.log = self.base / "calls.jsonl"
        self.root.mkdir(parents=True, exist_ok=True)
        self.bin.mkdir(parents=True, exist_ok=True)

    def shim(self, name: str, body: str = "exit 0") -> None:
        """Install a PATH shim `name` that logs its call, then runs `body` (bash)."""
        path = self.bin / name
        path.write_text(
            "#!/usr/bin/env bash\n"
            f'python3 - "$@" <<\'PY\' >>"{self.log}"\n'
            "import json, sys, os\n"
            f"print(json.dumps({{'tool': {name!r}, 'argv': sys.argv[1:]}}))\n"
            "PY\n"
            f"{body}\n"
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def calls(self, tool: str | None = None) -> list[list[str]]:
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
        return [[r["tool"], *r["argv"]] for r in rows if tool is None or r["tool"] == tool]

    def clear_calls(self) -> None:
        self.log.unlink(missing_ok=True)

    def run(self, script: str, env: dict[str, str] | None = None, stdin: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run configs/scripts/<script> under bash with the shims first on PATH."""
        full_env = {
            "PATH": f"{self.bin}:{_PASSTHROUGH_PATH}",
            "HAKUBE_ROOT": str(self.root),
            "HOME": str(self.base),
            "LC_ALL": "C",
        }
        full_env.update(env or {})
        return subprocess.run(
            ["bash", str(SCRIPT_DIR / script)], env=full_env, input=stdin, text=True,
            capture_output=True, timeout=timeout, check=False,
        )

    def tree(self) -> dict[str, str]:
        """Every file under the root with its content (for 'second run changes nothing')."""
        out = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                out[str(path.relative_to(self.root))] = path.read_bytes().decode(errors="replace")
        return out
