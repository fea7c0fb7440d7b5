"""Segments and recommended actions: a small, documented, configurable policy.

Evaluated in this order (the first match wins):

| segment            | when                                                     | recommended_action  |
|--------------------|----------------------------------------------------------|---------------------|
| new                | first purchase less than ``new_customer_days`` ago       | onboarding          |
| lapsed             | P(alive) below ``lapsed_p_alive``: almost surely gone    | no_contact          |
| high_value_at_risk | value at risk ≥ its bar and churn ≥ ``min_at_risk``      | personal_outreach   |
| at_risk            | churn ≥ the at-risk bar                                  | automated_winback   |
| loyal              | churn < the loyal bar and CLV ≥ the high-value bar       | no_contact          |
| steady             | everyone else                                            | newsletter          |

The bars are fixed when the model is trained, from the customers scored at its as-of date, and kept in
the bundle, so one customer's segment never depends on who else is scored:
- value-at-risk bar: the ``value_at_risk_quantile`` of churn probability × CLV (default: the top 10%);
- high-value bar: the ``high_value_quantile`` of CLV (default: the top 20% are high value);
- at-risk bar: the ``at_risk_quantile`` of churn probability (default: the riskiest 30%), but never
  below ``min_at_risk`` (a customer more likely to stay than go is not at risk);
- loyal bar: the ``loyal_quantile`` of churn probability (default: the safest 30%), never above
  ``max_loyal``.
Quantiles rather than fixed probabilities because base rates differ by business: in CDNOW about 88% of
customers make no purchase in a quarter, so "churn ≥ 0.6" would flag nearly everyone.

The names are therefore relative to the log: "steady" is everyone who is neither new, lapsed, at risk nor
loyal, which on a log where most customers lapse can mean a mean churn risk of 85% (CDNOW as of 1998-03-31).
The segment keys stay as they are (the API, the campaign store and the save rates use them); where a name
would contradict a segment's own figures the page shows another (``serving.page.words.segment_name``: a
calm name only under 50% mean churn risk, an at-risk name only at 50% or more, or above the log's average).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

SEGMENTS = ("new", "lapsed", "high_value_at_risk", "at_risk", "loyal", "steady")
ACTIONS = {
    "new": "onboarding",
    "lapsed": "no_contact",
    "high_value_at_risk": "personal_outreach",
    "at_risk": "automated_winback",
    "loyal": "no_contact",
    "steady": "newsletter",
}


@dataclass(frozen=True)
class Policy:
    """Settings of the segment rules; :meth:`fit` fixes the bars (CLV in currency, churn in [0, 1])."""

    new_customer_days: int = 60
    lapsed_p_alive: float = 0.05
    value_at_risk_quantile: float = 0.9
    high_value_quantile: float = 0.8
    at_risk_quantile: float = 0.7
    min_at_risk: float = 0.5
    loyal_quantile: float = 0.3
    max_loyal: float = 0.5
    value_at_risk: float | None = None
    high_value: float | None = None
    at_risk: float | None = None
    loyal: float | None = None

    def fit(self, scores: pd.DataFrame) -> Policy:
        """Fix the bars from a score table's ``clv``, ``churn_probability`` and ``value_at_risk``."""
        clv, churn = scores["clv"].to_numpy(dtype=float), scores["churn_probability"].to_numpy(dtype=float)
        return replace(
            self,
            value_at_risk=float(np.quantile(scores["value_at_risk"].to_numpy(dtype=float), self.value_at_risk_quantile)),
            high_value=float(np.quantile(clv, self.high_value_quantile)),
            at_risk=max(self.min_at_risk, float(np.quantile(churn, self.at_risk_quantile))),
            loyal=min(self.max_loyal, float(np.quantile(churn, self.loyal_quantile))),
        )

    def segment(self, scores: pd.DataFrame) -> pd.Series:
        """One segment per row of a score table (needs T, p_alive, churn_probability, clv, value_at_risk)."""
        columns = {c: scores[c].to_numpy() for c in ("T", "p_alive", "churn_probability", "clv", "value_at_risk")}
        return pd.Series(self.segment_values(**columns), index=scores.index, name="segment")

    def segment_values(self, *, T: np.ndarray, p_alive: np.ndarray, churn_probability: np.ndarray, clv: np.ndarray,
                       value_at_risk: np.ndarray) -> np.ndarray:
        """:meth:`segment` on arrays (one per column): an array of segment names."""
        if self.high_value is None:
            raise ValueError("Policy.fit must fix the bars before segmenting")
        churn = churn_probability
        conditions = [
            T < self.new_customer_days,
            p_alive < self.lapsed_p_alive,
            (value_at_risk >= self.value_at_risk) & (churn >= self.min_at_risk),
            churn >= self.at_risk,
            (churn < self.loyal) & (clv >= self.high_value),
        ]
        return np.select(conditions, SEGMENTS[:-1], SEGMENTS[-1])


def recommended_action(segment: pd.Series) -> pd.Series:
    return pd.Series(action_values(segment.to_numpy()), index=segment.index, name="recommended_action")


def action_values(segments: np.ndarray) -> np.ndarray:
    """The recommended action of each segment name in an array (:data:`ACTIONS`; vectorised: no loop per row)."""
    names = np.asarray(sorted(ACTIONS))
    segments = np.asarray(segments).astype(str)
    codes = np.minimum(np.searchsorted(names, segments), len(names) - 1)
    unknown = names[codes] != segments
    if unknown.any():
        examples = sorted(set(segments[unknown].tolist()))[:3]
        raise ValueError(f"{int(unknown.sum())} unknown segment(s), e.g. {examples}")
    return np.asarray([ACTIONS[n] for n in names])[codes]
