"""Secrets at rest and the audit log in the plan: the stack section and its path-named refusals,
the rotation rule against the deployed key order, the rendered files and apiserver flags, the
steps and their order, that no key value reaches a plan file, and the policy rule. The host
scripts run under bash on a scratch root; the real apiserver reads these files in
tests/lab/test_encryption_real_netns.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from configs import apiserver, kubeadm
from dryrun.mockrun import MockRun, run_program
from dryrun.output import write_tree
from dryrun.plan import resource_table
from lab.hostsim import ScratchHost
from policies import contract, pack
from tests.mockgraph import closure_of, cluster_copy, graph, stack_graph
from tests.policy_helpers import POLICY, resource_violations, stack_violations
from topology import TopologyError, load_cluster
from topology import encryption as enc

KEY1 = base64.b64encode(bytes(range(32))).decode()
KEY2 = base64.b64encode(bytes(range(32, 64))).decode()
CPS = ("cp1", "cp2", "cp3")


def _cluster(**encryption: Any) -> dict[str, Any]:
    cluster = cluster_copy("dev")
    cluster["encryption"] = encryption
    return cluster


def _refused(cluster: dict[str, Any]) -> list[str]:
    with pytest.raises(TopologyError) as err:
        load_cluster(cluster)
    return err.value.lines


def _deployed(*names: str) -> list[dict[str, str]]:
    return [{"name": n, "fingerprint": "" if n == "identity" else enc.GENERATED} for n in names]


# -- the stack section ----------------------------------------------------------------------------


def test_defaults_encrypt_with_one_generated_key_and_audit_at_metadata() -> None:
    cluster = load_cluster(cluster_copy("dev"))
    assert (cluster.encryption.enabled, cluster.encryption.keys) == (True, ["key1"])
    assert enc.providers(cluster) == ["key1"] and enc.keys_needed(cluster) == ["key1"]
    audit = cluster.audit
    assert (audit.enabled, audit.path, audit.max_size_mb, audit.max_backups, audit.max_age_days) == \
        (True, "/var/log/kubernetes/audit/audit.log", 100, 10, 30)


@pytest.mark.parametrize(("encryption", "expected"), [
    ({"keys": ["a", "a"]}, "hakube:cluster.encryption.keys: names a key twice"),
    ({"keys": ["a", "identity"]}, "hakube:cluster.encryption.keys: 'identity' may only come first"),
    ({"keys": []}, "hakube:cluster.encryption.keys: List should have at least 1 item"),
    ({"keys": ["a", "b", "c", "d", "e"]}, "hakube:cluster.encryption.keys: List should have at most 4 items"),
    ({"keys": ["Key_1"]}, "hakube:cluster.encryption.keys[0]: 'Key_1' is not a DNS label"),
    ({"provider": "aescbc"}, "hakube:cluster.encryption.provider:"),
])
def test_bad_encryption_settings_are_refused_by_path(encryption: dict[str, Any], expected: str) -> None:
    lines = _refused(_cluster(**encryption))
    assert any(line.startswith(expected) for line in lines), lines


@pytest.mark.parametrize(("audit", "expected"), [
    ({"path": "/etc/audit.log"}, "hakube:cluster.audit.path: '/etc/audit.log' is not a .log file under /var/log/"),
    ({"path": "/var/log/../etc/x.log"}, "hakube:cluster.audit.path:"),
    ({"maxSizeMb": 0}, "hakube:cluster.audit.maxSizeMb:"),
    ({"maxBackups": 1001}, "hakube:cluster.audit.maxBackups:"),
])
def test_bad_audit_settings_are_refused_by_path(audit: dict[str, Any], expected: str) -> None:
    cluster = cluster_copy("dev")
    cluster["audit"] = audit
    lines = _refused(cluster)
    assert any(line.startswith(expected) for line in lines), lines


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode(), "", "  "])
def test_a_given_key_that_is_no_32_byte_base64_is_refused_without_quoting_it(value: str) -> None:
    problems = enc.check_given_keys({"key1": value})
    assert len(problems) == 1 and problems[0].startswith("hakube:encryptionKeys.key1: ")
    assert value.strip() == "" or value not in problems[0]
    assert enc.check_given_keys({"key1": KEY1}) == []
    assert enc.check_given_keys({"identity": KEY1}) == [
        "hakube:encryptionKeys.identity: identity stores plain text and takes no key"]


# -- rotation: one safe step per `pulumi up` --------------------------------------------------------------


@pytest.mark.parametrize(("before", "after"), [
    (None, ["key1"]),                              # a new cluster
    (["key1"], ["key1"]),                          # nothing changes
    (["key1"], ["key1", "key2"]),                  # 1. add
    (["key1", "key2"], ["key2", "key1"]),          # 2. promote (every Secret rewritten)
    (["key2", "key1"], ["key2"]),                  # 3. retire
    (["identity"], ["identity", "key1"]),          # encryption turned on for an existing cluster: add ...
    (["identity", "key1"], ["key1", "identity"]),  # ... promote ...
    (["key1", "identity"], ["key1"]),              # ... and identity stays readable anyway
    (["key1"], ["identity", "key1"]),              # turned off: plain text first, Secrets rewritten ...
    (["identity", "key1"], ["identity"]),          # ... then the key goes
])
def test_safe_steps_are_accepted(before: list[str] | None, after: list[str]) -> None:
    assert enc.check_rotation(None if before is None else _deployed(*before), _deployed(*after)) == []


@pytest.mark.parametrize(("before", "after", "expected"), [
    (["key1"], ["key2"], "key2: a new key cannot be the write key at once"),
    (["key1"], ["key2", "key1"], "key2: a new key cannot be the write key at once"),
    (["identity"], ["key1"], "first add it after 'identity'"),
    (["key1", "key2"], ["key2"], "key1: a key cannot be dropped while the write key changes"),
    (["key1", "key2"], ["key2"], "key1: a key cannot be dropped while the write key changes"),
    (["key2", "key1"], ["key1"], "key2: a key cannot be dropped while the write key changes"),
    (["key1"], ["identity"], "key1: a key cannot be dropped while the write key changes"),
])
def test_unsafe_jumps_are_refused_with_the_way_round(before: list[str], after: list[str], expected: str) -> None:
    problems = enc.check_rotation(_deployed(*before), _deployed(*after))
    assert any(expected in p for p in problems), problems


def test_a_changed_value_under_the_same_name_is_refused() -> None:
    cluster = load_cluster(cluster_copy("dev"))
    deployed = enc.deployed_keys(cluster, {"key1": KEY1})
    assert deployed == [{"name": "key1", "fingerprint": enc.fingerprint(KEY1)}]
    assert KEY1 not in json.dumps(deployed)
    assert enc.check_rotation(deployed, enc.deployed_keys(cluster, {"key1": KEY1})) == []
    for new in ({"key1": KEY2}, {}):  # another value, or generated instead of given
        problems = enc.check_rotation(deployed, enc.deployed_keys(cluster, new))
        assert problems and "key1: its value changed" in problems[0]


def test_previous_keys_of_a_deployment_made_before_encryption_is_plain_text() -> None:
    assert enc.previous_keys({}) is None
    assert enc.previous_keys({"kubernetesVersion": "1.37.2"}) == [{"name": "identity", "fingerprint": ""}]
    assert enc.previous_keys({"encryptionKeys": _deployed("key1")}) == _deployed("key1")
    assert enc.check_rotation("junk", _deployed("key1")) == [
        "the deployed encryptionKeys output is unreadable; cannot check the key change"]


def _run(cluster: dict[str, Any], previous: dict[str, Any] | None = None, keys: dict[str, str] | None = None,
         sink: MockRun | None = None) -> MockRun:
    extra = {"hakube:encryptionKeys": json.dumps(keys)} if keys is not None else None
    return run_program(cluster, "dev", extra_config=extra, previous=previous, sink=sink)


def test_an_unsafe_rotation_is_refused_before_any_resource_is_registered() -> None:
    sink = MockRun()
    deployed = {"kubernetesVersion": "1.37.2", "encryptionKeys": _deployed("key1")}
    with pytest.raises(Exception, match=r"hakube:cluster\.encryption\.keys: key2: a new key cannot be the write key"):
        _run(_cluster(keys=["key2", "key1"]), deployed, sink=sink)
    assert [r.name for r in sink.records] == []


def test_a_bad_given_key_is_refused_before_any_resource_is_registered() -> None:
    sink = MockRun()
    with pytest.raises(Exception, match=r"hakube:encryptionKeys\.key1: decodes to 5 bytes") as err:
        _run(cluster_copy("dev"), keys={"key1": base64.b64encode(b"12345").decode()}, sink=sink)
    assert "MTIzNDU" not in str(err.value)
    assert [r.name for r in sink.records] == []


# -- what lands on the nodes ------------------------------------------------------------------------------


def test_the_encryption_config_lists_the_write_key_first_and_identity_last() -> None:
    config = apiserver.encryption_config(load_cluster(_cluster(keys=["key2", "key1"])))
    assert (config["apiVersion"], config["kind"]) == ("apiserver.config.k8s.io/v1", "EncryptionConfiguration")
    (group,) = config["resources"]
    assert group["resources"] == ["secrets"]
    assert group["providers"] == [
        {"secretbox": {"keys": [{"name": "key2", "secret": "${HAKUBE_ENCRYPTION_KEY_KEY2}"},
                                {"name": "key1", "secret": "${HAKUBE_ENCRYPTION_KEY_KEY1}"}]}},
        {"identity": {}}]
    plain_first = apiserver.encryption_config(load_cluster(_cluster(keys=["identity", "key1"])))
    assert [next(iter(p)) for p in plain_first["resources"][0]["providers"]] == ["identity", "secretbox"]
    off = apiserver.encryption_config(load_cluster(_cluster(enabled=False)))
    assert off["resources"][0]["providers"] == [{"identity": {}}]


def test_the_audit_policy_skips_probes_and_discovery_and_never_logs_bodies() -> None:
    policy = apiserver.audit_policy(load_cluster(cluster_copy("dev")))
    assert policy["omitStages"] == ["RequestReceived"]
    levels = [rule["level"] for rule in policy["rules"]]
    assert levels == ["None", "Metadata", "Metadata"]  # nothing at Request or RequestResponse
    unaudited = set(policy["rules"][0]["nonResourceURLs"])
    assert {"/healthz*", "/livez*", "/readyz*", "/api", "/apis/*", "/version"} <= unaudited
    sensitive = {(g["group"], r) for g in policy["rules"][1]["resources"] for r in g["resources"]}
    assert {("", "secrets"), ("", "configmaps"), ("authentication.k8s.io", "tokenreviews")} <= sensitive
    cluster = cluster_copy("dev")
    cluster["audit"] = {"enabled": False}
    assert apiserver.audit_policy(load_cluster(cluster))["rules"] == [{"level": "None"}]


def test_init_config_points_the_apiserver_at_both_files_and_mounts_their_directories() -> None:
    cluster = cluster_copy("dev")
    cluster["audit"] = {"path": "/var/log/k8s-audit/api.log", "maxSizeMb": 50, "maxBackups": 3, "maxAgeDays": 7}
    docs = list(yaml.safe_load_all(kubeadm.init_config(load_cluster(cluster))))
    api = next(d for d in docs if d["kind"] == "ClusterConfiguration")["apiServer"]
    args = {a["name"]: a["value"] for a in api["extraArgs"]}
    assert args["encryption-provider-config"] == apiserver.ENCRYPTION_CONFIG_PATH
    assert (args["audit-policy-file"], args["audit-log-path"]) == (apiserver.AUDIT_POLICY_PATH,
                                                                   "/var/log/k8s-audit/api.log")
    assert (args["audit-log-maxsize"], args["audit-log-maxbackup"], args["audit-log-maxage"]) == ("50", "3", "7")
    mounts = {v["hostPath"]: (v["mountPath"], v["readOnly"]) for v in api["extraVolumes"]}
    assert mounts == {"/etc/kubernetes/hakube": ("/etc/kubernetes/hakube", True),
                      "/var/log/k8s-audit": ("/var/log/k8s-audit", False)}


def test_the_pack_reads_the_component_the_program_declares() -> None:
    assert contract.APISERVER_FILES == "hakube:index:ApiserverFiles"
    assert stack_graph("dev").by_name["apiserver-files"]["type"] == contract.APISERVER_FILES


# -- the steps -----------------------------------------------------------------------------------------


def test_every_control_plane_node_gets_the_files_before_kubeadm_one_restart_at_a_time() -> None:
    g = stack_graph("dev")
    for i, cp in enumerate(CPS):
        step = g.by_name[f"{cp}-apiserver-files-apply"]
        create = step["inputs"]["create"]
        assert "KEEP_PREVIOUS=false" in create and "SECRET_NAMES=HAKUBE_ENCRYPTION_KEY_KEY1" in create
        assert "apiserver-restart" in create and step["inputs"]["stdin"] == "[secret]"
        kubeadm_step = "kubeadm-init" if cp == "cp1" else f"{cp}-join"
        assert f"{cp}-apiserver-files-apply" in closure_of(g, kubeadm_step)
        if i:
            assert f"{CPS[i - 1]}-apiserver-files-apply" in closure_of(g, f"{cp}-apiserver-files-apply")
    files = {f["path"] for f in g.by_name["cp2-apiserver-files"]["inputs"]["files"]}
    assert files == {apiserver.ENCRYPTION_CONFIG_PATH, apiserver.AUDIT_POLICY_PATH}


def test_a_named_key_without_a_value_is_generated_once_and_never_changed() -> None:
    g = graph(_cluster(keys=["key2", "key1"]))
    for name in ("key1", "key2"):
        step = g.by_name[f"encryption-key-{name}"]
        assert set(step["ignoreChanges"]) >= {"connection", "create", "triggers"}
        assert step["parent"] == "apiserver-files"
    given = _run(_cluster(keys=["key1"]), keys={"key1": KEY1})
    assert not [r for r in resource_table(given) if r["name"].startswith("encryption-key-")]


def test_the_rewrite_runs_after_every_node_and_is_keyed_on_the_write_key() -> None:
    first = graph(_cluster(keys=["key1", "key2"])).by_name["secrets-rewrite"]
    promoted = graph(_cluster(keys=["key2", "key1"])).by_name["secrets-rewrite"]
    assert "key1" in first["inputs"]["triggers"] and "key2" in promoted["inputs"]["triggers"]
    assert first["inputs"]["triggers"] != promoted["inputs"]["triggers"]  # replaced: runs again
    g = stack_graph("dev")
    assert {f"{cp}-apiserver-files-apply" for cp in CPS} | {"cp3-membership"} <= closure_of(g, "secrets-rewrite")


def test_no_key_value_reaches_a_plan_file(tmp_path: Path) -> None:
    run = _run(_cluster(keys=["key1", "key2"]), keys={"key1": KEY1, "key2": KEY2})
    write_tree(tmp_path, run, resource_table(run), "dev")
    texts = [p.read_text() for p in tmp_path.rglob("*") if p.is_file()]
    assert texts and not any(KEY1 in t or KEY2 in t for t in texts)
    placed = (tmp_path / "hosts/cp1/etc/kubernetes/hakube/encryption-config.yaml").read_text()
    assert 'secret: "[secret]"' in placed and "${" not in placed  # as the node holds it, key hidden
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["outputs"]["encryptionKeys"] == [{"name": "key1", "fingerprint": enc.fingerprint(KEY1)},
                                                 {"name": "key2", "fingerprint": enc.fingerprint(KEY2)}]


# -- the policy rule --------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "edge", "prod"])
def test_committed_stacks_encrypt_at_rest(stack: str) -> None:
    assert stack_violations("encryption-at-rest", stack_graph(stack).run) == []


def test_plain_text_is_a_violation_advisory_on_edge_only() -> None:
    assert stack_violations("encryption-at-rest", graph(_cluster(enabled=False)).run) == [
        ("apiserver-files", "apiserver-files: encryption.enabled is false: Secrets are stored in etcd in plain text")]
    found = stack_violations("encryption-at-rest", graph(_cluster(keys=["identity", "key1"])).run)
    assert [name for name, _ in found] == list(CPS)
    assert all("written with the identity provider" in message for _, message in found)
    policy = POLICY["encryption-at-rest"]
    assert pack.enforcement_level(policy, pack.stack_config("edge")) == pack.ADVISORY
    assert pack.enforcement_level(policy, pack.stack_config("dev")) == pack.MANDATORY


def test_the_rule_reads_each_nodes_file_and_the_apiserver_flag() -> None:
    g = graph(cluster_copy("dev"))
    record = g.record("cp2-apiserver-files")
    record.inputs["files"] = [f for f in record.inputs["files"] if f["path"] != apiserver.ENCRYPTION_CONFIG_PATH]
    init = g.record("cp1-kubeadm-init-config")
    init.inputs["content"] = init.inputs["content"].replace("encryption-provider-config", "x-disabled")
    assert stack_violations("encryption-at-rest", g.run) == [
        ("apiserver-files", "apiserver-files: kube-apiserver is not started with"
                            " --encryption-provider-config=/etc/kubernetes/hakube/encryption-config.yaml"),
        ("cp2", "cp2: no EncryptionConfiguration for secrets (/etc/kubernetes/hakube/encryption-config.yaml)"),
    ]


def test_the_secrets_rule_requires_the_keys_secret() -> None:
    g = graph(cluster_copy("dev"))
    assert resource_violations("secrets", g.run) == []
    for name, prop in (("cp1-apiserver-files-apply", "stdin"), ("encryption-key-key1", "stdout")):
        record = g.record(name)
        record.additional_secret_outputs = [p for p in record.additional_secret_outputs if p != prop]
    found = resource_violations("secrets", g.run)
    step = "cp1-apiserver-files-apply"
    assert (step, f"{step}: stdin (the encryption keys) is not secret") in found
    assert any(name == "encryption-key-key1" and "stdout" in message for name, message in found), found


# -- the host scripts --------------------------------------------------------------------------------------


def test_encryption_key_prints_32_random_bytes(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    first, second = (host.run("encryption-key.sh").stdout.strip() for _ in range(2))
    assert len(base64.b64decode(first, validate=True)) == 32 and first != second


def _restart_host(tmp_path: Path) -> tuple[ScratchHost, dict[str, str]]:
    """A scratch node whose `curl` stands in for kubelet + kube-apiserver: the apiserver answers
    (livez and readyz) exactly while its manifest is in the manifests directory."""
    host = ScratchHost(tmp_path)
    manifest = host.root / "etc/kubernetes/manifests/kube-apiserver.yaml"
    host.shim("curl", f'[[ -f "{manifest}" ]]')
    cluster = load_cluster(cluster_copy("dev"))
    for path, content in apiserver.node_files(cluster).items():
        (host.root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (host.root / path.lstrip("/")).write_text(content)
    return host, {**apiserver.restart_env(cluster), "POLL_S": "0.05"}


def _manifest(env: dict[str, str]) -> str:
    """A kube-apiserver manifest's command as kubeadm writes it, with hakube's flags."""
    return "    - kube-apiserver\n" + "".join(f"    - --{flag}\n" for flag in env["REQUIRED_FLAGS"].split())


def _livez_calls(host: ScratchHost) -> int:
    return sum(1 for call in host.calls("curl") if call[-1].endswith("/livez"))


def test_apiserver_restart_only_when_its_files_changed(tmp_path: Path) -> None:
    host, env = _restart_host(tmp_path)
    record = host.root / apiserver.STARTED_WITH_PATH.lstrip("/")
    # Before kubeadm: no manifest, nothing to restart; the files' digest is recorded.
    first = host.run("apiserver-restart.sh", env)
    assert first.returncode == 0 and "kubeadm starts it with these files" in first.stderr and record.exists()
    manifest = host.root / "etc/kubernetes/manifests/kube-apiserver.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(_manifest(env))
    again = host.run("apiserver-restart.sh", env)
    assert again.returncode == 0 and "nothing to restart" in again.stderr and _livez_calls(host) == 0
    # A changed file: the manifest leaves (kubelet stops the pod), comes back once it stopped answering.
    config = host.root / apiserver.ENCRYPTION_CONFIG_PATH.lstrip("/")
    config.write_text(config.read_text() + "# changed\n")
    restarted = host.run("apiserver-restart.sh", env)
    assert restarted.returncode == 0, restarted.stderr
    assert "restarted and ready" in restarted.stderr and manifest.read_text() == _manifest(env)
    assert _livez_calls(host) >= 1 and host.calls("curl")[-1][-1].endswith("/readyz")
    host.clear_calls()
    assert "nothing to restart" in host.run("apiserver-restart.sh", env).stderr and host.calls("curl") == []


def test_apiserver_restart_is_bounded_and_puts_a_parked_manifest_back(tmp_path: Path) -> None:
    host, env = _restart_host(tmp_path)
    host.shim("curl", "exit 0")  # an apiserver that never stops
    manifest = host.root / "etc/kubernetes/manifests/kube-apiserver.yaml"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(_manifest(env))
    stuck = host.run("apiserver-restart.sh", {**env, "STOP_TIMEOUT": "1"}, timeout=30)
    assert stuck.returncode == 1 and "timed out after 1s waiting until kubelet stopped kube-apiserver" in stuck.stderr
    assert not manifest.exists()  # parked; no record, so the next run restarts again
    assert not (host.root / apiserver.STARTED_WITH_PATH.lstrip("/")).exists()
    host.shim("curl", f'[[ -f "{manifest}" ]]')
    retried = host.run("apiserver-restart.sh", env)
    assert retried.returncode == 0 and "put back the kube-apiserver manifest" in retried.stderr
    assert manifest.exists()


def test_secrets_rewrite_retries_a_conflict_then_gives_up(tmp_path: Path) -> None:
    host = ScratchHost(tmp_path)
    counter = tmp_path / "replaces"
    # `replace` conflicts twice, then succeeds; `get` prints the objects (json) or the listing.
    host.shim("kubectl", f'''if [[ "$1" == replace ]]; then
  n=$(($(cat "{counter}" 2>/dev/null || echo 0) + 1)); echo "$n" >"{counter}"
  cat >/dev/null; ((n > 2))
elif [[ " $* " == *" -o json "* ]]; then echo '{{"kind":"List","items":[]}}'
else printf 'default s1\\nkube-system s2\\n'; fi''')
    env = {"WRITE_KEY": "key2", "INTERVAL": "0"}
    done = host.run("secrets-rewrite.sh", env)
    assert done.returncode == 0, done.stderr
    assert "rewrote all 2 secrets with key2" in done.stderr and done.stdout == ""
    assert counter.read_text().strip() == "3"
    counter.write_text("-10")
    failed = host.run("secrets-rewrite.sh", {**env, "ATTEMPTS": "3"})
    assert failed.returncode == 1 and "could not rewrite every secrets after 3 passes" in failed.stderr
    assert counter.read_text().strip() == "-7"


def test_the_key_set_keeps_no_previous_copy_and_never_prints_a_key(tmp_path: Path) -> None:
    from configs.remote import file_set_stdin

    host = ScratchHost(tmp_path)
    path = apiserver.ENCRYPTION_CONFIG_PATH
    placed = host.root / path.lstrip("/")
    stdin = file_set_stdin([(path, "0600", "secret: ${HAKUBE_ENCRYPTION_KEY_KEY1}\n")])
    for value in (KEY1, KEY2):
        env = {"SECRET_NAMES": "HAKUBE_ENCRYPTION_KEY_KEY1", "HAKUBE_ENCRYPTION_KEY_KEY1": value,
               "KEEP_PREVIOUS": "false", "MANIFEST": apiserver.MANIFEST}
        run = host.run("file-set.sh", env, stdin)
        assert run.returncode == 0, run.stderr
        assert value not in run.stdout + run.stderr
    assert placed.read_text() == f"secret: {KEY2}\n"
    assert oct(placed.stat().st_mode & 0o777) == "0o600"
    assert not list(placed.parent.glob("*.hakube-prev"))  # KEY1 is gone from the node
    kept = host.run("file-set.sh", {**env, "KEEP_PREVIOUS": "true", "HAKUBE_ENCRYPTION_KEY_KEY1": KEY1}, stdin)
    assert kept.returncode == 0 and (placed.parent / (placed.name + ".hakube-prev")).exists()  # the default


def test_apiserver_restart_refuses_a_manifest_without_hakubes_flags(tmp_path: Path) -> None:
    host, env = _restart_host(tmp_path)
    manifest = host.root / "etc/kubernetes/manifests/kube-apiserver.yaml"
    manifest.parent.mkdir(parents=True)
    flags = env["REQUIRED_FLAGS"].split()
    manifest.write_text("    - kube-apiserver\n" + "".join(f"    - --{flag}\n" for flag in flags[1:]))
    refused = host.run("apiserver-restart.sh", env)
    assert refused.returncode == 1 and f"lacks --{flags[0]}" in refused.stderr and "kubeadm-config" in refused.stderr
    assert host.calls("curl") == [] and manifest.exists()  # nothing restarted, nothing recorded
    assert not (host.root / apiserver.STARTED_WITH_PATH.lstrip("/")).exists()


def test_only_the_flags_whose_files_do_something_are_required() -> None:
    def required(**changes: Any) -> list[str]:
        cluster = cluster_copy("dev")
        cluster.update(changes)
        return [flag.split("=")[0] for flag in apiserver.restart_env(load_cluster(cluster))["REQUIRED_FLAGS"].split()]

    assert required() == ["encryption-provider-config", "audit-policy-file"]
    assert required(encryption={"keys": ["identity", "key1"]}) == ["encryption-provider-config", "audit-policy-file"]
    assert required(encryption={"enabled": False}, audit={"enabled": False}) == []
