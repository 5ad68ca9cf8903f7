"""The site example of README.md ("Sites without the internet"), as data: the stack lines a site adds, and
a stack with them. Tests dry-run exactly what the README shows."""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

import yaml

from dryrun.mockrun import REPO
from tests.mockgraph import cluster_copy

README = REPO / "README.md"
SITE_BLOCK = re.compile(r"<!-- site-example:begin -->\n```yaml\n(.*?)```\n<!-- site-example:end -->", re.S)


@cache
def site_settings() -> dict[str, Any]:
    """The README's stack lines (indented as under hakube:cluster), as data."""
    match = SITE_BLOCK.search(README.read_text())
    assert match, "README.md lost its site example block"
    return yaml.safe_load(match.group(1))


def site_cluster(stack: str = "dev") -> dict[str, Any]:
    """A copy of `stack`'s hakube:cluster with the site lines added (merged into sections it has already)."""
    data = cluster_copy(stack)
    for key, value in copy.deepcopy(site_settings()).items():
        data[key] = {**data.get(key, {}), **value}
    return data
