"""Roughly where each scalar parameter's posterior lies, on Stan's unconstrained scale.

The programs sample each scalar parameter's unconstrained value u as
u = centre + scale * z (Stan's offset and multiplier), with centre and scale
estimated here from the group statistics: chains start near the posterior and
the sampler's initial unit metric fits it, however narrow many rows make it
(10 million rows put posterior sds 2e-4 to 5e-2 apart). Only the sampler's
coordinates change, never the posterior, so rough estimates are fine:

- sigma: the residual variance of per-group least squares on the columns
  that vary within groups;
- beta: pooled within-group least squares for those columns, then a
  regression of the groups' remaining means on the other columns (the
  intercept, group-level predictors);
- group_sd: the spread of the groups' own estimates less their noise
  (method of moments), floored at what the groups could just detect.
"""

from __future__ import annotations

import math

import numpy as np

from framework import FAMILIES
from framework.model.prior_classes import BETA, GROUP_CORR, GROUP_SD

# The widest log-scale sd assumed for a scale parameter (a barely identified sigma).
MAX_LOG_SD = 2.0
TINY = 1e-300


def centre_and_scale(model, stats) -> tuple[np.ndarray, np.ndarray]:
    """Per scalar parameter (the programs' hyper order): centre and scale of its unconstrained value."""
    try:  # extreme data overflow here; whatever is not finite falls back below
        with np.errstate(all="ignore"):
            estimate, sd = _moments(model, stats)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        estimate, sd = {}, {}
    centres, scales = [], []
    for variable, selection in model.hyperparameters():
        if variable == GROUP_CORR:
            continue
        label = model.label(variable, selection)
        value, spread = estimate.get(label, math.nan), sd.get(label, math.nan)
        centre, scale = _unconstrained(model.priors[label], value, spread)
        # A scale below the centre's rounding step would leave the sampler unable to move.
        scale = max(scale, 1e-12 * abs(centre))
        if not (math.isfinite(centre) and math.isfinite(scale) and scale > 0):
            centre, scale = 0.0, 1.0  # Stan's own starting region
        centres.append(float(centre))
        scales.append(float(scale))
    return np.array(centres), np.array(scales)


def _normalised_pinv(c: np.ndarray) -> np.ndarray:
    """Pseudo-inverses of symmetric (..., k, k) matrices, columns scaled first; zero columns stay 0."""
    d = np.sqrt(np.clip(np.diagonal(c, axis1=-2, axis2=-1), 0, None))
    scale = np.where(d > 0, 1 / np.where(d > 0, d, 1), 0.0)
    inner = np.linalg.pinv(
        c * scale[..., :, None] * scale[..., None, :], rcond=1e-10, hermitian=True
    )
    return inner * scale[..., :, None] * scale[..., None, :]


