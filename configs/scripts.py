"""Host scripts shipped as files beside the code (configs/scripts/*.sh), shellcheck-clean.

Every script writes below "${HAKUBE_ROOT:-}" so tests can run it for real against a scratch
root directory, with PATH shims standing in for apt-get, systemctl, kubeadm and friends.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent / "scripts"


# How a script pulls in configs/scripts/lib.sh (see that file): replaced by its text when sent.
LIB_SOURCE = '# shellcheck source-path=SCRIPTDIR source=lib.sh\nsource "$(dirname "${BASH_SOURCE[0]}")/lib.sh"\n'


@cache
def script(name: str) -> str:
    """The self-contained text of configs/scripts/<name>, with lib.sh inlined where it is sourced;
    raises FileNotFoundError for an unknown script."""
    text = (SCRIPT_DIR / name).read_text()
    if LIB_SOURCE in text:
        lib = (SCRIPT_DIR / "lib.sh").read_text().split("\n", 1)[1]  # without its shebang
        text = text.replace(LIB_SOURCE, lib, 1)
    return text


def all_scripts() -> list[Path]:
    """The scripts hakube runs on hosts (lib.sh is inlined into them, never run on its own)."""
    return sorted(p for p in SCRIPT_DIR.glob("*.sh") if p.name != "lib.sh")
