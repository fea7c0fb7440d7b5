"""Training beyond one machine: :class:`PartitionedLog`, the :class:`training.pipeline.Log` of a Dask cluster.

The transactions stay on the cluster, shuffled so that each partition holds whole customers
(:func:`training.cluster.read_transactions`). Per-customer work runs there, partition by partition,
with the same functions as in memory (``build_features``, ``make_labels``, ``with_clv``,
``sample_customers``); the fits run here, in :func:`training.pipeline.train`, on what the cluster sends
back:

- a CLV fit gets the compressed (frequency, recency, T) and (frequency, spend) counts of every
  partition, merged (:meth:`training.clv.CLVCounts.merge`): thousands of rows for millions of customers;
- the churn and purchase models get each stacked cutoff's customers, sampled partition by partition in
  proportion to its customers (:func:`training.churn.sample_customers`, the rarer outcome kept, weights
  recorded) so that at most ``BoostSettings.max_rows_per_cutoff`` rows per cutoff come back;
- the as-of tables (one row per customer at the fit's day and the backtest origin: the backtest, the
  Poisson scale and the segment bars read every customer) and the labels of the backtest window.

Each cluster pass shows Dask's own progress bar. A log with at most ``max_rows_per_cutoff`` customers is
not sampled at all, and then the models equal the single-process ones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
from distributed import Client

from churnclv.contract.columns import RFM_COLUMNS
from churnclv.contract.dates import AsOf, iso, until
from churnclv.features import build_features, encode, make_labels
from churnclv.features.tracking import Tracking, tracking
from churnclv.scoring.bundle import ChurnCLVBundle, draws_column, score_table
from churnclv.scoring.drift import bundle_drift_counts, bundle_drift_of_counts
from churnclv.scoring.intervals import RANK_CANDIDATES, VALUE_DRAWS_COLUMN, top_positions
from churnclv.scoring.snapshot import with_clv
from churnclv.training.choice import daily_purchases
from churnclv.training.churn import sample_customers
from churnclv.training.cluster import compute, persist, scores_by_partition, to_pandas
from churnclv.training.clv import CLVCounts, CLVModel
from churnclv.training.eligibility import (
    Eligibility,
    assess,
    backtest_history_days,
    customer_counts,
    purchases_until,
)
from churnclv.training.mle import CLVFitError
from churnclv.training.pipeline import Progress, TrainConfig, fingerprint_of, fingerprint_part
from churnclv.training.season import EVERY_SEASON, Season, season_cutoffs, season_of, window_totals

#: The values per parameter draw in Parquet, as the single process writes them (stated for the cluster's parts:
#: Dask cannot infer a column of arrays, and a part may hold none of them).
DRAWS_TYPE = pa.list_(pa.float32())
#: Seeds of the partitions' samples at one cutoff are ``seed + cutoff ordinal + PARTITION_SEED_STEP * k``.
PARTITION_SEED_STEP = 100_003


# -- what runs on the workers: one call per partition of whole customers --------------------------------

def _counts(part: pd.DataFrame, cutoffs: list[pd.Timestamp], time_unit_days: float) -> list[CLVCounts]:
    enc = encode(part)  # once for every cutoff
    return [CLVCounts.of(build_features(enc, as_of=c), time_unit_days=time_unit_days) for c in cutoffs]


def _as_of_table(part: pd.DataFrame, as_of: pd.Timestamp, clv: CLVModel, horizon_days: int) -> pd.DataFrame:
    return with_clv(build_features(part, as_of=as_of), clv=clv, horizon_days=horizon_days)


def _sampled_snapshots(part: pd.DataFrame, k: int, plan: list[tuple[pd.Timestamp, CLVModel | None, int | None]],
                       config: TrainConfig) -> list[pd.DataFrame]:
    """This partition's labelled snapshot at each cutoff, sampled to its quota (None: every customer)."""
    enc, frames = encode(part), []
    for cutoff, clv, quota in plan:
        labelled = build_features(enc, as_of=cutoff).join(
            make_labels(enc, as_of=cutoff, horizon_days=config.horizon_days), how="left")
        sampled = sample_customers(labelled, max_rows=len(labelled) if quota is None else quota,
                                   seed=config.boost.seed + cutoff.toordinal() + PARTITION_SEED_STEP * k)
        frames.append(with_clv(sampled, clv=clv, horizon_days=config.horizon_days).assign(cutoff=cutoff))
    return frames


