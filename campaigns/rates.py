"""Save rates learned from finished campaigns, per segment, shrunk towards a stated prior.

The save rate of a segment is the share of would-be churners that a contact keeps:
``(retention_treated − retention_control) / (1 − retention_control)``.

The rule (per segment, over every finished campaign with both groups non-empty):

1. each campaign's control retention ``r_c = retained_control / n_control`` stands for what the
   treated would have done uncontacted, so its treated would-be churners are
   ``trials = n_treated · (1 − r_c)`` and those the contact kept are
   ``saved = retained_treated − n_treated · r_c`` (fractional counts);
2. trials and saved are summed over campaigns (campaigns with more members weigh more);
3. the learned rate is the mean of ``Beta(a + saved⁺, b + trials − saved⁺)`` with the prior
   ``Beta(a, b)`` (default Beta(6, 14): mean 0.30, as in the expected-maximum-profit measure of
   Verbraken, Verbeke & Baesens 2013) and ``saved⁺ = max(saved, 0)``; ``rate_low``/``rate_high``
   are its central quantiles. With no outcomes the rate is the prior's (``source = "assumed"``);
   with many it approaches the measured ``saved / trials`` (``source = "measured"``).

That posterior alone would treat each control retention as known, so its interval would be too
narrow when control groups are small. The interval ``rate_low``/``rate_high`` therefore carries the
uncertainty of both groups: Monte-Carlo draws of every campaign's ``r_t``, ``r_c`` from
Beta(1 + retained, 1 + n − retained) (uniform priors) are pushed through steps 1–2, and for each
draw one rate is drawn from its Beta posterior of step 3; the interval is the central quantiles of
those rates (with no outcomes: the prior's quantiles). ``measured_rate`` (= saved / trials, which
may be negative) and ``measured_low``/``measured_high`` are the same draws' saved / trials, without
the prior. A rate below zero (contacts lower retention: "sleeping dogs") is outside
the Beta model, so its learned ``rate`` falls towards 0 as outcomes accumulate, and ``harmful``
says when the measured interval lies wholly below 0: leave such a segment out of plans.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy.stats import beta as beta_dist

from churnclv.campaigns.errors import CampaignInputError

__all__ = ["PRIOR", "RATE_COLUMNS", "learn_save_rates", "save_rate_terms"]

#: Beta(a, b) prior of a save rate: mean 0.30 (Verbraken, Verbeke & Baesens 2013).
PRIOR = (6.0, 14.0)
RATE_COLUMNS = ("segment", "rate", "rate_low", "rate_high", "source", "n", "n_treated", "n_control", "campaigns",
                "trials", "saved", "measured_rate", "measured_low", "measured_high", "harmful")
_NEEDED = ("campaign", "segment", "finished", "n_treated", "n_control", "retained_treated", "retained_control")


def save_rate_terms(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per row, ``trials = n_t (1 − r_c)`` and ``saved = retained_t − n_t r_c`` (steps 1 of the rule)."""
    r_c = outcomes["retained_control"] / outcomes["n_control"]
    return outcomes.assign(trials=outcomes["n_treated"] * (1 - r_c),
                           saved=outcomes["retained_treated"] - outcomes["n_treated"] * r_c)


def _usable(outcomes: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in _NEEDED if c not in outcomes.columns]
    if missing:
        raise CampaignInputError(f"the outcomes lack the column(s) {', '.join(missing)}")
    keep = outcomes["finished"].astype(bool) & (outcomes["n_treated"] > 0) & (outcomes["n_control"] > 0)
    return outcomes.loc[keep, list(_NEEDED)].astype({"segment": "str"})


