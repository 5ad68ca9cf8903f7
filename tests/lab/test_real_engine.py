"""hakube under the real Pulumi engine: the CLI, the Python language host, the providers and the policy
pack that ./scripts/tools builds (lab/realtools.py finds them), on a throwaway project with a local
file backend (lab/pulumi_cli.py).

Previews: each committed stack previews with `--policy-pack policies` and its pack config, with the
same resources (type, name, count) and the same policy verdicts as the dry run of a first deployment,
and a stack with two control-plane VMs on one hypervisor fails naming cp-spread; a first preview
reaches no host.

The SSH lab (root): a real `pulumi up` of dev on bare metal with the add-ons off, then, in file order
on that one deployment, no secret in plaintext anywhere, day 2 (no changes, a worker added and
removed, advertIntervalMs rolled under a polling client), a keepalived fault, and `pulumi destroy`.

Binaries ./scripts/tools cannot build (lab/realtools.py NOT_BUILT) make these tests skip, also
under CI, saying which; given them in $HAKUBE_TOOLS_DIR, the tests run.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dryrun import policy_check
from lab import SshLab, netlab, realtools
from lab.procs import wait_until
from lab.pulumi_cli import Events, Workspace, make_policy_pack, parse_events
from tests.mockgraph import cluster_copy, graph

ENGINE = ("pulumi", "pulumi-language-python", "pulumi-resource-command", "pulumi-resource-kubernetes")
LIBVIRT = "pulumi-resource-libvirt"



def marked(*marks: pytest.MarkDecorator) -> Any:
    def apply(test: Any) -> Any:
        for mark in marks:
            test = mark(test)
        return test
    return apply


engine_test = marked(pytest.mark.realtool(*ENGINE))

# Never used to reach a host: previews connect to none.
PREVIEW_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----\n"
TIMES: dict[str, float] = {}


@pytest.fixture(scope="session")
def policy_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """policies/ with its own venv from policies/requirements.txt, made once per test session."""
    return make_policy_pack(tmp_path_factory.mktemp("pack") / "policies")


@pytest.fixture(scope="module")
def tools() -> Path:
    directory = realtools.tools_dir()
    assert directory is not None  # the realtool marker skipped (or failed, under CI) otherwise
    return directory


@pytest.fixture(scope="module", autouse=True)
def report_times() -> Iterator[None]:
    yield
    if TIMES:
        print("\nreal engine times: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMES.items()))


def workspace(root: Path, tools: Path, stack: str, cluster: dict[str, Any], **kwargs: Any) -> Workspace:
    ws = Workspace(root, tools, **kwargs)
    ws.init_stack(stack, {"config": {"hakube:cluster": cluster}})
    ws.set_secret(stack, "hakube:sshPrivateKey", PREVIEW_KEY)
    return ws


def dry_run(cluster: dict[str, Any], stack: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(type, name) of every resource and each policy's verdict, from the program under mocks (a first
    deployment: no previous outputs)."""
    dry = graph(cluster, stack)
    verdicts = {v.name: v.status for v in policy_check.evaluate(dry.run, stack)}
    return sorted((row["type"], row["name"]) for row in dry.table), verdicts


def real_preview(tmp_path: Path, tools: Path, policy_pack: Path, stack: str, cluster: dict[str, Any],
                 **kwargs: Any) -> tuple[Events, subprocess.CompletedProcess[str], float]:
    ws = workspace(tmp_path, tools, stack, cluster, **kwargs)
    return ws.preview(stack, policy_pack=policy_pack)


def stack_param(stack: str) -> Any:
    needs_vms = bool(cluster_copy(stack).get("hypervisors"))
    return pytest.param(stack, marks=[pytest.mark.realtool(LIBVIRT)] if needs_vms else [], id=stack)


# ------------------------------------------------------------------------------------------------
# What these tests need that no CI machine of this kind can build (lab/realtools.py NOT_BUILT)


