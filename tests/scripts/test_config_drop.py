"""config-drop.sh and lb-prepare.sh run for real under bash against a scratch root (lab/hostsim.py),
with PATH shims standing in for the daemons' checkers, systemctl and the package tools."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from configs.loadbalancer import CHECKERS, config_drop, render_haproxy
from configs.remote import command_line
from dryrun.mockrun import REPO
from lab.hostsim import ScratchHost
from topology import load_stack_file

DEST = "/etc/fakeproxy/fakeproxy.cfg"
OLD = "listen old\n"
NEW = "listen new\n"


def _host(tmp_path: Path, check_ok: bool = True, reload_refuses: str | None = None) -> ScratchHost:
    """A host with `fake-check FILE` (logs FILE's content) and `fake-reload` (logs DEST's content
    at reload time and fails while DEST contains `reload_refuses`)."""
    host = ScratchHost(tmp_path)
    dest = f"{host.root}{DEST}"
    host.shim("fake-check", f'cat "$1" >>"{tmp_path}/checked"; exit {0 if check_ok else 3}')
    refuse = f'grep -q "{reload_refuses}" "{dest}" && {{ echo "daemon refused the file" >&2; exit 1; }}' \
        if reload_refuses else ""
    host.shim("fake-reload", f'cat "{dest}" >>"{tmp_path}/reloaded"\n{refuse}\nexit 0')
    return host


def _drop(host: ScratchHost, content: str) -> subprocess.CompletedProcess[str]:
    env = {"DEST": DEST, "CHECK_CMD": 'fake-check "$1"', "RELOAD_CMD": "fake-reload"}
    return host.run("config-drop.sh", env=env, stdin=content)


def _seed(host: ScratchHost, content: str = OLD) -> Path:
    path = Path(f"{host.root}{DEST}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def _reloads(tmp_path: Path) -> str:
    path = tmp_path / "reloaded"
    return path.read_text() if path.exists() else ""


@pytest.mark.tool("bash")
def test_first_drop_checks_the_candidate_installs_and_reloads(tmp_path: Path) -> None:
    host = _host(tmp_path)
    result = _drop(host, NEW)
    assert result.returncode == 0, result.stderr
    assert host.tree() == {DEST.lstrip("/"): NEW}  # no temp file, no backup (nothing to keep)
    checked = host.calls("fake-check")
    assert len(checked) == 1 and checked[0][1] != f"{host.root}{DEST}"  # the candidate, not DEST
    assert (tmp_path / "checked").read_text() == NEW
    assert _reloads(tmp_path) == NEW  # reloaded once, after the swap
    assert oct(Path(f"{host.root}{DEST}").stat().st_mode & 0o777) == "0o644"


@pytest.mark.tool("bash")
def test_change_keeps_the_previous_file_as_backup(tmp_path: Path) -> None:
    host = _host(tmp_path)
    _seed(host)
    result = _drop(host, NEW)
    assert result.returncode == 0, result.stderr
    assert host.tree() == {DEST.lstrip("/"): NEW, f"{DEST.lstrip('/')}.hakube-prev": OLD}
    assert "reloaded" in result.stderr


@pytest.mark.tool("bash")
def test_checker_failure_keeps_the_old_file_and_reloads_nothing(tmp_path: Path) -> None:
    host = _host(tmp_path, check_ok=False)
    _seed(host)
    result = _drop(host, NEW)
    assert result.returncode != 0
    assert "rejected by the checker" in result.stderr
    assert host.tree() == {DEST.lstrip("/"): OLD}  # untouched, no candidate left behind
    assert host.calls("fake-reload") == []


@pytest.mark.tool("bash")
def test_reload_failure_restores_the_backup_and_reloads_it(tmp_path: Path) -> None:
    host = _host(tmp_path, reload_refuses="new")
    _seed(host)
    result = _drop(host, NEW)
    assert result.returncode != 0
    assert "previous file is restored and reloaded" in result.stderr
    assert "daemon refused the file" in result.stderr
    assert Path(f"{host.root}{DEST}").read_text() == OLD
    assert _reloads(tmp_path) == NEW + OLD  # the refused file, then the restored one
    assert not [p for p in host.tree() if ".hakube-new." in p or ".hakube-restore." in p]


@pytest.mark.tool("bash")
def test_reload_failure_without_a_previous_file_removes_the_new_one(tmp_path: Path) -> None:
    host = _host(tmp_path, reload_refuses="new")
    result = _drop(host, NEW)
    assert result.returncode != 0
    assert "no previous file" in result.stderr
    assert host.tree() == {}
    assert len(host.calls("fake-reload")) == 1


@pytest.mark.tool("bash")
def test_second_run_with_the_same_content_changes_nothing(tmp_path: Path) -> None:
    host = _host(tmp_path)
    _seed(host)
    assert _drop(host, NEW).returncode == 0
    before = host.tree()
    host.clear_calls()
    second = _drop(host, NEW)
    assert second.returncode == 0, second.stderr
    assert "unchanged" in second.stderr
    assert host.tree() == before
    assert host.calls() == []  # neither checked nor reloaded


@pytest.mark.tool("bash")
def test_missing_settings_fail_clearly(tmp_path: Path) -> None:
    host = _host(tmp_path)
    result = host.run("config-drop.sh", env={"DEST": DEST, "CHECK_CMD": "true"}, stdin=NEW)
    assert result.returncode != 0
    assert "RELOAD_CMD is required" in result.stderr
    assert host.tree() == {}


@pytest.mark.tool("bash", "haproxy")
def test_shipped_haproxy_checker_guards_the_drop(tmp_path: Path) -> None:
    host = _host(tmp_path)
    good = render_haproxy(load_stack_file(REPO / "Pulumi.dev.yaml"))
    env = {"DEST": "/etc/haproxy/haproxy.cfg", "CHECK_CMD": CHECKERS["haproxy"], "RELOAD_CMD": "fake-reload"}
    assert host.run("config-drop.sh", env=env, stdin=good).returncode == 0
    bad = host.run("config-drop.sh", env=env, stdin=good.replace("balance leastconn", "balance fastest"))
    assert bad.returncode != 0 and "balance" in bad.stderr
    assert host.tree()["etc/haproxy/haproxy.cfg"] == good


@pytest.mark.tool("bash", "haproxy")
def test_drop_as_the_component_runs_it(tmp_path: Path) -> None:
    """The exact command line pulumi-command would run (configs/remote.py), with the shipped
    environment for haproxy: quoting survives, the real checker runs, systemctl reloads."""
    host = _host(tmp_path)
    host.shim("sudo", '[[ "$1" == -n ]] && shift; exec "$@"')
    host.shim("systemctl", "exit 0")
    good = render_haproxy(load_stack_file(REPO / "Pulumi.dev.yaml"))
    line = command_line("config-drop.sh", {**config_drop("haproxy").apply().env, "HAKUBE_ROOT": str(host.root)})
    env = {"PATH": f"{host.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL": "C"}
    result = subprocess.run(["bash", "-c", line], input=good, env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert host.tree()["etc/haproxy/haproxy.cfg"] == good
    assert ["systemctl", "reload-or-restart", "haproxy"] in host.calls()


# -- lb-prepare.sh -------------------------------------------------------------------------------


def _lb_host(tmp_path: Path, installed: tuple[str, ...] = ()) -> ScratchHost:
    host = ScratchHost(tmp_path)
    db, state = tmp_path / "dpkg", tmp_path / "state"
    db.mkdir()
    state.mkdir()
    for package in installed:
        (db / package).touch()
    host.shim("dpkg-query", f'[[ -f "{db}/${{@: -1}}" ]] && printf installed || exit 1')
    host.shim("apt-get", f'[[ "$1" == install ]] && for a in "$@"; do [[ "$a" == -* || "$a" == install ]] '
                         f'|| touch "{db}/$a"; done; exit 0')
    host.shim("sysctl", f'if [[ "$1" == -n ]]; then cat "{state}/nonlocal" 2>/dev/null || echo 0; '
                        f'else echo 1 >"{state}/nonlocal"; fi')
    host.shim("getent", f'[[ -f "{state}/user-$2" ]]')
    host.shim("useradd", f'touch "{state}/user-${{@: -1}}"')
    return host


@pytest.mark.tool("bash")
def test_lb_prepare_first_run(tmp_path: Path) -> None:
    host = _lb_host(tmp_path, installed=("curl",))
    result = host.run("lb-prepare.sh")
    assert result.returncode == 0, result.stderr
    installs = [c for c in host.calls("apt-get") if c[1] == "install"]
    assert len(installs) == 1 and installs[0][-3:] == ["haproxy", "keepalived", "socat"]
    assert "net.ipv4.ip_nonlocal_bind = 1" in host.tree()["etc/sysctl.d/90-hakube-lb.conf"]
    assert ["sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"] in host.calls()
    useradd = host.calls("useradd")
    assert len(useradd) == 1 and useradd[0][-1] == "keepalived_script" and "--system" in useradd[0]


@pytest.mark.tool("bash")
def test_lb_prepare_second_run_changes_nothing(tmp_path: Path) -> None:
    host = _lb_host(tmp_path)
    assert host.run("lb-prepare.sh").returncode == 0
    before = host.tree()
    host.clear_calls()
    second = host.run("lb-prepare.sh")
    assert second.returncode == 0, second.stderr
    assert host.tree() == before
    mutating = [c for c in host.calls() if c[0] in ("apt-get", "useradd") or c[1:3] == ["-q", "-w"]]
    assert mutating == []


@pytest.mark.tool("bash")
def test_the_delete_stops_the_reader_then_removes_the_file_and_its_previous(tmp_path: Path) -> None:
    host = _host(tmp_path)
    assert _drop(host, OLD).returncode == 0 and _drop(host, NEW).returncode == 0
    assert set(host.tree()) == {DEST.lstrip("/"), DEST.lstrip("/") + ".hakube-prev"}
    seen = tmp_path / "stop-saw"
    host.shim("fake-stop", f'if test -f "{host.root}{DEST}"; then echo file >>"{seen}"; else echo none >>"{seen}"; fi')
    env = {"DEST": DEST, "ACTION": "remove", "STOP_CMD": "fake-stop"}
    removed = host.run("config-drop.sh", env=env, stdin=NEW)
    assert removed.returncode == 0, removed.stderr
    assert host.tree() == {}
    assert seen.read_text() == "file\n"  # stopped while its file was still there
    again = host.run("config-drop.sh", env=env)
    assert again.returncode == 0 and again.stderr.strip() == f"config-drop: {DEST}: already removed"


@pytest.mark.tool("bash")
def test_a_failed_stop_keeps_the_file(tmp_path: Path) -> None:
    host = _host(tmp_path)
    assert _drop(host, NEW).returncode == 0
    host.shim("fake-stop", "echo 'unit busy' >&2; exit 1")
    result = host.run("config-drop.sh", env={"DEST": DEST, "ACTION": "remove", "STOP_CMD": "fake-stop"})
    assert result.returncode == 1 and "unit busy" in result.stderr
    assert host.tree() == {DEST.lstrip("/"): NEW}


def test_the_load_balancer_drops_disable_their_daemon_when_deleted_and_are_never_replaced() -> None:
    from configs.loadbalancer import STOPPERS
    from tests.mockgraph import stack_graph

    for daemon in ("haproxy", "keepalived"):
        record = stack_graph("dev").record(f"lb1-{daemon}-apply")
        assert "ACTION=remove" in record.inputs["delete"]
        assert f"STOP_CMD={shlex_quote(STOPPERS[daemon])}" in record.inputs["delete"]
        assert record.ignore_changes == ["triggers"]


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
