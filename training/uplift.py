"""Fitting the per-customer uplift model, judging it on campaigns it did not see, registering it.

Input: one row per member of a finished campaign (``campaigns.member_outcomes`` joined to the member's
features and scores at selection): ``campaign``, ``campaign_date``, ``group`` (treated|control),
``retained`` (bool: a purchase in the campaign's window) and the feature columns.

- :func:`campaign_outcomes`: a recorded campaign's members as those rows (features at the scores' as-of day);
- :func:`fit_uplift`: below the data threshold (:func:`scoring.uplift.readiness`: at least
  ``UPLIFT_MIN_OUTCOMES`` = 20,000 members, ``UPLIFT_MIN_PER_GROUP`` = 2,000 in each group) nothing is
  fitted and the answer says how many more outcomes are needed; above it, a bagged T-learner
  (:class:`scoring.uplift.UpliftScorer`): ``bags`` bootstrap resamples of the members, stratified by
  group, each giving one LightGBM classifier of retention on the treated and one on the controls
  (deterministic, single-threaded, seeded).
- :func:`qini_curve`, :func:`qini_coefficient`, :func:`uplift_at_k`: by hand in numpy.
- :func:`judge_uplift`: fitted on the earlier campaigns, measured on the latest ones (by campaign date),
  never on members it learned from;
- :func:`harmful_segments`: segments whose measured retention effect interval lies wholly below 0,
  which :func:`scoring.uplift.rank_by_uplift` leaves out beside the customers credibly harmed one by one.
- :func:`register_uplift`: an MLflow run with the model's data and metrics, registered as
  ``churn-clv-uplift`` beside ``churn-clv``.
- :func:`store_outcomes`, :func:`train_uplift`: what ``churnclv campaigns uplift`` runs: every finished
  campaign of the store as training rows, judged on the latest, fitted on all, registered, and aliased
  ``champion`` (what plans rank by) when it ranked the held-out campaigns better than chance.

The served model learns from :data:`SERVED_FEATURES` only: what the members froze at selection and every
score table carries, so the service ranks a score table by uplift without reading a transaction log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from churnclv import features
from churnclv.campaigns.effect import member_outcomes, retention_interval
from churnclv.campaigns.read import campaign_members, list_campaigns
from churnclv.contract.dates import AsOf
from churnclv.scoring.registry import store_lock, using_store
from churnclv.scoring.uplift import (
    UPLIFT_ALIAS,
    UPLIFT_MIN_OUTCOMES,
    UPLIFT_MIN_PER_GROUP,
    UPLIFT_MODEL_NAME,
    Readiness,
    UpliftScorer,
    readiness,
)

__all__ = ["SCORE_FEATURES", "SERVED_FEATURES", "Judged", "Trained", "UpliftFit", "UpliftSettings",
           "campaign_outcomes", "fit_uplift", "harmful_segments", "judge_uplift", "qini_coefficient", "qini_curve",
           "register_uplift", "store_outcomes", "train_uplift", "uplift_at_k"]


#: The member's frozen scores at selection, learned from beside the point-in-time features.
SCORE_FEATURES = ("churn_probability", "clv", "value_at_risk")
#: What the registered model learns from: the frozen scores, which every score table carries too.
SERVED_FEATURES = SCORE_FEATURES


def campaign_outcomes(members: pd.DataFrame, transactions: pd.DataFrame, *, campaign: str,
                      campaign_date: dt.date, window_days: int, as_of: AsOf,
                      point_in_time: bool = True) -> pd.DataFrame:
    """One campaign's members as uplift training rows: outcome, frozen scores, features at ``as_of``.

    Parameters
    ----------
    members : the frozen members (``campaigns.campaign_members``): ``customer_id, group, segment`` and
        :data:`SCORE_FEATURES`.
    transactions : the canonical log; features read only its rows at or before ``as_of``, outcomes
        only the window ``(campaign_date, campaign_date + window_days]`` (:func:`campaigns.effect.member_outcomes`).
    as_of : the day the members were scored (the campaign's ``scores_as_of``), at or before ``campaign_date``.
    point_in_time : add ``features.build_features``' columns (False: the frozen scores only, no features built).

    Returns
    -------
    One row per member, in members' order: ``campaign, campaign_date, customer_id, group, segment,
    retained`` (bool), :data:`SCORE_FEATURES` and ``features.build_features``' numeric columns (NaN for
    a member without a purchase by ``as_of``).
    """
    ids = members["customer_id"].astype("str")
    mine = transactions.loc[transactions["customer_id"].astype("str").isin(ids)]  # features are per customer
    outcome = member_outcomes(members, mine, campaign_date=campaign_date, window_days=window_days)
    if not point_in_time:
        built = pd.DataFrame(index=pd.Index([], dtype="str"))
    else:
        built = features.build_features(mine, as_of=as_of).select_dtypes("number")
    at_selection = built.reindex(ids).reset_index(drop=True)
    return pd.concat([
        outcome.loc[:, ["customer_id", "group", "segment", "retained"]].reset_index(drop=True)
        .assign(campaign=campaign, campaign_date=pd.Timestamp(campaign_date)),
        members.loc[:, list(SCORE_FEATURES)].reset_index(drop=True),
        at_selection.drop(columns=[c for c in SCORE_FEATURES if c in at_selection.columns]),
    ], axis=1)


@dataclass(frozen=True)
class UpliftSettings:
    """How the uplift model is fitted, and the data threshold below which it is not."""

    bags: int = 10
    n_estimators: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 15
    min_child_samples: int = 100
    seed: int = 42
    min_outcomes: int = UPLIFT_MIN_OUTCOMES
    min_per_group: int = UPLIFT_MIN_PER_GROUP

    def booster_params(self, seed: int) -> dict:
        return dict(objective="binary", n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                    num_leaves=self.num_leaves, min_child_samples=self.min_child_samples, random_state=seed,
                    deterministic=True, force_row_wise=True, n_jobs=1, verbose=-1)


@dataclass(frozen=True)
class UpliftFit:
    """The fitted model, or None below the threshold; ``readiness.message`` says which and why."""

    model: UpliftScorer | None
    readiness: Readiness
    problem: str | None = None  # why no model was fitted although the outcomes were enough

    @property
    def message(self) -> str:
        if self.problem is not None:
            return f"segment rates are used; the per-customer uplift model was not fitted: {self.problem}"
        return self.readiness.message


def _one_outcome(treated: np.ndarray, retained: np.ndarray) -> str | None:
    """A group whose members were all retained or all lost (a booster cannot learn from one class)."""
    for name, mine in (("treated", treated), ("control", ~treated)):
        if np.unique(retained[mine]).size < 2:
            return f"every {name} member was {'retained' if retained[mine].all() else 'lost'}"
    return None


def _booster(x: pd.DataFrame, y: np.ndarray, *, settings: UpliftSettings, seed: int) -> lgb.Booster:
    return lgb.LGBMClassifier(**settings.booster_params(seed)).fit(x, y).booster_


def _resample(treated: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row positions of one bootstrap resample, drawn within each group (group sizes kept)."""
    parts = [np.flatnonzero(treated == g) for g in (True, False)]
    return np.concatenate([rng.choice(p, size=p.size, replace=True) for p in parts])


