"""Can this log support the models? Gates checked before any fitting, each against the threshold it needs.

Required gates stop training with a message naming the gate and the data that would pass it; the
others say how the run degrades (BTYD alone without enough history for stacked snapshots, no
seasonal adjustment when the season ahead was never seen). The report is printed by ``churnclv
train`` and kept in the MLflow run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from churnclv.contract import ChurnclvError
from churnclv.contract.dates import SEASON_YEAR_DAYS, iso, on_or_before
from churnclv.features import rfm_features
from churnclv.training.mle import MIN_CUSTOMERS, MIN_REPEAT_CUSTOMERS

#: Days of history the backtest origin (as_of - horizon) needs before it.
MIN_BACKTEST_HISTORY_DAYS = 28
#: Repeat buyers below which the estimates are unstable (a warning, not a gate).
STABLE_REPEAT_CUSTOMERS = 100
#: Share of one-time buyers above which dropout rests on few customers (a warning).
MAX_ONE_TIME_SHARE = 0.9


class EligibilityError(ChurnclvError):
    """A required gate failed: the data cannot support the model; the message says which and what would fix it."""


@dataclass(frozen=True)
class Gate:
    """One check: the measured ``value`` against ``threshold`` (``at_least`` or at most)."""

    name: str
    value: float
    threshold: float
    at_least: bool
    required: bool
    consequence: str  # what happens (or what to do) when it fails

    @property
    def passed(self) -> bool:
        return bool(self.value >= self.threshold if self.at_least else self.value <= self.threshold)

    @property
    def status(self) -> str:
        return "ok" if self.passed else ("FAILED" if self.required else "warning")


@dataclass(frozen=True)
class Eligibility:
    """Every gate for a training run at ``as_of`` with ``horizon_days``."""

    as_of: str
    horizon_days: int
    gates: tuple[Gate, ...]

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if g.required and not g.passed]

    @property
    def warnings(self) -> list[str]:
        return [f"{g.name}: {g.consequence}" for g in self.gates if not g.required and not g.passed]

    def plus(self, *gates: Gate) -> Eligibility:
        """This report with ``gates`` added (the judging gates, measured once the window is chosen)."""
        return Eligibility(as_of=self.as_of, horizon_days=self.horizon_days, gates=self.gates + gates)

    def passed(self, name: str) -> bool:
        return next(g.passed for g in self.gates if g.name == name)

    def to_dict(self) -> dict:
        return {"as_of": self.as_of, "horizon_days": self.horizon_days,
                "gates": [asdict(g) | {"passed": g.passed} for g in self.gates]}

    def raise_if_failed(self) -> None:
        if self.failed:
            lines = "\n".join(f"  - {g.name}: {_fmt(g.value)}, needs {'>=' if g.at_least else '<='} "
                              f"{_fmt(g.threshold)}. {g.consequence}" for g in self.failed)
            raise EligibilityError(f"the data cannot support the model as of {self.as_of} "
                                   f"({len(self.failed)} gate(s) failed; nothing was fitted):\n{lines}")


def _fmt(value: float) -> str:
    return f"{value:.0%}" if 0 < value < 1 else f"{value:,.0f}"  # shares are below 1, counts and days above


def customer_counts(transactions: pd.DataFrame, as_of: pd.Timestamp) -> tuple[int, int]:
    """(customers with a purchase by ``as_of``, of whom repeat buyers)."""
    rfm = rfm_features(transactions, as_of=as_of)
    return len(rfm), int((rfm["frequency"] > 0).sum())


def purchases_until(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The purchases (amount >= 0) on or before the as-of day: what the gates count."""
    return transactions.loc[(transactions["amount"] >= 0) & on_or_before(transactions["timestamp"], as_of)]


def check(transactions: pd.DataFrame, *, as_of: pd.Timestamp, horizon_days: int,
          snapshot_history_days: int) -> Eligibility:
    """Measure every gate; nothing is fitted.

    Parameters
    ----------
    transactions : canonical frame; rows after ``as_of`` are ignored.
    as_of : the training day. horizon_days : the churn / forecast horizon in days.
    snapshot_history_days : history one stacked training snapshot needs before its cutoff (days).
    """
    purchases = purchases_until(transactions, as_of)
    first = purchases["timestamp"].min()
    history = (as_of - first.normalize()).days if len(purchases) else 0
    origin = as_of - pd.Timedelta(days=horizon_days)
    long_enough = history >= backtest_history_days(horizon_days)
    return assess(as_of=as_of, horizon_days=horizon_days, snapshot_history_days=snapshot_history_days,
                  history=history, counts=customer_counts(purchases, as_of),
                  origin_counts=customer_counts(purchases, origin) if long_enough else (0, 0))


def backtest_history_days(horizon_days: int) -> int:
    """Days of history the backtest needs (below them the customers at its origin are not counted)."""
    return horizon_days + MIN_BACKTEST_HISTORY_DAYS


def assess(*, as_of: pd.Timestamp, horizon_days: int, snapshot_history_days: int, history: int,
           counts: tuple[int, int], origin_counts: tuple[int, int]) -> Eligibility:
    """The gates from what :func:`check` measures: ``history`` (days from the first purchase to ``as_of``),
    (customers, repeat buyers) at ``as_of`` and at the backtest origin (zeros below
    :func:`backtest_history_days`). A cluster measures them on partitions of customers."""
    (n, repeat), (n_origin, repeat_origin) = counts, origin_counts
    long_enough = history >= backtest_history_days(horizon_days)
    at_origin = (  # only where the backtest origin has the history (else the history gate says it)
        Gate("repeat buyers at the backtest origin", repeat_origin, MIN_REPEAT_CUSTOMERS, True, True,
             "The backtest model has no repeat buyer to learn from: use a later --as-of or a shorter --horizon-days."),
        Gate("customers at the backtest origin", n_origin, MIN_CUSTOMERS, True, True,
             "Too few customers before the backtest window: use a later --as-of or a shorter --horizon-days."),
    ) if long_enough else ()
    one_time = 1.0 - repeat / n if n else 1.0
    gates = (
        Gate("customers", n, MIN_CUSTOMERS, True, True,
             "Too few customers for any model: use a larger log."),
        Gate("repeat buyers", repeat, MIN_REPEAT_CUSTOMERS, True, True,
             "Nobody bought twice: nothing tells buying again from dropping out. Use a longer history."),
        Gate("days of history", history, horizon_days + MIN_BACKTEST_HISTORY_DAYS, True, True,
             f"The backtest fits at as_of - {horizon_days} days and needs {MIN_BACKTEST_HISTORY_DAYS} days of "
             "history before it: use a later --as-of or a shorter --horizon-days."),
        *at_origin,
        Gate("repeat buyers for stable estimates", repeat, STABLE_REPEAT_CUSTOMERS, True, False,
             "The BG/NBD and Gamma-Gamma estimates rest on few repeat buyers and may be unstable."),
        Gate("share of one-time buyers", one_time, MAX_ONE_TIME_SHARE, False, False,
             "Dropout is estimated from few repeat buyers; P(alive) is uncertain."),
        Gate("days of history for stacked snapshots", history, 2 * horizon_days + snapshot_history_days, True, False,
             "Too short for the LightGBM models (stacked past snapshots): churn and purchases come from the "
             "BG/NBD model alone."),
        Gate("days of history for the season ahead", history, SEASON_YEAR_DAYS + snapshot_history_days, True, False,
             "The season ahead was never observed: the forecast cannot adjust for it."),
    )
    return Eligibility(as_of=iso(as_of), horizon_days=horizon_days, gates=gates)

