"""The declared topology: pydantic models, cross-field rules and loaders. No Pulumi here."""

from topology.load import ROOT, TopologyError, load_cluster, load_stack_file, read_stack_file
from topology.model import Cluster, ControlPlaneNode, Hypervisor, LbNode, Worker

__all__ = [
    "ROOT",
    "Cluster",
    "ControlPlaneNode",
    "Hypervisor",
    "LbNode",
    "TopologyError",
    "Worker",
    "load_cluster",
    "load_stack_file",
    "read_stack_file",
]
