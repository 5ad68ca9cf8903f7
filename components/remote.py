"""The one way hakube runs a host script or drops a file over SSH (pulumi-command)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from components.base import Component
from configs.remote import command_line, file_set_stdin, secret_stdin
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


def run_script(
    resource_name: str,
    host: Host,
    script_name: str,
    *,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, pulumi.Input[str]] | None = None,
    payload: pulumi.Input[str] = "",
    delete_scripts: Sequence[str] = (),
    delete_env: Mapping[str, str] | None = None,
    triggers: Sequence[str] = (),
    ignore_changes: Sequence[str] = (),
    secret_stdout: bool = False,
    then: tuple[str, Mapping[str, str]] | None = None,
    opts: pulumi.ResourceOptions,
) -> remote.Command:
    """Run configs/scripts/<script_name> as root on `host`.

    `secrets` reach the script as environment variables through stdin, never argv; the stdin
    is itself a Pulumi secret whenever any secret is given. The step is replaced (run afresh) when
    the script's text or any of `triggers` (content hashes) changes; a change of `env` alone runs
    the script again as an update. `delete_scripts` run in order when the resource is destroyed.
    `secret_stdout` keeps what the script prints (credentials, a kubeconfig) encrypted in state.
    `then` (script name, env): a second script run in the same step once the first succeeded.
    """
    stdin: pulumi.Input[str] | None = None
    if secrets:
        names = list(secrets)
        stdin = pulumi.Output.secret(
            pulumi.Output.all(*(secrets[n] for n in names), payload).apply(
                lambda values: secret_stdin(dict(zip(names, values[:-1], strict=True)), values[-1])
            )
        )
    elif payload != "":
        stdin = payload
    delete = " && ".join(command_line(name, delete_env or env) for name in delete_scripts) or None
    create = command_line(script_name, env, reads_secrets=bool(secrets))
    scripts = [script(script_name)]
    if then is not None:
        create += " && " + command_line(*then)
        scripts.append(script(then[0]))
    return remote.Command(
        resource_name,
        connection=host.connection,
        create=create,
        delete=delete,
        stdin=stdin,
        triggers=[digest(*scripts), *triggers],
        # stdout may carry what a script prints for us to parse; never echo stdin/secrets to logs.
        logging=remote.Logging.STDERR,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            ignore_changes=list(ignore_changes),
            # Secret in state too, and visible as such to the policy pack (which sees no Output secrets).
            additional_secret_outputs=[*(["stdin"] if secrets else []), *(["stdout"] if secret_stdout else [])],
        )),
    )


# A placed file's step is never replaced: a replacement runs the old step's delete (which removes
# the file) after the new one placed it. A changed content or command runs the step again as an update.
PLACED_IN_PLACE = ["triggers"]


class FileDrop(Component):
    """One file placed on a host: checked by its daemon's checker, swapped atomically, reloaded.
    Deleted (destroy, or the host leaves the stack): `stop` runs, then the file is removed.

    The path and content are this component's own inputs so the dry run can write the file where
    the host would have it and the policy pack can read it.
    """

    def __init__(
        self,
        name: str,
        host: Host,
        path: str,
        content: str,
        *,
        check: str = "true",
        reload: str = "true",
        stop: str = "true",
        mode: str = "0644",
        write_once: bool = False,
        opts: pulumi.ResourceOptions,
    ) -> None:
        """`write_once`: placed when created, then left as it is (a later content change is ignored).
        `stop`: what stops the file's reader before its removal (e.g. `systemctl disable --now haproxy`)."""
        super().__init__("FileDrop", name,
            {"host": host.name, "path": path, "content": content, "check": check, "reload": reload, "mode": mode},
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=["content"] * write_once)),
        )
        self.command = run_script(
            f"{name}-apply", host, "config-drop.sh",
            env={"DEST": path, "CHECK_CMD": check, "RELOAD_CMD": reload, "MODE": mode},
            payload=content,
            delete_scripts=["config-drop.sh"], delete_env={"DEST": path, "ACTION": "remove", "STOP_CMD": stop},
            triggers=[digest(path, content, check, reload, mode)],
            ignore_changes=[*PLACED_IN_PLACE, *(["stdin"] if write_once else [])],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.finish(sha256=digest(content))


class FileSet(Component):
    """A node's files that no daemon checks or reloads (kubeadm config, patches, kubelet record),
    placed by one step: one SSH session a node instead of one a file (bench/scale.py). Deleted, the
    step removes them again.

    The files (path, content, mode) are this component's own inputs so the dry run can write each
    where the host would have it and the policy pack can read it.
    """

    def __init__(self, name: str, host: Host, files: Mapping[str, str], *, mode: str = "0600",
                 then: tuple[str, Mapping[str, str]] | None = None, manifest: str | None = None,
                 reload_units: Sequence[str] = (), secrets: Mapping[str, pulumi.Input[str]] | None = None,
                 keep_previous: bool = True, opts: pulumi.ResourceOptions) -> None:
        """`then` (script, env): run on the host right after the files are in place (run_script).
        `manifest`: the host's record of the set (file-set.sh MANIFEST): files dropped from the set are
        removed, and deleting this resource removes them all. `reload_units`: restarted (if running)
        whenever a file changed or went. `secrets`: NAME -> value put in place of each ${NAME} on the host
        (the files shown here keep the placeholders). `keep_previous`: False keeps no PATH.hakube-prev copy
        (a file with keys in it: a retired key must not stay behind)."""
        if secrets and manifest is None:
            # Its delete lists the files from stdin, which would start with the secret lines.
            raise ValueError(f"{name}: a file set with secrets needs a manifest")
        entries = [{"path": path, "content": content, "mode": mode} for path, content in sorted(files.items())]
        payload = file_set_stdin([(e["path"], mode, e["content"]) for e in entries])
        props: dict[str, object] = {"host": host.name, "files": entries}
        if secrets:
            props["secretNames"] = sorted(secrets)  # the placeholders the dry run shows as [secret]
        super().__init__("FileSet", name, props, opts)
        env = {name: value for name, value in (("MANIFEST", manifest), ("RELOAD_UNITS", " ".join(reload_units)),
                                               ("SECRET_NAMES", " ".join(sorted(secrets or {}))),
                                               ("KEEP_PREVIOUS", "" if keep_previous else "false")) if value}
        self.command = run_script(
            f"{name}-apply", host, "file-set.sh", env=env, secrets=secrets, payload=payload, then=then,
            # The delete reads the same stdin (the paths to remove) or, with MANIFEST, the set's record.
            delete_scripts=["file-set.sh"], delete_env={**env, "REMOVE": "true"},
            # Any file's change places the set again (unchanged files are left untouched); a changed secret
            # changes stdin, which runs it again as an update.
            triggers=[digest(payload)], ignore_changes=PLACED_IN_PLACE, opts=pulumi.ResourceOptions(parent=self),
        )
        self.finish(sha256=digest(payload))
