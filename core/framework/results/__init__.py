"""Results stage: estimates, forecasts, diagnostics, convergence, plots, comparison and the run directory."""
