"""Spec stage: load the YAML spec, apply overrides, validate it against the schema."""
