"""Labs that tests and bench/ share (bench/ imports lab, never tests/): SSH hosts in network
namespaces for running hakube against real sshd, sudo, HAProxy and keepalived without touching the
machine (sshlab.py, the README's Lab section), scratch hosts for running host scripts for real
(hostsim.py), a stand-in registry (registrylab.py), the real tools (realtools.py), process helpers
(procs.py: the one wait_until)."""

from lab.sshlab import LAB_RANGE, PRIVATE_DIRS, RUNNER, LabError, Spawned, SshLab

__all__ = ["LAB_RANGE", "PRIVATE_DIRS", "RUNNER", "LabError", "Spawned", "SshLab"]
