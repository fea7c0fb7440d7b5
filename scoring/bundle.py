"""The scoring artifact ("churn-clv"): transactions + as-of day -> the score table.

It holds fitted parameters only (CLV parameters, the churn model and its calibrator, the purchase
model, the segment policy, the horizon) and computes every feature by calling ``features/``; no
training data is stored in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnclv.contract.columns import RFM_COLUMNS, SCORE_COLUMNS, SCORE_INTERVALS
from churnclv.features import build_features
from churnclv.features.events import no_events
from churnclv.scoring.boosters import ChurnScorer, PurchaseScorer, top_drivers
from churnclv.scoring.clock import CLOCK_COLUMN, ClockedBGNBD
from churnclv.scoring.clv import CLVParams
from churnclv.scoring.intervals import VALUE_DRAWS_COLUMN, customer_interval_values, value_at_risk_draws
from churnclv.scoring.segments import Policy, action_values
from churnclv.scoring.snapshot import Columns, clv_outputs

PURCHASE_METHODS = ("bgnbd", "lightgbm_poisson")
#: The churn scores a bundle can ship, simplest first: BG/NBD's P(no purchase in the horizon); fewest
#: expected purchases by BG/NBD; P(no purchase) of BG/NBD on the log's seasonal clock (``scoring.clock``); fewest
#: expected purchases by the LightGBM Poisson model (a ranking, turned into a probability by a Platt calibration on
#: log expected purchases, :func:`ranked_probability`, as BG/NBD's); the LightGBM classifier.
CHURN_METHODS = ("bgnbd", "bgnbd_expected", "bgnbd_clock", "lightgbm_poisson", "lightgbm")
#: The purchase forecast each ranking by expected purchases reads.
RANKED_BY = {"bgnbd_expected": "bgnbd", "lightgbm_poisson": "lightgbm_poisson"}
#: The snapshot column of each ranking that is a BG/NBD P(no purchase) already.
P_NO_PURCHASE = {"bgnbd": "bgnbd_p_no_purchase", "bgnbd_clock": CLOCK_COLUMN}
#: Expected purchases are floored here before the log (a customer forecast to buy nothing at all).
MIN_EXPECTED = 1e-6


def ranked_probability(expected: np.ndarray, calibration: tuple[float, float] | None) -> np.ndarray:
    """P(no purchase in the horizon) from expected purchases: ``sigmoid(slope · log(E) + intercept)`` with the
    (slope, intercept) fitted on the judging window; without one, the Poisson probability of none, ``exp(−E)``.
    Either way fewer expected purchases rank as more likely to churn (the slope is negative)."""
    if calibration is None:
        return np.exp(-expected)
    slope, intercept = calibration
    return 1.0 / (1.0 + np.exp(-(slope * np.log(np.maximum(expected, MIN_EXPECTED)) + intercept)))


@dataclass
class Models:
    """Everything a score needs, fitted at one as-of day (for the backtest, or for the registered model)."""

    as_of: pd.Timestamp
    horizon_days: int
    clv: CLVParams
    churn: ChurnScorer | None  # None: too little history for stacked snapshots; churn = P(no purchase), BG/NBD
    purchases: PurchaseScorer | None
    season_factor: float = 1.0  # the season ahead vs the BG/NBD forecast (training.season)
    poisson_scale: float = 1.0  # brings the LightGBM forecast's total to the BG/NBD total at as_of
    season_seen: bool = True  # False: the season ahead was never observed (the population interval widens)
    season_measured_on: int = 0  # purchases of the window the season's factor was measured on (0: none); the
    # population interval carries their count's noise
    level_factor: float = 1.0  # the total level the judging window chose: 1 BG/NBD's x the season, else the
    # factor to the LightGBM Poisson model's own total (training.choice.choose_level, own_level)
    clocked: ClockedBGNBD | None = None  # BG/NBD on the log's seasonal clock (None: the months did not differ)

    @property
    def total_factor(self) -> float:
        """What BG/NBD's expected purchases are multiplied by for the shipped total: the season's factor times the
        chosen level."""
        return self.season_factor * self.level_factor

    @property
    def own_level(self) -> float:
        """The :attr:`level_factor` that makes the total the LightGBM Poisson model's own (1 without that model)."""
        return 1.0 / (self.poisson_scale * self.season_factor) if self.purchases is not None else 1.0

    @property
    def purchase_methods(self) -> tuple[str, ...]:
        """The purchase forecasts these models can make."""
        return PURCHASE_METHODS if self.purchases is not None else PURCHASE_METHODS[:1]


