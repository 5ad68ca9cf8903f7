"""hakube's CrossGuard policy pack (run by the CLI from this directory, see README, Policy pack):
one module of rules per concern, wired in pack.py; contract.py holds the facts shared with the
program (docs/ARCHITECTURE.md)."""