def fit_uplift(outcomes: pd.DataFrame, *, features: Sequence[str],
               settings: UpliftSettings = UpliftSettings()) -> UpliftFit:
    """Fit the bagged T-learner on finished campaigns' members, or say how many more outcomes it needs.

    Parameters
    ----------
    outcomes : one row per member: ``group`` (treated|control), ``retained`` (bool) and ``features``.
    features : the columns the boosters learn from (churn features and scores at selection).
    settings : boosting settings, bags, seed and the data threshold.

    Returns
    -------
    :class:`UpliftFit`: no model below the threshold (the message says how many more outcomes), nor when
    a group's members all had the same outcome (the message says which); never an exception for data.
    """
    treated = outcomes["group"].to_numpy() == "treated"
    ready = readiness(treated, min_outcomes=settings.min_outcomes, min_per_group=settings.min_per_group)
    if not ready.enough:
        return UpliftFit(model=None, readiness=ready)
    x, y = outcomes.loc[:, list(features)].reset_index(drop=True), outcomes["retained"].to_numpy(dtype=int)
    problem = _one_outcome(treated, y.astype(bool))
    if problem is not None:
        return UpliftFit(model=None, readiness=ready, problem=problem)
    rng = np.random.default_rng(settings.seed)
    pairs = []
    for bag in range(settings.bags):  # one step per bag, never per customer
        rows = _resample(treated, rng)
        t, c = rows[treated[rows]], rows[~treated[rows]]
        seed = settings.seed + bag
        pairs.append((_booster(x.iloc[t], y[t], settings=settings, seed=seed),
                      _booster(x.iloc[c], y[c], settings=settings, seed=seed)))
    model = UpliftScorer(treated=tuple(p[0] for p in pairs), control=tuple(p[1] for p in pairs),
                         features=tuple(features))
    return UpliftFit(model=model, readiness=ready)


