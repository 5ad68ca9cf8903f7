"""The SSH lab (lab/): real sshd, sudo, HAProxy and keepalived in namespaces, driven the way
pulumi-command drives a host: over real SSH, as the stack's user, with the program's own commands.

The dev stack's LB steps (lb-prepare, the haproxy.cfg and keepalived.conf drops) are taken from
the real program run under mocks (tests/mockgraph.py), so the command lines and stdin are exactly
what `pulumi up` would send; each runs as `ssh ops@<address> <create>` from the lab's runner
namespace, where pulumi will run too. Fake TLS apiservers (lab/netlab.py) stand on cp1-3.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from configs.loadbalancer import CONFIG_PATHS, lb_nodes, render_haproxy, render_keepalived
from dryrun.mockrun import REPO
from lab import PRIVATE_DIRS, LabError, SshLab, netlab
from lab.procs import start_time, wait_until
from lab.sshlab import SHIMS
from tests.mockgraph import stack_graph
from topology import Cluster, load_stack_file

pytestmark = [pytest.mark.root,
              pytest.mark.tool("sshd", "ssh", "sudo", "unshare", "nsenter", "haproxy", "keepalived", "curl", "openssl")]

LB_STEPS = ("lb-prepare", "haproxy-apply", "keepalived-apply")  # the order their dependencies give
CERT_DIR = "/etc/hakube-lab"
# The machine's own files a lab host writes its versions of: they must not change.
WATCHED = ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/hosts", "/etc/hostname", "/etc/haproxy/haproxy.cfg",
           "/etc/keepalived/keepalived.conf", "/etc/sysctl.d/90-hakube-lb.conf", "/run/haproxy.pid",
           "/run/keepalived.pid")


def dev_hosts(cluster: Cluster) -> dict[str, tuple[str, ...]]:
    """LB nodes at their addresses; control-plane nodes with their node and control-plane addresses."""
    hosts: dict[str, tuple[str, ...]] = {n.name: (str(n.address),) for n in lb_nodes(cluster)}
    for node in cluster.control_plane.nodes:
        hosts[node.name] = (str(node.address), str(node.control_plane_address))
    return hosts


def machine_state() -> dict[str, str]:
    state = {path: hashlib.sha256(Path(path).read_bytes()).hexdigest() if Path(path).exists() else "absent"
             for path in WATCHED}
    state["/etc/sudoers.d"] = " ".join(sorted(p.name for p in Path("/etc/sudoers.d").iterdir()))
    return state


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return load_stack_file(REPO / "Pulumi.dev.yaml")


@pytest.fixture(scope="module")
def before() -> dict[str, str]:
    return machine_state()


@pytest.fixture(scope="module")
def lab(cluster: Cluster, before: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshLab]:
    with SshLab(dev_hosts(cluster), user=cluster.ssh.user) as running:
        start_apiservers(running, cluster, tmp_path_factory.mktemp("apiserver"))
        yield running


def start_apiservers(lab: SshLab, cluster: Cluster, scratch: Path) -> None:
    cert, key = scratch / "apiserver.crt", scratch / "apiserver.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-subj", "/CN=kube-apiserver", "-keyout", str(key), "-out", str(cert)],
                   capture_output=True, check=True, timeout=30)
    for node in cluster.control_plane.nodes:
        lab.write(node.name, f"{CERT_DIR}/apiserver.crt", cert.read_text())
        lab.write(node.name, f"{CERT_DIR}/apiserver.key", key.read_text(), mode="0600")
        proc = lab.spawn(node.name, "apiserver", [
            sys.executable, str(netlab.THIS_FILE), "apiserver", "--address", str(node.control_plane_address),
            "--port", str(cluster.apiserver_port), "--cert", f"{CERT_DIR}/apiserver.crt",
            "--key", f"{CERT_DIR}/apiserver.key"])
        wait_until(lambda p=proc: "ready" in p.log.read_text(), 10, f"the fake apiserver on {node.name}")


def program_step(name: str) -> tuple[str, str, str, str]:
    """(address, user, create, stdin) of one remote.Command as the dev program builds it."""
    inputs = stack_graph("dev").record(name).inputs
    connection = inputs["connection"]["value"]  # a secret (it carries the private key)
    return connection["host"], connection["user"], inputs["create"], inputs.get("stdin") or ""


def run_step(lab: SshLab, host: str, name: str) -> subprocess.CompletedProcess[str]:
    address, user, create, stdin = program_step(name)
    assert (address, user) == (lab.address(host), lab.user)
    result = lab.ssh(host, create, stdin=stdin, timeout=120)
    assert result.returncode == 0, f"{name}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def lb_pair(lab: SshLab, cluster: Cluster) -> dict[str, dict[str, str]]:
    """Every LB step run over SSH on lb1 then lb2; what they logged (stderr), step by step."""
    return {peer.name: {step: run_step(lab, peer.name, f"{peer.name}-{step}").stderr for step in LB_STEPS}
            for peer in sorted(lb_nodes(cluster), key=lambda p: -p.priority)}


def vip_holders(lab: SshLab, cluster: Cluster) -> list[str]:
    return [p.name for p in lb_nodes(cluster) if str(cluster.api_endpoint.vip) in lab.addresses(p.name)]


def readyz(lab: SshLab, cluster: Cluster) -> subprocess.CompletedProcess[str]:
    url = f"https://{cluster.api_endpoint.vip}:{cluster.api_endpoint.port}/readyz"
    return lab.runner_run(["curl", "--silent", "--insecure", "--max-time", "2", url], timeout=10)


# ------------------------------------------------------------------------------------------------


def test_ssh_with_the_lab_key_runs_the_programs_command_shape_as_root(lab: SshLab) -> None:
    for host in ("lb1", "lb2"):
        result = lab.ssh(host, "sudo -n env A=1 bash -c 'echo \"$(id -u) $A $0 $(hostname)\"' name")
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["0", "1", "name", host]
        login = lab.ssh(host, "id -un; echo $SHELL; sudo -n bash -c 'command -v systemctl apt-get'")
        assert login.stdout.split() == [lab.user, "/bin/bash", "/usr/local/sbin/systemctl", "/usr/local/sbin/apt-get"]


def test_the_runner_reaches_only_the_lab(lab: SshLab) -> None:
    """No default route: a process in the runner (pulumi) can reach the lab's hosts and nothing else."""
    routes = lab.runner_run(["ip", "-4", "route", "show", "table", "all"]).stdout
    assert [line.split()[0] for line in routes.splitlines() if not line.startswith(("local", "broadcast"))] == [
        "198.18.0.0/15"]


