"""The pymc backend plugin (being written)."""
