"""Where the project lives: kept free of imports so `python -m dryrun` can refuse a bad stack file
before it loads Pulumi (about 0.3 s an invocation; the bad-input corpus runs ~100 of them)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
