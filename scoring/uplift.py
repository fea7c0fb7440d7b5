"""The per-customer uplift model as data, and the plan it ranks.

Retention uplift of a customer: ``P(retained | contacted) − P(retained | not contacted)``, the chance
of at least one purchase in a campaign's window. The model is a bagged two-model (T-) learner: ``B``
pairs of LightGBM boosters, each pair fitted on one bootstrap resample of past campaign members (the
treated booster on the treated, the control booster on the controls; fitting lives in
:mod:`training.uplift`). A customer's uplift is the mean over the pairs of ``p_treated − p_control``;
its interval is the percentile interval over the pairs (how much the estimate moves when the training
members are resampled), so "credibly negative" means the interval's upper end is below 0.

As data (:meth:`UpliftScorer.to_dict`): the boosters in LightGBM's text format and the feature list,
so the model loads wherever LightGBM installs, beside the churn model of :mod:`scoring.boosters`.

Plans (:func:`rank_by_uplift`) rank by ``clv × uplift − contact_cost`` (currency per contact) and leave
out, and count, the sleeping dogs: customers whose uplift is credibly negative, or whose segment's
measured effect interval lies wholly below 0.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd

from churnclv.scoring.registry import resolve, using_store

__all__ = ["UPLIFT_ALIAS", "UPLIFT_MIN_OUTCOMES", "UPLIFT_MIN_PER_GROUP", "UPLIFT_MODEL_NAME", "UPLIFT_URI",
           "Readiness", "UpliftPlan", "UpliftScorer", "load_registered", "rank_by_uplift", "readiness",
           "sleeping_dogs"]

#: Members (treated + control) of finished campaigns the uplift model needs (the service says how many more).
UPLIFT_MIN_OUTCOMES = 20_000
#: Of those, at least this many in each group (treated, control): each booster learns from one group.
UPLIFT_MIN_PER_GROUP = 2_000
#: The registered MLflow model beside ``churn-clv``.
UPLIFT_MODEL_NAME = "churn-clv-uplift"
#: The alias of the version plans rank by (set when it ranked held-out campaigns better than chance).
UPLIFT_ALIAS = "champion"
#: What the service and ``churnclv plan`` load.
UPLIFT_URI = f"models:/{UPLIFT_MODEL_NAME}@{UPLIFT_ALIAS}"


@dataclass(frozen=True)
class Readiness:
    """Whether there are enough outcomes to fit the uplift model, and if not, how many more."""

    n_treated: int
    n_control: int
    min_outcomes: int
    min_per_group: int

    @property
    def more(self) -> int:
        """Outcomes still needed: the larger of the shortfall in total and in the smaller group."""
        total = self.n_treated + self.n_control
        return max(0, self.min_outcomes - total, self.min_per_group - self.n_treated,
                   self.min_per_group - self.n_control)

    @property
    def enough(self) -> bool:
        return self.more == 0

    @property
    def message(self) -> str:
        total = self.n_treated + self.n_control
        counts = (f"members of finished campaigns: {total:,}, at least {self.min_outcomes:,} needed; treated "
                  f"{self.n_treated:,}, control {self.n_control:,}, each at least {self.min_per_group:,}")
        if self.enough:
            return f"the per-customer uplift model ranks the plan ({counts})"
        return f"segment rates are used; the per-customer uplift model needs {self.more:,} more outcomes ({counts})"


def readiness(treated: np.ndarray, *, min_outcomes: int = UPLIFT_MIN_OUTCOMES,
              min_per_group: int = UPLIFT_MIN_PER_GROUP) -> Readiness:
    """Count the outcomes (``treated``: one bool per member of a finished campaign) against the threshold."""
    treated = np.asarray(treated, dtype=bool)
    return Readiness(n_treated=int(treated.sum()), n_control=int((~treated).sum()), min_outcomes=min_outcomes,
                     min_per_group=min_per_group)


@dataclass(frozen=True)
class UpliftScorer:
    """``B`` pairs of boosters (treated, control) on one feature list; see the module's docstring."""

    treated: tuple[lgb.Booster, ...]
    control: tuple[lgb.Booster, ...]
    features: tuple[str, ...]

    def per_pair(self, frame: pd.DataFrame) -> np.ndarray:
        """Uplift of every customer (rows) by every booster pair (columns): ``p_treated − p_control``."""
        x = frame[list(self.features)]
        return np.column_stack([t.predict(x) - c.predict(x) for t, c in zip(self.treated, self.control)])

    def predict(self, frame: pd.DataFrame, *, interval: float = 0.8) -> pd.DataFrame:
        """Per customer (``frame``'s index): ``uplift`` (mean over pairs), ``uplift_low``, ``uplift_high``
        (central ``interval`` over pairs); probabilities' differences, between −1 and 1."""
        pairs = self.per_pair(frame)
        low, high = np.quantile(pairs, [(1 - interval) / 2, (1 + interval) / 2], axis=1)
        return pd.DataFrame({"uplift": pairs.mean(axis=1), "uplift_low": low, "uplift_high": high}, index=frame.index)

    def to_dict(self) -> dict:
        """The model as data: booster texts and the feature list (JSON-serialisable)."""
        return {"kind": "t-learner-bagged", "features": list(self.features),
                "treated": [b.model_to_string() for b in self.treated],
                "control": [b.model_to_string() for b in self.control]}

    @classmethod
    def from_dict(cls, data: dict) -> UpliftScorer:
        load = lambda texts: tuple(lgb.Booster(model_str=text) for text in texts)  # noqa: E731
        return cls(treated=load(data["treated"]), control=load(data["control"]), features=tuple(data["features"]))

    def save(self, folder: str | Path) -> Path:
        """Write ``uplift.json`` into ``folder`` (created); its path."""
        path = Path(folder) / "uplift.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict()))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> UpliftScorer:
        return cls.from_dict(json.loads((Path(folder) / "uplift.json").read_text()))


