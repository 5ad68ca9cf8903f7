"""Host scripts shipped as files beside the code (configs/scripts/*.sh), shellcheck-clean.

Every script writes below "${HAKUBE_ROOT:-}" so tests can run it for real against a scratch
root directory, with PATH shims standing in for apt-get, systemctl, kubeadm and friends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent / "scripts"


# How a script pulls in a shared file of helpers, configs/scripts/lib*.sh (see lib.sh): replaced by
# that file's text when the script is sent, so every remote command stays one self-contained script.
def lib_source(lib: str) -> str:
    return f'# shellcheck source-path=SCRIPTDIR source={lib}\nsource "$(dirname "${{BASH_SOURCE[0]}}")/{lib}"\n'


LIB_SOURCE = lib_source("lib.sh")
# Helper files, inlined into the scripts that source them (never run on their own); lib.sh first.
LIBS = ("lib.sh", "lib-etcd.sh")
SCRIPT_NAME = re.compile(r"^script_name=\S.*\n", re.M)  # lib.sh's log prefix, set just before sourcing it


class ScriptError(ValueError):
    pass


def inline_libs(name: str, text: str, libs: Mapping[str, str]) -> str:
    """`text` with each library of `libs` (file name -> its text) in place of the lines that source it.
    Refuses a script that does not source lib.sh exactly once, right after setting script_name, or that
    names a library any other way (a different spelling would stay a `source` of a file the host lacks)."""
    if name in libs:
        raise ScriptError(f"{name} is a library: it is inlined into scripts, never run on its own")
    if text.count(LIB_SOURCE) != 1:
        raise ScriptError(f"{name} must source lib.sh exactly once, with the lines\n{LIB_SOURCE}")
    lib_at = text.index(LIB_SOURCE)
    before = text[:lib_at].splitlines(keepends=True)
    if not before or not SCRIPT_NAME.fullmatch(before[-1]):
        raise ScriptError(f"{name}: set script_name=... on the line right before sourcing lib.sh")
    for lib in libs:
        sourced_at = text.find(lib_source(lib))
        if text.replace(lib_source(lib), "").count(lib) or (lib != LIBS[0] and 0 <= sourced_at < lib_at):
            raise ScriptError(f"{name} names {lib} other than by sourcing it after lib.sh with\n{lib_source(lib)}")
    for lib, body in libs.items():
        text = text.replace(lib_source(lib), body.split("\n", 1)[1], 1)  # without its shebang
    return text


@cache
def script(name: str) -> str:
    """The self-contained text of configs/scripts/<name>, with each lib*.sh inlined where it is
    sourced; raises FileNotFoundError for an unknown script, ScriptError for one that breaks the
    sourcing rules (inline_libs)."""
    return inline_libs(name, (SCRIPT_DIR / name).read_text(), _libs())


@cache
def _libs() -> dict[str, str]:
    return {lib: (SCRIPT_DIR / lib).read_text() for lib in LIBS}


def all_scripts() -> list[Path]:
    """The scripts hakube runs on hosts (the lib*.sh files are inlined into them, never run on their own)."""
    return sorted(p for p in SCRIPT_DIR.glob("*.sh") if p.name not in LIBS)
