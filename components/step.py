"""The one way hakube runs a host script over SSH (pulumi-command): a Step on a Host."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_command import remote

from configs.remote import Script, secret_stdin
from configs.scripts import script


@dataclass(frozen=True)
class Host:
    """A machine hakube reaches over SSH; `connection` carries the secret private key."""

    name: str
    address: str
    connection: remote.ConnectionArgs


def connect(name: str, address: str, user: str, port: int, private_key: pulumi.Output[str]) -> Host:
    return Host(name, address, remote.ConnectionArgs(host=address, port=port, user=user, private_key=private_key))


def digest(*parts: str) -> str:
    """Content hash used as a replace trigger: a step reruns exactly when what it applies changes."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Step:
    """What one Command runs on a host, as root.

    `secrets` reach the script as environment variables through stdin, never argv; the stdin is
    itself a Pulumi secret whenever any secret is given. `payload` follows them on stdin (a file's
    content). `then` runs in the same step once `script` succeeded; `delete` runs, in order, when the
    resource is destroyed. The step is replaced (run afresh) when a script's text or any of
    `triggers` (content hashes) changes; a change of an environment alone runs it again as an
    update. `secret_stdout` keeps what the script prints (credentials, a kubeconfig) encrypted in state.
    """

    script: Script
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    payload: pulumi.Input[str] = ""
    then: Script | None = None
    delete: tuple[Script, ...] = ()
    triggers: tuple[str, ...] = ()
    ignore_changes: tuple[str, ...] = ()
    secret_stdout: bool = False


def run(resource_name: str, host: Host, step: Step, opts: pulumi.ResourceOptions) -> remote.Command:
    """`step` as a Command on `host`."""
    stdin: pulumi.Input[str] | None = None
    if step.secrets:
        names = list(step.secrets)
        stdin = pulumi.Output.secret(
            pulumi.Output.all(*(step.secrets[n] for n in names), step.payload).apply(
                lambda values: secret_stdin(dict(zip(names, values[:-1], strict=True)), values[-1])
            )
        )
    elif step.payload != "":
        stdin = step.payload
    create = step.script.command(reads_secrets=bool(step.secrets))
    texts = [script(step.script.name)]
    if step.then is not None:
        create += " && " + step.then.command()
        texts.append(script(step.then.name))
    return remote.Command(
        resource_name,
        connection=host.connection,
        create=create,
        delete=" && ".join(s.command() for s in step.delete) or None,
        stdin=stdin,
        triggers=[digest(*texts), *step.triggers],
        # stdout may carry what a script prints for us to parse; never echo stdin/secrets to logs.
        logging=remote.Logging.STDERR,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            ignore_changes=list(step.ignore_changes),
            # Secret in state too, and visible as such to the policy pack (which sees no Output secrets).
            additional_secret_outputs=[*(["stdin"] if step.secrets else []),
                                       *(["stdout"] if step.secret_stdout else [])],
        )),
    )
