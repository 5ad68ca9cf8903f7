"""The previous deployment's stack outputs, read through a reference to this very stack.

Day-2 rules compare the stack file with what was deployed: topology/bootstrap.py (which node ran
`kubeadm init`, which is first) and the upgrade checks (kubernetesVersion). During an update the
engine serves the outputs of the last completed update; a stack never deployed has none. Awaited
while the program is built, so a refusal happens before any resource is registered. Under mocks
(tests, the dry run) dryrun/mockrun.py answers the read. Secret outputs (the kubeconfig) are
never returned.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime.settings import get_monitor
from pulumi.runtime.sync_await import _sync_await  # the SDK's own blocking wait, as sync invokes use

# (monitor id, outputs): one StackReference per program run, as a second one would clash by name.
_read: tuple[int, dict[str, Any]] | None = None


def previous_outputs() -> dict[str, Any]:
    """The last deployment's non-secret stack outputs; {} for a stack never deployed."""
    global _read
    run = id(get_monitor())
    if _read is None or _read[0] != run:
        name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
        ref = pulumi.StackReference("previous-deployment", stack_name=name)
        outputs: dict[str, Any] | None = _sync_await(ref.outputs.future())
        names: list[str] | None = _sync_await(ref.secret_output_names.future())
        values, secret = outputs or {}, set(names or [])
        _read = (run, {key: value for key, value in values.items() if key not in secret})
    return dict(_read[1])