@dataclass(frozen=True)
class Predicted:
    """The LightGBM outputs for one table, for code that scores the same table several times (training
    scores its as-of table for the Poisson scale, the backtest and the policy): at a million customers
    each prediction takes seconds."""

    churn: np.ndarray  # calibrated P(no purchase in the horizon), ChurnScorer.predict_proba
    purchases: np.ndarray  # PurchaseScorer.predict, before the Poisson scale and the season


def expected_purchases(models: Models, table: pd.DataFrame, method: str, *,
                       predicted: Predicted | None = None) -> np.ndarray:
    """Purchases expected in the horizon by one of :data:`PURCHASE_METHODS`.

    The total level is BG/NBD's, times the factor of the season ahead, or the LightGBM Poisson model's own
    where the judging window chose it (:attr:`Models.level_factor`); ``lightgbm_poisson`` spreads it over
    customers by the LightGBM Poisson model (its scale fixed at training, so one customer's forecast never
    depends on who else is scored). ``predicted`` holds that model's output for ``table`` if it was computed
    already.
    """
    if method == "bgnbd":
        return _floats(table, "bgnbd_expected_purchases") * models.total_factor
    if method == "lightgbm_poisson" and models.purchases is not None:
        raw = models.purchases.predict(table) if predicted is None else predicted.purchases
        return raw * models.poisson_scale * models.total_factor
    raise ValueError(f"unknown purchases method {method!r}; use one of {models.purchase_methods}")


def _floats(table: pd.DataFrame | Columns, column: str) -> np.ndarray:
    """One column of a snapshot (a frame or its :class:`~scoring.snapshot.Columns`) as float64."""
    return np.asarray(table[column], dtype=np.float64)