@dataclass(frozen=True)
class UpliftPlan:
    """A plan ranked by uplift: ``contacts`` (ranked, best first) and how many were left out and why."""

    contacts: pd.DataFrame
    sleeping_dogs: int  # left out: uplift credibly negative (per customer or by the segment's measured effect)
    by_customer: int  # of those, by the customer's own interval
    by_segment: int  # of those, by the segment's measured effect interval (and not by their own)
    not_worth_it: int  # expected value per contact not above 0 (and not a sleeping dog)


def sleeping_dogs(scores: pd.DataFrame, harmful_segments: frozenset[str] | set[str] = frozenset()
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Who a contact credibly harms: (by their own interval: ``uplift_high < 0``, in a segment whose measured
    effect interval lies below 0), one bool per row of ``scores``."""
    by_customer = scores["uplift_high"].to_numpy() < 0
    in_segment = (scores["segment"].isin(list(harmful_segments)).to_numpy() if harmful_segments
                  else np.zeros(len(scores), dtype=bool))
    return by_customer, in_segment


def rank_by_uplift(scores: pd.DataFrame, *, contact_cost: float, budget: int | None = None,
                   harmful_segments: frozenset[str] | set[str] = frozenset()) -> UpliftPlan:
    """Rank by ``value = clv × uplift − contact_cost``, leaving out the credibly harmful.

    Parameters
    ----------
    scores : one row per customer: ``customer_id, clv`` (currency), ``uplift, uplift_high``
        (:meth:`UpliftScorer.predict`) and, with ``harmful_segments``, ``segment``.
    contact_cost : currency per contact.
    budget : at most this many contacts (None: every customer worth contacting).
    harmful_segments : segments whose measured retention effect interval lies wholly below 0
        (``campaigns.measure_effect``: ``retention_diff_high < 0``).

    Returns
    -------
    :class:`UpliftPlan`; ``contacts`` has the input's columns plus ``value`` and ``rank`` (1 = first),
    only customers with ``value > 0``, at most ``budget`` of them.
    """
    by_customer, in_segment = sleeping_dogs(scores, harmful_segments)
    dogs = by_customer | in_segment
    value = scores["clv"].to_numpy(dtype=np.float64) * scores["uplift"].to_numpy(dtype=np.float64) - contact_cost
    worth = ~dogs & (value > 0)
    ranked = (scores.assign(value=value).loc[worth].sort_values("value", ascending=False, kind="stable")
              .head(len(scores) if budget is None else max(0, int(budget))))
    return UpliftPlan(contacts=ranked.assign(rank=np.arange(1, len(ranked) + 1)), sleeping_dogs=int(dogs.sum()),
                      by_customer=int(by_customer.sum()), by_segment=int((in_segment & ~by_customer).sum()),
                      not_worth_it=int((~dogs & ~worth).sum()))


def load_registered(client: Any, uri: str = UPLIFT_URI) -> tuple[UpliftScorer, object]:
    """The uplift model at a ``models:/`` URI (alias or version) and its model version; read as data
    (:meth:`UpliftScorer.load`), nothing unpickled. Raises :class:`contract.ChurnclvError` when there is
    none (:func:`scoring.registry.resolve`)."""
    pinned, mv = resolve(client, uri)
    with tempfile.TemporaryDirectory(prefix="churnclv-uplift-") as tmp, using_store(client):
        local = mlflow.artifacts.download_artifacts(artifact_uri=pinned, dst_path=tmp, tracking_uri=client.tracking_uri,
                                                    registry_uri=client.tracking_uri)
        return UpliftScorer.load(local), mv
