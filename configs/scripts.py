"""Host scripts shipped as files beside the code (configs/scripts/*.sh), shellcheck-clean.

Every script writes below "${HAKUBE_ROOT:-}" so tests can run it for real against a scratch
root directory, with PATH shims standing in for apt-get, systemctl, kubeadm and friends.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent / "scripts"


# How a script pulls in a shared file of helpers, configs/scripts/lib*.sh (see lib.sh): replaced by
# that file's text when the script is sent, so every remote command stays one self-contained script.
def lib_source(lib: str) -> str:
    return f'# shellcheck source-path=SCRIPTDIR source={lib}\nsource "$(dirname "${{BASH_SOURCE[0]}}")/{lib}"\n'


LIB_SOURCE = lib_source("lib.sh")
# Helper files, inlined into the scripts that source them (never run on their own).
LIBS = ("lib.sh", "lib-etcd.sh")


@cache
def script(name: str) -> str:
    """The self-contained text of configs/scripts/<name>, with each lib*.sh inlined where it is
    sourced; raises FileNotFoundError for an unknown script."""
    text = (SCRIPT_DIR / name).read_text()
    for lib in LIBS:
        if lib_source(lib) in text:
            body = (SCRIPT_DIR / lib).read_text().split("\n", 1)[1]  # without its shebang
            text = text.replace(lib_source(lib), body, 1)
    return text


def all_scripts() -> list[Path]:
    """The scripts hakube runs on hosts (the lib*.sh files are inlined into them, never run on their own)."""
    return sorted(p for p in SCRIPT_DIR.glob("*.sh") if p.name not in LIBS)
