"""Training end to end: fit at ``as_of − horizon``, backtest on what followed, refit at ``as_of``.

The registered bundle is the refit; its recorded metrics are those of the held-out run, which was
fitted with the same settings on data that ended one horizon earlier.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Protocol

import numpy as np
import pandas as pd

from churnclv.contract import ChurnclvError, first_line
from churnclv.contract.columns import RFM_COLUMNS, TRANSACTION_REQUIRED
from churnclv.contract.dates import as_of_day, iso, until
from churnclv.contract.defaults import CLV_HORIZON_DAYS, DISCOUNT_RATE, HORIZON_DAYS
from churnclv.features import Encoded, build_features, encode, make_labels
from churnclv.features.events import event_coverage
from churnclv.features.tracking import Tracking, tracking
from churnclv.scoring.bundle import (
    CHURN_METHODS,
    PURCHASE_METHODS,
    RANKED_BY,
    ChurnCLVBundle,
    Models,
    Predicted,
    expected_purchases,
)
from churnclv.scoring.clock import CLOCK_COLUMN
from churnclv.scoring.clv import INTERVAL_LEVEL
from churnclv.scoring.drift import model_inputs, reference
from churnclv.scoring.intervals import population_forecast
from churnclv.scoring.segments import Policy
from churnclv.scoring.snapshot import with_clv
from churnclv.training.backtest import churn_metrics, forecast_metrics, purchase_metrics
from churnclv.training.choice import (
    CONCENTRATED_SHARE,
    MIN_ORIGIN_HISTORY_DAYS,
    MIN_OUTCOME,
    SIMPLE,
    Judging,
    calendar_concentration,
    can_judge,
    choose_level,
    choose_ranking,
    clock_verdict,
    daily_purchases,
    is_concentrated,
    outcome_counts,
    plan_judging,
    rank_calibration,
    told_apart,
)
from churnclv.training.churn import (
    BoostSettings,
    CutoffPlan,
    TrainingError,
    cutoff_plan,
    fit_churn,
    fit_purchases,
    fit_rfm_logistic,
    sample_customers,
)
from churnclv.training.clock import fit_clocked
from churnclv.training.clv import CLVModel
from churnclv.training.eligibility import Eligibility, Gate, check
from churnclv.training.mle import CLVFitError
from churnclv.training.season import Season, season_ahead, season_on_clock

log = logging.getLogger("churnclv.training")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (logged to MLflow as parameters)."""

    horizon_days: int = HORIZON_DAYS
    clv_horizon_days: int = CLV_HORIZON_DAYS
    discount_rate: float = DISCOUNT_RATE
    time_unit_days: float = 7.0
    interval_level: float = INTERVAL_LEVEL  # every interval's central probability (scoring.intervals)
    max_total_error_pct: float = 10.0
    plan: CutoffPlan = CutoffPlan()
    boost: BoostSettings = BoostSettings()
    policy: Policy = Policy()

    def __post_init__(self):
        if self.horizon_days <= 0:
            raise ValueError(f"horizon_days must be a positive number of days, not {self.horizon_days}")

    def flat(self) -> dict:
        """Parameters as a flat dict for logging."""
        out = {}
        for key, value in asdict(self).items():
            if isinstance(value, dict):
                out.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                out[key] = value
        return out

    def clv_model(self) -> CLVModel:
        return CLVModel(
            time_unit_days=self.time_unit_days,
            discount_rate=self.discount_rate,
            clv_horizon_days=self.clv_horizon_days,
            interval_level=self.interval_level,
        )


@dataclass
class Fit:
    """The models fitted at one as-of day (what the bundle scores with) and what only training needs."""

    models: Models
    table: pd.DataFrame  # the as-of snapshot (features + BG/NBD outputs) the fit was made on
    rfm_logistic: object | None = None  # the baseline the backtest compares with
    cutoffs: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # how this fit degraded, one line each
    predicted: Predicted | None = None  # the LightGBM outputs on ``table``, computed once for every use


@dataclass
class TrainResult:
    bundle: ChurnCLVBundle
    metrics: dict[str, dict[str, float]]
    backtest: pd.DataFrame
    backtest_fit: Fit
    fingerprint: dict


def fingerprint(transactions: pd.DataFrame) -> dict:
    """Rows, customers, date range and an order-independent hash of the transactions."""
    return fingerprint_of([fingerprint_part(transactions)])


