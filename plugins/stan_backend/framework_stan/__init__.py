"""The stan backend plugin (being written)."""
