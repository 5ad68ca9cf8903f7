"""Pure renderers: topology -> file text and host scripts. No Pulumi here."""
