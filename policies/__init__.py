"""hakube's CrossGuard policy pack (run by the CLI from this directory; see README, Policy pack)."""
