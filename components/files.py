"""Files placed on a host over SSH: one daemon configuration (FileDrop), or a node's set (FileSet)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from components.base import Component
from components.step import Host, Step, digest, run
from configs.remote import ConfigDrop, Script, file_set_env, file_set_stdin

# A placed file's step is never replaced: a replacement runs the old step's delete (which removes
# the file) after the new one placed it. A changed content or command runs the step again as an update.
PLACED_IN_PLACE = ("triggers",)


class FileDrop(Component):
    """One file placed on a host: checked by its daemon's checker, swapped atomically, reloaded.
    Deleted (destroy, or the host leaves the stack): `drop.stop` runs, then the file is removed.

    The path and content are this component's own inputs so the dry run can write the file where
    the host would have it and the policy pack can read it.
    """

    def __init__(self, name: str, host: Host, drop: ConfigDrop, content: str, *, write_once: bool = False,
                 opts: pulumi.ResourceOptions) -> None:
        """`write_once`: placed when created, then left as it is (a later content change is ignored)."""
        super().__init__("FileDrop", name,
            {"host": host.name, "path": drop.path, "content": content, "check": drop.check, "reload": drop.reload,
             "mode": drop.mode},
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(ignore_changes=["content"] * write_once)),
        )
        step = Step(drop.apply(), payload=content, delete=(drop.removal(),),
                    triggers=(digest(drop.path, content, drop.check, drop.reload, drop.mode),),
                    ignore_changes=(*PLACED_IN_PLACE, *(["stdin"] if write_once else [])))
        self.command = run(f"{name}-apply", host, step, pulumi.ResourceOptions(parent=self))
        self.finish(sha256=digest(content))


class FileSet(Component):
    """A node's files that no daemon checks or reloads (kubeadm config, patches, kubelet record),
    placed by one step: one SSH session a node instead of one a file (bench/scale.py). Deleted, the
    step removes them again.

    The files (path, content, mode) are this component's own inputs so the dry run can write each
    where the host would have it and the policy pack can read it.
    """

    def __init__(self, name: str, host: Host, files: Mapping[str, str], *, mode: str = "0600",
                 then: Script | None = None, manifest: str | None = None,
                 reload_units: Sequence[str] = (), secrets: Mapping[str, pulumi.Input[str]] | None = None,
                 keep_previous: bool = True, opts: pulumi.ResourceOptions) -> None:
        """`then`: run on the host right after the files are in place (Step.then).
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
        env = file_set_env(manifest=manifest, reload_units=reload_units, secret_names=list(secrets or {}),
                           keep_previous=keep_previous)
        step = Step(
            Script("file-set.sh", env), secrets=secrets or {}, payload=payload, then=then,
            # The delete reads the same stdin (the paths to remove) or, with MANIFEST, the set's record.
            delete=(Script("file-set.sh", {**env, "REMOVE": "true"}),),
            # Any file's change places the set again (unchanged files are left untouched); a changed secret
            # changes stdin, which runs it again as an update.
            triggers=(digest(payload),), ignore_changes=PLACED_IN_PLACE,
        )
        self.command = run(f"{name}-apply", host, step, pulumi.ResourceOptions(parent=self))
        self.finish(sha256=digest(payload))