class ChurnCLVBundle:
    """Scores customers from their transactions at an as-of day; see :meth:`score`.

    Saved and loaded as data by :mod:`scoring.artifact`; MLflow's entry point is :mod:`scoring.pyfunc`.
    """

    def __init__(self, *, models: Models, purchases_method: str, policy: Policy, metadata: dict | None = None,
                 churn_method: str = "lightgbm", churn_calibration: tuple[float, float] | None = None):
        if churn_method not in CHURN_METHODS:
            raise ValueError(f"unknown churn method {churn_method!r}; use one of {CHURN_METHODS}")
        needs = {"lightgbm": models.churn, "lightgbm_poisson": models.purchases, "bgnbd_clock": models.clocked}
        self.models = models
        self.purchases_method = purchases_method
        self.churn_method = churn_method if needs.get(churn_method, True) is not None else "bgnbd"
        self.churn_calibration = churn_calibration if self.churn_method in RANKED_BY else None
        self.policy = policy
        self.metadata = dict(metadata or {})

    @property
    def horizon_days(self) -> int:
        return self.models.horizon_days

    @property
    def interval_level(self) -> float:
        """The central probability of the score table's intervals (set at training)."""
        return float(self.models.clv.interval_level)

    def snapshot(self, transactions: pd.DataFrame, *, as_of, events: pd.DataFrame | None = None) -> pd.DataFrame:
        """The features and BG/NBD outputs at ``as_of``; for a model trained with events (``metadata["events"]``)
        and none given, every customer has the features of one who never had an event."""
        return self.columns(transactions, as_of=as_of, events=events).frame()

    def columns(self, transactions: pd.DataFrame, *, as_of, events: pd.DataFrame | None = None) -> Columns:
        """:meth:`snapshot` as arrays, not joined (what :meth:`score` reads)."""
        if events is None and self.metadata.get("events"):
            events = no_events()
        features = build_features(transactions, as_of=pd.Timestamp(as_of), events=events)
        outputs = clv_outputs(features, clv=self.models.clv, horizon_days=self.horizon_days)
        if self.churn_method == "bgnbd_clock":
            outputs[CLOCK_COLUMN] = self.models.clocked.p_no_purchase(features, as_of=as_of,
                                                                      horizon_days=self.horizon_days)
        return Columns(features, outputs)

    def values(self, table: pd.DataFrame, *, predicted: Predicted | None = None) -> pd.DataFrame:
        """The numeric scores of a :func:`snapshot`, indexed by customer_id (``predicted``: the LightGBM
        outputs for this table, if computed already)."""
        return pd.DataFrame(self.value_arrays(table, predicted=predicted), index=table.index)

    def value_arrays(self, table: pd.DataFrame | Columns, *,
                     predicted: Predicted | None = None) -> dict[str, np.ndarray]:
        """:meth:`values` as one array per column."""
        purchases = expected_purchases(self.models, table, self.purchases_method, predicted=predicted)
        churn = self.churn(table, predicted=predicted)
        bgnbd = _floats(table, "bgnbd_expected_purchases")
        ratio = np.divide(purchases, bgnbd, out=np.ones_like(purchases), where=bgnbd > 1e-9)
        clv = _floats(table, "bgnbd_clv") * ratio
        return {
            "churn_probability": churn,
            "p_alive": _floats(table, "bgnbd_p_alive"),
            "expected_purchases": purchases,
            "expected_spend": purchases * _floats(table, "bgnbd_expected_spend_per_purchase"),
            "clv": clv,
            "value_at_risk": churn * clv,
        }

    def intervals(self, table: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
        """``expected_purchases_low/_high`` and ``clv_low/_high`` of a :func:`snapshot` (``scores``: its
        :meth:`values`), at the CLV model's interval level (:func:`scoring.intervals.customer_intervals`).

        The ends are BG/NBD's (with the season's factor); where the shipped forecast spreads the purchases by
        another model, they are scaled by the same ratio as the forecast and the CLV (shipped / BG/NBD)."""
        shipped = scores["expected_purchases"].to_numpy(dtype=float)
        return pd.DataFrame(self.interval_arrays(table, shipped), index=table.index)

    def interval_arrays(self, table: pd.DataFrame | Columns, shipped: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`intervals` as one array per column (``shipped``: the expected purchases of :meth:`values`)."""
        ends = customer_interval_values(self.models.clv, {c: _floats(table, c) for c in RFM_COLUMNS},
                                        horizon_days=self.horizon_days, season_factor=self.models.season_factor,
                                        spend_per_purchase=_floats(table, "bgnbd_expected_spend_per_purchase"))
        bgnbd = _floats(table, "bgnbd_expected_purchases") * self.models.season_factor
        ratio = np.divide(shipped, bgnbd, out=np.ones_like(shipped), where=bgnbd > 1e-9)
        return {c: ends[c] * ratio for c in SCORE_INTERVALS}

    def explainer(self) -> tuple | None:
        """The booster whose contributions explain a customer's churn risk, and their sign: the LightGBM churn
        classifier wherever it was fitted (whichever ranking ships, it is a model of the same outcome on the same
        features), else the Poisson model of purchases (fewer expected purchases: more risk), else none."""
        if self.models.churn is not None:
            return self.models.churn, 1.0
        return (self.models.purchases, -1.0) if self.models.purchases is not None else None

    def churn(self, table: pd.DataFrame, *, predicted: Predicted | None = None) -> np.ndarray:
        """P(no purchase in the horizon) of each customer of a :func:`snapshot` by :attr:`churn_method`."""
        if self.churn_method in P_NO_PURCHASE:
            return _floats(table, P_NO_PURCHASE[self.churn_method])
        if self.churn_method in RANKED_BY:
            expected = expected_purchases(self.models, table, RANKED_BY[self.churn_method], predicted=predicted)
            return ranked_probability(expected, self.churn_calibration)
        return predicted.churn if predicted is not None else self.models.churn.predict_proba(table)

    def score_snapshot(self, table: pd.DataFrame, *, explain: bool = False) -> pd.DataFrame:
        """The score table (one row per customer, ``customer_id`` a column) from a :func:`snapshot`."""
        return self.score_columns(Columns(table), explain=explain)

    def score_columns(self, table: Columns, *, explain: bool = False) -> pd.DataFrame:
        """The score table of a snapshot's :class:`~scoring.snapshot.Columns`: every figure on arrays
        (:meth:`score_values`), one frame at the end (batch and posted histories both come here: :meth:`score_snapshot`,
        :meth:`score`)."""
        if not len(table):  # nobody had bought by the as-of day: an empty table, not a model error
            return pd.DataFrame({c: pd.Series(dtype="str" if c in ("customer_id", "segment", "recommended_action")
                                              else "float64") for c in (*SCORE_COLUMNS, *SCORE_INTERVALS)})
        return pd.DataFrame(self.score_values(table, explain=explain))

    def score_values(self, table: Columns, *, explain: bool = False) -> dict[str, np.ndarray | pd.Index]:
        """:meth:`score_columns` as one array per column, the customer ids first (their index), before any frame:
        what a few posted customers' answers are read from (a frame of them costs more than their figures)."""
        scores = self.value_arrays(table)
        segment = self.policy.segment_values(T=table["T"], **{c: scores[c] for c in (
            "p_alive", "churn_probability", "clv", "value_at_risk")})
        columns = {table.index.name or "index": table.index, **scores, "segment": segment,
                   "recommended_action": action_values(segment),
                   **self.interval_arrays(table, scores["expected_purchases"])}  # after the contract's columns
        explainer = self.explainer()
        if explain and explainer is not None:
            booster, sign = explainer
            columns["drivers"] = top_drivers(sign * booster.contributions(table), table).to_numpy()
        elif explain:
            columns["drivers"] = np.empty(len(table), dtype=object)
            for i in range(len(table)):
                columns["drivers"][i] = []
        return columns

    def score(self, transactions: pd.DataFrame, *, as_of, explain: bool = False,
              events: pd.DataFrame | None = None) -> pd.DataFrame:
        """Score every customer with a purchase on or before ``as_of`` in a canonical transaction frame (with
        their canonical ``events``, when the churn model was trained with them)."""
        return self.score_columns(self.columns(transactions, as_of=as_of, events=events), explain=explain)


def score_table(bundle: ChurnCLVBundle, transactions: pd.DataFrame, *, as_of, explain: bool = False,
                snapshot: pd.DataFrame | None = None, events: pd.DataFrame | None = None,
                draws: bool = False) -> pd.DataFrame:
    """The batch score table: :meth:`ChurnCLVBundle.score` with drivers as JSON text (``snapshot``: the
    bundle's :meth:`~ChurnCLVBundle.snapshot` of ``transactions`` at ``as_of``, if computed already).

    Its file carries the as-of day and the model in its own metadata: write it with
    :func:`scoring.scores.write_scores` (``score_metadata(bundle, as_of=...)``) and read them with
    :func:`scoring.scores.read_score_metadata`.
    """
    if snapshot is None:
        snapshot = bundle.snapshot(transactions, as_of=as_of, events=events)
    table = bundle.score_snapshot(snapshot, explain=explain)
    if explain:
        table["drivers"] = table["drivers"].map(json.dumps)
    if draws:
        table[VALUE_DRAWS_COLUMN] = draws_column(bundle, snapshot, table)
    return table


def draws_column(bundle: ChurnCLVBundle, snapshot: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
    """The score table's :data:`~scoring.intervals.VALUE_DRAWS_COLUMN`: for the customers of highest value at risk
    their value at risk under each kept parameter draw (:func:`scoring.intervals.value_at_risk_draws`), None for
    everyone else (``table``: :meth:`ChurnCLVBundle.score_snapshot` of ``snapshot``, in its order)."""
    positions, values = value_at_risk_draws(bundle.models.clv, snapshot, table["value_at_risk"].to_numpy(dtype=float),
                                            snapshot["bgnbd_clv"].to_numpy(dtype=float))
    column = np.full(len(table), None, dtype=object)
    for position, row in zip(positions.tolist(), values):
        column[position] = row
    return column
