"""How a host script becomes the one command line pulumi-command runs over SSH.

pulumi-command's `environment` relies on the SSH server's AcceptEnv (off by default), so hakube
does not use it. Plain parameters go on the command line (`env NAME=value`); secrets travel on
stdin as NAME=value lines ended by an empty line, which a short prologue exports before the
script runs, so they never appear in argv, `ps` or a log. Whatever follows the empty line stays
on the script's stdin (e.g. a file's content).
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from configs.scripts import script

_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")

SECRET_PROLOGUE = (
    "# hakube: export the secret NAME=value lines on stdin (never argv), up to an empty line\n"
    'while IFS= read -r hakube_line && [ -n "$hakube_line" ]; do export "${hakube_line?}"; done\n'
)


@dataclass(frozen=True)
class Script:
    """A host script (configs/scripts/<name>) and its plain environment: one part of a step."""

    name: str
    env: Mapping[str, str] = field(default_factory=dict)

    def command(self, *, reads_secrets: bool = False) -> str:
        return command_line(self.name, self.env, reads_secrets=reads_secrets)


@dataclass(frozen=True)
class ConfigDrop:
    """One daemon configuration file config-drop.sh places: checked by `check` before the swap,
    `reload` after it; on removal `stop` runs first (e.g. `systemctl disable --now haproxy`)."""

    path: str
    check: str = "true"
    reload: str = "true"
    stop: str = "true"
    mode: str = "0644"

    def apply(self) -> Script:
        return Script("config-drop.sh", {"DEST": self.path, "CHECK_CMD": self.check, "RELOAD_CMD": self.reload,
                                         "MODE": self.mode})

    def removal(self) -> Script:
        return Script("config-drop.sh", {"DEST": self.path, "ACTION": "remove", "STOP_CMD": self.stop})


def command_line(script_name: str, env: Mapping[str, str] | None = None, *, reads_secrets: bool = False) -> str:
    """`sudo -n env A=1 bash -c '<script>' <name>`: runs configs/scripts/<script_name> as root."""
    assignments = []
    for name, value in sorted((env or {}).items()):
        if not _NAME.match(name):
            raise ValueError(f"bad environment variable name {name!r}")
        assignments.append(f"{name}={shlex.quote(value)}")
    prefix = " ".join(["sudo", "-n", "env", *assignments])
    return f"{prefix} bash -c {_quoted_body(script_name, reads_secrets)} {shlex.quote(script_name.removesuffix('.sh'))}"


@cache
def _quoted_body(script_name: str, reads_secrets: bool) -> str:
    """The script text (with the secret prologue when asked), quoted for `bash -c`. Cached: a
    cluster embeds the same few scripts in thousands of steps (bench/scale.py)."""
    body = script(script_name)
    if reads_secrets:
        shebang, _, rest = body.partition("\n")
        body = f"{shebang}\n{SECRET_PROLOGUE}{rest}" if shebang.startswith("#!") else SECRET_PROLOGUE + body
    return shlex.quote(body)


def secret_stdin(secrets: Mapping[str, str], payload: str = "") -> str:
    """The stdin carrying `secrets` for a command built with reads_secrets=True."""
    lines = []
    for name, value in secrets.items():
        if not _NAME.match(name):
            raise ValueError(f"bad secret variable name {name!r}")
        if "\n" in value or not value:
            raise ValueError(f"secret {name} must be one non-empty line")
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n\n" + payload


def file_set_env(*, manifest: str | None = None, reload_units: Sequence[str] = (),
                 secret_names: Sequence[str] = (), keep_previous: bool = True) -> dict[str, str]:
    """file-set.sh's plain environment (configs/scripts/file-set.sh documents each); unset ones left out."""
    values = (("MANIFEST", manifest or ""), ("RELOAD_UNITS", " ".join(reload_units)),
              ("SECRET_NAMES", " ".join(sorted(secret_names))), ("KEEP_PREVIOUS", "" if keep_previous else "false"))
    return {name: value for name, value in values if value}


def file_set_stdin(files: Sequence[tuple[str, str, str]]) -> str:
    """What file-set.sh reads: one `mode path base64(content)` line for each (path, mode, content)."""
    lines = []
    for path, mode, content in files:
        if not path.startswith("/") or any(c.isspace() for c in path):
            raise ValueError(f"file path {path!r} must be absolute, without whitespace")
        if not re.fullmatch(r"0?[0-7]{3}", mode):
            raise ValueError(f"{path}: bad file mode {mode!r}")
        lines.append(f"{mode} {path} {base64.b64encode(content.encode()).decode()}")
    if not lines:
        raise ValueError("a file set needs at least one file")
    return "\n".join(lines) + "\n"