def fingerprint_part(transactions: pd.DataFrame) -> dict:
    """What :func:`fingerprint` reads of some rows; parts holding disjoint customers add up (:func:`fingerprint_of`)."""
    hashed = pd.util.hash_pandas_object(transactions[list(TRANSACTION_REQUIRED)], index=False)
    return {"rows": len(transactions), "customers": int(transactions["customer_id"].nunique()),
            "first": transactions["timestamp"].min(), "last": transactions["timestamp"].max(),
            "hash_sum": int(hashed.to_numpy().sum())}


def fingerprint_of(parts: list[dict]) -> dict:
    """The :func:`fingerprint` of the union of :func:`fingerprint_part` parts of disjoint customers."""
    parts = [p for p in parts if p["rows"]] or parts[:1]
    digest = hashlib.sha256(np.uint64(sum(p["hash_sum"] for p in parts) % 2**64).tobytes()).hexdigest()[:16]
    return {
        "rows": sum(p["rows"] for p in parts),
        "customers": sum(p["customers"] for p in parts),
        "first_day": f"{min(p['first'] for p in parts):%Y-%m-%d}",
        "last_day": f"{max(p['last'] for p in parts):%Y-%m-%d}",
        "hash": digest,
    }


def stacked_snapshots(
    transactions: pd.DataFrame | Encoded, *, cutoffs: list[pd.Timestamp], config: TrainConfig,
    progress: Progress | None = None, events: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[dict]]:
    """Labelled snapshots at ``cutoffs``, stacked (oldest first), and the cutoffs whose CLV fit failed.

    The CLV model of each snapshot is fitted on the data up to that cutoff only (on every customer). A
    cutoff where the data cannot identify it keeps its features with the ``bgnbd_`` columns missing
    (LightGBM handles them). Large snapshots are sampled, stratified and weighted
    (:func:`training.churn.sample_customers`), so memory stays bounded however many customers there are.
    ``events``: the touchpoint features of each snapshot come from the events up to its cutoff.
    """
    enc = encode(transactions)  # once for every cutoff
    frames, degraded = [], []
    for cutoff in cutoffs:
        if progress:
            progress(f"snapshot {cutoff:%Y-%m-%d}")
        features = build_features(enc, as_of=cutoff, events=events)
        try:
            clv = config.clv_model().fit(features)
        except CLVFitError as exc:
            clv = None
            degraded.append({"cutoff": iso(cutoff), "reason": str(exc)})
        labels = make_labels(enc, as_of=cutoff, horizon_days=config.horizon_days)
        labelled = features.join(labels, how="left")
        sampled = sample_customers(labelled, max_rows=config.boost.max_rows_per_cutoff,
                                   seed=config.boost.seed + cutoff.toordinal())
        frames.append(with_clv(sampled, clv=clv, horizon_days=config.horizon_days).assign(cutoff=cutoff))
    return pd.concat(frames), degraded


class Log(Protocol):
    """A transaction log and the per-customer work of training on it. :class:`InMemoryLog` does it on one
    frame here; ``training.partitioned.PartitionedLog`` on customer partitions of a Dask cluster, where
    the fits get what the cluster reduces (CLV counts) and gathers (as-of tables, sampled snapshots)."""

    def until(self, as_of: pd.Timestamp) -> Log: ...
    def first_day(self) -> pd.Timestamp: ...
    def eligibility(self, *, as_of: pd.Timestamp, config: TrainConfig) -> Eligibility: ...
    def snapshot(self, *, as_of: pd.Timestamp, config: TrainConfig) -> tuple[pd.DataFrame, CLVModel]: ...
    def season(self, *, as_of: pd.Timestamp, config: TrainConfig, flat: bool = False) -> Season: ...
    def stacked(self, *, cutoffs: list[pd.Timestamp], config: TrainConfig,
                progress: Progress | None = None) -> tuple[pd.DataFrame, list[dict]]: ...
    def labels(self, *, as_of: pd.Timestamp, horizon_days: int) -> pd.DataFrame: ...
    def daily_purchases(self, *, as_of: pd.Timestamp) -> pd.Series: ...
    def tracking(self, *, as_of: pd.Timestamp) -> Tracking: ...
    def scores(self, bundle: ChurnCLVBundle, *, as_of: pd.Timestamp) -> pd.DataFrame: ...
    def fingerprint(self) -> dict: ...