def test_a_missing_unbuildable_binary_skips_while_a_missing_buildable_one_still_fails_under_ci(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from tests import conftest

    monkeypatch.setenv(realtools.TOOLS_DIR_ENV, str(tmp_path))  # a tools directory holding nothing
    marks = {"realtool": [pytest.mark.realtool("pulumi", "pulumi-resource-command").mark]}
    item = SimpleNamespace(iter_markers=lambda name: marks.get(name, []), get_closest_marker=lambda name: None)
    assert [r.split(" (")[0] for r in conftest._unmet(item)] == ["needs pulumi"]  # fails under CI
    assert conftest._not_built(item) == [f"pulumi-resource-command: {realtools.NOT_BUILT['pulumi-resource-command']}"]
    (tmp_path / "pulumi-resource-command").write_text("#!/bin/sh\n")
    (tmp_path / "pulumi-resource-command").chmod(0o755)
    assert conftest._not_built(item) == []  # given one, the test runs


def test_no_binary_is_listed_as_unbuildable_once_scripts_tools_builds_it() -> None:
    directory = realtools.default_bin_dir()
    if not (directory / realtools.COMPLETE_MARKER).is_file():
        pytest.skip(f"./scripts/tools has not completed {directory}")
    assert sorted(t for t in realtools.NOT_BUILT if (directory / t).exists()) == []


# ------------------------------------------------------------------------------------------------
# Previews


@engine_test
@pytest.mark.parametrize("stack", [stack_param(s) for s in ("edge", "dev", "prod")])
def test_a_real_preview_passes_the_pack_with_the_dry_runs_resources_and_verdicts(
        stack: str, tmp_path: Path, tools: Path, policy_pack: Path) -> None:
    cluster = cluster_copy(stack)
    events, result, seconds = real_preview(tmp_path, tools, policy_pack, stack, cluster)
    TIMES[f"preview {stack}"] = seconds
    assert result.returncode == 0, result.stderr[-4000:] + "\n".join(events.diagnostics)[-4000:]
    resources, verdicts = dry_run(cluster, stack)
    # Every resource the dry run registers is a create, and nothing else is stepped on: the stack's
    # read of its own last outputs (components/previous.py) is an invoke, and works on a stack never
    # deployed.
    assert events.resources(ops=["create"]) == resources
    assert sorted({op for op, _, _ in events.steps}) == ["create"]
    assert events.verdicts() == verdicts
    assert set(verdicts) == {p.name for p in policy_check.pack.POLICIES}


def two_vms_on_one_hypervisor() -> dict[str, Any]:
    """dev with cp2 moved onto hv1, on cores of its own there: every other rule still holds."""
    cluster = cluster_copy("dev")
    cp2 = cluster["controlPlane"]["nodes"][1]
    cp2["hypervisor"], cp2["pinnedCpus"] = "hv1", "6-9"
    return cluster


@engine_test
@pytest.mark.realtool(LIBVIRT)
def test_two_control_plane_vms_on_one_hypervisor_fail_the_real_preview_naming_cp_spread(
        tmp_path: Path, tools: Path, policy_pack: Path) -> None:
    cluster = two_vms_on_one_hypervisor()
    events, result, _ = real_preview(tmp_path, tools, policy_pack, "breach", cluster)
    assert result.returncode != 0
    resources, verdicts = dry_run(cluster, "breach")
    assert verdicts["cp-spread"] == "mandatory"
    assert events.verdicts() == verdicts
    [violation] = [v for v in events.violations if v["policyName"] == "cp-spread"]
    assert violation["enforcementLevel"] == "mandatory"
    assert "hv1: hosts cp1-vm, cp2-vm" in violation["message"]
    assert violation["resourceUrn"].endswith("::hv1")
    assert events.resources(ops=["create"]) == resources  # the preview still shows the whole plan


@engine_test
@pytest.mark.root
@pytest.mark.realtool(LIBVIRT)
def test_a_first_preview_dials_no_host(tmp_path: Path, tools: Path, policy_pack: Path) -> None:
    """What CI needs: the dev preview passes in a network namespace with nothing but loopback, so it
    reaches no hypervisor (libvirt), no node (SSH) and no cluster (kubernetes)."""
    assert shutil.which("unshare") and shutil.which("ip")

    def offline(argv: list[str]) -> list[str]:
        return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "offline", *argv]

    events, result, _ = real_preview(tmp_path, tools, policy_pack, "dev", cluster_copy("dev"), wrap=offline)
    assert result.returncode == 0, result.stderr[-4000:] + "\n".join(events.diagnostics)[-4000:]
    assert set(events.verdicts().values()) == {"pass"}


