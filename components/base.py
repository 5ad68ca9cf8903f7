"""The base of every hakube component."""

from __future__ import annotations

from typing import Any

import pulumi

from policies.contract import component_type


class Component(pulumi.ComponentResource):
    """A ComponentResource typed `hakube:index:<kind>` whose declared facts are its outputs too.

    The engine shows stack policies each resource's *outputs*; a component's outputs are what it
    registers, so registering its props lets `pulumi preview --policy-pack` see what the dry run sees.
    """

    def __init__(self, kind: str, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(component_type(kind), name, props, opts)
        self._props = props

    def finish(self, **outputs: Any) -> None:
        """Call last in the constructor: registers the props plus any extra outputs."""
        self.register_outputs({**self._props, **outputs})