def qini_curve(uplift: np.ndarray, treated: np.ndarray, retained: np.ndarray) -> np.ndarray:
    """Incremental retained customers among the top ``k`` by predicted uplift, for ``k = 0 … n``.

    ``Q(k) = R_t(k) − R_c(k) · N_t(k) / N_c(k)`` (Radcliffe 2007): retained treated minus retained
    controls scaled to the treated count, among the first ``k`` (ranked by ``uplift`` descending, ties
    in input order); ``R_c(k) · N_t(k) / N_c(k)`` is 0 while ``N_c(k) = 0``. ``Q(0) = 0``.
    """
    order = np.argsort(-np.asarray(uplift, dtype=np.float64), kind="stable")
    t, r = np.asarray(treated, dtype=bool)[order], np.asarray(retained, dtype=bool)[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    r_t, r_c = np.cumsum(t & r), np.cumsum(~t & r)
    scaled = np.divide(r_c * n_t, n_c, out=np.zeros(len(t)), where=n_c > 0)
    return np.concatenate([[0.0], r_t - scaled])


def qini_coefficient(uplift: np.ndarray, treated: np.ndarray, retained: np.ndarray) -> float:
    """Area between the Qini curve and the random-targeting line, per customer and per customer targeted.

    ``(1/n) Σ_{k=1..n} (Q(k) − (k/n) Q(n)) / n``: the mean gap, in incremental retained customers per
    member, between targeting by the model and targeting at random (positive: the model ranks better
    than chance; 0 for a random ranking on average).
    """
    q = qini_curve(uplift, treated, retained)
    n = len(q) - 1
    if n == 0:
        return float("nan")
    k = np.arange(1, n + 1)
    return float(np.mean(q[1:] - k / n * q[-1]) / n)


def uplift_at_k(uplift: np.ndarray, treated: np.ndarray, retained: np.ndarray, *, share: float) -> float:
    """Observed retention of the treated minus that of the controls among the top ``share`` by uplift.

    NaN when a group has no members in the top ``share`` (e.g. a share too small).
    """
    order = np.argsort(-np.asarray(uplift, dtype=np.float64), kind="stable")
    top = order[: int(round(share * len(order)))]
    t, r = np.asarray(treated, dtype=bool)[top], np.asarray(retained, dtype=bool)[top]
    if t.sum() == 0 or (~t).sum() == 0:
        return float("nan")
    return float(r[t].mean() - r[~t].mean())


def harmful_segments(outcomes: pd.DataFrame, *, interval: float = 0.9, draws: int = 20_000,
                     seed: int = 0) -> frozenset[str]:
    """Segments whose measured retention effect (treated − control, pooled over the campaigns of
    ``outcomes``) has its central ``interval`` wholly below 0: the Beta-Binomial interval of
    :func:`campaigns.effect.retention_interval`, as ``campaigns effect`` reports it.

    ``outcomes``: one row per member with ``segment``, ``group`` (treated|control), ``retained`` (bool).
    """
    counts = (outcomes.assign(treated=outcomes["group"].eq("treated"))
              .groupby(["segment", "treated"], observed=True)["retained"].agg(["size", "sum"])
              .unstack("treated", fill_value=0))
    rng = np.random.default_rng(seed)
    harmful = []
    for segment, row in counts.iterrows():  # one step per segment, never per customer
        _, high = retention_interval(int(row[("sum", True)]), int(row[("size", True)]), int(row[("sum", False)]),
                                     int(row[("size", False)]), interval=interval, draws=draws, rng=rng)
        if high < 0:
            harmful.append(str(segment))
    return frozenset(harmful)


@dataclass(frozen=True)
class Judged:
    """The uplift model judged on campaigns it did not see."""

    fit: UpliftFit  # fitted on the earlier campaigns only
    held_out: tuple[str, ...]  # the campaigns it was measured on
    metrics: dict[str, float] = field(default_factory=dict)  # qini, uplift_at_10/20/30, random qini


def judge_uplift(outcomes: pd.DataFrame, *, features: Sequence[str], holdout_campaigns: int = 1,
                 settings: UpliftSettings = UpliftSettings()) -> Judged:
    """Fit on all campaigns but the latest ``holdout_campaigns`` (by ``campaign_date``), measure on those.

    Metrics (held-out members only): ``qini`` (:func:`qini_coefficient`), ``uplift_at_10``, ``_20``,
    ``_30`` (:func:`uplift_at_k`), ``held_out_members``. Empty when below the data threshold.
    """
    dates = outcomes.groupby("campaign", observed=True)["campaign_date"].min().sort_values(kind="stable")
    held_out = tuple(dates.index[len(dates) - holdout_campaigns:]) if holdout_campaigns > 0 else ()
    test_rows = outcomes["campaign"].isin(held_out).to_numpy()
    fit = fit_uplift(outcomes.loc[~test_rows], features=features, settings=settings)
    if fit.model is None or not test_rows.any():
        return Judged(fit=fit, held_out=held_out)
    test = outcomes.loc[test_rows]
    predicted = fit.model.predict(test)["uplift"].to_numpy()
    treated, retained = test["group"].to_numpy() == "treated", test["retained"].to_numpy(dtype=bool)
    metrics = {"qini": qini_coefficient(predicted, treated, retained), "held_out_members": float(len(test))}
    metrics |= {f"uplift_at_{p}": uplift_at_k(predicted, treated, retained, share=p / 100) for p in (10, 20, 30)}
    return Judged(fit=fit, held_out=held_out, metrics=metrics)


def register_uplift(client: MlflowClient, model: UpliftScorer, *, metrics: dict[str, float],
                    experiment: str = UPLIFT_MODEL_NAME, name: str = UPLIFT_MODEL_NAME,
                    params: dict[str, str] | None = None, artifact_root: Path | None = None,
                    alias: str | None = None) -> tuple[str, str]:
    """Log a run with the model's data (``uplift/uplift.json``), its metrics and params; register it.

    The registered model ``name`` (default ``churn-clv-uplift``) gets a new version whose source is the
    run's ``uplift`` folder (:meth:`UpliftScorer.load` reads it back); ``alias`` (e.g. ``champion``) is
    moved to it when given. A new experiment keeps its artifacts under ``artifact_root/uplift`` (as the
    churn experiments do; None: the store decides). The client's store is used; MLflow's global URIs are
    restored afterwards (:func:`scoring.registry.using_store`). Returns (run id, version).
    """
    with store_lock(client.tracking_uri):
        found = client.get_experiment_by_name(experiment)
        location = None if artifact_root is None else str(Path(artifact_root) / "uplift")
        experiment_id = found.experiment_id if found else client.create_experiment(experiment,
                                                                                   artifact_location=location)
    with using_store(client), mlflow.start_run(experiment_id=experiment_id) as run, \
            tempfile.TemporaryDirectory() as folder:
        mlflow.log_params({"features": ",".join(model.features), "bags": str(len(model.treated)),
                           **(params or {})})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_artifacts(str(model.save(Path(folder) / "uplift").parent), artifact_path="uplift")
        source = f"{run.info.artifact_uri}/uplift"
    with store_lock(client.tracking_uri):
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            client.create_registered_model(name, description="per-customer retention uplift (bagged T-learner)")
        version = client.create_model_version(name, source=source, run_id=run.info.run_id)
        if alias is not None:
            client.set_registered_model_alias(name, alias, str(version.version))
    return run.info.run_id, str(version.version)


def store_outcomes(engine, transactions: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Every campaign of the store whose window the log covers, as training rows (frozen scores only,
    :func:`campaign_outcomes`), oldest first; and the names of the campaigns left out (window not over).

    A campaign is over when the log's last day is on or after its window's end (as ``campaigns effect``
    judges it). Members erased since are no longer in the store, so they are not learned from.
    """
    last = transactions["timestamp"].max()
    through = None if pd.isna(last) else pd.Timestamp(last).date()
    rows, running = [], []
    for info in sorted(list_campaigns(engine), key=lambda c: (c.campaign_date, c.id)):  # one step per campaign
        if through is None or through < info.window_end:
            running.append(info.name)
            continue
        rows.append(campaign_outcomes(campaign_members(engine, info.name), transactions, campaign=info.name,
                                      campaign_date=info.campaign_date, window_days=info.window_days,
                                      as_of=info.scores_as_of or info.campaign_date, point_in_time=False))
    empty = pd.DataFrame(columns=["customer_id", "group", "segment", "retained", "campaign", "campaign_date",
                                  *SCORE_FEATURES])
    return (pd.concat(rows, ignore_index=True) if rows else empty), running


@dataclass(frozen=True)
class Trained:
    """What ``churnclv campaigns uplift`` did: the judged fit, the final fit, and where it was registered."""

    campaigns: tuple[str, ...]  # finished campaigns learned from
    running: tuple[str, ...]  # left out: their window is not over
    judged: Judged | None  # fitted on all but the latest, measured on it (None: a single campaign)
    final: UpliftFit  # fitted on every finished campaign
    version: str | None = None  # registered version (None: nothing fitted)
    run_id: str | None = None
    promoted: bool = False  # the alias plans rank by now points at it

    @property
    def why_not_promoted(self) -> str | None:
        if self.final.model is None or self.promoted:
            return None
        if self.judged is None:
            return "it could not be judged: that needs a second finished campaign to hold out"
        if self.judged.fit.model is None:
            fit = self.judged.fit
            why = fit.problem or (f"{fit.readiness.more:,} more outcomes are needed in the campaigns before "
                                  f"{', '.join(self.judged.held_out)} to fit the model it would judge")
            return f"it could not be judged: {why}"
        return (f"it ranked the held-out campaign(s) no better than chance (Qini "
                f"{self.judged.metrics.get('qini', float('nan')):.4f})")


def train_uplift(engine, transactions: pd.DataFrame, client: MlflowClient | None, *,
                 settings: UpliftSettings = UpliftSettings(), holdout_campaigns: int = 1,
                 artifact_root: Path | None = None) -> Trained:
    """Fit the uplift model on the store's finished campaigns (:data:`SERVED_FEATURES`), judge it on the
    latest ``holdout_campaigns`` (fitted without them), refit on all and register it (``client``: None
    registers nothing). The alias ``champion`` moves to it only when the judged fit's Qini on the held-out
    campaigns is above 0."""
    outcomes, running = store_outcomes(engine, transactions)
    names = tuple(dict.fromkeys(outcomes["campaign"].tolist()))
    judged = (judge_uplift(outcomes, features=SERVED_FEATURES, holdout_campaigns=holdout_campaigns, settings=settings)
              if len(names) > holdout_campaigns else None)
    final = fit_uplift(outcomes, features=SERVED_FEATURES, settings=settings)
    trained = Trained(campaigns=names, running=tuple(running), judged=judged, final=final)
    if final.model is None or client is None:
        return trained
    promote = judged is not None and judged.fit.model is not None and judged.metrics.get("qini", 0.0) > 0
    params = {"campaigns": ",".join(names), "held_out": ",".join(judged.held_out) if judged else "",
              "n_treated": str(final.readiness.n_treated), "n_control": str(final.readiness.n_control)}
    run_id, version = register_uplift(client, final.model, metrics=judged.metrics if judged else {}, params=params,
                                      artifact_root=artifact_root, alias=UPLIFT_ALIAS if promote else None)
    return dataclasses.replace(trained, version=version, run_id=run_id, promoted=promote)
