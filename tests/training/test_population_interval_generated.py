"""The population interval that ``train`` states, on generated logs with known parameters (issue 21): twenty
pure BG/NBD + Gamma-Gamma logs (the seed generator without its perturbations), each trained as of 2025-10-01 and
judged on its generated next 91 days.

The BG/NBD model's own interval is calibrated (``tests/scoring/test_intervals.py``: 79.5% of 400 seeds). What a
user reads is wider: on a log whose months show no season the total is BG/NBD's times the factor of the quarter
before, and for a horizon under a year the one seasonal rule for every log widens the interval (log-sd 0.10 where
the factor was measured on an earlier window). On these stationary logs that rule is more than they need.
Measured: inside in 20 of 20 seeds for purchases and for spend, with half-widths of 13.2%-13.8%; the point
forecast erred by 3.0% on average (at most 10.3%) for purchases and 3.5% (at most 8.3%) for spend."""

from __future__ import annotations

import numpy as np
import pytest

from churnclv.seeds.generate import make_seed_transactions
from churnclv.training.churn import BoostSettings, CutoffPlan
from churnclv.training.pipeline import TrainConfig
from churnclv.training.realfuture import judge

QUICK = TrainConfig(plan=CutoffPlan(n_cutoffs=6, step_days=21), boost=BoostSettings(n_estimators=300))
AS_OF = "2025-10-01"
SEEDS = range(20)


@pytest.mark.slow
def test_train_s_stated_interval_covers_the_generated_total_in_at_least_16_of_20_seeds():
    inside, half_widths = np.zeros(2), []
    for seed in SEEDS:
        judged = judge(make_seed_transactions(2500, seed=seed, perturb=False), as_of=AS_OF, horizon_days=91,
                       config=QUICK)
        stated = judged.metrics["churnclv"]
        assert any("from the horizon before the as-of day" in note for note in judged.training_notes)
        for k, (total, realised) in enumerate((("purchases", judged.actual_purchases),
                                               ("spend", judged.actual_spend))):
            low, high = stated[f"{total}_interval_low"], stated[f"{total}_interval_high"]
            inside[k] += low <= realised <= high
            half_widths.append((high - low) / (high + low))
    print(f"inside the stated 80% interval: {inside[0]:.0f}/20 (purchases), {inside[1]:.0f}/20 (spend); "
          f"half-widths {min(half_widths):.1%}-{max(half_widths):.1%}")
    assert inside[0] >= 16 and inside[1] >= 16
    assert max(half_widths) <= 0.20  # the bound where the season ahead was seen: not wide to be safe
