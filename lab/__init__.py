"""A lab of SSH hosts in network namespaces, for running hakube against real sshd, sudo, HAProxy
and keepalived without touching the machine (see lab/sshlab.py and the README's Lab section)."""

from lab.sshlab import LAB_RANGE, PRIVATE_DIRS, RUNNER, LabError, Spawned, SshLab

__all__ = ["LAB_RANGE", "PRIVATE_DIRS", "RUNNER", "LabError", "Spawned", "SshLab"]
