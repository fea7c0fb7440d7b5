"""Against the truth: simulated campaigns with known per-segment effects (seeds.generate.simulate_campaign).

- over 25 seeds the 90% intervals of the per-segment retention effects (and spend effects) cover the
  true effect in at least 85% of the cases;
- the learned save rates approach the true ones as finished campaigns accumulate, and the segment
  where contact lowers retention is named harmful.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnclv.campaigns.effect import OVERALL, measure_effect
from churnclv.campaigns.rates import learn_save_rates
from churnclv.seeds.generate import MEAN_ORDER_VALUE, SEED_CAMPAIGN, simulate_campaign

SEEDS = range(25)
#: A retained member buys 1 + Poisson(0.6) times in the window: their mean spend there.
SPEND_PER_RETAINED = 1.6 * MEAN_ORDER_VALUE


def _measure(seed: int, *, control_share: float = 0.1, n: int = 4_000):
    sim = simulate_campaign(n, seed=seed, control_share=control_share)
    effect = measure_effect(sim.members, sim.transactions, campaign_date=sim.campaign_date.date(),
                            window_days=sim.window_days, seed=seed, draws=10_000, bootstrap=500)
    return sim, effect


def test_intervals_cover_the_true_effects_in_at_least_85_percent_of_cases():
    retention, spend = [], []
    for seed in SEEDS:
        sim, effect = _measure(seed)
        table = effect.table.loc[effect.table["segment"] != OVERALL].merge(sim.truth, on="segment")
        assert len(table) == len(SEED_CAMPAIGN) and effect.finished
        retention += ((table["retention_diff_low"] <= table["effect"])
                      & (table["effect"] <= table["retention_diff_high"])).tolist()
        true_spend = table["effect"] * SPEND_PER_RETAINED
        spend += ((table["spend_diff_low"] <= true_spend) & (true_spend <= table["spend_diff_high"])).tolist()
    assert len(retention) == 100
    assert np.mean(retention) >= 0.85, np.mean(retention)
    assert np.mean(spend) >= 0.85, np.mean(spend)


def test_learned_save_rates_approach_the_true_ones_as_campaigns_accumulate():
    outcomes = pd.concat([_measure(100 + k, control_share=0.3, n=3_000)[1].outcomes(f"c{k}") for k in range(16)])
    truth = pd.Series({name: e.save_rate for name, e in SEED_CAMPAIGN.items()})
    helped = truth.index[truth > 0]

    def error(k: int) -> pd.Series:
        rates = learn_save_rates(outcomes.loc[outcomes["campaign"].isin([f"c{i}" for i in range(k)])]).set_index("segment")
        return (rates.loc[helped, "rate"] - truth[helped]).abs(), rates

    err_1, _ = error(1)
    err_4, _ = error(4)
    err_16, rates_16 = error(16)
    assert err_16.mean() < err_4.mean() < err_1.mean()
    assert (err_16 < 0.05).all(), err_16
    assert ((rates_16.loc[helped, "rate_low"] <= truth[helped]) & (truth[helped] <= rates_16.loc[helped, "rate_high"])).all()
    loyal = rates_16.loc["loyal"]  # contact lowers retention: -0.5
    assert loyal["harmful"] and loyal["measured_low"] <= -0.5 <= loyal["measured_high"]
    assert loyal["rate"] < 0.05 and (rates_16["source"] == "measured").all()
