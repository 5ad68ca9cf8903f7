"""Entry point the Pulumi CLI runs for `--policy-pack policies`: only builds the PolicyPack.

The policies live in pack.py (rules in rules.py) so tests and the dry run use them without
starting the pack's gRPC server.
"""

from pack import PACK_NAME, POLICIES  # the CLI runs this file with policies/ on sys.path
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,
    # Every policy sets its own level; a policy added without one blocks rather than warns.
    enforcement_level=EnforcementLevel.MANDATORY,
)
