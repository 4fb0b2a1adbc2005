"""Model stage: priors, sufficient statistics, group effects and parameterisation (plain values only)."""