def test_sshd_takes_keys_only(lab: SshLab) -> None:
    argv = lab.ssh_argv("lb1", "true")
    no_key = [argv[0], "-o", "PubkeyAuthentication=no",
              "-o", "PreferredAuthentications=password,keyboard-interactive", *argv[1:]]
    result = lab.runner_run(no_key, timeout=30)
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def test_each_host_has_its_own_files(lab: SshLab, before: dict[str, str]) -> None:
    probe = "/etc/hakube-lab-probe"
    for directory in PRIVATE_DIRS:
        path = f"{directory}/hakube-lab-probe-{directory.strip('/').replace('/', '-')}"
        assert lab.ssh("lb1", f"echo lb1 | sudo -n tee {path} >/dev/null").returncode == 0
        assert lab.read("lb1", path) == "lb1\n"
        assert not lab.exists("lb2", path)
        assert not Path(path).exists()
    assert lab.ssh("lb2", f"echo lb2 | sudo -n tee {probe}").returncode == 0
    assert lab.read("lb2", probe) == "lb2\n"
    # The login user lives in each host's /etc only.
    assert lab.run("lb1", f"getent passwd {lab.user}").stdout.startswith(f"{lab.user}:")
    assert machine_state() == before


def test_a_hosts_tmp_is_its_own(lab: SshLab) -> None:
    lab.run("lb1", "echo x > /tmp/hakube-lab-tmp-probe")
    assert not lab.exists("lb2", "/tmp/hakube-lab-tmp-probe")
    assert not Path("/tmp/hakube-lab-tmp-probe").exists()
    assert not lab.exists("lb1", str(lab.dir))  # the lab's own directory is out of a host's sight


