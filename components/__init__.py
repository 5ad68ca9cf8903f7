"""Pulumi ComponentResources that only wire what topology/ and configs/ decide."""
