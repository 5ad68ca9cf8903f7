"""image-fetch.sh for real against a scratch root: the image is imported only once it is vouched for.

By default by the publisher's SHA256SUMS, whose detached signature gpgv checks against the key
pinned in the script; here a throwaway key made by the test signs instead, trusted through
HAKUBE_TEST_KEYRING (which hakube never sets). The files are served from file:// URLs and, once,
from a loopback HTTP server; real curl, sha256sum and gpgv run, only virsh is a shim.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from configs import vm
from configs.scripts import SCRIPT_DIR, script
from dryrun.mockrun import REPO
from lab.hostsim import ScratchHost
from tests.mockgraph import stack_graph
from topology import Cluster, load_stack_file
from topology.model import DEFAULT_VM_IMAGE_URL, UBUNTU_CLOUD_IMAGE_KEY_FINGERPRINT, VmImage

NAME = "ubuntu-26.04-server-cloudimg-amd64.img"
IMAGE = b"qcow2 image bytes\n"
GOOD = hashlib.sha256(IMAGE).hexdigest()
DEV = load_stack_file(REPO / "Pulumi.dev.yaml")
POOL = vm.control_plane_pool(DEV.hypervisor("hv1"))
SIGNED_TOOLS = ("bash", "curl", "gpg", "gpgv")


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", "--quiet", *args], input=stdin,
                          capture_output=True, check=True, timeout=60).stdout


@dataclass(frozen=True)
class Signer:
    """A throwaway signing key in its own GnuPG home."""

    home: Path
    fingerprint: str

    def detach_sign(self, data: Path, signature: Path) -> None:
        _gpg(self.home, "--yes", "--local-user", self.fingerprint, "--detach-sign", "--output", str(signature),
             str(data))

    def inline_sign(self, data: Path, signature: Path) -> None:
        _gpg(self.home, "--yes", "--local-user", self.fingerprint, "--sign", "--output", str(signature), str(data))

    def keyring(self, path: Path) -> Path:
        path.write_bytes(_gpg(self.home, "--export", self.fingerprint))
        return path


def _make_signer(uid: str) -> Iterator[Signer]:
    # A short home: gpg-agent's socket path must fit in sun_path.
    home = Path(tempfile.mkdtemp(prefix="hk-gpg-", dir="/tmp"))
    try:
        _gpg(home, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-generate-key", uid, "ed25519",
             "sign", "never")
        colons = _gpg(home, "--with-colons", "--list-secret-keys").decode()
        yield Signer(home, re.search(r"^fpr:+([0-9A-F]{40}):", colons, re.M).group(1))
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, timeout=30,
                       check=False)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def signer() -> Iterator[Signer]:
    if shutil.which("gpg") is None:
        pytest.skip("needs gpg")
    yield from _make_signer("hakube test publisher <publisher@example.invalid>")


@pytest.fixture(scope="module")
def stranger() -> Iterator[Signer]:
    if shutil.which("gpg") is None:
        pytest.skip("needs gpg")
    yield from _make_signer("someone else <stranger@example.invalid>")


@dataclass
class Publisher:
    """A directory laid out as cloud-images.ubuntu.com lays out one serial."""

    root: Path

    @property
    def sums(self) -> Path:
        return self.root / "SHA256SUMS"

    @property
    def signature(self) -> Path:
        return self.root / "SHA256SUMS.gpg"

    def publish(self, signer: Signer | None, image: bytes = IMAGE, lines: list[str] | None = None) -> None:
        (self.root / NAME).write_bytes(image)
        if lines is None:
            lines = [f"{hashlib.sha256(b'other').hexdigest()} *{NAME[:-4]}.manifest",
                     f"{hashlib.sha256(image).hexdigest()} *{NAME}"]
        self.sums.write_text("\n".join(lines) + "\n")
        if signer is not None:
            signer.detach_sign(self.sums, self.signature)


def _cluster(url: str, sha256: str | None = None) -> Cluster:
    return DEV.model_copy(update={"vm_image": VmImage(url=url, sha256=sha256)})


class Hypervisor(ScratchHost):
    """A scratch hypervisor: virsh keeps volumes as files in vols/, curl is the real one (logged)."""

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.vols = base / "vols"
        self.vols.mkdir()
        vols = self.vols
        self.shim("virsh", f'case "$2" in vol-info) [[ -f "{vols}/${{@: -1}}" ]];; '
                           f'vol-create-as) touch "{vols}/$4";; vol-upload) cp "${{@: -1}}" "{vols}/$5";; esac')
        self.shim("curl", f'exec {shutil.which("curl") or "/usr/bin/curl"} "$@"')

    def fetch(self, cluster: Cluster, keyring: Path | None) -> subprocess.CompletedProcess[str]:
        env = vm.image_fetch_env(cluster, POOL)
        if keyring is not None:
            env["HAKUBE_TEST_KEYRING"] = str(keyring)
        return self.run("image-fetch.sh", env=env)

    @property
    def images(self) -> Path:
        return self.root / "var/lib/hakube/images"

    def imported(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in self.vols.iterdir()}

    def assert_nothing_imported(self) -> None:
        assert self.imported() == {}
        assert not self.images.exists() or list(self.images.iterdir()) == [], "no marker, no leftover download"


@pytest.fixture
def publisher(tmp_path: Path) -> Publisher:
    root = tmp_path / "pub" / "release-20260927"
    root.mkdir(parents=True)
    return Publisher(root)


@pytest.fixture
def hypervisor(tmp_path: Path) -> Hypervisor:
    return Hypervisor(tmp_path / "hv")


def _signed(publisher: Publisher) -> Cluster:
    return _cluster(f"file://{publisher.root}/{NAME}")


# ---------------------------------------------------------------------------------------------
# the signed SHA256SUMS path (the default)


@pytest.mark.tool(*SIGNED_TOOLS)
def test_good_signature_and_digest_imports_once_and_keeps_the_proof(
        hypervisor: Hypervisor, publisher: Publisher, signer: Signer, tmp_path: Path) -> None:
    publisher.publish(signer)
    cluster = _signed(publisher)
    volume = vm.base_volume_name(cluster)
    first = hypervisor.fetch(cluster, signer.keyring(tmp_path / "trusted.gpg"))
    assert first.returncode == 0, first.stderr
    assert f"sha256 {GOOD} from the signed file://{publisher.sums}" in first.stderr
    assert hypervisor.imported() == {volume: IMAGE}
    assert (hypervisor.images / f"{volume}.sha256").read_text() == GOOD + "\n"
    # The verified list and its signature stay beside the marker: the check can be repeated there.
    kept = hypervisor.images / f"{volume}.SHA256SUMS"
    assert kept.read_bytes() == publisher.sums.read_bytes()
    verdict = subprocess.run(["gpgv", "--keyring", str(tmp_path / "trusted.gpg"), f"{kept}.gpg", str(kept)],
                             capture_output=True, text=True, timeout=60, check=False)
    assert verdict.returncode == 0, verdict.stderr
    assert not [p for p in hypervisor.images.iterdir() if p.name.startswith(".fetch")]
    assert [c[-1] for c in hypervisor.calls("curl")] == [
        f"file://{publisher.sums}", f"file://{publisher.sums}.gpg", f"file://{publisher.root}/{NAME}"]

    hypervisor.clear_calls()
    second = hypervisor.fetch(cluster, tmp_path / "trusted.gpg")
    assert second.returncode == 0 and "already in pool" in second.stderr
    assert hypervisor.calls("curl") == [] and not any("vol-upload" in c for c in hypervisor.calls("virsh"))


@pytest.mark.tool(*SIGNED_TOOLS)
def test_plain_sha256sum_lines_are_read_too(
        hypervisor: Hypervisor, publisher: Publisher, signer: Signer, tmp_path: Path) -> None:
    publisher.publish(signer, lines=[f"{GOOD}  {NAME}"])
    result = hypervisor.fetch(_signed(publisher), signer.keyring(tmp_path / "trusted.gpg"))
    assert result.returncode == 0, result.stderr


@pytest.mark.tool(*SIGNED_TOOLS)
def test_tampered_image_is_refused(
        hypervisor: Hypervisor, publisher: Publisher, signer: Signer, tmp_path: Path) -> None:
    publisher.publish(signer)
    tampered = IMAGE + b"backdoor"
    (publisher.root / NAME).write_bytes(tampered)
    result = hypervisor.fetch(_signed(publisher), signer.keyring(tmp_path / "trusted.gpg"))
    assert result.returncode == 1
    assert (f"{NAME} has sha256 {hashlib.sha256(tampered).hexdigest()}, but the signed file://{publisher.sums}"
            f" says {GOOD}; nothing imported") in result.stderr
    hypervisor.assert_nothing_imported()


@pytest.mark.tool(*SIGNED_TOOLS)
def test_tampered_sums_are_refused(
        hypervisor: Hypervisor, publisher: Publisher, signer: Signer, tmp_path: Path) -> None:
    """A swapped image with SHA256SUMS edited to match it: the signature no longer holds."""
    publisher.publish(signer)
    tampered = IMAGE + b"backdoor"
    (publisher.root / NAME).write_bytes(tampered)
    publisher.sums.write_text(publisher.sums.read_text().replace(GOOD, hashlib.sha256(tampered).hexdigest()))
    result = hypervisor.fetch(_signed(publisher), signer.keyring(tmp_path / "trusted.gpg"))
    assert result.returncode == 1
    assert (f"file://{publisher.sums}.gpg is not a good signature of file://{publisher.sums} by the pinned"
            " Ubuntu cloud image key") in result.stderr
    assert "BAD signature" in result.stderr and result.stderr.rstrip().endswith("nothing imported")
    hypervisor.assert_nothing_imported()


@pytest.mark.tool(*SIGNED_TOOLS)
def test_unsigned_sums_are_refused(
        hypervisor: Hypervisor, publisher: Publisher, signer: Signer, tmp_path: Path) -> None:
    publisher.publish(None)
    result = hypervisor.fetch(_signed(publisher), signer.keyring(tmp_path / "trusted.gpg"))
    assert result.returncode == 1
    assert f"cannot fetch the signature of file://{publisher.sums}.gpg" in result.stderr
    assert "nothing imported" in result.stderr
    assert [c[-1] for c in hypervisor.calls("curl")][-1] == f"file://{publisher.sums}.gpg", "the image is not fetched"
    hypervisor.assert_nothing_imported()


@pytest.mark.tool(*SIGNED_TOOLS)
def test_sums_signed_by_another_key_are_refused(
        hypervisor: Hypervisor, publisher: Publisher, signer: Signer, stranger: Signer, tmp_path: Path) -> None:
    publisher.publish(stranger)
    result = hypervisor.fetch(_signed(publisher), signer.keyring(tmp_path / "trusted.gpg"))
    assert result.returncode == 1
    assert "is not a good signature" in result.stderr and "No public key" in result.stderr
    hypervisor.assert_nothing_imported()


@pytest.mark.tool(*SIGNED_TOOLS)
def test_an_inline_signed_message_is_no_detached_signature(
        hypervisor: Hypervisor, publisher: Publisher, signer: Signer, tmp_path: Path) -> None:
    """A genuinely signed old list passed off as the signature of an edited one is refused."""
    publisher.publish(signer)
    signer.inline_sign(publisher.sums, publisher.signature)
    tampered = IMAGE + b"backdoor"
    (publisher.root / NAME).write_bytes(tampered)
    publisher.sums.write_text(f"{hashlib.sha256(tampered).hexdigest()} *{NAME}\n")
    result = hypervisor.fetch(_signed(publisher), signer.keyring(tmp_path / "trusted.gpg"))
    assert result.returncode == 1
    assert "not a detached signature" in result.stderr
    hypervisor.assert_nothing_imported()


@pytest.mark.tool(*SIGNED_TOOLS)
def test_signed_sums_without_a_line_for_the_image_are_refused(
        hypervisor: Hypervisor, publisher: Publisher, signer: Signer, tmp_path: Path) -> None:
    publisher.publish(signer, lines=[f"{GOOD} *{NAME}.zsync", f"{GOOD} *other-{NAME}"])
    result = hypervisor.fetch(_signed(publisher), signer.keyring(tmp_path / "trusted.gpg"))
    assert result.returncode == 1
    assert f"the signed file://{publisher.sums} has no line for {NAME}; nothing imported" in result.stderr
    hypervisor.assert_nothing_imported()


@pytest.mark.tool(*SIGNED_TOOLS)
def test_signed_sums_with_two_digests_for_the_image_are_refused(
        hypervisor: Hypervisor, publisher: Publisher, signer: Signer, tmp_path: Path) -> None:
    publisher.publish(signer, lines=[f"{GOOD} *{NAME}", f"{'0' * 64} *{NAME}"])
    result = hypervisor.fetch(_signed(publisher), signer.keyring(tmp_path / "trusted.gpg"))
    assert result.returncode == 1
    assert f"gives {NAME} no single SHA-256" in result.stderr
    hypervisor.assert_nothing_imported()


@pytest.mark.tool(*SIGNED_TOOLS)
def test_without_the_test_keyring_only_the_pinned_key_is_trusted(
        hypervisor: Hypervisor, publisher: Publisher, signer: Signer) -> None:
    publisher.publish(signer)
    result = hypervisor.fetch(_signed(publisher), keyring=None)
    assert result.returncode == 1
    assert "by the pinned Ubuntu cloud image key" in result.stderr and "No public key" in result.stderr
    hypervisor.assert_nothing_imported()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(publisher: Publisher) -> Iterator[str]:
    """The publisher's directory over HTTP on 127.0.0.1 (an ephemeral port), shut down afterwards."""
    handler = functools.partial(_QuietHandler, directory=str(publisher.root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.tool(*SIGNED_TOOLS)
def test_over_loopback_http_a_good_serial_imports_and_a_missing_signature_is_refused(
        hypervisor: Hypervisor, publisher: Publisher, signer: Signer, served: str, tmp_path: Path) -> None:
    publisher.publish(signer)
    keyring = signer.keyring(tmp_path / "trusted.gpg")
    good = hypervisor.fetch(_cluster(f"{served}/{NAME}"), keyring)
    assert good.returncode == 0, good.stderr
    assert list(hypervisor.imported().values()) == [IMAGE]

    other = Hypervisor(tmp_path / "hv2")
    publisher.signature.unlink()
    refused = other.fetch(_cluster(f"{served}/{NAME}"), keyring)
    assert refused.returncode == 1
    assert f"cannot fetch the signature of {served}/SHA256SUMS.gpg" in refused.stderr and "404" in refused.stderr
    other.assert_nothing_imported()


# ---------------------------------------------------------------------------------------------
# an explicit vmImage.sha256


@pytest.mark.tool("bash", "curl")
def test_an_explicit_digest_is_checked_without_any_sums(hypervisor: Hypervisor, publisher: Publisher) -> None:
    publisher.publish(None, lines=[])
    cluster = _cluster(f"file://{publisher.root}/{NAME}", sha256=GOOD)
    result = hypervisor.fetch(cluster, keyring=None)
    assert result.returncode == 0, result.stderr
    assert "from vmImage.sha256" in result.stderr
    assert [c[-1] for c in hypervisor.calls("curl")] == [f"file://{publisher.root}/{NAME}"]
    assert hypervisor.imported() == {f"hakube-base-{GOOD[:12]}.qcow2": IMAGE}
    hypervisor.clear_calls()
    again = hypervisor.fetch(cluster, keyring=None)
    assert again.returncode == 0 and "already in pool" in again.stderr and hypervisor.calls("curl") == []


@pytest.mark.tool("bash", "curl")
def test_an_explicit_digest_mismatch_imports_nothing(hypervisor: Hypervisor, publisher: Publisher) -> None:
    publisher.publish(None)
    result = hypervisor.fetch(_cluster(f"file://{publisher.root}/{NAME}", sha256="0" * 64), keyring=None)
    assert result.returncode == 1
    assert f"has sha256 {GOOD}, but vmImage.sha256 says {'0' * 64}; nothing imported" in result.stderr
    hypervisor.assert_nothing_imported()


# ---------------------------------------------------------------------------------------------
# the pinned key and how the program drives the script


def _pinned_key_block() -> str:
    text = (SCRIPT_DIR / "image-fetch.sh").read_text()
    return text.split("cat <<'KEY'\n", 1)[1].split("\nKEY\n", 1)[0] + "\n"


@pytest.mark.tool("bash", "gpg")
def test_the_pinned_key_is_ubuntus_cloud_image_key_and_the_script_dearmors_it(tmp_path: Path) -> None:
    block = _pinned_key_block()
    assert block.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    home = tmp_path / "g"
    home.mkdir(mode=0o700)
    colons = _gpg(home, "--with-colons", "--show-keys", stdin=block.encode()).decode()
    fingerprints = re.findall(r"^fpr:+([0-9A-F]{40}):", colons, re.M)
    assert fingerprints == [UBUNTU_CLOUD_IMAGE_KEY_FINGERPRINT]  # one key, no subkeys
    assert "UEC Image Automatic Signing Key <cdimage@ubuntu.com>" in colons
    # The script's own dearmor (sed + base64, no gpg on the hypervisor) gives gpg's binary keyring.
    text = script("image-fetch.sh")
    functions = "\n".join(match.group(0) for match in (
        re.search(r"^pinned_key\(\) \{\n.*?\n\}$", text, re.M | re.S), re.search(r"^dearmor\(\) [^\n]*$", text, re.M)))
    ours = subprocess.run(["bash", "-c", f"set -euo pipefail\n{functions}\npinned_key | dearmor"],
                          capture_output=True, timeout=30, check=True).stdout
    assert ours == _gpg(home, "--dearmor", stdin=block.encode())


def test_default_image_is_a_dated_ubuntu_26_04_serial_checked_by_its_signed_sums() -> None:
    image = DEV.vm_image
    assert image == VmImage() and image.sha256 is None, "no default digest that nobody can check"
    assert image.url == DEFAULT_VM_IMAGE_URL
    assert re.fullmatch(r"https://cloud-images\.ubuntu\.com/releases/resolute/release-2026\d{4}/"
                        r"ubuntu-26\.04-server-cloudimg-amd64\.img", image.url)
    env = vm.image_fetch_env(DEV, POOL)
    assert env == {"IMAGE_URL": image.url, "IMAGE_SUMS_URL": image.url.rsplit("/", 1)[0] + "/SHA256SUMS",
                   "IMAGE_NAME": "ubuntu-26.04-server-cloudimg-amd64.img", "POOL": POOL.name,
                   "POOL_PATH": POOL.path, "VOLUME": vm.base_volume_name(DEV)}


def test_an_explicit_digest_replaces_the_sums_and_every_image_gets_its_own_volume() -> None:
    mirror = _cluster("https://mirror.invalid/noble.img", sha256=GOOD)
    env = vm.image_fetch_env(mirror, POOL)
    assert env["IMAGE_SHA256"] == GOOD and "IMAGE_SUMS_URL" not in env and "IMAGE_NAME" not in env
    names = {vm.base_volume_name(c) for c in (
        DEV, mirror, _cluster("https://mirror.invalid/other.img", sha256="1" * 64),
        _cluster(DEFAULT_VM_IMAGE_URL.replace("20260927", "20261101")))}
    assert len(names) == 4 and all(re.fullmatch(r"hakube-base-[0-9a-f]{12}\.qcow2", n) for n in names)
    assert vm.base_volume_name(mirror) == f"hakube-base-{GOOD[:12]}.qcow2"
    assert vm.base_volume_name(DEV) == vm.base_volume_name(_cluster(DEFAULT_VM_IMAGE_URL))


def _env_prefix(command: str) -> str:
    """The `sudo -n env A=1 ...` part of a command line (configs/remote.py), before the script text."""
    return command.split(" bash -c ", 1)[0]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_program_fetches_through_the_signed_sums_and_never_sets_the_test_keyring(stack: str) -> None:
    g = stack_graph(stack)
    steps = [row for row in g.table if row["name"].endswith("-base-image")]
    assert steps
    for row in steps:
        env = _env_prefix(row["inputs"]["create"])
        assert " IMAGE_SUMS_URL=" in env and " IMAGE_NAME=" in env and "IMAGE_SHA256" not in env
    commands = [row["inputs"][key] for row in g.of_type("command:remote:Command")
                for key in ("create", "delete") if row["inputs"].get(key)]
    assert commands and not [c for c in commands if "HAKUBE_TEST_KEYRING" in _env_prefix(c)]
    assert "HAKUBE_TEST_KEYRING=" not in "".join(commands), "no script sets it either"
