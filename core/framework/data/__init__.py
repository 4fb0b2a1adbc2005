"""Data stage: table files, streaming reads, reductions to statistics, simulation."""