# ------------------------------------------------------------------------------------------------
# A real `pulumi up` in the SSH lab (lab/): real pulumi-command over real SSH into network-namespace
# hosts, the program's own host scripts, real HAProxy and keepalived; the lab's shims stand in for
# apt, systemd units other than those two, kubeadm, kubectl, etcdctl and the kubelet (README, Lab).
# The tests below run in file order on one deployment: up, secrets, day 2, a fault, destroy.

LAB_TOOLS = ("sshd", "ssh", "sudo", "unshare", "nsenter", "haproxy", "keepalived", "curl", "openssl", "socat")
# What the lab's package source offers (the apt-get shim "installs" these into a host's dpkg database).
LAB_ARCHIVE = {"kubeadm": "1.37.2-1.1", "kubelet": "1.37.2-1.1", "kubectl": "1.37.2-1.1",
               "containerd": "2.2.1-0ubuntu1~24.04.1", "etcd-client": "3.5.16-4"}
ARCHIVE_PATH = "/etc/hakube-lab/apt-archive"
STORE_PATH = "/var/lib/hakube-lab/apiserver/store.json"  # the first control-plane node's cluster store
LAB_STACK = "lab"
lab_test = marked(pytest.mark.realtool(*ENGINE), pytest.mark.root, pytest.mark.tool(*LAB_TOOLS))
EXTRA_WORKER = 1  # dev's w2: added and removed on day 2


def lab_cluster(workers: int = 1) -> dict[str, Any]:
    """dev on bare metal: the same LB pair, three control-plane nodes and its first worker(s), at
    dev's addresses, with the add-ons off (no kubelet in the lab, so no cluster to install them in)."""
    cluster = cluster_copy("dev")
    cluster["name"] = LAB_STACK
    del cluster["hypervisors"], cluster["ssh"]["authorizedKey"]
    for node in cluster["controlPlane"]["nodes"]:
        for vm_only in ("hypervisor", "pinnedCpus", "osDiskGiB", "etcdDiskGiB"):
            node.pop(vm_only)
    cluster["workers"] = cluster["workers"][:workers]
    cluster["addons"] = {"enabled": False}
    return cluster


def lab_hosts() -> dict[str, tuple[str, ...]]:
    cluster = lab_cluster(workers=1 + EXTRA_WORKER)
    hosts = {n["name"]: (n["address"],) for n in cluster["loadBalancer"]["nodes"]}
    hosts |= {n["name"]: (n["address"], n["controlPlaneAddress"]) for n in cluster["controlPlane"]["nodes"]}
    return hosts | {w["name"]: (w["address"],) for w in cluster["workers"]}


class ProcessSampler:
    """Every command line seen in the lab's namespaces, sampled until stopped (a thread)."""

    def __init__(self, lab: SshLab, interval: float = 0.01) -> None:
        self.lab, self.interval = lab, interval
        self.seen: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.lab.processes():
                with contextlib.suppress(OSError):
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes()
                    self.seen.add(argv.replace(b"\0", b" ").decode(errors="replace"))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> ProcessSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class Deployment:
    lab: SshLab
    ws: Workspace
    cluster: dict[str, Any]
    up: Events
    up_seconds: float
    verbose_log: str
    event_stream: str
    command_lines: set[str]
    samples: int
    baseline: dict[str, set[str]]  # each host's own written files before the up


def host_writes(lab: SshLab, host: str) -> set[str]:
    """Paths the host has written (or deleted: overlay whiteouts) over the machine's files."""
    upper = lab.dir / "hosts" / host / "upper"
    return {str(p.relative_to(upper)) for p in upper.rglob("*") if p.is_file() or p.is_char_device()}


