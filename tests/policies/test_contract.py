"""policies/contract.py is the one home of the facts the pack and the program share. Everything that
can import it does; the copies that cannot (the bash scripts' regexes, the lab's stand-in tools run
with `python -I`) are held here to the same values and the same verdicts."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from configs import addons, etcd, kubeadm
from configs.scripts import SCRIPT_DIR
from lab import fakecluster
from policies import contract
from tests.mockgraph import stack_cluster
from topology import load_cluster
from topology.sizing import STATIC_POD_SIZES

# Each credential regex a script spells out, anchored as bash's [[ =~ ]] needs it.
SCRIPT_SHAPES = [
    ("kubeadm-join.sh", "JOIN_TOKEN", contract.BOOTSTRAP_TOKEN),
    ("kubeadm-join.sh", "CA_CERT_HASH", contract.CA_CERT_HASH),
    ("kubeadm-join.sh", "CERTIFICATE_KEY", contract.CERTIFICATE_KEY),
    ("kubeadm-token.sh", "token", contract.BOOTSTRAP_TOKEN),
    ("kubeadm-token.sh", "hash", contract.CA_CERT_HASH),
]
_TOKEN_CHARS = "abcz019.-A"
tokenish = st.one_of(
    st.text(_TOKEN_CHARS, max_size=26),
    st.tuples(st.text("az09", min_size=5, max_size=7), st.text("az09", min_size=15, max_size=17)).map(".".join),
)


def _script_regex(script: str, variable: str) -> str:
    """The ERE a script tests `variable` against (`[[ "${VAR:-}" =~ ^...$ ]]`)."""
    text = (SCRIPT_DIR / script).read_text()
    found = re.findall(r'\[\[ "\$\{?' + re.escape(variable) + r'(?::-)?\}?" =~ \^(\S+)\$ \]\]', text)
    assert len(found) == 1, f"{script}: {variable} is checked {len(found)} times"
    return found[0]


@pytest.mark.parametrize(("script", "variable", "shape"), SCRIPT_SHAPES)
def test_scripts_check_credentials_against_the_contract_shapes(script: str, variable: str, shape: str) -> None:
    assert _script_regex(script, variable) == shape


def test_every_token_regex_in_a_script_is_the_contract_one() -> None:
    """lib.sh's redact, node-reset.sh's own redaction and the checks above: any `{6}\\.` in a script."""
    seen = {}
    for path in sorted(SCRIPT_DIR.glob("*.sh")):
        for spelled in re.findall(r"\[a-z0-9\]\{6\}\\\.\S*?\{16\}", path.read_text()):
            seen[path.name] = spelled
            assert spelled == contract.BOOTSTRAP_TOKEN, path.name
    assert {"lib.sh", "kubeadm-join.sh", "kubeadm-token.sh"} <= set(seen)


@pytest.mark.tool("bash")
@settings(max_examples=40, deadline=None)
@given(st.lists(tokenish, min_size=1, max_size=10))
def test_bash_gives_the_contract_verdicts(values: list[str]) -> None:
    """The join script's check accepts exactly what the pattern fullmatches; lib.sh's redact hides
    every token the pattern finds."""
    check = _script_regex("kubeadm-join.sh", "JOIN_TOKEN")
    program = (f"source {SCRIPT_DIR / 'lib.sh'}\n"
               f'for v in "$@"; do if [[ "$v" =~ ^{check}$ ]]; then echo yes; else echo no; fi; done\n'
               'printf "%s\\n" "$@" | redact\n')
    out = subprocess.run(["bash", "-c", program, "bash", *values], capture_output=True, text=True, timeout=30,
                         check=True, env={"PATH": "/usr/bin:/bin"}).stdout.splitlines()
    token = re.compile(contract.BOOTSTRAP_TOKEN)
    assert out[:len(values)] == ["yes" if token.fullmatch(v) else "no" for v in values]
    assert out[len(values):] == [token.sub("[redacted-token]", v) for v in values]


def test_the_lab_tools_use_the_contract_values() -> None:
    """lab/fakecluster.py runs as `python -I` on a lab host, so it restates these."""
    assert fakecluster.TOKEN.pattern == f"^{contract.BOOTSTRAP_TOKEN}$"
    assert fakecluster.CONTROL_PLANE_COMPONENTS == contract.STATIC_PODS
    source = Path(fakecluster.__file__).read_text()
    assert f'labels["{contract.CONTROL_PLANE_KEY}"]' in source
    for path in (kubeadm.INIT_CONFIG_PATH, kubeadm.JOIN_CONFIG_PATH):  # kubeadm's --config when none is given
        assert f'option(argv, "--config") or "{path}"' in source


@pytest.mark.parametrize(("script", "variable", "default"), [
    ("kubeadm-init.sh", "KUBEADM_CONFIG", kubeadm.INIT_CONFIG_PATH),
    ("kubeadm-init.sh", "PATCHES_DIR", contract.PATCHES_DIR),
    ("kubeadm-join.sh", "KUBEADM_CONFIG", kubeadm.JOIN_CONFIG_PATH),
])
def test_script_defaults_are_the_paths_the_program_places(script: str, variable: str, default: str) -> None:
    text = (SCRIPT_DIR / script).read_text()
    assert re.findall(r"\$\{" + variable + r":-([^}]*)\}", text) == [default]


def test_the_program_reads_the_contract() -> None:
    assert kubeadm.STATIC_POD_COMPONENTS == contract.STATIC_PODS
    assert kubeadm.INIT_CONFIG_PATH.startswith(contract.KUBEADM_DIR + "/")
    assert all(set(sizes) == set(contract.STATIC_PODS) for _, sizes in STATIC_POD_SIZES)
    assert kubeadm.CONTROL_PLANE_TAINT == {"key": contract.CONTROL_PLANE_KEY,
                                           "effect": contract.CONTROL_PLANE_TAINT_EFFECT}
    assert list(kubeadm.CPU_MANAGER_POLICY_OPTIONS) == list(contract.CPU_MANAGER_OPTIONS)
    assert (etcd.TIMER_PATH, etcd.ENV_PATH) == (contract.SNAPSHOT_TIMER_PATH, contract.SNAPSHOT_ENV_PATH)
    assert addons.METALLB_CHART.namespace == contract.METALLB_NAMESPACE


@pytest.mark.parametrize("cni", sorted(contract.CNI_SYSTEM_NAMESPACES))
def test_the_pack_exempts_every_namespace_a_cluster_exempts(cni: str) -> None:
    """The pack checks a stack without knowing its CNI: its set is the union of every cluster's."""
    data = stack_cluster("dev") | {"addons": {"cni": cni, "metallb": {"enabled": True,
                                                                       "addresses": ["198.18.0.200/29"]}}}
    exempt = set(addons.system_namespaces(load_cluster(data)))
    assert exempt <= contract.SYSTEM_NAMESPACES
    assert addons.cni_chart(load_cluster(data)).namespace in exempt


def test_the_pack_exempts_nothing_beyond_the_clusters() -> None:
    clusters = [stack_cluster("dev") | {"addons": {"cni": cni, "metallb": {"enabled": True,
                                                                           "addresses": ["198.18.0.200/29"]}}}
                for cni in contract.CNI_SYSTEM_NAMESPACES]
    union = {ns for data in clusters for ns in addons.system_namespaces(load_cluster(data))}
    assert union == contract.SYSTEM_NAMESPACES


def test_the_contract_imports_only_the_standard_library() -> None:
    """The pack's own virtualenv holds no hakube module: the contract may import nothing else."""
    tree = ast.parse(Path(contract.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and all(name.split(".")[0] in sys.stdlib_module_names for name in imported), imported
