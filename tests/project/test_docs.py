"""The README's configuration table is generated from the model and must stay in step with it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

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


# -- docs/ARCHITECTURE.md -------------------------------------------------------------------------

ARCHITECTURE = REPO / "docs" / "ARCHITECTURE.md"
# Repository paths as the doc spells them in backquotes: a folder (ending in /) or a file with a
# known suffix; `<name>` placeholders are patterns, not paths.
_PATH = re.compile(r"`((?:[\w.-]+/)*[\w.-]+(?:/|\.py|\.sh|\.md|\.txt|\.json|\.yaml))`")
_FIRST_PARTY = ("topology", "configs", "components", "policies", "dryrun", "recovery", "lab", "bench", "tests")


def _doc_paths() -> set[str]:
    text = ARCHITECTURE.read_text()
    return {p for p in _PATH.findall(text) if "<" not in p and "/" in p.rstrip("/")} | {
        p for p in _PATH.findall(text) if p.endswith("/")}


def test_every_path_the_architecture_doc_names_exists() -> None:
    paths = _doc_paths()
    assert len(paths) > 30, "the pattern no longer finds the doc's paths"
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def _allowed_imports() -> dict[str, set[str]]:
    """The doc's layer table: folder (or module) -> the first-party folders/modules it may import."""
    table = ARCHITECTURE.read_text().split("| folder | may import |", 1)[1].split("\n\n", 1)[0]
    allowed = {}
    for row in table.strip().splitlines()[1:]:
        where, may = (cell.strip() for cell in row.strip("|").split("|"))
        allowed[where.strip("`")] = set(re.findall(r"`([^`]+)`", may))
    return allowed


def _module_name(path: str) -> str:
    return path.rstrip("/").removesuffix(".py").replace("/", ".")


def _imports(source: Path, package: str) -> set[str]:
    """First-party modules `source` imports, relative imports resolved inside `package`."""
    found = set()
    for node in ast.walk(ast.parse(source.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom):
            names = [f"{package}.{node.module or ''}".rstrip(".") if node.level else node.module or ""]
        found |= {n for n in names if n.split(".")[0] in _FIRST_PARTY}
    return found


def _allows(allowed: set[str], imported: str) -> bool:
    return any(imported == _module_name(a) or imported.startswith(_module_name(a) + ".") for a in allowed)


# Known breaches, each with the change that ends it (the coordinator removes the entry at merge).
_PENDING: dict[str, str] = {}


def test_every_package_imports_only_what_the_architecture_doc_allows() -> None:
    allowed = _allowed_imports()
    assert {"topology/", "configs/", "components/", "policies/", "lab/", "bench/"} <= set(allowed)
    breaches = []
    for where, may in allowed.items():
        files = [REPO / where] if where.endswith(".py") else sorted((REPO / where).rglob("*.py"))
        package = where.rstrip("/").split("/")[0]
        for path in files:
            rel = str(path.relative_to(REPO))
            if rel in _PENDING or (where == "policies/" and rel == "policies/contract.py"):
                continue
            own = _module_name(rel) if where.endswith(".py") else package
            breaches += [f"{rel} imports {name}" for name in sorted(_imports(path, package))
                         if not (name == own or name.startswith(own + ".") or _allows(may, name))]
    assert not breaches, "\n".join(breaches)
