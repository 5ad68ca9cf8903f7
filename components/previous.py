"""The previous deployment's stack outputs, read from the engine for this very stack.

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

# The engine's own read of a stack's outputs (its builtin provider, pkg/resource/deploy/builtins.go),
# the same a StackReference resource makes, through the SDK's public synchronous invoke: no resource
# to register, and an answer before anything else is registered. dryrun/mockrun.py answers it too.
READ_STACK_OUTPUTS = "pulumi:pulumi:readStackOutputs"

# (monitor id, outputs): read once per program run (tests run many programs in one process).
_read: tuple[int, dict[str, Any]] | None = None


def previous_outputs() -> dict[str, Any]:
    """The last deployment's non-secret stack outputs; {} for a stack never deployed."""
    global _read
    run = id(get_monitor())
    if _read is None or _read[0] != run:
        name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
        answer = pulumi.runtime.invoke(READ_STACK_OUTPUTS, {"name": name}).value or {}  # the SDK raises on failure
        values, secret = answer.get("outputs") or {}, set(answer.get("secretOutputNames") or [])
        _read = (run, {key: value for key, value in values.items() if key not in secret})
    return dict(_read[1])
