"""The measured effect of a campaign: treated against control, per segment and overall.

Outcomes per member, from the transaction log the user already feeds churnclv (canonical columns
``customer_id, timestamp, amount``), in the window after the campaign: calendar days
``campaign_date + 1`` to ``campaign_date + window_days`` (the campaign's own day is not in it).

- retained: at least one row with ``amount >= 0`` in the window (a purchase; returns do not count);
- spend: the sum of ``amount`` in the window (returns net), currency per member.

Per segment (and ``all``), for each group: members, retained, retention, spend per member; then

- the retention difference ``retention_treated − retention_control`` with a central credible
  interval from the Beta-Binomial posteriors: each group's retention ~ Beta(1 + retained,
  1 + members − retained) (uniform Beta(1, 1) priors), the difference by Monte-Carlo, ``draws``
  draws from a seeded :class:`numpy.random.Generator`;
- the spend difference per member with a percentile bootstrap interval: each group's members
  resampled with replacement, separately, ``bootstrap`` times (seeded);
- the incremental value per contact, ``spend difference − contact_cost`` (its interval shifted by
  the cost), and in total, times the treated members. Spend in the window only: the value of a kept
  customer after the window is not counted, so this is a floor on the campaign's worth.

``finished``: the log reaches the window's last day (its last calendar day is on or after
``campaign_date + window_days``). An unfinished window's figures are interim. Differences are NaN
where a group of a segment has no members (e.g. a control share of 0).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from churnclv.campaigns.assign import CONTROL, TREATED
from churnclv.campaigns.errors import CampaignInputError
from churnclv.campaigns.models import GROUPS

__all__ = ["OUTCOME_COLUMNS", "OVERALL", "Effect", "measure_effect", "member_outcomes", "retention_interval",
           "spend_interval"]

#: The row of every segment together.
OVERALL = "all"
#: Per campaign and segment, what :func:`campaigns.rates.learn_save_rates` pools (spend as sums).
OUTCOME_COLUMNS = ("campaign", "segment", "finished", "n_treated", "n_control", "retained_treated",
                   "retained_control", "spend_treated", "spend_control")
#: Bootstrap resamples are drawn in blocks of at most this many member indices (memory bound).
_BLOCK = 4_000_000


@dataclasses.dataclass(frozen=True)
class Effect:
    """A campaign's measured effect.

    Attributes
    ----------
    table : one row per segment (sorted) then ``all``; counts, rates, differences and intervals
        (see :func:`measure_effect`).
    campaign_date, window_days : the window is ``(campaign_date, campaign_date + window_days]``.
    data_through : the log's last calendar day (None: an empty log).
    finished : the window is over by ``data_through``.
    interval : the central probability of every interval (e.g. 0.9).
    contact_cost : currency per treated member, taken off the incremental value.
    """

    table: pd.DataFrame
    campaign_date: dt.date
    window_days: int
    data_through: dt.date | None
    finished: bool
    interval: float
    contact_cost: float

    @property
    def window_end(self) -> dt.date:
        return self.campaign_date + dt.timedelta(days=self.window_days)

    def outcomes(self, campaign: str) -> pd.DataFrame:
        """Per-segment counts (no ``all`` row) as :data:`OUTCOME_COLUMNS`, for pooling save rates."""
        rows = self.table.loc[self.table["segment"] != OVERALL]
        return rows.assign(campaign=campaign, finished=self.finished,
                           spend_treated=rows["spend_sum_treated"],
                           spend_control=rows["spend_sum_control"]).loc[:, list(OUTCOME_COLUMNS)]


def _check_members(members: pd.DataFrame) -> None:
    missing = [c for c in ("customer_id", "group", "segment") if c not in members.columns]
    if missing:
        raise CampaignInputError(f"the members lack the column(s) {', '.join(missing)}")
    bad = ~members["group"].isin(GROUPS)
    if bad.any():
        raise CampaignInputError(f"{int(bad.sum())} member(s) have a group other than treated or control, "
                                 f"e.g. {members.loc[bad, 'group'].astype('str').iloc[0]!r}")
    if members["customer_id"].duplicated().any():
        raise CampaignInputError("a customer is a member twice")


def member_outcomes(members: pd.DataFrame, transactions: pd.DataFrame, *, campaign_date: dt.date,
                    window_days: int) -> pd.DataFrame:
    """Each member's ``retained`` (bool) and ``spend`` (currency) in the window; members' order kept.

    Vectorised: the log is cut to the window by timestamp, then matched to members by one index lookup.
    """
    _check_members(members)
    start = np.datetime64(campaign_date, "D") + np.timedelta64(1, "D")
    end = start + np.timedelta64(int(window_days), "D")  # exclusive: midnight after the last day
    stamps = transactions["timestamp"].to_numpy(dtype="datetime64[ns]")
    inside = (stamps >= start) & (stamps < end)
    window = transactions.loc[inside, ["customer_id", "amount"]]
    who = pd.Index(members["customer_id"].astype("str")).get_indexer(window["customer_id"].astype("str"))
    known = who >= 0
    who, amount = who[known], window["amount"].to_numpy(dtype=np.float64)[known]
    n = len(members)
    purchases = np.bincount(who[amount >= 0], minlength=n)
    spend = np.bincount(who, weights=amount, minlength=n)
    return members.loc[:, ["customer_id", "group", "segment"]].assign(retained=purchases > 0, spend=spend)


def retention_interval(retained_t: int, n_t: int, retained_c: int, n_c: int, *, interval: float,
                       draws: int, rng: np.random.Generator) -> tuple[float, float]:
    """Central ``interval`` of ``p_t − p_c`` with ``p ~ Beta(1 + retained, 1 + n − retained)``, by draws."""
    if n_t == 0 or n_c == 0:
        return np.nan, np.nan
    p_t = rng.beta(1 + retained_t, 1 + n_t - retained_t, size=draws)
    p_c = rng.beta(1 + retained_c, 1 + n_c - retained_c, size=draws)
    low, high = np.quantile(p_t - p_c, [(1 - interval) / 2, (1 + interval) / 2])
    return float(low), float(high)


def _resampled_means(values: np.ndarray, *, times: int, rng: np.random.Generator) -> np.ndarray:
    """``times`` bootstrap means of ``values`` (resampled with replacement, in memory-bounded blocks)."""
    n = len(values)
    block = max(1, _BLOCK // max(n, 1))
    means = [values[rng.integers(0, n, size=(min(block, times - done), n))].mean(axis=1)
             for done in range(0, times, block)]
    return np.concatenate(means)


def spend_interval(spend_t: np.ndarray, spend_c: np.ndarray, *, interval: float, times: int,
                   rng: np.random.Generator) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(spend_t) − mean(spend_c)``, groups resampled separately."""
    if len(spend_t) == 0 or len(spend_c) == 0:
        return np.nan, np.nan
    diff = _resampled_means(spend_t, times=times, rng=rng) - _resampled_means(spend_c, times=times, rng=rng)
    low, high = np.quantile(diff, [(1 - interval) / 2, (1 + interval) / 2])
    return float(low), float(high)


