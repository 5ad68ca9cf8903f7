"""The Kubernetes versions hakube installs and upgrades: one table, read by everything else.

Adding a minor (say 1.38) is one `Minor(...)` line in SUPPORTED plus its tests; dropping one past
end of life is deleting its line. The default `kubernetesVersion` is the newest known patch of the
newest minor. Upgrades go one minor at a time (topology/upgrade.py), so keeping three consecutive
minors lets a cluster at the oldest one reach the newest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Minor:
    minor: int  # the y of 1.y
    newest_patch: int  # the newest 1.y.z known; the default for this minor
    released: date
    end_of_life: date
    # kubeadm's PauseVersion (cmd/kubeadm/app/constants/constants.go): the sandbox image containerd must
    # use, or kubeadm's preflight warns and pods run on another pause than the one kubeadm pulled.
    pause: str
    # The other image tags kubeadm of this minor pulls (same file): CoreDNSVersion, and the etcd of
    # SupportedEtcdVersion for this minor. `python -m dryrun --list-images` prints them.
    coredns: str
    etcd: str


# Release and end-of-life dates and the newest patches: the upstream release pages (kubernetes.io
# releases, as of 2026-12). `pause`, `coredns` and `etcd` are read from kubeadm's source at v1.35.4, v1.36.3
# and v1.37.2, the releases the Go module proxy reachable here serves (the newer 1.35.9 and 1.36.5 are not
# there to read; kubeadm keeps these within a minor's patches as a rule, so check them when bumping
# newest_patch). tests/configs/test_images.py holds the 1.37 row to the real kubeadm v1.37.2 when it is built.
SUPPORTED: tuple[Minor, ...] = (
    Minor(35, 9, released=date(2025, 12, 17), end_of_life=date(2027, 2, 28), pause="3.10.1", coredns="v1.13.1",
          etcd="3.6.6-0"),
    Minor(36, 5, released=date(2026, 4, 22), end_of_life=date(2027, 6, 28), pause="3.10.2", coredns="v1.14.2",
          etcd="3.6.8-0"),
    Minor(37, 2, released=date(2026, 8, 26), end_of_life=date(2027, 10, 28), pause="3.10.2", coredns="v1.14.6",
          etcd="3.7.0-0"),
)
NEWEST = SUPPORTED[-1]
DEFAULT_VERSION = f"1.{NEWEST.minor}.{NEWEST.newest_patch}"
# The one kubeadm config API of every supported minor: v1beta3 was removed in 1.37, and kubeadm's
# `v1` exists there but is not served yet.
KUBEADM_API_VERSION = "kubeadm.k8s.io/v1beta4"

# Used with fullmatch: `$` alone also matches before a trailing newline.
_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


def supported_minors() -> str:
    """"1.35, 1.36, 1.37": how errors and the docs name the supported minors."""
    return ", ".join(f"1.{m.minor}" for m in SUPPORTED)


def minor_of(version: str) -> Minor:
    """The table row of a version already checked by `check_version`."""
    wanted = int(version.split(".")[1])
    return next(m for m in SUPPORTED if m.minor == wanted)


def check_version(value: str) -> str:
    """`value` when it is a full x.y.z of a supported minor; ValueError saying why not otherwise."""
    match = _VERSION.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a full version x.y.z such as {DEFAULT_VERSION}")
    major, minor = int(match.group(1)), int(match.group(2))
    if major != 1 or all(m.minor != minor for m in SUPPORTED):
        raise ValueError(f"{value} is not supported; supported minors: {supported_minors()}")
    return value
