"""Past campaigns with known true effects per segment, recorded in a store: what the uplift tests learn from.

Each campaign draws its members with :func:`seeds.generate.simulate_campaign` (ids prefixed by the
campaign, so campaigns do not share customers), is recorded with :func:`campaigns.create_campaign` (the
store draws the control group), and its outcomes follow the store's groups
(:func:`seeds.generate.simulate_campaign_outcomes`, :data:`seeds.generate.SEED_CAMPAIGN`: contacts harm
the loyal). The effect is measured and recorded, so the learned save rates flag the loyal as harmful.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnclv.campaigns import CampaignRequest, create_campaign, measure_effect, record_effect
from churnclv.seeds.generate import SEED_CAMPAIGN, simulate_campaign, simulate_campaign_outcomes

DATES = ("2025-01-06", "2025-04-07", "2025-07-07", "2025-10-06")


def record_past_campaigns(engine, *, campaigns: int = 3, members: int = 3_000, control_share: float = 0.3,
                          window_days: int = 60, seed: int = 0) -> pd.DataFrame:
    """Record ``campaigns`` finished campaigns of ``members`` each; their transactions (one canonical log)."""
    logs = []
    for k in range(campaigns):
        day = pd.Timestamp(DATES[k])
        sim = simulate_campaign(members, seed=seed * 10 + k, campaign_date=day, window_days=window_days)
        drawn = sim.members.assign(customer_id=f"K{k}-" + sim.members["customer_id"])
        made = create_campaign(engine, CampaignRequest(name=f"past-{k}", control_share=control_share,
                                                       window_days=window_days), drawn, requested_by="test",
                               campaign_date=day.date())
        tx = simulate_campaign_outcomes(made.members, effects=SEED_CAMPAIGN, campaign_date=day, window_days=window_days,
                                        rng=np.random.default_rng(1_000 + seed * 10 + k))
        record_effect(engine, f"past-{k}", measure_effect(made.members, tx, campaign_date=day.date(),
                                                          window_days=window_days), who="test")
        logs.append(tx.assign(order_id=f"K{k}-" + tx["order_id"]))
    return pd.concat(logs, ignore_index=True).sort_values("timestamp", kind="stable", ignore_index=True)