def _counts(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per segment and ``all``: members, retained and spend sums of each group (zero when empty)."""
    grouped = outcomes.groupby(["segment", "group"], observed=True).agg(
        n=("retained", "size"), retained=("retained", "sum"), spend_sum=("spend", "sum"))
    wide = grouped.unstack("group").reindex(columns=pd.MultiIndex.from_product(
        [["n", "retained", "spend_sum"], [TREATED, CONTROL]]), fill_value=0).fillna(0)
    wide.columns = [f"{stat}_{group}" for stat, group in wide.columns]
    wide = wide.rename(columns={f"n_{TREATED}": "n_treated", f"n_{CONTROL}": "n_control"})
    wide = pd.concat([wide, wide.sum().to_frame(OVERALL).T]).rename_axis("segment").reset_index()
    return wide.astype({"n_treated": "int64", "n_control": "int64", "retained_treated": "int64",
                        "retained_control": "int64", "segment": "str"})


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).astype("float64")


def measure_effect(
    members: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    campaign_date: dt.date,
    window_days: int,
    contact_cost: float = 0.0,
    interval: float = 0.9,
    draws: int = 20_000,
    bootstrap: int = 1_000,
    seed: int = 0,
) -> Effect:
    """Treated against control, per segment and overall, from the transactions in the window.

    Parameters
    ----------
    members : one row per member: ``customer_id``, ``group`` (treated|control), ``segment``.
    transactions : the canonical log (``customer_id``, ``timestamp``, ``amount``); every customer's rows.
    campaign_date : the day contacts went out; the window starts the day after.
    window_days : the window's length in days.
    contact_cost : currency per contact, taken off the incremental value.
    interval : central probability of the intervals (0.9: 5% to 95%).
    draws, bootstrap : Monte-Carlo draws per posterior; bootstrap resamples per group.
    seed : seeds the one generator of both (same inputs and seed, same intervals).

    Returns
    -------
    :class:`Effect` whose table has, per segment and ``all``: ``n_treated, n_control,
    retained_treated, retained_control, retention_treated, retention_control, retention_diff
    (+ _low, _high), spend_sum_treated, spend_sum_control, spend_per_treated, spend_per_control,
    spend_diff (+ _low, _high), value_per_contact (+ _low, _high), value_total, retained_extra``
    (``retention_diff × n_treated``: customers kept by the contacts).
    """
    if not 0 < interval < 1:
        raise CampaignInputError(f"the interval must be between 0 and 1, not {interval!r}")
    outcomes = member_outcomes(members, transactions, campaign_date=campaign_date, window_days=window_days)
    table = _counts(outcomes)
    table = table.assign(
        retention_treated=_ratio(table["retained_treated"], table["n_treated"]),
        retention_control=_ratio(table["retained_control"], table["n_control"]),
        spend_per_treated=_ratio(table["spend_sum_treated"], table["n_treated"]),
        spend_per_control=_ratio(table["spend_sum_control"], table["n_control"]),
    )
    table = table.assign(retention_diff=table["retention_treated"] - table["retention_control"],
                         spend_diff=table["spend_per_treated"] - table["spend_per_control"])
    rng = np.random.default_rng(seed)
    retention_bounds, spend_bounds = [], []
    spend, group, segment = outcomes["spend"].to_numpy(), outcomes["group"].to_numpy(), outcomes["segment"].to_numpy()
    for row in table.itertuples(index=False):  # one step per segment, never per customer
        retention_bounds.append(retention_interval(row.retained_treated, row.n_treated, row.retained_control,
                                                   row.n_control, interval=interval, draws=draws, rng=rng))
        mine = np.ones(len(segment), dtype=bool) if row.segment == OVERALL else segment == row.segment
        spend_bounds.append(spend_interval(spend[mine & (group == TREATED)], spend[mine & (group == CONTROL)],
                                           interval=interval, times=bootstrap, rng=rng))
    retention_bounds, spend_bounds = np.array(retention_bounds), np.array(spend_bounds)
    table = table.assign(retention_diff_low=retention_bounds[:, 0], retention_diff_high=retention_bounds[:, 1],
                         spend_diff_low=spend_bounds[:, 0], spend_diff_high=spend_bounds[:, 1])
    table = table.assign(value_per_contact=table["spend_diff"] - contact_cost,
                         value_per_contact_low=table["spend_diff_low"] - contact_cost,
                         value_per_contact_high=table["spend_diff_high"] - contact_cost)
    table = table.assign(value_total=table["value_per_contact"] * table["n_treated"],
                         retained_extra=table["retention_diff"] * table["n_treated"])
    last = transactions["timestamp"].max() if len(transactions) else None
    data_through = None if last is None or pd.isna(last) else pd.Timestamp(last).date()
    end = campaign_date + dt.timedelta(days=int(window_days))
    return Effect(table=table, campaign_date=campaign_date, window_days=int(window_days),
                  data_through=data_through, finished=data_through is not None and data_through >= end,
                  interval=interval, contact_cost=float(contact_cost))