def _moments(model, stats) -> tuple[dict, dict]:
    """Estimates and approximate posterior sds on the natural scale."""
    p = model.n_terms
    keep = stats.n > 0
    n, mean, cross = stats.n[keep], stats.mean[keep], stats.cross[keep]
    groups = len(n)
    cxx, cxy, cyy = cross[:, :p, :p], cross[:, :p, p], cross[:, p, p]
    # Columns that vary within some group: their coefficients show within groups. A column
    # constant within groups (a group-level predictor read from text) keeps rounding noise
    # of ~1e-32 in its centred sums: below 1e-12 of the column's size it counts as none.
    within_var = np.diagonal(cxx, axis1=1, axis2=2)
    size = np.sum(n[:, None] * mean[:, :p] ** 2, 0) + within_var.sum(0)
    none = within_var <= 1e-12 * np.maximum(size, TINY)
    cxx = np.where(none[:, :, None] | none[:, None, :], 0.0, cxx)
    cxy = np.where(none, 0.0, cxy)
    within_var = np.where(none, 0.0, within_var)
    varies = within_var.sum(0) > 0
    # Per-group least squares on the columns varying within that group.
    inv = _normalised_pinv(cxx)
    own = np.einsum("jab,jb->ja", inv, cxy)
    rank = (within_var > 0).sum(1)
    resid = np.clip(cyy - np.einsum("ja,ja->j", own, cxy), 0, None)
    dof = n - 1 - rank
    ok = dof > 0
    if ok.any():
        s2, total_dof = float(resid[ok].sum() / dof[ok].sum()), float(dof[ok].sum())
    else:  # one row per group: the spread of the group means is an upper bound
        s2, total_dof = float(np.var(mean[:, p])) or 1.0, 1.0
    s2 = max(s2, TINY)
    # Pooled within-group least squares for the varying columns.
    w_inv = _normalised_pinv(cxx.sum(0))
    b = np.where(varies, w_inv @ cxy.sum(0), 0.0)
    # The rest of the group means, regressed on the columns that never vary within a group.
    rest = mean[:, p] - mean[:, :p] @ b
    between = np.flatnonzero(~varies)
    if len(between):
        xb = mean[:, between]
        coef, *_ = np.linalg.lstsq(xb, rest, rcond=None)
        b[between] = coef
        dev = rest - xb @ coef
        between_var = float(dev @ dev) / max(groups - len(between), 1)
        between_sd = np.sqrt(between_var * np.diag(_normalised_pinv(xb.T @ xb)))
    else:
        dev, between_var, between_sd = rest - rest.mean(), float(np.var(rest)), np.array([])
    family = model.family_parameters[0]  # the Gaussian residual sd
    estimate = {family: math.sqrt(s2)}
    sd = {family: math.sqrt(s2 / (2 * total_dof))}
    tau2 = {}
    for i, j in enumerate(model.group_term_index):
        name = model.group_term_names[i]
        if varies[j]:
            seen = ok & (within_var[:, j] > 0)
            if seen.sum() < 2:
                continue
            noise = float(np.mean(s2 * inv[seen, j, j]))
            spread = float(np.var(own[seen, j]))
        elif np.all(mean[:, j] == 1):  # the intercept: each group's own, at its own slopes
            seen = ok if ok.sum() >= 2 else np.ones(groups, dtype=bool)
            others = np.where(within_var > 0, own, b)
            others[:, j] = 0.0
            own_intercept = mean[seen, p] - np.einsum("ja,ja->j", mean[seen, :p], others[seen])
            xw = np.where(within_var[seen] > 0, mean[seen, :p], 0.0)
            noise = float(
                np.mean(s2 * (1 / n[seen] + np.einsum("ja,jab,jb->j", xw, inv[seen], xw)))
            )
            spread = float(np.var(own_intercept))
        else:  # a column constant within groups: the spread of the groups' remaining means
            seen = np.ones(groups, dtype=bool)
            noise = float(np.mean(s2 / n))
            spread = between_var
        k = int(seen.sum())
        # Method of moments, floored at what k groups could just detect.
        t2 = max(spread - noise, noise * math.sqrt(2 / k), TINY)
        tau2[j] = t2
        log_sd = min((t2 + noise) / (t2 * math.sqrt(2 * k)), MAX_LOG_SD)
        estimate[model.label(GROUP_SD, {"group_term": name})] = math.sqrt(t2)
        sd[model.label(GROUP_SD, {"group_term": name})] = math.sqrt(t2) * log_sd
    between_pos = {j: k for k, j in enumerate(between)}
    for j, name in enumerate(model.term_names):
        label = model.label(BETA, {"term": name})
        estimate[label] = float(b[j])
        if varies[j]:
            sd[label] = math.sqrt(tau2.get(j, 0.0) / groups + s2 * w_inv[j, j])
        else:
            sd[label] = float(between_sd[between_pos[j]])
    return estimate, sd


def _unconstrained(prior, estimate: float, sd: float) -> tuple[float, float]:
    """Centre and scale after the program's transform for the prior's support."""
    support = FAMILIES[prior.family].support
    if support == "real":
        return estimate, sd
    if support == "positive":
        x = max(estimate, TINY)
        return math.log(x), min(sd / x, MAX_LOG_SD)
    lower, upper = prior.bounds
    width = upper - lower
    # Near a bound the logit behaves like a log: the same cap on its sd as for a log.
    x = min(max(estimate, lower + 1e-9 * width), upper - 1e-9 * width)
    scale = sd * width / ((x - lower) * (upper - x))
    return math.log((x - lower) / (upper - x)), min(scale, MAX_LOG_SD)
