"""Population terms the data cannot tell apart: a combination of their columns is constant.

lme4 drops such a column ("fixed-effect model matrix is rank deficient"); here the
prior alone separates their coefficients, which then come out arbitrary and sample
slowly along the ridge, so the data stage names them in a warning.
"""

from __future__ import annotations

import numpy as np

from .model import Model
from .terms import INTERCEPT

# Smallest eigenvalue of the columns' correlation matrix: 1e-6 is R^2 = 0.999999 of one column
# on the others, which only a computed column (2 * x, a sum of others, a rounded copy) reaches.
TOLERANCE = 1e-6


def collinear_terms(model: Model, gram: np.ndarray, rows: float) -> list[str]:
    """The terms in a near-exact linear relation, in model order ([] when there is none).

    `gram` is the raw cross-product matrix of the design columns over all `rows`.
    With an intercept the columns are centred first (a constant column is the intercept's
    business: a constant predictor is reported on its own); without one they are not.
    """
    names = model.term_names
    if INTERCEPT in names:
        means = gram[names.index(INTERCEPT)] / rows
        moment = gram / rows - np.outer(means, means)
    else:
        moment = gram / rows
    scale = np.sqrt(np.clip(np.diag(moment), 0.0, None))
    keep = [i for i, s in enumerate(scale) if s > 1e-12 * max(scale.max(), 1e-300)]
    keep = [i for i in keep if names[i] != INTERCEPT]
    if len(keep) < 2:
        return []
    sub = moment[np.ix_(keep, keep)] / np.outer(scale[keep], scale[keep])
    values, vectors = np.linalg.eigh(sub)
    involved: set[int] = set()
    for value, vector in zip(values, vectors.T, strict=True):
        if value < TOLERANCE:
            weight = np.abs(vector)
            involved |= {keep[j] for j in np.flatnonzero(weight > 0.1 * weight.max())}
    return [names[i] for i in sorted(involved)]


def constant_within_groups(model: Model, within: np.ndarray, gram: np.ndarray) -> list[str]:
    """Group terms beside a group intercept whose columns never vary inside a group.

    `within` is the cross-product matrix of the design columns centred per group, `gram`
    the raw one. Such a term's group deviation adds a constant to each group, exactly as
    the intercept's does, so the two cannot be told apart (lme4: a singular fit). A column
    read from text keeps rounding noise of ~1e-32 of its size in its centred sums, so a
    column counts as constant below 1e-12 of its own size (another column's scale says
    nothing about it).
    """
    names = model.group_term_names
    if INTERCEPT not in names:
        return []
    return [
        name
        for name, i in zip(names, model.group_term_index, strict=True)
        if name != INTERCEPT and within[i, i] <= 1e-12 * max(float(gram[i, i]), 1e-300)
    ]
