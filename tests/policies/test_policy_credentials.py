"""The secrets rule (policies/credentials.py): SSH keys, tokens, certificate keys and kubeconfigs
stay Pulumi secrets, off argv and out of logs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import _data, contract, credentials
from tests.policy_helpers import (
    SECRET,
    check_resource,
    graph_has,
    kubeadm_doc,
    rec,
    resource_violations,
    run_of,
)


@pytest.mark.parametrize(("suffix", "prop"), [("-credentials", "stdout"), ("-join", "stdin"), ("kubeconfig", "stdout")])
def test_program_credential_commands_are_secret(suffix: str, prop: str) -> None:
    run = graph_has("dev", lambda r: r.type == contract.COMMAND and r.name.endswith(suffix), f"*{suffix} Command")
    assert resource_violations("secrets", run) == []
    record = next(r for r in run.records if r.type == contract.COMMAND and r.name.endswith(suffix))
    record.additional_secret_outputs = [p for p in record.additional_secret_outputs if p != prop]
    assert any(f"{record.name}: {prop}" in m for _, m in resource_violations("secrets", run))


def test_ssh_connection_must_be_secret() -> None:
    run = run_of("dev")
    record = rec(run, "w1-prereqs")
    assert _data.is_secret(record.inputs["connection"]) and "connection" in record.additional_secret_outputs
    # As under the engine, the policy sees plain text: only additionalSecretOutputs says "secret".
    record.additional_secret_outputs = []
    assert resource_violations("secrets", run) == [("w1-prereqs", "w1-prereqs: connection (SSH private key) is "
                                                                  "not secret")]


def test_credentials_never_ride_on_the_command_line() -> None:
    run = run_of("edge")
    record = rec(run, "edge1-prereqs")
    record.inputs["create"] = "sudo -n env JOIN_TOKEN=abcdef.0123456789abcdef " + record.inputs["create"]
    assert [m for _, m in resource_violations("secrets", run)] == [
        "edge1-prereqs: create passes JOIN_TOKEN on the command line (argv is visible to every local user)",
        "edge1-prereqs: create carries a bootstrap token on the command line"]
    record.inputs["create"] = record.inputs["create"].replace("JOIN_TOKEN=abcdef.0123456789abcdef",
                                                              'JOIN_TOKEN="$(cat)" TOKEN_TTL=2h')
    assert resource_violations("secrets", run) == []
    record.inputs["create"] += " --token abcdef.0123456789abcdef"
    assert [m for _, m in resource_violations("secrets", run)] == [
        "edge1-prereqs: create carries a bootstrap token on the command line"]


def command_props() -> dict[str, Any]:
    """A real Command's inputs (w1-prereqs), its output kept out of the update log."""
    props = copy.deepcopy(rec(run_of("dev"), "w1-prereqs").inputs)
    props["logging"] = "stderr"
    return props


@pytest.mark.parametrize(("name", "prop"), [("cp1-credentials", "stdout"), ("kubeconfig", "stdout"),
                                            ("cp2-join", "stdin")])
def test_credential_commands_mark_their_secret_output(name: str, prop: str) -> None:
    props = command_props()
    if prop == "stdin":
        props["stdin"] = {**SECRET, "value": "TOKEN=abcdef.0123456789abcdef\n"}
    assert check_resource("secrets", contract.COMMAND, props, name=name, secret_outputs=("connection", prop)) == []
    found = check_resource("secrets", contract.COMMAND, {**props, prop: _data.reveal(props.get(prop))}, name=name,
                           secret_outputs=("connection",))
    assert found and all(f": {prop}" in m for m in found)


def test_credential_stdout_must_not_be_logged() -> None:
    props = {**command_props(), "logging": "stdoutAndStderr"}
    found = check_resource("secrets", contract.COMMAND, props, name="cp1-credentials",
                           secret_outputs=("connection", "stdout"))
    assert len(found) == 1 and "prints the stdout secret" in found[0]


def test_kubeadm_config_files_carry_no_plain_credentials() -> None:
    doc = kubeadm_doc("JoinConfiguration")
    props = {"host": "cp2", "path": "/etc/kubernetes/kubeadm/join.yaml", "content": yaml.safe_dump(doc)}
    assert check_resource("secrets", contract.FILE_DROP, props) == []
    doc["discovery"]["bootstrapToken"]["token"] = "abcdef.0123456789abcdef"
    doc["controlPlane"]["certificateKey"] = "0" * 64
    found = check_resource("secrets", contract.FILE_DROP, {**props, "content": yaml.safe_dump(doc)})
    assert len(found) == 2 and all("in plain text" in m for m in found)


def test_kubernetes_provider_kubeconfig_must_be_secret() -> None:
    kubeconfig, provider = "apiVersion: v1\nkind: Config\n", contract.K8S_PROVIDER
    assert check_resource("secrets", provider, {"kubeconfig": {**SECRET, "value": kubeconfig}}) == []
    assert check_resource("secrets", provider, {"kubeconfig": kubeconfig}, secret_outputs=("kubeconfig",)) == []
    assert check_resource("secrets", provider, {"kubeconfig": kubeconfig}) == ["x: kubeconfig is not secret"]


_SCRIPTISH = st.text(alphabet="abcz019._=$'\" \nTOKENCRTIFICA_KYPSWD-", max_size=80)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_SCRIPTISH, st.sampled_from(["JOIN_TOKEN=", "abcdef.0123456789abcdef", "CERT_KEY='",
                                                       "PASSWORD=$", " x9.", "PRIVATE_KEY=k"])), max_size=8))
def test_secret_scans_find_what_the_plain_regexes_find(parts: list[str]) -> None:
    text = "".join(parts)
    assert credentials.has_bootstrap_token(text) == bool(credentials._TOKEN.search(text))
    assert credentials.secret_assignments(text) == credentials._SECRET_ASSIGNMENT.findall(text)
