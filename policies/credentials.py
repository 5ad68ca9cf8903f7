"""Credentials: SSH keys, bootstrap tokens, certificate keys and kubeconfigs are Pulumi secrets,
never plain inputs, argv or logs."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ._data import KUBEADM_PREFIX, Resource, dig, load_yaml_docs
from ._engine import MANDATORY, Policy, Scope, resource_policy
from .contract import BOOTSTRAP_TOKEN, CERTIFICATE_KEY, COMMAND, FILE_DROP, FILE_SET, K8S_PROVIDER

# A kubeadm bootstrap token and a certificate key, as words of a longer text (contract.py has their shapes).
_TOKEN = re.compile(rf"\b{BOOTSTRAP_TOKEN}\b")
_CERT_KEY = re.compile(rf"\b{CERTIFICATE_KEY}\b")
# `NAME=value` on a command line whose name says it is a credential; `$VAR` expansions are fine.
_SECRET_ASSIGNMENT = re.compile(r"\b([A-Z0-9_]*(?:TOKEN|CERT(?:IFICATE)?_KEY|PASSWORD|PRIVATE_KEY))="
                                r"(?!['\"]?\$)(['\"]?)([^\s'\"]+)")
# What every _SECRET_ASSIGNMENT match contains: checked first, since most commands hold none and a
# substring test is ~15x faster than the regex over a command's few KB of script.
_SECRET_NAME_ENDINGS = ("TOKEN=", "CERT_KEY=", "CERTIFICATE_KEY=", "PASSWORD=", "PRIVATE_KEY=")


def secret_assignments(text: str) -> list[tuple[str, str, str]]:
    """(name, quote, value) of each credential-named `NAME=value` in `text` (_SECRET_ASSIGNMENT)."""
    return _SECRET_ASSIGNMENT.findall(text) if any(e in text for e in _SECRET_NAME_ENDINGS) else []


def has_bootstrap_token(text: str) -> bool:
    """_TOKEN.search(text), tried only where a token's dot could be (~8x faster on a script)."""
    dot = text.find(".")
    while dot != -1:
        if dot >= 6 and _TOKEN.match(text, dot - 6):
            return True
        dot = text.find(".", dot + 1)
    return False


# Commands whose stdout carries a credential (the join token and keys, the admin kubeconfig).
_SECRET_STDOUT = re.compile(r".*-credentials|kubeconfig|.*-kubeconfig|encryption-key-.*")
# The join credentials; the key that copies etcd snapshots off the nodes (components/etcd.py); the
# encryption keys placed in the apiserver's files (components/apiserver.py).
_SECRET_STDIN = re.compile(r".*-join|.*-etcd-backup-key|.*-apiserver-files-apply")


def _stdin_secret_kind(name: str) -> str:
    if name.endswith("-etcd-backup-key"):
        return "the backup SSH key"
    return "the encryption keys" if name.endswith("-apiserver-files-apply") else "token and certificate key"


# Fields of kubeadm configs that carry credentials when they are filled in.
_KUBEADM_SECRET_FIELDS = (("certificateKey",), ("discovery", "bootstrapToken", "token"),
                          ("discovery", "tlsBootstrapToken"), ("controlPlane", "certificateKey"))


def secrets(resource: Resource) -> list[str]:
    """SSH keys, tokens, certificate keys and kubeconfigs are Pulumi secrets, never plain inputs."""
    problems: list[str] = []
    name, props = resource.name, resource.props
    if resource.type == COMMAND:
        if props.get("connection") is not None and "connection" not in resource.secrets:
            problems.append(f"{name}: connection (SSH private key) is not secret")
        if _SECRET_STDOUT.fullmatch(name):
            problems += _secret_output(resource, "stdout")
        if _SECRET_STDIN.fullmatch(name) and "stdin" not in resource.secrets:
            problems.append(f"{name}: stdin ({_stdin_secret_kind(name)}) is not secret")
        create = str(props.get("create") or "")
        problems += [f"{name}: create passes {var} on the command line (argv is visible to every local user)"
                     for var, _quote, _value in secret_assignments(create)]
        if has_bootstrap_token(create):
            problems.append(f"{name}: create carries a bootstrap token on the command line")
        if "stdin" not in resource.secrets and has_bootstrap_token(str(props.get("stdin") or "")):
            problems.append(f"{name}: stdin holds a bootstrap token but is not secret")
    if resource.type == K8S_PROVIDER and props.get("kubeconfig") and "kubeconfig" not in resource.secrets:
        problems.append(f"{name}: kubeconfig is not secret")
    if resource.type == FILE_DROP and "content" not in resource.secrets:
        problems += [f"{name}: {p}" for p in _kubeadm_credentials(props)]
    if resource.type == FILE_SET and "files" not in resource.secrets:
        problems += [f"{name}: {p}" for f in resource.placed for p in _kubeadm_credentials(f.props)]
    return problems


def _secret_output(resource: Resource, prop: str) -> list[str]:
    problems = []
    if prop not in resource.secrets:
        problems.append(f"{resource.name}: {prop} is not secret (set additional_secret_outputs=[{prop!r}]: "
                        f"Output.secret in the program does not encrypt it in the state)")
    logging = resource.props.get("logging")
    if logging in (None, "stdout", "stdoutAndStderr"):
        problems.append(f"{resource.name}: logging {logging or 'stdoutAndStderr (default)'} prints the {prop} "
                        f"secret to the update log")
    return problems


def _kubeadm_credentials(props: Mapping[str, Any]) -> Iterator[str]:
    path = str(props.get("path") or "")
    if not path.startswith(KUBEADM_PREFIX):
        return
    for doc in load_yaml_docs(props.get("content")):
        for field_path in _KUBEADM_SECRET_FIELDS:
            value = dig(doc, *field_path)
            if isinstance(value, str) and (_TOKEN.fullmatch(value) or _CERT_KEY.fullmatch(value)):
                yield f"{path} carries {'.'.join(field_path)} in plain text"
        for token in doc.get("bootstrapTokens") or []:
            if isinstance(token, Mapping) and token.get("token"):
                yield f"{path} carries bootstrapTokens[].token in plain text"


POLICIES: list[Policy] = [
    resource_policy("secrets", "SSH keys, bootstrap tokens, certificate keys and kubeconfigs are Pulumi secrets, "
                    "never plain inputs, argv or logs.", lambda r, _config: secrets(r), MANDATORY,
                    Scope((COMMAND, K8S_PROVIDER, FILE_DROP, FILE_SET))),
]
