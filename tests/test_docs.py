"""The README's configuration table is generated from the model and must stay in step with it."""

from __future__ import annotations

from dryrun.mockrun import REPO
from topology.docs import table


def test_readme_config_table_matches_the_model() -> None:
    readme = (REPO / "README.md").read_text()
    assert table() in readme, "run: .venv/bin/python -m topology.docs --write README.md"


def test_readme_first_two_commands_are_dry_run_and_tests() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert block[0].startswith("./scripts/dry-run dev")
    assert block[1].startswith("./scripts/test")
    assert (REPO / "scripts/dry-run").exists() and (REPO / "scripts/test").exists()
