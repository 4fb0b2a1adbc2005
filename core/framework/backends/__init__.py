"""Backends stage: hookspecs, plugin loading, the registry, the Problem and the posterior contract."""
