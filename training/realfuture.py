"""Judge a model on the real future: train on the data up to an as-of day, compare with what happened next.

``churnclv train`` reports metrics on the horizon *before* its as-of day, the same window the purchase
forecast is chosen on (in-sample for that choice). Here the model is trained exactly as ``train`` does on
the rows on or before ``as_of`` and then judged on the window ``(as_of, as_of + horizon_days]``, which it
never saw, beside two baselines fitted on the same cut:

- ``lifetimes_bgnbd``: lifetimes' own ``BetaGeoFitter`` (penalizer 0) and ``GammaGammaFitter`` on the RFM
  table at ``as_of`` in days; churn score = P(no purchase in the window), purchases = lifetimes'
  conditional expectation, spend = purchases x Gamma-Gamma expected spend per purchase;
- ``rfm_logistic``: a logistic regression on log1p(frequency, recency, T, monetary_value) trained on the
  features at ``as_of - horizon_days`` with their outcomes in ``(as_of - horizon_days, as_of]``.

Only the actuals read rows after ``as_of``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from churnclv.contract import ChurnclvError, first_line
from churnclv.contract.columns import RFM_COLUMNS
from churnclv.contract.dates import as_of_day, iso, until
from churnclv.contract.defaults import HORIZON_DAYS
from churnclv.features import build_features, make_labels
from churnclv.scoring.btyd import bgnbd_p_no_purchase
from churnclv.training.backtest import churn_metrics, forecast_metrics, interval_coverage, purchase_metrics
from churnclv.training.churn import fit_rfm_logistic
from churnclv.training.pipeline import TrainConfig, planned_steps, train

Progress = Callable[[str], None]

MODELS = ("churnclv", "bgnbd", "bgnbd_expected", "bgnbd_clock", "lifetimes_bgnbd", "lifetimes_expected",
          "rfm_logistic")
MODEL_LABELS = {"churnclv": "churnclv", "bgnbd": "BG/NBD P(none)", "bgnbd_expected": "BG/NBD E[buys]",
                "bgnbd_clock": "BG/NBD on the clock", "lifetimes_bgnbd": "lifetimes BG/NBD",
                "lifetimes_expected": "lifetimes E[buys]", "rfm_logistic": "RFM logistic"}
#: Candidates only some logs have (the seasonal clock: ``scoring.clock``); NaN, and not shown, where absent.
OPTIONAL_MODELS = ("bgnbd_clock",)
#: The simple BG/NBD rankings (churnclv's own fit and lifetimes'): churnclv must rank at least as well as the
#: best of them. ``*_expected`` ranks by fewest expected purchases in the window (a ranking, not a probability).
SIMPLE_RANKINGS = ("bgnbd", "bgnbd_expected", "lifetimes_bgnbd", "lifetimes_expected")
RANK_KEYS = ("roc_auc", "pr_auc", "lift_top_decile")
CHURN_KEYS = (*RANK_KEYS, "brier", "calibration_error")
PURCHASE_KEYS = (
    "purchases_total_error_pct", "purchases_mae", "purchases_spearman", "purchases_poisson_deviance",
)
SPEND_KEYS = ("spend_total_error_pct", "spend_mae", "spend_spearman")
#: churnclv's stated intervals against the window: the population's totals (level, ends) and the share of
#: customers whose purchases fell inside their own interval (absent from a bundle without intervals: NaN).
INTERVAL_KEYS = ("interval_level", "purchases_interval_low", "purchases_interval_high", "spend_interval_low",
                 "spend_interval_high", "purchases_interval_coverage")
#: The metrics each model is judged on (the RFM logistic baseline forecasts churn only).
MODEL_METRICS = {
    "churnclv": CHURN_KEYS + PURCHASE_KEYS + SPEND_KEYS + INTERVAL_KEYS,
    "bgnbd": CHURN_KEYS,
    "bgnbd_expected": RANK_KEYS,
    "bgnbd_clock": CHURN_KEYS,
    "lifetimes_bgnbd": CHURN_KEYS + PURCHASE_KEYS + SPEND_KEYS,
    "lifetimes_expected": RANK_KEYS,
    "rfm_logistic": CHURN_KEYS,
}
METRIC_KEYS = CHURN_KEYS + PURCHASE_KEYS + SPEND_KEYS + INTERVAL_KEYS
#: The columns of :meth:`Judgement.rows` and :func:`judge_many`.
ROW_COLUMNS = ("as_of", "window_end", "horizon_days", "customers", "actual_purchases", "actual_spend",
               "actual_churn_rate", "purchases_method", "churn_method", "model", *METRIC_KEYS, "note")
#: Progress steps :func:`judge` reports beyond training (scoring, two baselines).
EXTRA_STEPS = 3


class FutureNotInDataError(ChurnclvError, ValueError):
    """The transactions end before the judged window does."""


@dataclass(frozen=True)
class Judgement:
    """A model trained on the rows up to ``as_of``, judged on ``(as_of, window_end]`` beside two baselines.

    Attributes
    ----------
    as_of : the training cut (the last day the models saw, whole day included).
    horizon_days : length of the judged window in days.
    window_end : the last day of the judged window, ``as_of + horizon_days``.
    customers : customers scored (those with a purchase on or before ``as_of``).
    actual_purchases : their purchase days in the window (new customers in the window are not counted).
    actual_spend : their purchase amount in the window (returns excluded).
    actual_churn_rate : share of them without a purchase in the window.
    purchases_method : the expected-purchases forecast the trained bundle chose on its own backtest.
    churn_method : the churn ranking it chose there (``scoring.bundle.CHURN_METHODS``).
    metrics : model (one of :data:`MODELS`) -> metric -> value; NaN where the model could not be fitted.
    notes : baseline -> why it could not be fitted and its metrics are NaN (absent when it fitted).
    training_notes : what churnclv's training reported about its fits (degraded or accepted fits).
    lifetimes_params : lifetimes' fitted ``params_`` (BG/NBD r, alpha in days, a, b; Gamma-Gamma p, q, v).
    predictions : per customer (index ``customer_id``): ``actual_purchases``, ``actual_spend``,
        ``actual_churned``, ``{model}_churn`` / ``{model}_purchases`` / ``{model}_spend`` and churnclv's interval
        ``churnclv_purchases_low`` / ``_high``.
    """

    as_of: pd.Timestamp
    horizon_days: int
    window_end: pd.Timestamp
    customers: int
    actual_purchases: int
    actual_spend: float
    actual_churn_rate: float
    purchases_method: str
    churn_method: str
    metrics: dict[str, dict[str, float]]
    notes: dict[str, str] = field(default_factory=dict)
    training_notes: tuple[str, ...] = ()
    lifetimes_params: dict[str, float] = field(default_factory=dict)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def best_simple(self) -> tuple[str, float]:
        """The simple BG/NBD ranking (:data:`SIMPLE_RANKINGS`) with the highest churn AUC, and that AUC."""
        aucs = {m: self.metrics[m]["roc_auc"] for m in SIMPLE_RANKINGS if np.isfinite(self.metrics[m]["roc_auc"])}
        best = max(aucs, key=aucs.get, default="")
        return best, aucs.get(best, float("nan"))

    def rows(self) -> pd.DataFrame:
        """One row per model: the window, the actuals, every metric of :data:`METRIC_KEYS` and a note (a
        baseline's failure; churnclv's training notes)."""
        common = {
            "as_of": iso(self.as_of), "window_end": iso(self.window_end),
            "horizon_days": self.horizon_days, "customers": self.customers,
            "actual_purchases": self.actual_purchases, "actual_spend": self.actual_spend,
            "actual_churn_rate": self.actual_churn_rate, "purchases_method": self.purchases_method,
            "churn_method": self.churn_method,
        }
        notes = {**self.notes, "churnclv": "; ".join(self.training_notes)}
        return pd.DataFrame([
            {**common, "model": m, **{k: self.metrics[m].get(k, np.nan) for k in METRIC_KEYS},
             "note": notes.get(m, "")}
            for m in MODELS
        ], columns=list(ROW_COLUMNS))


# --------------------------------------------------------------------------------------------------
# The window
# --------------------------------------------------------------------------------------------------


def check_future(transactions: pd.DataFrame, *, as_of: pd.Timestamp | str, horizon_days: int) -> pd.Timestamp:
    """The last day of the judged window ``(as_of, as_of + horizon_days]``, if the data cover it.

    Raises
    ------
    FutureNotInDataError
        When the last transaction day is before the window's last day, or ``as_of`` is before the first.
    """
    as_of = pd.Timestamp(as_of_day(as_of))
    end = as_of + pd.Timedelta(days=horizon_days)
    first, last = transactions["timestamp"].min().normalize(), transactions["timestamp"].max().normalize()
    if as_of < first:
        raise FutureNotInDataError(
            f"nothing to train on: as-of {as_of:%Y-%m-%d} is before the first transaction ({first:%Y-%m-%d})."
        )
    if last < end:
        latest = last - pd.Timedelta(days=horizon_days)
        raise FutureNotInDataError(
            f"the real future is not in the data: judging as of {as_of:%Y-%m-%d} needs transactions through "
            f"{end:%Y-%m-%d} ({horizon_days} days after it), but they end on {last:%Y-%m-%d}. Use an as-of "
            f"on or before {latest:%Y-%m-%d} or a shorter horizon."
        )
    return end


def latest_judgeable(transactions: pd.DataFrame, *, horizon_days: int) -> pd.Timestamp:
    """The latest as-of day whose whole window is in the data: the last transaction day minus the horizon."""
    return transactions["timestamp"].max().normalize() - pd.Timedelta(days=horizon_days)


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def _nan(keys: Iterable[str]) -> dict[str, float]:
    return dict.fromkeys(keys, float("nan"))


def _usable(values: pd.Series | None) -> bool:
    return values is not None and bool(np.all(np.isfinite(values.to_numpy(dtype=float))))


def interval_metrics(actual: pd.DataFrame, scores: pd.DataFrame, population: dict | None) -> dict[str, float]:
    """churnclv's stated intervals (:data:`INTERVAL_KEYS`) beside the window's ``actual``: the population's totals
    as trained (``population``, the bundle's ``metadata["population"]``) and the share of ``scores``' customers whose
    purchases fell inside their own interval; NaN for a bundle without intervals."""
    if not population or "expected_purchases_low" not in scores:
        return _nan(INTERVAL_KEYS)
    coverage = interval_coverage(actual["purchases"], scores["expected_purchases_low"], scores["expected_purchases_high"])
    return {"interval_level": float(population["level"]),
            **{f"{total}_interval_{end}": float(population[f"{total}_{end}"])
               for total in ("purchases", "spend") for end in ("low", "high")},
            "purchases_interval_coverage": coverage}


def model_metrics(actual: pd.DataFrame, *, churn: pd.Series | None = None, purchases: pd.Series | None = None,
                  spend: pd.Series | None = None, rank: pd.Series | None = None) -> dict[str, float]:
    """Churn, purchase and spend metrics of one model's per-customer forecasts against ``actual``.

    Parameters
    ----------
    actual : :func:`features.make_labels` of the judged window, indexed like the forecasts.
    churn : probability of no purchase in the window (or any score ranking churners first).
    purchases : expected purchase days in the window; None when the model does not forecast them.
    spend : expected purchase amount in the window; None when the model does not forecast it.
    rank : instead of ``churn``, a score that only ranks churners first (no probability): the metrics of
        :data:`RANK_KEYS`.

    Returns
    -------
    The metrics of :data:`CHURN_KEYS` (and of :data:`PURCHASE_KEYS` / :data:`SPEND_KEYS` when given); a
    forecast holding NaN gets NaN metrics, and so do churn metrics when everyone (or no one) churned.
    """
    y = actual["churned"].to_numpy(dtype=float)
    score, keys = (churn, CHURN_KEYS) if rank is None else (rank, RANK_KEYS)
    out = (churn_metrics(y, score.to_numpy(), probabilities=rank is None) if _usable(score) and 0 < y.mean() < 1
           else _nan(keys))
    if purchases is not None:
        out |= purchase_metrics(purchases, actual["purchases"]) if _usable(purchases) else _nan(PURCHASE_KEYS)
    if spend is not None:
        out |= forecast_metrics(spend, actual["spend"], name="spend") if _usable(spend) else _nan(SPEND_KEYS)
    return out


# --------------------------------------------------------------------------------------------------
# Baseline: lifetimes' own BG/NBD + Gamma-Gamma
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_lifetimes() -> Iterator[None]:
    """Undo the warning filters lifetimes sets (at import and in every fit), silence its numerics and the
    optimiser result it prints to stdout before raising ``ConvergenceError``."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def fit_lifetimes_bgnbd(rfm: pd.DataFrame) -> tuple[object | None, str]:
    """lifetimes' ``BetaGeoFitter`` (penalizer 0, its defaults) on frequency/recency/T in days.

    Returns (the fitter, '') or (None, why it failed); never raises for a bad fit. Parameters at a boundary
    (e.g. a -> 0) are kept: the baseline is lifetimes as a user gets it.
    """
    with _quiet_lifetimes():
        from lifetimes import BetaGeoFitter

        try:
            fitter = BetaGeoFitter(penalizer_coef=0.0).fit(rfm["frequency"], rfm["recency"], rfm["T"])
        except Exception as exc:  # noqa: BLE001 - a baseline that cannot be fitted is reported, not fatal
            return None, f"BetaGeoFitter failed: {type(exc).__name__}: {first_line(exc)}"
    return fitter, ""


def fit_lifetimes_gamma_gamma(rfm: pd.DataFrame) -> tuple[object | None, str]:
    """lifetimes' ``GammaGammaFitter`` (penalizer 0) on the customers with repeats and positive spend.

    Returns (the fitter, '') or (None, why it failed); never raises for a bad fit.
    """
    repeat = rfm.loc[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    if len(repeat) < 2:
        return None, "GammaGammaFitter: fewer than 2 customers with repeat purchases"
    with _quiet_lifetimes():
        from lifetimes import GammaGammaFitter

        try:
            fitter = GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency"], repeat["monetary_value"])
        except Exception as exc:  # noqa: BLE001 - as above
            return None, f"GammaGammaFitter failed: {type(exc).__name__}: {first_line(exc)}"
    q = float(fitter.params_["q"])
    return (None, f"GammaGammaFitter: q={q:.3g} <= 1 (no finite mean spend)") if q <= 1 else (fitter, "")


def lifetimes_baseline(rfm: pd.DataFrame, *, horizon_days: int) -> tuple[pd.DataFrame, dict[str, float], str]:
    """Forecasts of lifetimes' fitters for the ``horizon_days`` after the RFM table's as-of day.

    Parameters
    ----------
    rfm : frequency (repeat purchase days), recency and T (days), monetary_value, indexed by customer_id.
    horizon_days : the window length in days (lifetimes' time unit here is the day).

    Returns
    -------
    (forecasts with columns ``churn`` = P(no purchase in the window), ``purchases``, ``spend``, NaN where
    a fit failed; the fitted parameters; the reason of any failure, '' if none).
    """
    out = pd.DataFrame(np.nan, index=rfm.index, columns=["churn", "purchases", "spend"])
    bgf, why = fit_lifetimes_bgnbd(rfm)
    if bgf is None:
        return out, {}, why
    params = {k: float(v) for k, v in bgf.params_.items()}
    x, t_x, T = (rfm[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    with _quiet_lifetimes():
        out["churn"] = bgnbd_p_no_purchase(horizon_days, x, t_x, T, **params)
        out["purchases"] = np.asarray(bgf.conditional_expected_number_of_purchases_up_to_time(
            horizon_days, rfm["frequency"], rfm["recency"], rfm["T"]), dtype=float)
    broken = int((~np.isfinite(out[["churn", "purchases"]].to_numpy())).any(axis=1).sum())
    if broken:
        return out * np.nan, params, f"BetaGeoFitter: forecasts not finite for {broken:,} customer(s)"
    ggf, why = fit_lifetimes_gamma_gamma(rfm)
    if ggf is None:
        return out, params, why
    params |= {k: float(v) for k, v in ggf.params_.items()}
    with _quiet_lifetimes():
        per_purchase = ggf.conditional_expected_average_profit(
            rfm["frequency"], rfm["monetary_value"].clip(lower=0))
    out["spend"] = out["purchases"] * np.asarray(per_purchase, dtype=float)
    return out, params, ""


# --------------------------------------------------------------------------------------------------
# Baseline: RFM logistic regression
# --------------------------------------------------------------------------------------------------


def rfm_logistic_baseline(seen: pd.DataFrame, rfm: pd.DataFrame, *, as_of: pd.Timestamp,
                          horizon_days: int) -> tuple[pd.Series, str]:
    """P(churn) of a logistic regression on log1p RFM, trained one horizon before ``as_of``, applied at it.

    Parameters
    ----------
    seen : the transactions on or before ``as_of`` (nothing later is read).
    rfm : the RFM table at ``as_of`` to score, indexed by customer_id.

    Returns
    -------
    (churn probability per customer of ``rfm``, NaN if it could not be trained; the reason, '' if none).
    """
    origin = as_of - pd.Timedelta(days=horizon_days)
    empty = pd.Series(np.nan, index=rfm.index)
    train_rfm = build_features(seen, as_of=origin)
    if train_rfm.empty:
        return empty, f"no customer had bought by {origin:%Y-%m-%d}, one horizon before the as-of day"
    labelled = train_rfm.join(make_labels(seen, as_of=origin, horizon_days=horizon_days)["churned"])
    if labelled["churned"].nunique() < 2:
        return empty, f"every customer at {origin:%Y-%m-%d} had the same outcome"
    model = fit_rfm_logistic(labelled)
    return pd.Series(model.predict_proba(rfm[list(RFM_COLUMNS)].clip(lower=0))[:, 1], index=rfm.index), ""


# --------------------------------------------------------------------------------------------------
# The judge
# --------------------------------------------------------------------------------------------------


def judge_steps(transactions: pd.DataFrame, *, as_of: pd.Timestamp | str, config: TrainConfig,
                events: bool = False) -> int:
    """How many progress steps :func:`judge` reports at ``as_of`` (``events``: trained with events)."""
    return planned_steps(transactions, as_of=pd.Timestamp(as_of_day(as_of)), config=config, events=events) + EXTRA_STEPS


def _config(config: TrainConfig | None, horizon_days: int) -> TrainConfig:
    return replace(config or TrainConfig(), horizon_days=horizon_days)


def judge(transactions: pd.DataFrame, *, as_of: pd.Timestamp | str, horizon_days: int = HORIZON_DAYS,
          config: TrainConfig | None = None, progress: Progress | None = None,
          events: pd.DataFrame | None = None) -> Judgement:
    """Train on the rows up to ``as_of`` and judge the model and two baselines on the next ``horizon_days``.

    Parameters
    ----------
    transactions : canonical transactions; they must run through ``as_of + horizon_days``.
    as_of : the training cut (a day; the whole day is seen).
    horizon_days : the judged window ``(as_of, as_of + horizon_days]`` in days, also the model's horizon.
    config : training settings (its ``horizon_days`` is replaced by ``horizon_days``). Default: TrainConfig().
    progress : called with a short description at every step.
    events : canonical touchpoints; churnclv is trained and scored with those up to ``as_of``.

    Raises
    ------
    FutureNotInDataError
        When the data end before the window does.
    """
    as_of = pd.Timestamp(as_of_day(as_of))
    end = check_future(transactions, as_of=as_of, horizon_days=horizon_days)
    step = progress or (lambda _: None)
    seen = until(transactions, as_of)
    seen_events = None if events is None else until(events, as_of)
    result = train(seen, as_of=as_of, config=_config(config, horizon_days), progress=progress, events=seen_events)
    step(f"scoring at {as_of:%Y-%m-%d}")
    table = result.bundle.snapshot(seen, as_of=as_of, events=seen_events)
    scores = result.bundle.score_snapshot(table).set_index("customer_id")
    table, rfm = table.reindex(scores.index), table[list(RFM_COLUMNS)].reindex(scores.index)
    actual = make_labels(transactions, as_of=as_of, horizon_days=horizon_days).reindex(scores.index)
    step("lifetimes BG/NBD baseline")
    bg, params, bg_note = lifetimes_baseline(rfm, horizon_days=horizon_days)
    step("RFM logistic baseline")
    logistic, logistic_note = rfm_logistic_baseline(seen, rfm, as_of=as_of, horizon_days=horizon_days)
    forecasts = {
        "churnclv": {"churn": scores["churn_probability"], "purchases": scores["expected_purchases"],
                     "spend": scores["expected_spend"]},
        "bgnbd": {"churn": table["bgnbd_p_no_purchase"]},
        "bgnbd_expected": {"rank": -table["bgnbd_expected_purchases"]},
        "bgnbd_clock": {} if (clocked := result.bundle.models.clocked) is None else {"churn": pd.Series(
            clocked.p_no_purchase(table, as_of=as_of, horizon_days=horizon_days), index=table.index)},
        "lifetimes_bgnbd": {"churn": bg["churn"], "purchases": bg["purchases"], "spend": bg["spend"]},
        "lifetimes_expected": {"rank": -bg["purchases"]},
        "rfm_logistic": {"churn": logistic},
    }
    metrics = {m: model_metrics(actual, **f) for m, f in forecasts.items()}
    metrics["churnclv"] |= interval_metrics(actual, scores, result.bundle.metadata.get("population"))
    ends = scores.filter(["expected_purchases_low", "expected_purchases_high"])  # absent without intervals
    predictions = actual.add_prefix("actual_").join(pd.DataFrame(
        {f"{m}_{k}": v for m, f in forecasts.items() for k, v in f.items()}, index=scores.index)).join(
        ends.rename(columns=lambda c: c.replace("expected_", "churnclv_")))
    return Judgement(
        as_of=as_of, horizon_days=horizon_days, window_end=end, customers=len(scores),
        actual_purchases=int(actual["purchases"].sum()), actual_spend=float(actual["spend"].sum()),
        actual_churn_rate=float(actual["churned"].mean()) if len(actual) else float("nan"),
        purchases_method=str(result.bundle.metadata.get("purchases_method", "")),
        churn_method=result.bundle.churn_method,
        metrics=metrics,
        notes={m: n for m, n in (("lifetimes_bgnbd", bg_note), ("rfm_logistic", logistic_note)) if n},
        training_notes=tuple(str(n) for n in result.bundle.metadata.get("notes", [])),
        lifetimes_params=params, predictions=predictions,
    )


def judge_many(transactions: pd.DataFrame, *, as_ofs: Iterable, horizon_days: int = HORIZON_DAYS,
               config: TrainConfig | None = None, progress: Progress | None = None,
               events: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`judge` at several as-of days: one row per (as_of, model), see :meth:`Judgement.rows`.

    Every window is checked before anything is trained, so a bad date fails at once.
    """
    days = [pd.Timestamp(as_of_day(d)) for d in as_ofs]
    for day in days:
        check_future(transactions, as_of=day, horizon_days=horizon_days)
    frames = [judge(transactions, as_of=d, horizon_days=horizon_days, config=config, progress=progress,
                    events=events).rows() for d in days]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(ROW_COLUMNS))