def lab_up(lab: SshLab, ws: Workspace, cluster: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return ws.run(["up", "--stack", LAB_STACK, "--yes", "--skip-preview", "--json", *args], check=False)


@pytest.fixture(scope="module")
def deployed(tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The lab stack deployed by `pulumi up` (engine verbose logs captured, process lists sampled)."""
    with SshLab(lab_hosts(), user=lab_cluster()["ssh"]["user"]) as lab:
        archive = "".join(f"{name} {version}\n" for name, version in LAB_ARCHIVE.items())
        for host in lab.ssh_hosts:
            lab.write(host, ARCHIVE_PATH, archive)
        baseline = {host: host_writes(lab, host) for host in lab.ssh_hosts}
        ws = Workspace(tmp_path_factory.mktemp("lab-engine"), tools, wrap=lab.runner_argv)
        cluster = lab_cluster()
        ws.init_stack(LAB_STACK, {"config": {"hakube:cluster": cluster}})
        ws.set_secret(LAB_STACK, "hakube:sshPrivateKey", lab.private_key)
        started = time.monotonic()
        with ProcessSampler(lab) as sampler:
            result = lab_up(lab, ws, cluster, "-v=9", "--logtostderr")
        seconds = time.monotonic() - started
        TIMES["lab up (-v=9)"] = seconds
        assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
        yield Deployment(lab, ws, cluster, parse_events(result.stdout), seconds, result.stderr, result.stdout,
                         sampler.seen, sampler.samples, baseline)


def store(lab: SshLab) -> dict[str, Any]:
    return json.loads(lab.read("cp1", STORE_PATH))


def vip_holders(lab: SshLab, cluster: dict[str, Any]) -> list[str]:
    vip = cluster["apiEndpoint"]["vip"]
    return [n["name"] for n in cluster["loadBalancer"]["nodes"] if vip in lab.addresses(n["name"])]


def readyz(lab: SshLab, cluster: dict[str, Any]) -> str:
    url = f"https://{cluster['apiEndpoint']['vip']}:{cluster['apiEndpoint']['port']}/readyz"
    return lab.runner_run(["curl", "--silent", "--insecure", "--max-time", "2", url], timeout=10).stdout


def start_poll(lab: SshLab, cluster: dict[str, Any], seconds: float) -> subprocess.Popen[str]:
    """netlab's client in the runner: a new TLS request to the VIP every 40 ms for `seconds`."""
    poll = lab.runner_popen([sys.executable, str(netlab.THIS_FILE), "poll", cluster["apiEndpoint"]["vip"],
                             str(cluster["apiEndpoint"]["port"]), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert poll.stdout is not None and poll.stdout.readline().startswith("ready")
    return poll


def poll_result(poll: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = poll.communicate(timeout=120)
    return json.loads(out.strip().splitlines()[-1])


def stamped_calls(lab: SshLab, host: str, tool: str) -> list[tuple[str, str]]:
    """(time, argv) of every call of a shim on the host, in order (its log: `<time> <tool> <args>`)."""
    path = f"/var/log/hakube-lab/{tool}.log"
    if not lab.exists(host, path):
        return []
    return [(stamp, args) for stamp, _, args in (line.split(" ", 2) for line in lab.read(host, path).splitlines())]


def shim_calls(lab: SshLab, host: str, tool: str) -> list[str]:
    return [args for _, args in stamped_calls(lab, host, tool)]


@lab_test
def test_pulumi_up_in_the_lab_creates_the_dry_runs_resources_and_the_vip_answers(deployed: Deployment) -> None:
    lab, cluster = deployed.lab, deployed.cluster
    resources, _ = dry_run(cluster, LAB_STACK)
    assert deployed.up.resources(ops=["create"]) == resources
    assert deployed.up.summary["result"] == "succeeded"
    # Real daemons on both LB nodes, with the files the program rendered; one holds the VIP.
    for lb in ("lb1", "lb2"):
        assert lab.run(lb, "systemctl is-active haproxy keepalived").stdout.split() == ["active", "active"]
        assert "advert_int 0.1" in lab.read(lb, "/etc/keepalived/keepalived.conf")
    # Both start as BACKUP with nopreempt: whichever keepalived came up first holds it.
    wait_until(lambda: len(vip_holders(lab, cluster)) == 1, 10, "one LB node alone to hold the VIP")
    assert readyz(lab, cluster) == "ok"
    # kubeadm init on the first node only; every other node joined with its own fresh credentials.
    cluster_store = store(lab)
    assert sorted(cluster_store["nodes"]) == ["cp1", "cp2", "cp3", "w1"]
    assert sorted(m["name"] for m in cluster_store["members"].values()) == ["cp1", "cp2", "cp3"]
    assert len(cluster_store["tokens"]) == 1 + 3  # init's own, then one per join
    assert len(cluster_store["certificateKeys"]) == 1 + 2  # init's upload, then one per control-plane join
    calls = {host: shim_calls(lab, host, "kubeadm") for host in ("cp1", "cp2", "cp3", "w1")}
    assert [c for c in calls["cp1"] if c.startswith("init --config")] == [
        "init --config /etc/kubernetes/kubeadm/init.yaml --upload-certs"]
    assert sum(c.startswith("token create") for c in calls["cp1"]) == 3
    assert sum(c.startswith("init phase upload-certs") for c in calls["cp1"]) == 2
    for host in ("cp2", "cp3", "w1"):
        assert [c.split()[0] for c in calls[host] if not c.startswith(("version", "certs"))] == ["join"], host
    # The outputs the next deployment reads back (components/previous.py), and the kubeconfig (secret).
    outputs = deployed.ws.outputs(LAB_STACK)
    assert (outputs["kubeadmInitNode"], outputs["firstControlPlane"]) == ("cp1", "cp1")
    assert outputs["kubeconfig"] == "[secret]"


def lab_secrets(deployed: Deployment) -> dict[str, str]:
    """Every secret the deployment made or used, by what it is."""
    cluster_store = store(deployed.lab)
    key_body = [line for line in deployed.lab.private_key.splitlines() if len(line) >= 40]
    found = {f"SSH private key line {i}": line for i, line in enumerate(key_body)}
    found |= {f"join token {i}": token for i, token in enumerate(cluster_store["tokens"])}
    found |= {f"certificate key {i}": key for i, key in enumerate(cluster_store["certificateKeys"])}
    found["kubeconfig credential"] = cluster_store["adminToken"]
    assert len(found) >= len(key_body) + 4 + 3 + 1
    return found


def leaks(secrets_by_name: dict[str, str], where: dict[str, str]) -> list[str]:
    return [f"{name} in {place}" for place, text in where.items() for name, value in secrets_by_name.items()
            if value in text]


@lab_test
def test_no_secret_is_in_plaintext_in_the_state_the_engine_logs_or_any_lab_process_list(
        deployed: Deployment) -> None:
    lab, ws = deployed.lab, deployed.ws
    secrets_by_name = lab_secrets(deployed)
    state_files = {str(p): p.read_text(errors="replace") for p in ws.state.rglob("*") if p.is_file()}
    host_logs = {f"{host}:{path}": lab.read(host, path) for host in lab.ssh_hosts
                 for path in lab.run(host, "ls /var/log/hakube-lab/*.log").stdout.split()}
    where = {
        "pulumi stack export": ws.export(LAB_STACK),
        **state_files,
        "the engine's -v=9 log": deployed.verbose_log,
        "the up's event stream": deployed.event_stream,
        "the lab's process list": "\n".join(deployed.command_lines),
        **host_logs,
    }
    assert leaks(secrets_by_name, where) == []
    # They are there, encrypted, and the checks above looked at real material.
    assert len(deployed.verbose_log) > 1_000_000 and deployed.samples > 100
    assert any("kubeadm join --config /run/hakube/join." in line for line in deployed.command_lines)
    assert any("sudo -n env" in line for line in deployed.command_lines)
    export = json.loads(ws.export(LAB_STACK))
    secret_props = [r["urn"].rsplit("::", 1)[1] for r in export["deployment"]["resources"]
                    if "ciphertext" in json.dumps(r.get("outputs", {}))]
    assert {"admin-kubeconfig", "cp2-credentials", "cp2-join", "w1-join"} <= set(secret_props)
    print(f"\nsecrets: {len(secrets_by_name)} values checked in {len(where)} places;"
          f" {deployed.samples} process-list samples, {len(deployed.command_lines)} distinct command lines")


@lab_test
def test_a_second_up_changes_nothing(deployed: Deployment) -> None:
    lab, ws = deployed.lab, deployed.ws
    calls_before = {host: len(shim_calls(lab, host, "kubeadm")) for host in lab.ssh_hosts}
    events, result, seconds = ws.preview(LAB_STACK, "--expect-no-changes")
    TIMES["lab preview, no changes"] = seconds
    assert result.returncode == 0, result.stdout[-3000:]
    assert {op for op, _, _ in events.steps} == {"same", "read"}
    again = lab_up(lab, ws, deployed.cluster, "--expect-no-changes")
    assert again.returncode == 0, again.stdout[-3000:]
    assert {op for op, _, _ in parse_events(again.stdout).steps} == {"same", "read"}
    assert {host: len(shim_calls(lab, host, "kubeadm")) for host in lab.ssh_hosts} == calls_before


@lab_test
def test_adding_a_worker_previews_as_creates_of_its_resources_only_then_joins_it(deployed: Deployment) -> None:
    lab, ws = deployed.lab, deployed.ws
    bigger = lab_cluster(workers=1 + EXTRA_WORKER)
    before, _ = dry_run(deployed.cluster, LAB_STACK)
    after, _ = dry_run(bigger, LAB_STACK)
    added = sorted(set(after) - set(before))
    assert added and set(before) <= set(after)
    ws.write_stack_config(LAB_STACK, bigger)
    events, result, _ = ws.preview(LAB_STACK)
    assert result.returncode == 0, result.stdout[-3000:]
    assert events.resources(ops=["create"]) == added
    assert events.resources(ops=["update", "replace", "delete", "create-replacement", "delete-replaced"]) == []
    up = lab_up(lab, ws, bigger)
    assert up.returncode == 0, up.stdout[-3000:]
    assert parse_events(up.stdout).resources(ops=["create"]) == added
    assert "w2" in store(lab)["nodes"]
    assert [c.split()[0] for c in shim_calls(lab, "w2", "kubeadm") if not c.startswith("version")] == ["join"]


@lab_test
def test_removing_the_worker_runs_its_delete_steps_in_order_on_the_hosts(deployed: Deployment) -> None:
    lab, ws = deployed.lab, deployed.ws
    ws.write_stack_config(LAB_STACK, deployed.cluster)
    up = lab_up(lab, ws, deployed.cluster)
    assert up.returncode == 0, up.stdout[-3000:]
    events = parse_events(up.stdout)
    removed = sorted(set(dry_run(lab_cluster(workers=2), LAB_STACK)[0]) - set(dry_run(deployed.cluster, LAB_STACK)[0]))
    assert events.resources(ops=["delete"]) == removed
    assert {op for op, _, _ in events.steps} == {"same", "read", "delete"}
    # On the first control-plane node: cordon, drain, delete the Node (node-remove.sh); then, on the
    # worker itself, kubeadm reset (node-reset.sh); then its kubeadm files go (file-set.sh REMOVE=true).
    on_first = [(t, call) for t, call in stamped_calls(lab, "cp1", "kubectl") if " w2" in f" {call}"]
    timed = sorted(on_first + stamped_calls(lab, "w2", "kubeadm"))
    removal = [call.split(" --")[0] for _, call in timed if call.startswith(("cordon", "drain", "delete", "reset"))]
    assert removal == ["cordon w2", "drain w2", "delete node w2", "reset -f"]
    assert "w2" not in store(lab)["nodes"]
    for path in ("/etc/kubernetes/kubelet.conf", "/etc/kubernetes/kubeadm/join.yaml", "/var/lib/kubelet/config.yaml",
                 "/var/lib/kubelet/hakube-config.yaml", "/etc/kubernetes/patches/kubeletconfiguration+merge.yaml"):
        assert not lab.exists("w2", path), path


@lab_test
def test_a_changed_advert_interval_rolls_both_keepalived_drops_while_the_vip_answers(deployed: Deployment) -> None:
    lab, ws = deployed.lab, deployed.ws
    slower = copy.deepcopy(deployed.cluster)
    slower["loadBalancer"]["vrrp"]["advertIntervalMs"] = 200
    ws.write_stack_config(LAB_STACK, slower)
    events, result, _ = ws.preview(LAB_STACK)
    assert result.returncode == 0, result.stdout[-3000:]
    assert events.resources(ops=["update"]) == sorted(
        [("command:remote:Command", f"{lb}-keepalived-apply") for lb in ("lb1", "lb2")]
        + [("hakube:index:FileDrop", f"{lb}-keepalived") for lb in ("lb1", "lb2")])
    assert {op for op, _, _ in events.steps} == {"same", "read", "update"}
    pids = {lb: lab.read(lb, "/run/keepalived.pid") for lb in ("lb1", "lb2")}
    window = 15.0
    poll = start_poll(lab, slower, window)
    started = time.monotonic()
    up = lab_up(lab, ws, slower)
    rolled = time.monotonic() - started
    result_poll = poll_result(poll)
    assert up.returncode == 0, up.stdout[-3000:]
    assert rolled < window, "the roll must lie inside the measured window"
    TIMES["lab advertIntervalMs roll"] = rolled
    print(f"\nadvertIntervalMs 100 -> 200 rolled in {rolled:.1f} s: {result_poll['failed']}/{result_poll['requests']}"
          f" requests to the VIP failed, longest gap {result_poll['longest_gap_ms']} ms")
    assert result_poll["failed"] <= 2 and result_poll["longest_gap_ms"] <= 1000
    for lb in ("lb1", "lb2"):
        assert "advert_int 0.2" in lab.read(lb, "/etc/keepalived/keepalived.conf")
        assert lab.read(lb, "/run/keepalived.pid") == pids[lb]  # reloaded (SIGHUP), not restarted
    deployed.cluster = slower


@lab_test
def test_keepalived_stopped_on_the_vip_holder_moves_the_vip_and_clients_stay_answered(deployed: Deployment) -> None:
    lab, cluster = deployed.lab, deployed.cluster
    wait_until(lambda: len(vip_holders(lab, cluster)) == 1, 10, "one LB node alone to hold the VIP")
    [holder] = vip_holders(lab, cluster)
    [other] = {"lb1", "lb2"} - {holder}
    poll = start_poll(lab, cluster, 3)
    time.sleep(0.5)
    lab.run(holder, f"kill -{signal.SIGTERM.value} \"$(cat /run/keepalived.pid)\"")
    wait_until(lambda: vip_holders(lab, cluster) == [other], 5, f"the VIP to move to {other}")
    moved = poll_result(poll)
    print(f"\nVIP {holder} -> {other} after pulumi up: {moved['failed']}/{moved['requests']} failed,"
          f" longest gap {moved['longest_gap_ms']} ms")
    assert moved["failed"] <= 2 and moved["longest_gap_ms"] <= 1000
    assert readyz(lab, cluster) == "ok"
    lab.run(holder, "systemctl start keepalived")  # back as the deployment left it ({other} keeps the VIP)


# What a destroyed host keeps (node preparation, which a later deployment reuses) besides the lab's own
# logs and unit records: packages and their holds, containerd's configuration, kernel drop-ins.
PREPARATION = {
    "etc/containerd/config.toml", "etc/modules-load.d/hakube-k8s.conf", "etc/sysctl.d/99-hakube-k8s.conf",
    "etc/sysctl.d/90-hakube-lb.conf", "var/lib/dpkg/status", "var/lib/hakube-lab/apt/holds",
    # lb-prepare.sh's script user
    "etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-",
    "etc/subuid", "etc/subgid", "etc/subuid-", "etc/subgid-",
    # haproxy.cfg as a whiteout: Debian's own file went with hakube's
    "etc/haproxy/haproxy.cfg",
}
LAB_OWN = ("var/log/hakube-lab/", "run/hakube-lab/units/", "var/lib/hakube-lab/enabled/",
           "var/lib/hakube-lab/apiserver/apiserver.log")


@lab_test
def test_destroy_leaves_the_lab_hosts_clean(deployed: Deployment) -> None:
    lab, ws = deployed.lab, deployed.ws
    events, seconds = ws.destroy(LAB_STACK)
    TIMES["lab destroy"] = seconds
    assert events.summary["result"] == "succeeded"
    assert json.loads(ws.export(LAB_STACK))["deployment"].get("resources") in (None, [])
    assert vip_holders(lab, deployed.cluster) == []
    for host in lab.ssh_hosts:
        left = {p for p in host_writes(lab, host) - deployed.baseline[host] if not p.startswith(LAB_OWN)}
        assert left <= PREPARATION, f"{host} keeps {sorted(left - PREPARATION)}"
        commands = lab.run(host, "ps -eo comm=").stdout.split()
        assert not {"haproxy", "keepalived"} & set(commands), host
        assert not lab.run(host, "pgrep -f fakecluster.py", check=False).stdout.strip(), f"an apiserver on {host}"
    # The daemons are disabled too: a reboot would not bring them back.
    for lb in ("lb1", "lb2"):
        assert lab.run(lb, "systemctl is-enabled haproxy keepalived", check=False).stdout.split() == [
            "disabled", "disabled"]