def _window(part: pd.DataFrame, cutoffs: list[pd.Timestamp], models: list[CLVModel | None],
            horizon_days: int) -> list[tuple[float, int]]:
    """(BG/NBD forecast, actual purchases) of this partition's customers in each cutoff's next horizon."""
    enc, out = encode(part), []
    for cutoff, clv in zip(cutoffs, models):
        if clv is None:
            out.append((0.0, 0))
            continue
        out.append(window_totals(enc, build_features(enc, as_of=cutoff), clv=clv, cutoff=cutoff,
                                 horizon_days=horizon_days))
    return out


def _daily(part: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    return daily_purchases(part, as_of=as_of)


def _tracking(part: pd.DataFrame, as_of: pd.Timestamp) -> Tracking:
    return tracking(part, as_of=as_of)


def _labels(part: pd.DataFrame, as_of: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    return make_labels(part, as_of=as_of, horizon_days=horizon_days)


def _eligibility_part(part: pd.DataFrame, as_of: pd.Timestamp, origin: pd.Timestamp) -> tuple:
    purchases = purchases_until(part, as_of)
    return purchases["timestamp"].min(), customer_counts(purchases, as_of), customer_counts(purchases, origin)


def _scored(part: pd.DataFrame, bundle: ChurnCLVBundle, as_of: AsOf, explain: bool, keep: int) -> tuple:
    """This partition's score table, its drift counts (:func:`scoring.drift.bundle_drift_counts`) and the
    candidates for the values per parameter draw: its customers of highest value at risk (at most as many as a
    whole table keeps: ``keep``), with their position in the table and the snapshot's columns the draws read."""
    snapshot = bundle.snapshot(part, as_of=as_of)
    table = score_table(bundle, part, as_of=as_of, explain=explain, snapshot=snapshot)
    top = top_positions(table["value_at_risk"].to_numpy(dtype=float), keep)
    candidates = snapshot.iloc[top][[*RFM_COLUMNS, "bgnbd_clv"]].assign(
        value_at_risk=table["value_at_risk"].to_numpy(dtype=float)[top], position=top)
    return table, bundle_drift_counts(bundle, snapshot, as_of=as_of), candidates


def _drift_and_candidates(scored: tuple) -> tuple[dict | None, np.ndarray]:
    return scored[1], scored[2]["value_at_risk"].to_numpy(dtype=float)


def _with_draws(scored: tuple, bundle: ChurnCLVBundle, chosen: np.ndarray) -> pd.DataFrame:
    """The partition's table with its values per draw for the ``chosen`` candidates (None for everyone else),
    by :func:`scoring.bundle.draws_column` on their rows."""
    table, _, candidates = scored
    picked = candidates.iloc[chosen]
    column = np.full(len(table), None, dtype=object)
    column[picked["position"].to_numpy()] = draws_column(bundle, picked, picked) if len(picked) else []
    return table.assign(**{VALUE_DRAWS_COLUMN: column})


@dataclass(frozen=True)
class ClusterScores:
    """A score table on the cluster (``tables``: its partitions, with the values per draw), its drift report
    and the parts' Arrow schema (``training.cluster.write_scores_dataset(..., schema=)``)."""

    tables: dd.DataFrame
    drift: dict | None
    schema: pa.Schema


def score_partitions(bundle: ChurnCLVBundle, transactions: dd.DataFrame, client: Client, *,
                     as_of: AsOf, explain: bool = False, keep: int = RANK_CANDIDATES) -> ClusterScores:
    """``churnclv score``'s table on a cluster: what the single process writes, partition by partition.

    One pass scores every partition and keeps it on the cluster with its drift counts and candidates; the
    counts come back and merge into the whole table's drift report (:func:`scoring.drift.merge_counts`), the
    candidates' values at risk come back (at most ``keep`` a partition) and the table's ``keep`` top customers are chosen
    among them by the single process's rule (:func:`scoring.intervals.top_positions`); then each partition
    gets its chosen customers' values per draw. Equal to the single-process table (ties at the bar aside).
    """
    shared = dask.delayed(bundle, name=f"bundle-{uuid.uuid4().hex}")  # in the graph once
    call = dask.delayed(_scored, pure=True)
    scored = persist(client, [call(part, shared, as_of, explain, keep) for part in transactions.to_delayed()])
    summaries = compute(client, *[dask.delayed(_drift_and_candidates, pure=True)(s) for s in scored])
    values = [v for _, v in summaries]
    chosen = top_positions(np.concatenate(values) if values else np.empty(0), keep)
    bounds = np.cumsum([0, *map(len, values)])
    picks = [chosen[(chosen >= lo) & (chosen < hi)] - lo for lo, hi in zip(bounds[:-1], bounds[1:])]
    meta = scores_by_partition(bundle, transactions, as_of=as_of, explain=explain)._meta.assign(
        **{VALUE_DRAWS_COLUMN: pd.Series(dtype=object)})
    with dask.config.set({"dataframe.convert-string": False}):  # the values per draw are arrays, not text
        tables = dd.from_delayed([dask.delayed(_with_draws, pure=True)(s, shared, k) for s, k in zip(scored, picks)],
                                 meta=meta, verify_meta=False)
    schema = pa.Schema.from_pandas(meta, preserve_index=False)
    schema = schema.set(schema.get_field_index(VALUE_DRAWS_COLUMN), pa.field(VALUE_DRAWS_COLUMN, DRAWS_TYPE))
    return ClusterScores(tables, bundle_drift_of_counts(bundle, [d for d, _ in summaries]), schema)


# -- the Log -------------------------------------------------------------------------------------------

def _fit_or_none(config: TrainConfig, counts: CLVCounts) -> tuple[CLVModel | None, str]:
    try:
        return config.clv_model().fit_counts(counts), ""
    except CLVFitError as exc:
        return None, str(exc)


@dataclass(frozen=True)
class PartitionedLog:
    """The transactions on a Dask cluster, each partition holding whole customers (see the module).

    ``transactions``: :func:`training.cluster.read_transactions` output, best persisted on the cluster
    (``training.cluster.persist``) since every step reads it again.
    """

    transactions: dd.DataFrame
    client: Client

    def _each(self, function, *args) -> list:
        """``function(partition, *args)`` on every partition, with Dask's progress bar; the results in order."""
        call = dask.delayed(function, pure=True)
        return compute(self.client, *[call(part, *args) for part in self.transactions.to_delayed()])

    def _fit(self, config: TrainConfig, cutoffs: list[pd.Timestamp]) -> tuple[list, list[list[int]]]:
        """A CLV model at each cutoff, fitted on every partition's merged counts: [(model or None, why)], and
        the customers of each partition at each cutoff."""
        by_partition = self._each(_counts, cutoffs, config.time_unit_days)
        merged = [CLVCounts.merge([counts[j] for counts in by_partition]) for j in range(len(cutoffs))]
        return [_fit_or_none(config, counts) for counts in merged], [[c.customers for c in p] for p in by_partition]

    def until(self, as_of: pd.Timestamp) -> PartitionedLog:
        return PartitionedLog(self.transactions.map_partitions(until, as_of, meta=self.transactions._meta), self.client)

    def last_day(self) -> pd.Timestamp:
        """The last transaction day (the commands' default as-of day)."""
        return pd.Timestamp(compute(self.client, self.transactions["timestamp"].max())[0]).normalize()

    def first_day(self) -> pd.Timestamp:
        return pd.Timestamp(compute(self.client, self.transactions["timestamp"].min())[0]).normalize()

    def eligibility(self, *, as_of: pd.Timestamp, config: TrainConfig) -> Eligibility:
        origin = as_of - pd.Timedelta(days=config.horizon_days)
        parts = [p for p in self._each(_eligibility_part, as_of, origin) if p[1][0]]
        history = (as_of - min(p[0] for p in parts).normalize()).days if parts else 0
        add = lambda pairs: tuple(int(sum(v)) for v in zip(*pairs)) if pairs else (0, 0)
        long_enough = history >= backtest_history_days(config.horizon_days)
        return assess(as_of=as_of, horizon_days=config.horizon_days,
                      snapshot_history_days=config.plan.min_history_days, history=history,
                      counts=add([p[1] for p in parts]), origin_counts=add([p[2] for p in parts]) if long_enough else (0, 0))

    def snapshot(self, *, as_of: pd.Timestamp, config: TrainConfig) -> tuple[pd.DataFrame, CLVModel]:
        ((clv, why),), _ = self._fit(config, [as_of])
        if clv is None:
            raise CLVFitError(why)
        table = to_pandas(self._each(_as_of_table, as_of, clv, config.horizon_days))
        return table.sort_index(), clv

    def season(self, *, as_of: pd.Timestamp, config: TrainConfig, flat: bool = False) -> Season:
        first_day = self.first_day()
        cutoffs = season_cutoffs(as_of=as_of, first_day=first_day, horizon_days=config.horizon_days,
                                 min_history_days=config.plan.min_history_days, flat=flat)
        if cutoffs is None:
            return Season(note=EVERY_SEASON.format(config.horizon_days))
        if not cutoffs:
            return Season()
        models = [clv for clv, _ in self._fit(config, cutoffs)[0]]
        sums = self._each(_window, cutoffs, models, config.horizon_days)
        measured = [None if clv is None else {"cutoff": iso(c), "actual": sum(s[j][1] for s in sums),
                                               "forecast": sum(s[j][0] for s in sums)}
                    for j, (c, clv) in enumerate(zip(cutoffs, models))]
        return season_of(measured, horizon_days=config.horizon_days, first_day=first_day, flat=flat)

    def stacked(self, *, cutoffs: list[pd.Timestamp], config: TrainConfig,
                progress: Progress | None = None) -> tuple[pd.DataFrame, list[dict]]:
        """As :func:`training.pipeline.stacked_snapshots`; each partition samples its share of a cutoff's
        ``max_rows_per_cutoff`` (by its customers), and nothing is sampled where the cutoff has no more."""
        fitted, sizes = self._fit(config, cutoffs)
        degraded = [{"cutoff": iso(c), "reason": why} for c, (clv, why) in zip(cutoffs, fitted) if clv is None]
        totals, cap = [sum(column) for column in zip(*sizes)], config.boost.max_rows_per_cutoff
        plans = [[(c, clv, None if totals[j] <= cap else max(1, round(cap * size[j] / totals[j])))
                  for j, (c, (clv, _)) in enumerate(zip(cutoffs, fitted))] for size in sizes]
        call = dask.delayed(_sampled_snapshots, pure=True)
        parts = compute(self.client, *[call(part, k, plans[k], config)
                                       for k, part in enumerate(self.transactions.to_delayed())])
        frames = []
        for j, cutoff in enumerate(cutoffs):
            frames.append(to_pandas([p[j] for p in parts]).sort_index())
            if progress:
                progress(f"snapshot {cutoff:%Y-%m-%d}")
        return pd.concat(frames), degraded

    def daily_purchases(self, *, as_of: pd.Timestamp) -> pd.Series:
        parts = [p for p in self._each(_daily, as_of) if len(p)]
        return pd.concat(parts).groupby(level=0).sum().sort_index() if parts else pd.Series(dtype="int64")

    def tracking(self, *, as_of: pd.Timestamp) -> Tracking:
        return Tracking.merge(self._each(_tracking, as_of))

    def labels(self, *, as_of: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
        return to_pandas(self._each(_labels, as_of, horizon_days)).sort_index()

    def scores(self, bundle: ChurnCLVBundle, *, as_of: pd.Timestamp) -> pd.DataFrame:
        (table,) = compute(self.client, scores_by_partition(bundle, self.transactions, as_of=as_of))
        return table.sort_values("customer_id", ignore_index=True)

    def fingerprint(self) -> dict:
        return fingerprint_of(self._each(fingerprint_part))
