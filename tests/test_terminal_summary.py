"""The terminal summary's choice of groups: the first few, or the most extreme of many."""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.cli.terminal import FIRST_GROUPS, MANY_GROUPS, shown_groups


def estimates(n_groups: int, extreme: dict[str, tuple[str, float]] | None = None) -> pd.DataFrame:
    """estimates.csv's shape: one row per (group, term), means near 0 (slope) and 20 (intercept)."""
    rng = np.random.default_rng(0)
    rows = []
    for j in range(n_groups):
        for term, centre in (("Intercept", 20.0), ("x", 1.0)):
            rows.append({"group": f"g{j}", "term": term, "mean": centre + 0.1 * rng.normal()})
    frame = pd.DataFrame(rows)
    for group, (term, value) in (extreme or {}).items():
        frame.loc[(frame["group"] == group) & (frame["term"] == term), "mean"] = value
    return frame


def test_few_groups_shows_the_first_in_data_order():
    chosen, title = shown_groups(estimates(7), 7)
    assert chosen == ["g0", "g1", "g2", "g3", "g4"]
    assert title == "Group coefficients (first 5 groups; 2 more in estimates.csv)"


def test_all_groups_shown_when_fewer_than_the_limit():
    chosen, title = shown_groups(estimates(3), 3)
    assert chosen == ["g0", "g1", "g2"] and "more" not in title


def test_many_groups_shows_the_most_extreme_on_any_term_most_extreme_first():
    n = MANY_GROUPS + 80
    # Around noise of sd 0.1, g3 is 400 robust sds out on the intercept and g57 40 on the slope:
    # both shown, g3 first; no other group comes near (a normal sample of 100 stays within ~4).
    est = estimates(n, {"g57": ("x", 5.0), "g3": ("Intercept", 60.0)})
    chosen, title = shown_groups(est, n)
    assert len(chosen) == FIRST_GROUPS
    assert chosen[:2] == ["g3", "g57"]
    assert f"most extreme of {n:,} groups" in title and "estimates.csv" in title