def test_lb_steps_over_ssh_start_real_daemons_in_each_host(lab: SshLab, cluster: Cluster, before: dict[str, str],
                                                          lb_pair: dict[str, dict[str, str]]) -> None:
    for host, outputs in lb_pair.items():
        assert "lb-prepare: created system user keepalived_script" in outputs["lb-prepare"]
        for daemon in ("haproxy", "keepalived"):
            assert "reloaded" in outputs[f"{daemon}-apply"]
            assert lab.ssh(host, f"systemctl is-active {daemon}").stdout.strip() == "active"
        # The daemons run in this host's namespaces, with this host's files.
        pids = lab.run(host, "pidof haproxy keepalived").stdout.split()
        assert len(pids) >= 4  # HAProxy master + worker, keepalived parent + VRRP child
        # What the program sends is what configs/loadbalancer.py renders, and it is what the host has.
        rendered = {"haproxy": render_haproxy(cluster), "keepalived": render_keepalived(cluster, host)}
        for daemon, text in rendered.items():
            assert program_step(f"{host}-{daemon}-apply")[3] == text
            assert lab.read(host, CONFIG_PATHS[daemon]) == text
        assert f"router_id dev-{host}" in rendered["keepalived"]
        assert lab.run(host, "sysctl -n net.ipv4.ip_nonlocal_bind").stdout.strip() == "1"
    assert machine_state() == before


def test_a_client_reaches_the_apiservers_through_the_vip(lab: SshLab, cluster: Cluster,
                                                        lb_pair: dict[str, dict[str, str]]) -> None:
    wait_until(lambda: vip_holders(lab, cluster) == ["lb1"], 10, "lb1 alone to hold the VIP")
    wait_until(lambda: readyz(lab, cluster).stdout == "ok", 10, "the VIP to answer")


def test_the_steps_run_again_change_nothing(lab: SshLab, lb_pair: dict[str, dict[str, str]]) -> None:
    pidfiles = {"haproxy": "/run/haproxy.pid", "keepalived": "/run/keepalived.pid"}
    pids = {d: lab.read("lb1", f) for d, f in pidfiles.items()}
    again = {step: run_step(lab, "lb1", f"lb1-{step}").stderr for step in LB_STEPS}
    assert "installed" not in again["lb-prepare"] and "created" not in again["lb-prepare"]
    assert "unchanged" in again["haproxy-apply"] and "unchanged" in again["keepalived-apply"]
    assert {d: lab.read("lb1", f) for d, f in pidfiles.items()} == pids


def test_the_systemctl_shim_records_units_it_cannot_run(lab: SshLab) -> None:
    assert lab.run("cp1", "systemctl is-active kubelet", check=False).returncode == 3
    lab.run("cp1", "systemctl enable --now kubelet")
    assert lab.run("cp1", "systemctl is-active kubelet; systemctl is-enabled kubelet").stdout.split() == [
        "active", "enabled"]
    assert lab.run("cp2", "systemctl is-enabled kubelet", check=False).returncode == 1  # cp1's state only
    log = lab.read("cp1", "/var/log/hakube-lab/systemctl.log")
    assert re.search(r"systemctl enable --now kubelet$", log, re.MULTILINE)


def test_the_apt_shims_install_only_what_the_machine_has(lab: SshLab) -> None:
    assert "curl is already the newest version" in lab.run("cp1", "apt-get install -y -q curl").stdout
    missing = lab.run("cp1", "apt-get install -y kubelet=1.37.2-1.1", check=False)
    assert missing.returncode == 100 and "kubelet=1.37.2-1.1" in missing.stderr
    lab.run("cp1", "apt-mark hold curl")
    assert lab.run("cp1", "apt-mark showhold").stdout.split() == ["curl"]
    assert lab.run("cp2", "apt-mark showhold").stdout.split() == []
    assert re.match(r"\s*curl \| \S+ \| ", lab.run("cp1", "apt-cache madison curl").stdout)


def test_keepalived_killed_on_lb1_moves_the_vip_and_the_client_is_still_answered(
        lab: SshLab, cluster: Cluster, lb_pair: dict[str, dict[str, str]]) -> None:
    vip, port = str(cluster.api_endpoint.vip), cluster.api_endpoint.port
    wait_until(lambda: vip_holders(lab, cluster) == ["lb1"], 10, "lb1 alone to hold the VIP")
    poll = lab.runner_popen([sys.executable, str(netlab.THIS_FILE), "poll", vip, str(port), "3"],
                            stdout=subprocess.PIPE, text=True)
    assert poll.stdout is not None and poll.stdout.readline().startswith("ready")
    time.sleep(0.5)
    lab.run("lb1", f"kill -{signal.SIGTERM.value} \"$(cat /run/keepalived.pid)\"")
    wait_until(lambda: vip_holders(lab, cluster) == ["lb2"], 5, "the VIP to move to lb2")
    out, _ = poll.communicate(timeout=30)
    result = json.loads(out.strip().splitlines()[-1])
    print(f"VIP lb1 -> lb2: {result['failed']}/{result['requests']} requests failed,"
          f" longest gap {result['longest_gap_ms']} ms")
    assert result["failed"] <= 2 and result["longest_gap_ms"] <= 1000
    # Answered by lb2 now: the client's neighbour entry for the VIP is lb2's interface.
    assert readyz(lab, cluster).stdout == "ok"
    neighbour = lab.runner_run(["ip", "neigh", "show", vip]).stdout
    assert lab.run("lb2", "cat /sys/class/net/eth0/address").stdout.strip() in neighbour
    assert lab.ssh("lb1", "systemctl is-active keepalived").stdout.strip() == "failed"


