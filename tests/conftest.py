"""Markers for tests that need root, a Debian tool or a real tool built by ./scripts/tools.

`@pytest.mark.tool("haproxy", "keepalived")`, `@pytest.mark.realtool("kubeadm")` and `@pytest.mark.root`
skip with a reason on a developer machine without them; under CI=true a missing tool or root is a
failure, so CI can never pass by skipping the real checks. The one exception: a realtool that
./scripts/tools cannot build on this kind of machine (lab/realtools.py NOT_BUILT) skips, naming why.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lab import realtools  # noqa: E402  (needs REPO on sys.path)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unmet(item: pytest.Item) -> list[str]:
    reasons = []
    for mark in item.iter_markers("tool"):
        missing = [tool for tool in mark.args if shutil.which(tool) is None]
        if missing:
            reasons.append(f"needs {', '.join(missing)} (Debian packages; .ci/run installs them)")
    for mark in item.iter_markers("realtool"):
        missing = [tool for tool in realtools.missing(mark.args) if tool not in realtools.NOT_BUILT]
        if missing:
            how = f"./scripts/tools builds them; or set {realtools.TOOLS_DIR_ENV}"
            reasons.append(f"needs {', '.join(missing)} ({how})")
    if item.get_closest_marker("root") and (os.geteuid() != 0 or shutil.which("ip") is None):
        reasons.append("needs root and iproute2 for network namespaces")
    return reasons


def _not_built(item: pytest.Item) -> list[str]:
    """Missing binaries no machine of this kind can build (lab/realtools.py NOT_BUILT), with why."""
    wanted = {tool for mark in item.iter_markers("realtool") for tool in mark.args}
    return [f"{tool}: {realtools.NOT_BUILT[tool]}" for tool in sorted(wanted & set(realtools.NOT_BUILT))
            if tool in realtools.missing((tool,))]


def pytest_runtest_setup(item: pytest.Item) -> None:
    reasons = _unmet(item)
    if reasons:
        if IN_CI:
            pytest.fail("CI=true but " + "; ".join(reasons), pytrace=False)
        pytest.skip("; ".join(reasons))
    if unbuildable := _not_built(item):
        # Under CI too: ./scripts/tools cannot build these, so no CI run can have them.
        pytest.skip("needs binaries ./scripts/tools cannot build (" + "; ".join(unbuildable)
                    + f"); put them in ${realtools.TOOLS_DIR_ENV} to run it")
