"""Entry point the Pulumi CLI runs for `--policy-pack policies`: only builds the PolicyPack.

The policies live in the package's modules (pack.py wires them) so tests and the dry run use them
without starting the pack's gRPC server. The CLI runs this file by path (runpy) with the pack's
directory, whatever it is called, on sys.path and no package around it, so this file first loads
that directory as the package `policies`: the pack's modules import one another relatively
(`from .contract import ...`), exactly as they do when the program imports `policies.contract`.
"""

import importlib.util
import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, Policy, PolicyPack

_HERE = Path(__file__).resolve().parent


def _load_package() -> None:
    spec = importlib.util.spec_from_file_location("policies", _HERE / "__init__.py",
                                                  submodule_search_locations=[str(_HERE)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the policy pack package from {_HERE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["policies"] = module
    spec.loader.exec_module(module)
    # The pack's own directory off sys.path: its modules are only ever reached through the package,
    # so none of them (vm.py, kubeadm.py, ...) can shadow a library module of the same name.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


_load_package()

from policies.pack import PACK_NAME, POLICIES  # noqa: E402  # after the package is loaded

PolicyPack(
    name=PACK_NAME,
    policies=list[Policy](POLICIES),
    # Every policy sets its own level; a policy added without one blocks rather than warns.
    enforcement_level=EnforcementLevel.MANDATORY,
)
