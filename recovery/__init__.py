"""`./scripts/restore-etcd`: restore etcd from a snapshot, or recover it after a loss of quorum."""
