"""Host scripts shipped as files beside the code (configs/scripts/*.sh), shellcheck-clean.

Every script writes below "${HAKUBE_ROOT:-}" so tests can run it for real against a scratch
root directory, with PATH shims standing in for apt-get, systemctl, kubeadm and friends.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent / "scripts"


@cache
def script(name: str) -> str:
    """The text of configs/scripts/<name>; raises FileNotFoundError for an unknown script."""
    return (SCRIPT_DIR / name).read_text()


def all_scripts() -> list[Path]:
    return sorted(SCRIPT_DIR.glob("*.sh"))
