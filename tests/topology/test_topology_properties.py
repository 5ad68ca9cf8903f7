"""Property tests: generated valid topologies always load; random damage never escapes as a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dryrun.mockrun import REPO
from tests.strategies import clusters, mutated, stack_documents
from topology import ROOT, Cluster, TopologyError, load_cluster, load_stack_file, read_stack_file

COMMITTED = [read_stack_file(REPO / f"Pulumi.{name}.yaml")[ROOT] for name in ("dev", "edge", "prod")]
QUICK = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def bounded(examples: int) -> settings:
    return settings(QUICK, max_examples=examples)


def _assert_path_named(lines: list[str], *prefixes: str) -> None:
    assert lines, "a TopologyError without lines"
    for line in lines:
        assert line.startswith(prefixes), line
        assert "\n" not in line, f"one problem spans several lines: {line!r}"


@bounded(150)
@given(clusters())
def test_generated_topologies_load(data: dict[str, Any]) -> None:
    cluster = load_cluster(data)
    assert len(cluster.control_plane.nodes) in (1, 3, 5)
    assert len(cluster.workers) == len(data.get("workers", []))
    # What the model dumps (camelCase, JSON types) is itself a valid stack value meaning the same.
    assert load_cluster(cluster.model_dump(mode="json", by_alias=True)) == cluster


@bounded(40)
@given(stack_documents(clusters(max_workers=5)))
def test_generated_stack_files_load_through_yaml(document: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "Pulumi.gen.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        assert load_stack_file(path) == load_cluster(document["config"][ROOT])


@bounded(300)
@given(mutated(st.one_of(clusters(max_workers=4), st.sampled_from(COMMITTED))))
def test_mutations_load_or_fail_with_path_named_lines(data: dict[str, Any]) -> None:
    try:
        assert isinstance(load_cluster(data), Cluster)
    except TopologyError as error:
        _assert_path_named(error.lines, ROOT)


@bounded(150)
@given(st.sampled_from(["dev", "edge", "prod"]), st.data())
def test_damaged_stack_file_text_is_refused_by_path(stack: str, data: st.DataObject) -> None:
    """Cut, splice or overwrite the YAML text itself: the loader names the file or the config path."""
    text = (REPO / f"Pulumi.{stack}.yaml").read_text()
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 40)))
    yaml_bits = st.sampled_from([":", "- ", "\t", "{", "]", "'", "&a", "*a", "!!x", "\n  "])
    insert = data.draw(st.one_of(st.just(""), yaml_bits, st.text(max_size=5)))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"Pulumi.{stack}.yaml"
        path.write_text(text[:start] + insert + text[end:])
        try:
            assert isinstance(load_stack_file(path), Cluster)
        except TopologyError as error:
            _assert_path_named(error.lines, ROOT, str(path))