# ------------------------------------------------------------------------------------------------
# Teardown, and the lab's size.


HAPROXY_MINIMAL = """global
    stats socket /run/haproxy/admin.sock mode 600 level admin
frontend alive
    mode http
    bind 127.0.0.1:8404
    monitor-uri /alive
    timeout client 5s
"""


def test_teardown_leaves_no_namespace_mount_or_process_even_after_a_failure() -> None:
    hosts = {f"h{i}": f"198.18.0.{10 + i}" for i in range(1, 7)}
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the test failed"), SshLab(hosts, user="ops") as lab:
        up = time.monotonic() - started
        lab.write("h1", "/etc/haproxy/haproxy.cfg", HAPROXY_MINIMAL)
        assert lab.ssh("h1", "sudo -n systemctl start haproxy").returncode == 0
        assert lab.run("h1", "systemctl is-active haproxy").stdout.strip() == "active"
        lab.spawn("h2", "sleeper", ["sleep", "600"])
        held = {host: lab.host_processes(host) for host in hosts}
        assert len(held["h1"]) >= 4  # init, sshd, HAProxy master and worker
        closing = time.monotonic()
        raise RuntimeError("the test failed")
    down = time.monotonic() - closing
    print(f"6-host lab: up {up:.2f} s, down {down:.2f} s")
    assert lab.leftovers() == []
    assert not any(line.startswith(lab.tag) for line in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.splitlines())
    alive = [pid for processes in held.values() for pid, start in processes.items() if start_time(pid) == start]
    assert alive == []
    assert up < 30 and down < 15


def test_two_labs_with_the_same_addresses_run_side_by_side() -> None:
    """Nothing of a lab is in the machine's own network namespace, so test runs never collide."""
    with SshLab({"h1": "198.18.0.11"}) as first, SshLab({"h1": "198.18.0.11"}) as second:
        for lab in (first, second):
            assert lab.ssh("h1", f"echo {lab.tag} | sudo -n tee /etc/hakube-lab-owner").returncode == 0
        for lab in (first, second):
            assert lab.ssh("h1", "cat /etc/hakube-lab-owner").stdout.strip() == lab.tag
    assert first.leftovers() == [] and second.leftovers() == []


def test_bad_hosts_are_refused_before_anything_is_made() -> None:
    with pytest.raises(ValueError, match="outside the lab range"):
        SshLab({"h1": "10.0.0.1"})
    with pytest.raises(ValueError, match="already h1's address"):
        SshLab({"h1": "198.18.0.1", "h2": "198.18.0.1/24"})
    with pytest.raises(ValueError, match="reserved"):
        SshLab({"runner": "198.18.0.1"})


def test_a_host_that_fails_to_start_is_reported_and_cleaned_up() -> None:
    lab = SshLab({"h1": "198.18.0.1"}, user="-bad")  # useradd refuses it
    with pytest.raises(LabError, match="h1 did not start"):
        lab.__enter__()
    assert lab.leftovers() == []


@pytest.mark.tool("shellcheck")
def test_shims_are_shellcheck_clean_and_say_what_they_stand_in_for() -> None:
    shims = sorted(SHIMS.iterdir())
    result = subprocess.run(["shellcheck", *map(str, shims)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout
    readme = (REPO / "README.md").read_text()
    for shim in shims:
        assert re.search(rf"^# hakube lab shim for {re.escape(shim.name)} ", shim.read_text(), re.MULTILINE), shim
        assert f"`{shim.name}`" in readme.split("## Lab", 1)[-1], f"the README's Lab section does not list {shim.name}"
