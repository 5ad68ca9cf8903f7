"""The bad-input corpus: every broken stack file in tests/bad_inputs/ is refused with its expected lines.

Each file opens with one or more `# expect: <line>` comments: the exact line(s) the loader must
report. `{file}` in an expected line stands for the path the file was given as. The loader is
checked in-process; `python -m dryrun --config F` is checked as a user runs it (exit 2, the
lines on its output, no traceback, nothing written).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dryrun.mockrun import REPO
from topology import ROOT, TopologyError, load_stack_file

CORPUS = sorted((REPO / "tests" / "bad_inputs").glob("*.yaml"))
PREFIX = "# expect: "
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))


def expected_lines(path: Path, shown_as: str) -> list[str]:
    """The `# expect:` lines at the top of a corpus file, with {file} filled in."""
    lines = []
    # Bytes, not text: one corpus file is deliberately not UTF-8 below its header.
    for raw in path.read_bytes().splitlines():
        line = raw.decode("utf-8", errors="replace")
        if not line.startswith(PREFIX):
            break
        lines.append(line.removeprefix(PREFIX).replace("{file}", shown_as))
    return lines


def test_corpus_is_large_and_well_formed() -> None:
    assert len(CORPUS) >= 45
    names = [p.name for p in CORPUS]
    numbers = [name.split("-", 1)[0] for name in names]
    assert all(number.isdigit() and len(number) >= 2 for number in numbers), names
    assert len(set(numbers)) == len(names), "two files share a number"
    for path in CORPUS:
        assert expected_lines(path, str(path)), f"{path.name} has no '# expect:' line"


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_loader_reports_expected_lines(path: Path) -> None:
    with pytest.raises(TopologyError) as refused:
        load_stack_file(path)
    lines = refused.value.lines
    for line in expected_lines(path, str(path)):
        assert line in lines, f"{path.name}: missing\n  {line}\ngot\n  " + "\n  ".join(lines)
    # Every line names where the problem is: the config path or the file itself.
    assert all(line.startswith((ROOT, str(path))) for line in lines), lines


def _dry_run(path: Path, parent: Path) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    parent.mkdir()
    out = parent / "out"
    result = subprocess.run(
        [PYTHON, "-m", "dryrun", "--config", str(path), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return path, parent, result


def test_dry_run_refuses_every_corpus_file(tmp_path: Path) -> None:
    if not (REPO / "dryrun" / "__main__.py").exists():
        pytest.skip("dryrun/__main__.py is not there yet")
    # Each run stops at validation (before importing Pulumi), so a small pool keeps this to seconds.
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda p: _dry_run(p, tmp_path / p.stem), CORPUS))
    failures = []
    for path, parent, result in runs:
        said = result.stdout + result.stderr
        missing = [line for line in expected_lines(path, str(path)) if line not in said]
        if result.returncode != 2 or missing or "Traceback" in said or any(parent.iterdir()):
            failures.append(f"{path.name}: exit {result.returncode}, missing {missing}, wrote "
                            f"{sorted(p.name for p in parent.iterdir())}\n{said}")
    assert not failures, "\n".join(failures)
