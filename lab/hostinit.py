"""PID 1 of one lab host: give it its own files, its login user and its sshd, then reap orphans.

Started by lab/sshlab.py as
    ip netns exec NS unshare --mount --uts --pid --fork --kill-child --mount-proc --propagation slave \
        python -I lab/hostinit.py   (the host's settings as JSON on stdin)
so it runs in the host's network namespace and in a mount, UTS and PID namespace of its own.
It prints one line, `ready <host public key>`, once sshd listens (or `failed <reason>`), then
stays as the host's init: daemons that detach (HAProxy, keepalived started by the systemctl
shim) are reparented to it and reaped, so none lingers as a zombie. When it dies the kernel kills
every process of the host. Stdlib only: it runs with `python -I`.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SSHD = "/usr/sbin/sshd"
LAB_ETC = Path("/etc/ssh/hakube-lab")
LAB_RUN = Path("/run/hakube-lab")
LAB_LOG = Path("/var/log/hakube-lab")
SHIM_DIR = Path("/usr/local/sbin")  # first on sudo's secure_path (and root's PATH)
USER_BIN = Path("/usr/local/bin")  # first on the login user's PATH: the same shims, linked
HELPER_DIR = Path("/usr/local/lib/hakube-lab")  # what the shims run
SSHD_PIDFILE = LAB_RUN / "sshd.pid"
# What sudo's secure_path gives (Debian's /etc/sudoers); the host's own services start with it too.
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT_S = 10


def run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")


def mount_private_dirs(state: Path, dirs: list[str], keep: list[str]) -> None:
    """Each dir becomes an overlay: reads see the machine's files, writes land in `state`.
    /tmp and /dev/shm become the host's own, except for the `keep` paths in them (the checkout and
    its interpreter, when the lab runs from a clone under /tmp), bound back at the same place."""
    for directory in dirs:
        if not os.path.isdir(directory):
            continue  # nothing to hide; a host cannot create it either (it would be the machine's)
        upper, work = state / "upper" / directory.lstrip("/"), state / "work" / directory.lstrip("/")
        upper.mkdir(parents=True)
        work.mkdir(parents=True)
        lower = os.stat(directory)  # the merged root takes the upper dir's owner and mode
        os.chown(upper, lower.st_uid, lower.st_gid)
        os.chmod(upper, lower.st_mode & 0o7777)
        run("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={directory},upperdir={upper},workdir={work}",
            directory)
    # Scratch space of its own, in memory; this also hides the lab's directory (in /dev/shm).
    scratches = ("/tmp", "/dev/shm")
    hidden = [path for path in keep if os.path.isdir(path) and path.startswith(tuple(f"{s}/" for s in scratches))]
    outermost = [path for path in hidden if not any(path.startswith(f"{other}/") for other in hidden)]
    kept = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in outermost}
    for scratch in scratches:
        run("mount", "-t", "tmpfs", "-o", "mode=1777,size=256m", "tmpfs", scratch)
    for path, fd in kept.items():  # the fd still names the directory the tmpfs now hides
        os.makedirs(path, exist_ok=True)
        run("mount", "--no-canonicalize", "--bind", f"/proc/{os.getpid()}/fd/{fd}", path)
        os.close(fd)


def name_host(name: str, hosts: dict[str, str]) -> None:
    socket.sethostname(name)
    lines = [f"127.0.1.1\t{name}"] + [f"{address}\t{host}" for host, address in hosts.items() if host != name]
    with open("/etc/hosts", "a") as f:
        f.write("# hakube lab hosts\n" + "\n".join(lines) + "\n")


def create_user(user: str, authorized_key: str) -> None:
    """The login user: key only ('*' is no password, yet not a locked account), passwordless sudo."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        run("useradd", "--create-home", "--shell", "/bin/bash", "--password", "*", user)
    entry = pwd.getpwnam(user)
    ssh_dir = Path(entry.pw_dir) / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(authorized_key.strip() + "\n")
    keys.chmod(0o600)
    for path in (ssh_dir, keys):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    sudoers = Path(f"/etc/sudoers.d/hakube-lab-{user}")
    sudoers.write_text(f"# hakube lab: the stack's ssh.user runs every host script through sudo -n\n"
                       f"{user} ALL=(ALL:ALL) NOPASSWD: ALL\n")
    sudoers.chmod(0o440)


