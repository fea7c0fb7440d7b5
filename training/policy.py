"""Segments and recommended actions: a small, documented, configurable policy.

Evaluated in this order (the first match wins):

| segment            | when                                                     | recommended_action  |
|--------------------|----------------------------------------------------------|---------------------|
| new                | first purchase less than ``new_customer_days`` ago       | onboarding          |
| lapsed             | P(alive) below ``lapsed_p_alive``: almost surely gone    | no_contact          |
| high_value_at_risk | churn ≥ ``high_churn`` and CLV ≥ the high-value bar      | personal_outreach   |
| at_risk            | churn ≥ ``high_churn``                                   | automated_winback   |
| loyal              | churn < ``low_churn`` and CLV ≥ the high-value bar       | no_contact          |
| steady             | everyone else                                            | newsletter          |

The high-value bar is the ``high_value_quantile`` of CLV among the customers scored when the model
was trained (fixed in the bundle, so one customer's segment does not depend on who else is scored).
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
    """Thresholds of the segment rules; ``high_value`` (CLV, currency) is set by :meth:`fit`."""

    new_customer_days: int = 60
    lapsed_p_alive: float = 0.05
    high_churn: float = 0.6
    low_churn: float = 0.3
    high_value_quantile: float = 0.8
    high_value: float | None = None

    def fit(self, clv: pd.Series) -> "Policy":
        """Fix the high-value bar at the ``high_value_quantile`` of the given CLVs."""
        return replace(self, high_value=float(np.quantile(clv.to_numpy(dtype=float), self.high_value_quantile)))

    def segment(self, scores: pd.DataFrame) -> pd.Series:
        """One segment per row of a score table (needs T, p_alive, churn_probability, clv)."""
        if self.high_value is None:
            raise ValueError("Policy.fit must set the high-value bar before segmenting")
        churn, high = scores["churn_probability"], scores["clv"] >= self.high_value
        conditions = [
            scores["T"] < self.new_customer_days,
            scores["p_alive"] < self.lapsed_p_alive,
            (churn >= self.high_churn) & high,
            churn >= self.high_churn,
            (churn < self.low_churn) & high,
        ]
        return pd.Series(np.select(conditions, SEGMENTS[:-1], SEGMENTS[-1]), index=scores.index, name="segment")


def recommended_action(segment: pd.Series) -> pd.Series:
    return segment.map(ACTIONS).rename("recommended_action")