def _pooled_draws(rows: pd.DataFrame, *, draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draws of one segment's pooled ``(saved, trials)`` with both groups' retention uncertain."""
    n_t, x_t = rows["n_treated"].to_numpy(float), rows["retained_treated"].to_numpy(float)
    n_c, x_c = rows["n_control"].to_numpy(float), rows["retained_control"].to_numpy(float)
    p_t = rng.beta(1 + x_t, 1 + n_t - x_t, size=(draws, len(rows)))
    p_c = rng.beta(1 + x_c, 1 + n_c - x_c, size=(draws, len(rows)))
    return (n_t * (p_t - p_c)).sum(axis=1), (n_t * (1 - p_c)).sum(axis=1)


def _posterior(saved: np.ndarray | float, trials: np.ndarray | float, prior: tuple[float, float]):
    """Beta parameters of step 3: ``(a + saved⁺, b + trials − saved⁺)``."""
    kept = np.clip(saved, 0.0, trials)
    return prior[0] + kept, prior[1] + trials - kept


def learn_save_rates(
    outcomes: pd.DataFrame,
    *,
    segments: Iterable[str] = (),
    prior: tuple[float, float] = PRIOR,
    interval: float = 0.9,
    draws: int = 20_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per segment, the save rate to plan with, where it comes from, and how sure it is.

    Parameters
    ----------
    outcomes : per campaign and segment (``campaigns.effect.OUTCOME_COLUMNS`` or
        ``campaigns.read.MEASUREMENT_COLUMNS``): ``campaign, segment, finished, n_treated, n_control,
        retained_treated, retained_control``; unfinished rows and rows without a control are skipped.
    segments : segments to answer for even without outcomes (they get the prior, ``assumed``).
    prior : ``(a, b)`` of the Beta prior.
    interval : central probability of the intervals.
    draws, seed : Monte-Carlo draws for the measured interval, and their generator's seed.

    Returns
    -------
    One row per segment (sorted), :data:`RATE_COLUMNS`: ``rate`` (posterior mean) with
    ``rate_low``/``rate_high`` (both groups' uncertainty and the prior), ``source`` ("measured" | "assumed"), ``n`` members (treated + control) of finished
    campaigns, ``campaigns``, pooled ``trials``/``saved``, ``measured_rate`` with its interval
    (NaN when assumed) and ``harmful`` (the measured interval lies below 0).
    """
    a, b = prior
    if a <= 0 or b <= 0 or not 0 < interval < 1:
        raise CampaignInputError(f"the prior needs a, b > 0 and the interval (0, 1): {prior}, {interval}")
    rows = save_rate_terms(_usable(outcomes))
    rng = np.random.default_rng(seed)
    tails = [(1 - interval) / 2, (1 + interval) / 2]
    answer = []
    for segment in sorted(set(rows["segment"]) | set(map(str, segments))):  # one step per segment
        mine = rows.loc[rows["segment"] == segment]
        trials, saved = float(mine["trials"].sum()), float(mine["saved"].sum())
        post_a, post_b = _posterior(saved, trials, prior)
        measured = trials > 0
        if measured:
            saved_d, trials_d = _pooled_draws(mine, draws=draws, rng=rng)
            rate_low, rate_high = np.quantile(rng.beta(*_posterior(saved_d, trials_d, prior)), tails)
            low, high = np.quantile(saved_d / np.maximum(trials_d, 1e-12), tails)
        else:
            (rate_low, rate_high), low, high = beta_dist.ppf(tails, a, b), np.nan, np.nan
        answer.append({
            "segment": segment, "rate": post_a / (post_a + post_b),
            "rate_low": float(rate_low), "rate_high": float(rate_high),
            "source": "measured" if measured else "assumed",
            "n": int(mine["n_treated"].sum() + mine["n_control"].sum()),
            "n_treated": int(mine["n_treated"].sum()), "n_control": int(mine["n_control"].sum()),
            "campaigns": int(mine["campaign"].nunique()), "trials": trials, "saved": saved,
            "measured_rate": saved / trials if measured else np.nan,
            "measured_low": float(low), "measured_high": float(high), "harmful": bool(measured and high < 0),
        })
    return pd.DataFrame(answer, columns=list(RATE_COLUMNS))