def install_shims(source: Path, helpers: list[str], python: str) -> None:
    for shim in sorted(source.iterdir()):
        if shim.is_file():
            target = SHIM_DIR / shim.name
            shutil.copyfile(shim, target)
            target.chmod(0o755)
            (USER_BIN / shim.name).symlink_to(target)
    # What the shims exec (lab/fakecluster.py), and the lab's own interpreter to run it with.
    HELPER_DIR.mkdir(parents=True, exist_ok=True)
    for helper in map(Path, helpers):
        shutil.copyfile(helper, HELPER_DIR / helper.name)
    wrapper = HELPER_DIR / "python"
    wrapper.write_text(f'#!/bin/sh\nexec {python} "$@"\n')
    wrapper.chmod(0o755)


def unified_cgroups() -> None:
    """The host sees the unified cgroup (v2) hierarchy at /sys/fs/cgroup, as a node booted with it
    would (node-prereqs.sh checks for it), even where the machine mounts the v1 controllers there:
    a view only, in this host's mount namespace; controllers bound to v1 stay out of it."""
    if not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        run("mount", "-t", "cgroup2", "cgroup2", "/sys/fs/cgroup")


def sshd_config(user: str, addresses: list[str], port: int) -> str:
    lines = [f"ListenAddress {address}:{port}" for address in addresses] + [
        f"HostKey {LAB_ETC / 'ssh_host_ed25519_key'}",
        f"PidFile {SSHD_PIDFILE}",
        "AuthenticationMethods publickey",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        f"AllowUsers {user}",
        # No PAM: there is no systemd-logind or audit login uid to talk to in a namespace.
        "UsePAM no",
        "PrintMotd no",
        # pulumi opens one connection per step, many at once: never drop unauthenticated ones early.
        "MaxStartups 200",
        "Subsystem sftp internal-sftp",
    ]
    return "\n".join(lines) + "\n"


def start_sshd(user: str, addresses: list[str], port: int) -> str:
    """Start sshd (our child, so its session processes' orphans come back to us); its public key."""
    for directory in (LAB_ETC, LAB_RUN, LAB_LOG, Path("/run/sshd")):
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    key = LAB_ETC / "ssh_host_ed25519_key"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"hakube-lab {socket.gethostname()}", "-f", str(key))
    config = LAB_ETC / "sshd_config"
    config.write_text(sshd_config(user, addresses, port))
    run(SSHD, "-t", "-f", str(config))
    with (LAB_LOG / "sshd.log").open("ab") as log:
        sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, env={"PATH": SECURE_PATH, "LANG": "C.UTF-8"})
    deadline = time.monotonic() + START_TIMEOUT_S
    while not SSHD_PIDFILE.exists():  # written once every ListenAddress is bound
        if sshd.poll() is not None or time.monotonic() > deadline:
            tail = (LAB_LOG / "sshd.log").read_text(errors="replace")[-1000:]
            raise RuntimeError(f"sshd did not start: {tail}")
        time.sleep(0.01)
    return Path(f"{key}.pub").read_text().strip()


def setup(settings: dict[str, Any]) -> str:
    mount_private_dirs(Path(settings["state"]), settings["private_dirs"], settings.get("keep", []))
    name_host(settings["name"], settings["hosts"])
    create_user(settings["user"], settings["authorized_key"])
    install_shims(Path(settings["shims"]), settings.get("helpers", []), settings.get("python", sys.executable))
    unified_cgroups()
    return start_sshd(settings["user"], settings["addresses"], settings["port"])


def reap_forever() -> None:
    """An init's one job: wait for every child, ours or reparented to us."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        signal.sigtimedwait({signal.SIGCHLD}, 5)


def main() -> None:
    settings = json.load(sys.stdin)
    try:
        public_key = setup(settings)
    except Exception as err:  # reported to the lab, which tears the host down
        print(f"failed {type(err).__name__}: {err}".replace("\n", " "), flush=True)
        sys.exit(1)
    print(f"ready {public_key}", flush=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    reap_forever()


if __name__ == "__main__":
    main()
