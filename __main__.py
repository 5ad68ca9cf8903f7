"""hakube: an HA Kubernetes cluster on bare metal, from one stack file."""

import pulumi

from components.program import run

run(pulumi.Config("hakube"))
