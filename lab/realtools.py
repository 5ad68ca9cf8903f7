"""The real tools that ./scripts/tools builds: where they are and which versions they must report.

The directory is $HAKUBE_TOOLS_DIR when set (CI exports the script's last stdout line), else the default
cache's bin directory (`./scripts/tools --where`) once the script has completed it. The pins come from
tools/versions, the file the script builds from.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "tools"
VERSIONS_FILE = REPO / "tools" / "versions"
TOOLS_DIR_ENV = "HAKUBE_TOOLS_DIR"
COMPLETE_MARKER = ".complete"  # written last by scripts/tools into a finished bin directory
# Binaries the real-engine tests need that ./scripts/tools cannot build: the Go module proxy serves none
# of their modules (README, Real tools). A test needing one skips while it is missing, under CI too (CI
# cannot have it), saying why; put one in $HAKUBE_TOOLS_DIR (built from its source) and the test runs.
NOT_BUILT = {
    "pulumi-language-python": "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 is not served",
    "pulumi-resource-command": "github.com/pulumi/pulumi-command/provider is not served",
    "pulumi-resource-libvirt": "github.com/pulumi/pulumi-libvirt/provider is not served",
}


def parse_versions(text: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored."""
    pins = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier() or not value:
            raise ValueError(f"{VERSIONS_FILE.name}:{number}: expected KEY=VALUE, got {line!r}")
        pins[key] = value
    return pins


@functools.cache
def pinned() -> dict[str, str]:
    return parse_versions(VERSIONS_FILE.read_text())


def default_bin_dir() -> Path:
    """Where the script links every binary for the current $HAKUBE_CACHE (asked, not recomputed)."""
    out = subprocess.run([str(SCRIPT), "--where"], capture_output=True, text=True, check=True, timeout=30)
    return Path(out.stdout.strip())


def tools_dir() -> Path | None:
    if os.environ.get(TOOLS_DIR_ENV):
        return Path(os.environ[TOOLS_DIR_ENV])
    bin_dir = default_bin_dir()
    return bin_dir if (bin_dir / COMPLETE_MARKER).is_file() else None


def path_of(name: str) -> Path:
    """The binary NAME in the tools directory; call only from a test marked realtool(NAME)."""
    directory = tools_dir()
    if directory is None:
        raise LookupError(f"no tools directory: set {TOOLS_DIR_ENV} or run ./scripts/tools")
    return directory / name


def missing(names: tuple[str, ...]) -> list[str]:
    """Those of NAMES not found as executables in the tools directory (all of them when there is none)."""
    directory = tools_dir()
    if directory is None:
        return list(names)
    return [name for name in names if not os.access(directory / name, os.X_OK)]
