"""topology/cpuset.py: Linux cpuset strings parsed and formatted; the policy pack's own parser
(policies/_data.py, which cannot import topology/) gives the same verdicts."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import _data as pack_data
from topology.cpuset import MAX_CORE, CpusetError, format_cpuset, parse_cpuset


@pytest.mark.parametrize(("text", "cores"), [
    ("0", (0,)),
    ("2-5", (2, 3, 4, 5)),
    ("0-1,4,6-7", (0, 1, 4, 6, 7)),
    ("7,0-1", (0, 1, 7)),  # any order; returned sorted
    ("3-3", (3,)),
    (f"{MAX_CORE}", (MAX_CORE,)),
])
def test_parse(text: str, cores: tuple[int, ...]) -> None:
    assert parse_cpuset(text) == cores


@pytest.mark.parametrize(("cores", "text"), [
    ((0, 1, 2, 5), "0-2,5"),
    ([5, 0, 2, 1], "0-2,5"),
    ((4,), "4"),
    ((0, 2, 4), "0,2,4"),
    ((1, 2), "1-2"),
    ((), ""),
])
def test_format(cores: tuple[int, ...], text: str) -> None:
    assert format_cpuset(cores) == text


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty cpuset"),
    ("  ", "empty cpuset"),
    ("2-", "'2-' is not a core number or range like 2-5"),
    ("-2", "'-2' is not a core number or range like 2-5"),
    ("a", "'a' is not a core number or range like 2-5"),
    ("1,,2", "'' is not a core number or range like 2-5"),
    ("1,", "'' is not a core number or range like 2-5"),
    (" 2", "' 2' is not a core number or range like 2-5"),  # the kernel's list format has no spaces
    ("2\n", "'2\\n' is not a core number or range like 2-5"),
    ("\u0663", "'\u0663' is not a core number or range like 2-5"),  # an Arabic-Indic 3: int() would take it
    ("1-2-3", "'1-2-3' is not a core number or range like 2-5"),
    ("5-2", "range 5-2 runs backwards"),
    ("1,1", "1,1 names a core twice"),
    ("0-3,2", "0-3,2 names a core twice"),
    (f"0-{MAX_CORE + 1}", f"core {MAX_CORE + 1} is beyond Linux's highest core number {MAX_CORE}"),
    ("0-99999999999", f"core 99999999999 is beyond Linux's highest core number {MAX_CORE}"),
    ("9" * 40, f"'{'9' * 40}' is not a core number or range like 2-5"),
])
def test_refused(text: str, why: str) -> None:
    with pytest.raises(CpusetError) as refused:
        parse_cpuset(text)
    assert str(refused.value) == why
    with pytest.raises(ValueError):  # what the pack refuses, e.g. "1,1": it once took repeats
        pack_data.parse_cpuset(text)


core_sets = st.sets(st.integers(0, MAX_CORE), min_size=1, max_size=64)


@settings(max_examples=300, deadline=None)
@given(core_sets)
def test_format_then_parse_roundtrips(cores: set[int]) -> None:
    text = format_cpuset(sorted(cores))
    assert parse_cpuset(text) == tuple(sorted(cores))
    # Shortest form: ranges are maximal, so no two neighbouring parts could merge.
    bounds = [tuple(int(n) for n in part.split("-")) for part in text.split(",")]
    assert all(nxt[0] > cur[-1] + 1 for cur, nxt in itertools.pairwise(bounds))
    assert all(len(b) == 1 or b[0] < b[1] for b in bounds)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 20)), min_size=1, max_size=8))
def test_parse_then_format_is_canonical(parts: list[tuple[int, int]]) -> None:
    """Any valid spelling of a set parses to the same cores its canonical form does."""
    text = ",".join(f"{start}-{start + width}" if width else str(start) for start, width in parts)
    try:
        cores = parse_cpuset(text)
    except CpusetError as err:
        assert "names a core twice" in str(err)  # the only way these parts can fail
        return
    assert parse_cpuset(format_cpuset(cores)) == cores
    assert format_cpuset(parse_cpuset(format_cpuset(cores))) == format_cpuset(cores)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789-, \n\t٣x", max_size=20))
def test_any_text_parses_or_raises_cpuset_error(text: str) -> None:
    try:
        cores = parse_cpuset(text)
    except CpusetError:
        return
    assert cores == tuple(sorted(set(cores))) and all(0 <= c <= MAX_CORE for c in cores)
    assert parse_cpuset(format_cpuset(cores)) == cores


def pack_verdict(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(sorted(pack_data.parse_cpuset(text)))
    except ValueError:
        return None


def topology_verdict(text: str) -> tuple[int, ...] | None:
    try:
        return parse_cpuset(text)
    except CpusetError:
        return None


_ranges = st.lists(st.tuples(st.integers(0, MAX_CORE + 2), st.integers(-2, 12)), min_size=1, max_size=6).map(
    lambda parts: ",".join(f"{a}-{a + w}" if w else str(a) for a, w in parts))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(alphabet="0123456789-, \n\t٣x+_", max_size=20), _ranges))
def test_the_pack_parser_agrees_with_topology(text: str) -> None:
    """Same cores, or both refuse: random text and random (sometimes reversed, repeated or too
    high) ranges."""
    assert pack_verdict(text) == topology_verdict(text)
