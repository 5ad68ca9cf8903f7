"""image-fetch.sh for real against a scratch root: checksum verified, imported once, never replaced."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.hostsim import ScratchHost

IMAGE = b"qcow2 image bytes\n"
GOOD = hashlib.sha256(IMAGE).hexdigest()


def _host(tmp_path: Path) -> ScratchHost:
    host = ScratchHost(tmp_path)
    vols = tmp_path / "vols"
    vols.mkdir()
    source = tmp_path / "image.qcow2"
    source.write_bytes(IMAGE)
    host.shim("curl", f'out=""; while [[ $# -gt 0 ]]; do [[ "$1" == --output ]] && out="$2"; shift; done; '
                      f'cp "{source}" "$out"')
    host.shim("virsh", f'case "$2" in vol-info) [[ -f "{vols}/${{@: -1}}" ]];; '
                       f'vol-create-as) touch "{vols}/$4";; vol-upload) cp "${{@: -1}}" "{vols}/$5";; esac')
    return host


def _env(sha: str = GOOD) -> dict[str, str]:
    return {"IMAGE_URL": "https://images.invalid/noble.img", "IMAGE_SHA256": sha, "POOL": "cp-nvme",
            "POOL_PATH": "/var/lib/hakube/cp", "VOLUME": f"hakube-base-{sha[:12]}.qcow2"}


@pytest.mark.tool("bash")
def test_imports_a_verified_image_once(tmp_path: Path) -> None:
    host = _host(tmp_path)
    first = host.run("image-fetch.sh", env=_env())
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "vols" / f"hakube-base-{GOOD[:12]}.qcow2").read_bytes() == IMAGE
    assert [c[2] for c in host.calls("virsh")] == ["vol-info", "vol-info", "vol-create-as", "vol-upload"]
    host.clear_calls()
    second = host.run("image-fetch.sh", env=_env())
    assert second.returncode == 0 and "already in pool" in second.stdout
    assert host.calls("curl") == [] and not any("vol-upload" in c for c in host.calls("virsh"))


@pytest.mark.tool("bash")
def test_checksum_mismatch_imports_nothing(tmp_path: Path) -> None:
    host = _host(tmp_path)
    result = host.run("image-fetch.sh", env=_env("0" * 64))
    assert result.returncode == 1
    assert f"has sha256 {GOOD}, expected" in result.stderr
    assert list((tmp_path / "vols").iterdir()) == []
    assert not any(p.name.startswith(".download") for p in (host.root / "var/lib/hakube/images").iterdir())