@dataclass(frozen=True)
class InMemoryLog:
    """:class:`Log` of one canonical frame, encoded once (lazily) for every step of a fit, and the customers'
    canonical events (touchpoints) if there are any."""

    transactions: pd.DataFrame
    events: pd.DataFrame | None = None

    @cached_property
    def enc(self) -> Encoded:
        return encode(self.transactions)

    def until(self, as_of: pd.Timestamp) -> InMemoryLog:
        """The log up to ``as_of``: this one (its encoding kept) when no row is later."""
        kept = until(self.transactions, as_of)
        events = None if self.events is None else until(self.events, as_of)
        unchanged = len(kept) == len(self.transactions) and (events is None or len(events) == len(self.events))
        return self if unchanged else InMemoryLog(kept, events)

    def without_events(self) -> InMemoryLog:
        return InMemoryLog(self.transactions)

    def first_day(self) -> pd.Timestamp:
        return self.transactions["timestamp"].min().normalize()

    def eligibility(self, *, as_of: pd.Timestamp, config: TrainConfig) -> Eligibility:
        return check(self.transactions, as_of=as_of, horizon_days=config.horizon_days,
                     snapshot_history_days=config.plan.min_history_days)

    def snapshot(self, *, as_of: pd.Timestamp, config: TrainConfig) -> tuple[pd.DataFrame, CLVModel]:
        features = build_features(self.enc, as_of=as_of, events=self.events)
        clv = config.clv_model().fit(features)
        return with_clv(features, clv=clv, horizon_days=config.horizon_days), clv

    def season(self, *, as_of: pd.Timestamp, config: TrainConfig, flat: bool = False) -> Season:
        return season_ahead(self.enc, as_of=as_of, horizon_days=config.horizon_days,
                            min_history_days=config.plan.min_history_days, clv_model=config.clv_model, flat=flat)

    def stacked(self, *, cutoffs: list[pd.Timestamp], config: TrainConfig,
                progress: Progress | None = None) -> tuple[pd.DataFrame, list[dict]]:
        return stacked_snapshots(self.enc, cutoffs=cutoffs, config=config, progress=progress, events=self.events)

    def labels(self, *, as_of: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
        return make_labels(self.enc, as_of=as_of, horizon_days=horizon_days)

    def daily_purchases(self, *, as_of: pd.Timestamp) -> pd.Series:
        return daily_purchases(self.transactions, as_of=as_of)

    def tracking(self, *, as_of: pd.Timestamp) -> Tracking:
        return tracking(self.enc, as_of=as_of)

    def scores(self, bundle: ChurnCLVBundle, *, as_of: pd.Timestamp) -> pd.DataFrame:
        return bundle.score(self.transactions, as_of=as_of, events=self.events)

    def fingerprint(self) -> dict:
        return fingerprint(self.transactions)


def as_log(transactions: pd.DataFrame | Log, events: pd.DataFrame | None = None) -> Log:
    """A canonical frame (and its events) as an :class:`InMemoryLog`; a :class:`Log` as it is (events only
    go with a frame: the Dask path does not read them yet)."""
    if isinstance(transactions, pd.DataFrame):
        return InMemoryLog(transactions, events)
    if events is not None:
        raise ChurnclvError("events are read in one process only: leave out --events or --dask")
    return transactions


def concentrated(log: Log, *, as_of: pd.Timestamp) -> bool:
    """Whether the log up to ``as_of`` buys in a few weeks of the year (:func:`training.choice.is_concentrated`)."""
    return is_concentrated(log.daily_purchases(as_of=as_of), history_days=(as_of - log.first_day()).days)


def _cutoffs(transactions: pd.DataFrame | Log, *, as_of: pd.Timestamp, config: TrainConfig) -> tuple[list, str]:
    """The stacked cutoffs for a fit at ``as_of`` (the same season of earlier years for a log concentrated in
    time), or ([], why) when the history is too short for one."""
    cutoffs, kind = _plan(transactions, as_of=as_of, config=config)
    return cutoffs, ("" if cutoffs else kind)


def _plan(transactions: pd.DataFrame | Log, *, as_of: pd.Timestamp, config: TrainConfig) -> tuple[list, str]:
    """(the stacked cutoffs, "seasonal" | "plain") of a fit at ``as_of``, or ([], why there are none)."""
    log = as_log(transactions)
    try:
        return cutoff_plan(as_of=as_of, first_day=log.first_day(), horizon_days=config.horizon_days,
                           plan=config.plan, seasonal=concentrated(log, as_of=as_of))
    except TrainingError as exc:
        return [], str(exc)


def stacking(log: Log, *, as_of: pd.Timestamp, config: TrainConfig) -> str:
    """How a fit at ``as_of`` stacks its snapshots: "seasonal", "plain" or "" (none: BG/NBD alone). A fit
    judges the candidates of a fit at another day only when both stack alike."""
    cutoffs, kind = _plan(log, as_of=as_of, config=config)
    return kind if cutoffs else ""


def fit_models(
    transactions: pd.DataFrame | Log, *, as_of: pd.Timestamp, config: TrainConfig, progress: Progress | None = None
) -> Fit:
    """Fit the CLV model at ``as_of`` and the churn/purchase models on stacked past snapshots.

    Without history for one snapshot, or when every snapshot had the same outcome, the BG/NBD model
    alone gives churn (P(no purchase in the horizon)) and purchases, and ``notes`` says so.
    """
    visible = as_log(transactions).until(as_of)  # in memory: encoded once for as_of, the season and every snapshot
    if progress:
        progress(f"CLV model at {as_of:%Y-%m-%d}")
    current, clv = visible.snapshot(as_of=as_of, config=config)
    clocked, clock = fit_clocked(visible.tracking(as_of=as_of), current, as_of=as_of, clv=clv,
                                 clv_model=config.clv_model)
    # a log tested for a season that shows none measures BG/NBD's level on the latest window, one with a seasonal
    # clock measures it on the clock (training.season); buying concentrated in a few weeks keeps the calendar's
    steady = (clock.flat or clocked is not None) and not concentrated(visible, as_of=as_of)
    season = visible.season(as_of=as_of, config=config, flat=clock.flat and steady)
    if clocked is not None and steady:
        season = season_on_clock(season, clocked, now=current, as_of=as_of, horizon_days=config.horizon_days,
                                 features=lambda cutoff: visible.snapshot(as_of=cutoff, config=config)[0],
                                 first_day=visible.first_day(), clv_model=config.clv_model)
    notes = [f"CLV at {as_of:%Y-%m-%d}: {w}" for w in clv.fit_report_["warnings"]] + ([season.note] if season.note else [])
    if clocked is not None:  # a column of the as-of table only: the stacked snapshots (the boosters' inputs) lack it
        current = current.assign(**{CLOCK_COLUMN: clocked.p_no_purchase(current, as_of=as_of,
                                                                        horizon_days=config.horizon_days)})
        notes.append(f"{clock.note} (as of {as_of:%Y-%m-%d})")
    cutoffs, why = _cutoffs(visible, as_of=as_of, config=config)
    stacked, degraded = (visible.stacked(cutoffs=cutoffs, config=config, progress=progress)
                         if cutoffs else (None, []))
    notes += [f"snapshot {d['cutoff']}: BG/NBD features missing ({d['reason']})" for d in degraded]
    if stacked is not None and stacked["churned"].nunique() < 2:
        stacked, why = None, "every customer in the training snapshots had the same outcome"
    if stacked is None:
        notes.append(f"BG/NBD alone for churn and purchases at {as_of:%Y-%m-%d}: {why}")
        return Fit(Models(as_of=as_of, horizon_days=config.horizon_days, clv=clv, churn=None, purchases=None,
                          clocked=clocked, **season.fields()),
                   current, notes=notes)
    if progress:
        progress("LightGBM churn and purchase models")
    purchases = fit_purchases(stacked, settings=config.boost, horizon_days=config.horizon_days)
    churn = fit_churn(stacked, settings=config.boost, horizon_days=config.horizon_days)
    predicted = Predicted(churn=churn.predict_proba(current), purchases=purchases.predict(current))
    lightgbm_total, bgnbd_total = float(predicted.purchases.sum()), float(current["bgnbd_expected_purchases"].sum())
    models = Models(
        as_of=as_of,
        horizon_days=config.horizon_days,
        clv=clv,
        churn=churn,
        purchases=purchases,
        **season.fields(),
        poisson_scale=bgnbd_total / lightgbm_total if min(lightgbm_total, bgnbd_total) > 0 else 1.0,
        clocked=clocked,
    )
    return Fit(models, current, rfm_logistic=fit_rfm_logistic(stacked), cutoffs=sorted(stacked["cutoff"].unique()),
               notes=notes, predicted=predicted)


def choose_purchases_method(errors: dict[str, dict[str, float]], *, max_total_error_pct: float) -> str:
    """The forecast that fills ``expected_purchases``, judged on the backtest.

    Among the methods whose total purchases are within ``max_total_error_pct`` of what happened (the
    figure a business plans with), the best per customer by Poisson deviance (MAE would reward
    forecasting that nobody buys); if none is within, the one with the smallest total error.
    """
    total = {m: abs(e["purchases_total_error_pct"]) for m, e in errors.items()}
    within = [m for m in errors if total[m] <= max_total_error_pct]
    if within:
        return min(within, key=lambda m: errors[m]["purchases_poisson_deviance"])
    return min(errors, key=total.get)


@dataclass(frozen=True)
class Evaluation:
    """What the judging window said of a backtest fit, and what it chose to ship."""

    metrics: dict[str, dict[str, float]]  # model -> metric -> value ("model": what ships, whichever it is)
    backtest: pd.DataFrame  # per customer: the shipped scores, the baselines' and what happened
    purchases_method: str
    churn_method: str
    churn_calibration: tuple[float, float] | None
    rankings: dict[str, float]  # every candidate churn ranking's AUC on the window
    notes: tuple[str, ...] = ()  # the level's choice; what the window could not tell apart (choice.told_apart)
    purchases_level: str = "bgnbd"  # the total level that ships (training.choice.LEVELS)


def rankings(fit: Fit) -> dict[str, np.ndarray]:
    """Every churn ranking of a fit's table (higher = more likely to buy nothing): the shippable ones of
    ``scoring.bundle.CHURN_METHODS`` the models can make, and the RFM logistic baseline (measured only)."""
    models, table = fit.models, fit.table
    out = {"bgnbd": table["bgnbd_p_no_purchase"].to_numpy(dtype=float),
           "bgnbd_expected": -expected_purchases(models, table, "bgnbd")}
    if models.clocked is not None:
        out["bgnbd_clock"] = table[CLOCK_COLUMN].to_numpy(dtype=float)
    if models.purchases is not None:
        out["lightgbm_poisson"] = -expected_purchases(models, table, "lightgbm_poisson", predicted=fit.predicted)
    if models.churn is not None:
        out["lightgbm"] = fit.predicted.churn if fit.predicted is not None else models.churn.predict_proba(table)
    if fit.rfm_logistic is not None:
        out["rfm_logistic"] = fit.rfm_logistic.predict_proba(table[list(RFM_COLUMNS)].clip(lower=0))[:, 1]
    return out


def evaluate(fit: Fit, transactions: pd.DataFrame | Log, *, origin: pd.Timestamp, config: TrainConfig,
             judged: bool = True, simple: tuple[pd.Timestamp, Fit] | None = None,
             ship: tuple[str, ...] = CHURN_METHODS) -> Evaluation:
    """Score the backtest models at ``origin`` (the day they were fitted at, whose snapshot they hold) and
    compare with what happened in the next horizon.

    On a window that can judge (``judged``, :func:`training.choice.can_judge`) the purchase forecast and the
    churn ranking that ship are chosen there (:func:`choose_purchases_method`,
    :func:`training.choice.choose_ranking`); on one that cannot, nothing is chosen on its metrics: BG/NBD ships.
    ``simple``: the origin and fit of a second window where the simple rankings are chosen
    (:attr:`training.choice.Judging.simple`). ``ship``: the rankings that may ship (the simple ones only
    where this fit stacks its snapshots unlike the fit that ships: :func:`stacking`).
    """
    table, plain = fit.table, fit.models
    log = as_log(transactions)
    actual = log.labels(as_of=origin, horizon_days=config.horizon_days).reindex(table.index)
    y = actual["churned"].to_numpy(dtype=float)
    level, level_note = judged_level(fit, actual["purchases"]) if judged else ("bgnbd", "")
    fit = leveled(fit, level)  # every figure of the window below on the level that ships
    models = fit.models
    errors = {
        m: purchase_metrics(pd.Series(expected_purchases(models, table, m, predicted=fit.predicted), index=table.index),
                            actual["purchases"])
        for m in models.purchase_methods
    }
    method = choose_purchases_method(errors, max_total_error_pct=config.max_total_error_pct) if judged else "bgnbd"
    candidates = rankings(fit)
    second = None
    if simple is not None:
        simple_origin, simple_fit = simple
        outcome = log.labels(as_of=simple_origin, horizon_days=config.horizon_days).reindex(simple_fit.table.index)
        second = (outcome["churned"].to_numpy(dtype=float), rankings(simple_fit))
    churn_method, aucs = choose_ranking(y, candidates, simple=second, ship=ship)
    churn_method = churn_method if judged else "bgnbd"
    # the simple rankings were compared on the season's window where it chose them, the others on this one
    where = second if second is not None and churn_method in SIMPLE and churn_method in second[1] else (y, candidates)
    rivals = [m for m in (SIMPLE if where is second else ship) if m in CHURN_METHODS]
    close = told_apart(*where, chosen=churn_method, rivals=rivals) if judged else ""
    calibration = (rank_calibration(y, -candidates[churn_method]) if churn_method in RANKED_BY else None)
    scored = ChurnCLVBundle(models=models, purchases_method=method, policy=config.policy, churn_method=churn_method,
                            churn_calibration=calibration).values(table, predicted=fit.predicted)
    scored["rfm_logistic"] = candidates.get("rfm_logistic", np.nan)
    metrics = {
        "model": {
            **churn_metrics(y, scored["churn_probability"].to_numpy()),
            **errors[method],
            **forecast_metrics(scored["expected_spend"], actual["spend"], name="spend"),
            **{f"purchases_{k}.{m}": errors[m][f"purchases_{k}"] for m in PURCHASE_METHODS
               for k in ("total_error_pct", "mae", "poisson_deviance") if m in errors},
            **{f"roc_auc.{m}": auc for m, auc in aucs.items() if "@" not in m},
        },
        "bgnbd": {
            **churn_metrics(y, candidates["bgnbd"]),
            **purchase_metrics(pd.Series(expected_purchases(plain, table, "bgnbd"), index=table.index),
                               actual["purchases"]),
            **forecast_metrics(table["bgnbd_expected_spend"], actual["spend"], name="spend"),
        },
        "rfm_logistic": churn_metrics(y, candidates["rfm_logistic"]) if "rfm_logistic" in candidates else {},
    }
    backtest = scored.join(actual[["purchases", "spend", "churned"]].add_prefix("actual_")).join(
        table[["frequency", "recency", "T", "bgnbd_p_no_purchase", "bgnbd_expected_purchases"]]
    )
    notes = tuple(n for n in (level_note, close) if n)
    return Evaluation(metrics, backtest, method, churn_method, calibration, aucs, notes, purchases_level=level)


def judged_level(fit: Fit, purchases: pd.Series) -> tuple[str, str]:
    """The total level a fit's judging window chose (:func:`training.choice.choose_level`) and why, from the
    purchases each customer made there."""
    models = fit.models
    bgnbd = float(expected_purchases(models, fit.table, "bgnbd").sum())
    return choose_level(actual=float(purchases.sum()), bgnbd=bgnbd,
                        lightgbm=bgnbd * models.own_level if models.purchases is not None else None,
                        season_seen=models.season_seen)


def window_metrics(bundle: ChurnCLVBundle, transactions: pd.DataFrame | Log, *, origin: pd.Timestamp,
                   horizon_days: int) -> dict[str, float]:
    """Churn AUC and total purchases error of any bundle scored at ``origin`` on the next ``horizon_days``
    (the gate's measure: it scores the champion on a challenger's judging window)."""
    log = as_log(transactions)
    scores = log.scores(bundle, as_of=origin).set_index("customer_id")
    actual = log.labels(as_of=origin, horizon_days=horizon_days).reindex(scores.index)
    churn = churn_metrics(actual["churned"].to_numpy(dtype=float), scores["churn_probability"].to_numpy())
    purchases = forecast_metrics(scores["expected_purchases"], actual["purchases"], name="purchases")
    return {"model.roc_auc": churn["roc_auc"],
            "model.purchases_total_error_pct": purchases["purchases_total_error_pct"]}


def refitted(bundle: ChurnCLVBundle, log: Log, *, as_of: pd.Timestamp, config: TrainConfig) -> ChurnCLVBundle:
    """``bundle``'s choices (purchase forecast, churn ranking and its calibration, policy) on models fitted at
    ``as_of``: what the same training would have shipped then, to judge it on a window after ``as_of``."""
    fit = leveled(fit_models(log, as_of=as_of, config=config), bundle.metadata.get("purchases_level", "bgnbd"))
    return ChurnCLVBundle(models=fit.models, policy=bundle.policy, purchases_method=bundle.purchases_method,
                          churn_method=bundle.churn_method, churn_calibration=bundle.churn_calibration,
                          metadata={k: v for k, v in bundle.metadata.items() if k == "events"})


def leveled(fit: Fit, level: str) -> Fit:
    """``fit`` with the total level a judging window chose (:data:`training.choice.LEVELS`)."""
    return replace(fit, models=replace(fit.models, level_factor=fit.models.own_level)) if level == "lightgbm" else fit


def eligibility(transactions: pd.DataFrame | Log, *, as_of: pd.Timestamp, config: TrainConfig) -> Eligibility:
    """The eligibility report of a training run at ``as_of`` (see :mod:`training.eligibility`), with the gates
    on judging (:func:`window_gates`) where the required gates pass."""
    log = as_log(transactions).until(as_of)
    report = log.eligibility(as_of=as_of, config=config)
    if report.failed:
        return report
    return report.plus(*window_gates(log, judging(log, as_of=as_of, config=config), as_of=as_of, config=config))


def planned_steps(transactions: pd.DataFrame | Log, *, as_of: pd.Timestamp, config: TrainConfig,
                  events: bool = False) -> int:
    """How many progress steps :func:`train` reports (snapshots of each fit, plus 2 model steps each; with
    ``events`` the backtest's fits twice, with and without them)."""
    log = as_log(transactions).until(as_of)
    plan = judging(log, as_of=as_of, config=config)
    latest = as_of - pd.Timedelta(days=config.horizon_days)
    backtests = [plan.window.origin or latest] + ([plan.simple.origin] if plan.simple else [])
    origins = backtests * (2 if events else 1) + [as_of]
    return sum(len(_cutoffs(log, as_of=o, config=config)[0]) + 2 for o in origins)


def train(
    transactions: pd.DataFrame | Log, *, as_of: pd.Timestamp, config: TrainConfig = TrainConfig(),
    progress: Progress | None = None, events: pd.DataFrame | None = None
) -> TrainResult:
    """Backtest on the judging window before ``as_of`` (:func:`judging`), then refit on everything up to ``as_of``.

    ``events`` (canonical touchpoints): the churn and purchase models learn from their features too, and the
    same backtest without them is recorded beside (``metadata["without_events"]``)."""
    as_of = pd.Timestamp(as_of_day(as_of))
    visible = as_log(transactions, events).until(as_of)
    report = visible.eligibility(as_of=as_of, config=config)
    report.raise_if_failed()
    plan = judging(visible, as_of=as_of, config=config)
    gates = report.plus(*window_gates(visible, plan, as_of=as_of, config=config))
    origin, backtest_fit, judged = backtest(visible, plan, as_of=as_of, config=config, progress=progress)
    without = None
    if events is not None:
        without = backtest(InMemoryLog(visible.transactions), plan, as_of=as_of, config=config, progress=progress)[2]
    final = leveled(fit_models(visible, as_of=as_of, config=config, progress=progress), judged.purchases_level)
    shipped = dict(purchases_method=judged.purchases_method, churn_method=judged.churn_method,
                   churn_calibration=judged.churn_calibration)
    trial = ""
    if final.models.clocked is not None and "bgnbd_clock" not in judged.rankings and judged.churn_method in SIMPLE:
        wins, trial = clock_trial(visible, as_of=as_of, config=config, against=judged.churn_method,
                                  judged_at=origin)
        shipped |= dict(churn_method="bgnbd_clock", churn_calibration=None) if wins else {}
    current = ChurnCLVBundle(models=final.models, policy=config.policy, **shipped).values(
        final.table, predicted=final.predicted)
    data_print = visible.fingerprint()
    metadata = {
        "as_of": iso(as_of),
        "horizon_days": config.horizon_days,
        "backtest_origin": iso(origin),
        "judging_window": plan.describe(config.horizon_days),
        "purchases_method": judged.purchases_method,
        "purchases_level": judged.purchases_level,
        "churn_method": shipped["churn_method"],
        "churn_rankings": judged.rankings,
        "metrics": judged.metrics["model"],
        "baselines": {k: v for k, v in judged.metrics.items() if k != "model"},
        "cutoffs": [iso(c) for c in final.cutoffs],
        "features": list(final.models.churn.features) if final.models.churn is not None else [],
        "data": data_print,
        "drift_reference": reference(final.table, features=model_inputs(final.models)),  # scoring.drift
        "clv_fit": final.models.clv.fit_report_,
        "population": population_forecast(final.models, final.table).to_dict(),  # totals with their interval
        "eligibility": gates.to_dict(),
        "notes": gates.warnings + [f"backtest: {n}" for n in backtest_fit.notes] + final.notes + list(judged.notes)
        + ([trial] if trial else []),
    }
    if without is not None:
        metadata["events"] = event_coverage(visible.events, as_of=as_of, customers=final.table.index)
        metadata["without_events"] = {"churn_method": without.churn_method, "metrics": without.metrics["model"],
                                      "churn_rankings": without.rankings}
    bundle = ChurnCLVBundle(models=final.models, policy=config.policy.fit(current), metadata=metadata, **shipped)
    log.info("trained: %s cutoffs, purchases by %s, churn by %s", len(final.cutoffs), judged.purchases_method,
             shipped["churn_method"])
    metrics = judged.metrics | ({"without_events": without.metrics["model"]} if without is not None else {})
    return TrainResult(bundle=bundle, metrics=metrics, backtest=judged.backtest, backtest_fit=backtest_fit,
                       fingerprint=data_print)


def clock_trial(log: Log, *, as_of: pd.Timestamp, config: TrainConfig, against: str,
                judged_at: pd.Timestamp) -> tuple[bool, str]:
    """Where the fit at ``as_of`` has a seasonal clock and the judging fit (at ``judged_at``) had none (too young a
    log there): whether BG/NBD on the clock ranks the horizon before ``as_of`` better than ``against``, the simple
    ranking the judging window chose (:func:`training.choice.clock_verdict`), and a line saying so."""
    origin = as_of - pd.Timedelta(days=config.horizon_days)
    if origin == judged_at:  # that very fit had no clock: fitting it again would find none
        return False, f"seasonal clock not shipped: the judging fit at {iso(origin)} had none to judge it by"
    labels = log.labels(as_of=origin, horizon_days=config.horizon_days)
    why = can_judge(labels) if origin - log.first_day() >= pd.Timedelta(days=MIN_ORIGIN_HISTORY_DAYS) else \
        "too little history before it"
    if not why:
        try:
            table, clv = log.snapshot(as_of=origin, config=config)
        except CLVFitError as exc:
            why = f"no BG/NBD fit there: {first_line(exc)}"
    if why:
        return False, f"seasonal clock not shipped: the horizon before the as-of day cannot judge it ({why})"
    clocked, clock = fit_clocked(log.tracking(as_of=origin), table, as_of=origin, clv=clv, clv_model=config.clv_model)
    if clocked is None:
        return False, f"seasonal clock not shipped: a fit at {iso(origin)} has none to judge it by ({clock.note})"
    y = labels.reindex(table.index)["churned"].to_numpy(dtype=float)
    scores = {"bgnbd": table["bgnbd_p_no_purchase"].to_numpy(dtype=float),
              "bgnbd_expected": -table["bgnbd_expected_purchases"].to_numpy(dtype=float),
              "bgnbd_clock": clocked.p_no_purchase(table, as_of=origin, horizon_days=config.horizon_days)}
    return clock_verdict(y, scores, against=against, window=f"{iso(origin)} + {config.horizon_days} days")


def backtest(log: Log, plan: Judging, *, as_of: pd.Timestamp, config: TrainConfig,
             progress: Progress | None = None) -> tuple[pd.Timestamp, Fit, Evaluation]:
    """Fit on the judging window(s) of a run at ``as_of`` (``plan``: :func:`judging`) and choose what ships:
    (the backtest origin, the backtest fit, its :class:`Evaluation`). Without a window that can judge, the fit
    is at ``as_of − horizon`` and nothing is chosen on its metrics."""
    origin = plan.window.origin if plan.window.origin is not None else as_of - pd.Timedelta(days=config.horizon_days)
    fit = fit_models(log, as_of=origin, config=config, progress=progress)
    simple = None
    if plan.simple is not None:  # the season a year earlier: too little history there for the other candidates
        simple = (plan.simple.origin, fit_models(log, as_of=plan.simple.origin, config=config, progress=progress))
    alike = stacking(log, as_of=origin, config=config) == stacking(log, as_of=as_of, config=config)
    judged = evaluate(fit, log, origin=origin, config=config, judged=plan.window.origin is not None,
                      simple=simple, ship=CHURN_METHODS if alike else SIMPLE)
    return origin, fit, judged


def judging(log: Log, *, as_of: pd.Timestamp, config: TrainConfig) -> Judging:
    """Where the run chooses (:func:`training.choice.plan_judging`): the same season a year earlier when a fit
    there has every candidate; else the latest window that can judge, with the simple rankings chosen on the
    season a year earlier where that window can judge them."""
    kind = stacking(log, as_of=as_of, config=config)
    return plan_judging(as_of=as_of, first_day=log.first_day(), horizon_days=config.horizon_days,
                        labels=lambda o: log.labels(as_of=o, horizon_days=config.horizon_days),
                        full_at=lambda o: not kind or stacking(log, as_of=o, config=config) == kind)


def window_gates(log: Log, plan: Judging, *, as_of: pd.Timestamp, config: TrainConfig) -> tuple[Gate, ...]:
    """The eligibility report's gates on judging: how concentrated in time the log is, and whether the window
    just before ``as_of`` can judge; each names what the run did instead."""
    share = calendar_concentration(log.daily_purchases(as_of=as_of))
    backtest = as_of - pd.Timedelta(days=config.horizon_days)
    rare = outcome_counts(log.labels(as_of=backtest, horizon_days=config.horizon_days)) \
        if backtest - log.first_day() >= pd.Timedelta(days=MIN_ORIGIN_HISTORY_DAYS) else 0
    instead = plan.describe(config.horizon_days)
    return (
        Gate("share of a year's purchases in its busiest 4 weeks", share, CONCENTRATED_SHARE, False, False,
             "Buying is concentrated in a few weeks of the year: the stacked snapshots come from the same season "
             "of earlier years where the history holds it."),
        Gate("customers of the rarer outcome in the horizon before as-of", rare, MIN_OUTCOME, True, False,
             f"That window cannot judge a churn ranking: {instead}."),
    )
