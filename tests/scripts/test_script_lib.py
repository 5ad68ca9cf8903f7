"""configs/scripts/lib.sh, the library every host script sources, and the rules for sourcing it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from configs.kubeadm import ADMIN_KUBECONFIG
from configs.scripts import LIB_SOURCE, LIBS, SCRIPT_DIR, ScriptError, all_scripts, inline_libs, lib_source, script

LIB_TEXTS = {lib: (SCRIPT_DIR / lib).read_text() for lib in LIBS}
GOOD = f'#!/usr/bin/env bash\nset -euo pipefail\nscript_name="demo"\n{LIB_SOURCE}log hi\n'


def _bash(body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`body` run after sourcing lib.sh from disk, with HAKUBE_ROOT at tmp_path."""
    program = f'set -euo pipefail\nscript_name="demo"\nsource {SCRIPT_DIR / "lib.sh"}\n{body}'
    return subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30, check=False,
                          env={"PATH": "/usr/bin:/bin", "HAKUBE_ROOT": str(tmp_path)})


def test_every_host_script_sources_lib_sh_and_is_sent_self_contained() -> None:
    for path in all_scripts():
        sent = script(path.name)
        assert not re.search(r"^\s*(source|\.) ", sent, re.M), path.name  # nothing left to read on the host
        assert "log() {" in sent and "\nscript_name=" in sent, path.name


@pytest.mark.parametrize("text, problem", [
    ("#!/usr/bin/env bash\nlog hi\n", "must source lib.sh exactly once"),
    (f"#!/usr/bin/env bash\n{LIB_SOURCE}log hi\n", "set script_name"),
    (f'script_name="a"\necho\n{LIB_SOURCE}', "set script_name"),
    (f'script_name="a"\n{LIB_SOURCE}{LIB_SOURCE}', "exactly once"),
    (f'{GOOD}. "$(dirname "$0")/lib.sh"\n', "names lib.sh other than by sourcing it"),
    (f'{GOOD}# see lib-etcd.sh\n', "names lib-etcd.sh"),
    (f'{lib_source("lib-etcd.sh")}{GOOD}', "names lib-etcd.sh"),
])
def test_inlining_refuses_a_script_that_sources_a_library_any_other_way(text: str, problem: str) -> None:
    with pytest.raises(ScriptError, match=problem):
        inline_libs("demo.sh", text, LIB_TEXTS)


def test_a_library_is_never_sent_as_a_script() -> None:
    with pytest.raises(ScriptError, match="is a library"):
        inline_libs("lib.sh", GOOD, LIB_TEXTS)


def test_libraries_are_inlined_in_place_in_order() -> None:
    sent = inline_libs("demo.sh", f"{GOOD.replace('log hi', lib_source('lib-etcd.sh'))}log hi\n", LIB_TEXTS)
    assert sent.index("log() {") < sent.index("etcd_client_defaults() {") < sent.index("log hi")
    assert "#!/usr/bin/env bash" not in sent.split("\n", 1)[1]  # the libraries' shebangs stay out


@pytest.mark.tool("bash")
def test_log_and_fail_write_only_stderr_with_the_scripts_name(tmp_path: Path) -> None:
    logged = _bash('log "one"; echo data', tmp_path)
    assert (logged.returncode, logged.stdout, logged.stderr) == (0, "data\n", "demo: one\n")
    failed = _bash('fail "bad input"; echo unreachable', tmp_path)
    assert (failed.returncode, failed.stdout, failed.stderr) == (1, "", "demo: bad input\n")


@pytest.mark.tool("bash")
def test_the_admin_kubeconfig_path_is_the_programs(tmp_path: Path) -> None:
    result = _bash('printf %s "$admin_kubeconfig"', tmp_path)
    assert result.stdout == f"{tmp_path}{ADMIN_KUBECONFIG}"


@pytest.mark.tool("bash")
def test_atomic_write_sets_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    result = _bash('printf secret | atomic_write "$root/etc/x/key" 0600; write_if_changed "$root/etc/y" same '
                   '&& write_if_changed "$root/etc/y" same || echo unchanged', tmp_path)
    assert result.returncode == 0 and result.stdout == "unchanged\n", result.stderr
    key = tmp_path / "etc/x/key"
    assert key.read_text() == "secret" and key.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "etc").rglob("*")) == ["key", "x", "y"]
    assert result.stderr == "demo: wrote /etc/y\n"  # the path as the host sees it, logged once


@pytest.mark.tool("bash")
def test_install_missing_packages_installs_only_the_missing_ones_and_logs_apt_to_stderr(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dpkg-query").write_text('#!/bin/bash\n[[ "${*: -1}" == have ]] && echo installed || exit 1\n')
    (bin_dir / "apt-get").write_text(f'#!/bin/bash\necho "apt $*"\necho "$*" >>{tmp_path}/calls\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    result = _bash(f'PATH={bin_dir}:$PATH; install_missing_packages --no-install-recommends have want; '
                   'install_missing_packages have', tmp_path)
    assert result.returncode == 0 and result.stdout == "", result.stderr
    assert (tmp_path / "calls").read_text().splitlines() == [
        "update -q", "install -y -q --no-install-recommends want"]
    assert "demo: installed want" in result.stderr and "apt install" in result.stderr
