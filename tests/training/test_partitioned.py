"""Features, training and batch scores on a Dask cluster equal the single-process ones.

One ``distributed.LocalCluster`` of 2 single-threaded worker processes (what ``--dask local`` starts)
serves the whole module; the seed log is written as a Parquet dataset of one file per month.
"""

from __future__ import annotations

import dataclasses
import json
import re

import dask
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnclv.features import build_features
from churnclv.features.io import TransactionsError
from churnclv.scoring.bundle import score_table
from churnclv.scoring.clock import Clock
from churnclv.scoring.drift import bundle_drift
from churnclv.scoring.intervals import VALUE_DRAWS_COLUMN, top_positions
from churnclv.scoring.scores import dated_name, keep_dated_copy, read_score_metadata, score_metadata
from churnclv.training.churn import fit_churn
from churnclv.training.clock import fit_on_clock
from churnclv.training.cluster import (
    cluster,
    compute,
    features_by_partition,
    persist,
    read_transactions,
    scores_by_partition,
    write_scores_dataset,
)
from churnclv.training.clv import CLVCounts, CLVModel
from churnclv.training.partitioned import PartitionedLog, score_partitions
from churnclv.training.pipeline import InMemoryLog, fingerprint, fingerprint_of, fingerprint_part, train
from churnclv.training.season import season_on_clock
from tests.conftest import SEED_AS_OF, fast_config

PARTITIONS = 4


def _by_customer(tx: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    bucket = pd.util.hash_pandas_object(tx["customer_id"], index=False).to_numpy() % n
    return [tx[bucket == k] for k in range(n)]


# -- the reductions, without a cluster ------------------------------------------------------------------

@pytest.mark.parametrize("time_unit_days", [7.0, 1.0])
def test_counts_of_customer_groups_merge_into_the_counts_of_all(seed_transactions, time_unit_days):
    rfm = build_features(seed_transactions, as_of=SEED_AS_OF)
    whole = CLVCounts.of(rfm, time_unit_days=time_unit_days)
    merged = CLVCounts.merge([CLVCounts.of(build_features(p, as_of=SEED_AS_OF), time_unit_days=time_unit_days)
                              for p in _by_customer(seed_transactions, 5)])
    assert len(whole.bgnbd) < len(rfm)  # compressed: the merge has something to merge
    pd.testing.assert_frame_equal(merged.bgnbd, whole.bgnbd, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(merged.gamma_gamma, whole.gamma_gamma)
    assert (merged.customers, merged.repeat, merged.excluded) == (whole.customers, whole.repeat, whole.excluded)
    fitted = CLVModel(time_unit_days=time_unit_days).fit_counts(merged)
    direct = CLVModel(time_unit_days=time_unit_days).fit(rfm)
    for name, value in direct.bgnbd_params_.items():
        assert fitted.bgnbd_params_[name] == pytest.approx(value, rel=1e-9), name
    assert fitted.fit_report_["bgnbd"]["rows_after"] == direct.fit_report_["bgnbd"]["rows_after"]


def test_fingerprints_of_customer_groups_add_up_to_the_whole(seed_transactions):
    parts = [fingerprint_part(p) for p in _by_customer(seed_transactions, 3)]
    assert fingerprint_of(parts) == fingerprint(seed_transactions)
    assert fingerprint_of(parts[:2]) != fingerprint(seed_transactions)


# -- on the cluster ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    with cluster("local", dashboard_address=":0") as running:
        yield running


@pytest.fixture(scope="module")
def log(client, dataset) -> PartitionedLog:
    return PartitionedLog(persist(client, read_transactions(dataset, npartitions=PARTITIONS)), client)


@pytest.fixture(scope="module")
def trained(log, seed_transactions):
    """The same training, single-process and on the cluster."""
    config = fast_config()
    return train(seed_transactions, as_of=SEED_AS_OF, config=config), train(log, as_of=SEED_AS_OF, config=config)


@pytest.mark.slow
def test_each_customer_is_in_one_partition(log, seed_transactions):
    (ids,) = compute(log.client, log.transactions["customer_id"].map_partitions(lambda s: s.drop_duplicates()))
    assert log.transactions.npartitions == PARTITIONS
    assert ids.is_unique and len(ids) == seed_transactions["customer_id"].nunique()


@pytest.mark.slow
def test_features_on_customer_partitions_equal_the_single_process_table(log, seed_transactions):
    for as_of in (SEED_AS_OF, pd.Timestamp("2024-09-30")):
        (table,) = compute(log.client, features_by_partition(log.transactions, as_of=as_of))
        got = table.set_index("customer_id").sort_index()
        pd.testing.assert_frame_equal(got, build_features(seed_transactions, as_of=as_of))


@pytest.mark.slow
def test_the_eligibility_report_is_measured_alike(log, seed_transactions):
    config = fast_config()
    assert (log.eligibility(as_of=SEED_AS_OF, config=config).to_dict()
            == InMemoryLog(seed_transactions).eligibility(as_of=SEED_AS_OF, config=config).to_dict())


@pytest.mark.slow
def test_the_tracking_counts_are_counted_alike(log, seed_transactions):
    """What the seasonal clock is fitted on (``training.clock``): the partitions' counts merged."""
    got, want = log.tracking(as_of=SEED_AS_OF), InMemoryLog(seed_transactions).tracking(as_of=SEED_AS_OF)
    assert (got.first_day, got.clump_squares, got.clump_days) == (want.first_day, want.clump_squares, want.clump_days)
    np.testing.assert_array_equal(got.new, want.new)
    np.testing.assert_array_equal(got.repeats, want.repeats)


@pytest.mark.slow
def test_training_on_the_cluster_gives_the_single_process_model(trained, seed_transactions):
    single, spread = trained
    a, b = single.bundle, spread.bundle
    for name, value in a.models.clv.bgnbd_params_.items():
        assert b.models.clv.bgnbd_params_[name] == pytest.approx(value, rel=1e-9), name
    for name, value in a.models.clv.gg_params_.items():
        assert b.models.clv.gg_params_[name] == pytest.approx(value, rel=1e-9), name
    assert b.models.season_factor == pytest.approx(a.models.season_factor, rel=1e-9)
    assert b.models.poisson_scale == pytest.approx(a.models.poisson_scale, rel=1e-9)
    assert spread.fingerprint == single.fingerprint
    for key in ("as_of", "backtest_origin", "purchases_method", "churn_method", "cutoffs", "features", "notes",
                "eligibility"):
        assert b.metadata[key] == a.metadata[key], key
    for model, metrics in single.metrics.items():
        for name, value in metrics.items():
            assert spread.metrics[model][name] == pytest.approx(value, rel=1e-7, abs=1e-9, nan_ok=True), (model, name)
    # the boosters were fitted on the same rows in the same order: they predict the same
    table = single.backtest_fit.table
    np.testing.assert_allclose(b.models.churn.predict_proba(table), a.models.churn.predict_proba(table), rtol=1e-9)
    np.testing.assert_allclose(b.models.purchases.predict(table), a.models.purchases.predict(table), rtol=1e-9)
    bars_a, bars_b = dataclasses.asdict(a.policy), dataclasses.asdict(b.policy)
    assert bars_b == pytest.approx(bars_a, rel=1e-9)


@pytest.mark.slow
def test_the_season_on_a_clock_is_measured_alike(log, seed_transactions):
    """``training.season.season_on_clock`` reads the log through its snapshots only: on a clock whose fourth
    quarter runs twice as fast, the cluster's factor is the single process's."""
    config, as_of = fast_config(), pd.Timestamp("2025-12-31")
    clock = Clock((0.8,) * 9 + (1.6,) * 3)
    factors = []
    for each in (log, InMemoryLog(seed_transactions)):
        season = each.until(as_of).season(as_of=as_of, config=config)
        now = each.until(as_of).snapshot(as_of=as_of, config=config)[0]
        clocked = fit_on_clock(clock, now, as_of=as_of, clv_model=config.clv_model)
        factors.append(season_on_clock(
            season, clocked, now=now, as_of=as_of, horizon_days=config.horizon_days, first_day=each.first_day(),
            features=lambda cutoff, each=each: each.until(as_of).snapshot(as_of=cutoff, config=config)[0],
            clv_model=config.clv_model))
    assert "on the seasonal clock" in factors[1].note and factors[1].factor != factors[1].windows[0]["ratio"]
    assert factors[0].factor == pytest.approx(factors[1].factor, rel=1e-9) and factors[0].note == factors[1].note


@pytest.mark.slow
def test_sampled_snapshots_keep_counts_and_rates_and_train_a_model_as_good(log, seed_transactions):
    config = dataclasses.replace(fast_config(), boost=dataclasses.replace(fast_config().boost,
                                                                          max_rows_per_cutoff=1_500))
    memory = InMemoryLog(seed_transactions)
    cutoffs = [pd.Timestamp("2025-06-06"), pd.Timestamp("2025-07-04"), pd.Timestamp("2025-08-01"),
               pd.Timestamp("2025-09-04")]
    spread, degraded = log.stacked(cutoffs=cutoffs, config=config)
    single, _ = memory.stacked(cutoffs=cutoffs, config=config)
    assert degraded == []
    for cutoff in cutoffs:
        everyone = build_features(seed_transactions, as_of=cutoff)
        rows = spread.loc[spread["cutoff"] == cutoff]
        assert len(rows) <= 1_500 + PARTITIONS and rows.index.is_unique and rows.index.is_monotonic_increasing
        assert rows["weight"].sum() == pytest.approx(len(everyone), rel=1e-9)  # weighted counts are the full ones
        full = memory.labels(as_of=cutoff, horizon_days=config.horizon_days)["churned"].mean()
        assert np.average(rows["churned"], weights=rows["weight"]) == pytest.approx(full, rel=1e-9)
    # The two samples differ (each partition draws its own), the models they train rank alike.
    assert not spread.index.equals(single.index)
    judged = memory.snapshot(as_of=pd.Timestamp("2025-10-02"), config=config)[0].join(
        memory.labels(as_of=pd.Timestamp("2025-10-02"), horizon_days=config.horizon_days))
    auc = {name: roc_auc_score(judged["churned"], fit_churn(stacked, settings=config.boost,
                                                            horizon_days=config.horizon_days).predict_proba(judged))
           for name, stacked in (("cluster", spread), ("single", single))}
    assert auc["cluster"] > 0.75 and auc["cluster"] == pytest.approx(auc["single"], abs=0.02), auc


@pytest.mark.slow
def test_batch_scores_on_the_cluster_equal_the_single_process_table(trained, log, seed_transactions, tmp_path):
    single, spread = trained
    expected = score_table(single.bundle, seed_transactions, as_of=SEED_AS_OF, explain=True)
    metadata = score_metadata(single.bundle, as_of=SEED_AS_OF)
    scores = scores_by_partition(single.bundle, log.transactions, as_of=SEED_AS_OF, explain=True)
    path = write_scores_dataset(scores, tmp_path / "scores", metadata, log.client)
    parts = sorted(path.glob("*.parquet"))
    assert len(parts) == PARTITIONS and read_score_metadata(parts[0]) == metadata
    got = pd.read_parquet(path).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
    # and the model trained on the cluster scores like the single-process one
    again = score_table(spread.bundle, seed_transactions, as_of=SEED_AS_OF)
    numbers = expected.select_dtypes("number").columns
    np.testing.assert_allclose(again[numbers].to_numpy(), expected[numbers].to_numpy(), rtol=1e-7, atol=1e-9)
    assert (again["segment"] == expected["segment"]).mean() > 0.999


@pytest.mark.slow
def test_bad_rows_name_the_partition_column_and_count(client, tmp_path, seed_transactions):
    folder = tmp_path / "bad"
    folder.mkdir()
    as_text = seed_transactions.astype({"amount": "str"})  # as a CSV export turned into Parquet
    as_text.iloc[:500].to_parquet(folder / "2024-01.parquet", index=False)
    bad = as_text.iloc[500:600].reset_index(drop=True)
    bad.loc[[3, 7], "amount"] = "n/a"
    bad.to_parquet(folder / "2024-02.parquet", index=False)
    with pytest.raises(TransactionsError) as caught:
        compute(client, read_transactions(folder))
    message = str(caught.value)
    assert f"{folder}, partition " in message
    assert "column 'amount': 2 row(s) are not finite numbers (e.g. row 4: 'n/a', row 8: 'n/a')" in message


@pytest.mark.slow
def test_a_file_given_twice_is_caught_across_files(client, tmp_path, seed_transactions):
    folder = tmp_path / "twice"
    folder.mkdir()
    month = seed_transactions.loc[seed_transactions["timestamp"] < "2024-02-01"]
    month.to_parquet(folder / "2024-01.parquet", index=False)
    month.to_parquet(folder / "2024-01-copy.parquet", index=False)
    with pytest.raises(TransactionsError) as caught:  # in either file's partitions: whichever fails first
        compute(client, read_transactions(folder))
    assert f"{folder}, after shuffling by customer" in str(caught.value)
    assert re.search(r"column 'order_id': [\d,]+ row\(s\) ", str(caught.value))
    (alone,) = compute(client, read_transactions(folder / "2024-01.parquet"))  # either file alone is fine
    assert len(alone) == len(month)


@pytest.mark.slow
def test_scores_on_the_cluster_carry_the_whole_tables_drift_draws_and_dated_copy(log, trained_home, seed_transactions,
                                                                                   tmp_path):
    """``score --dask``'s table: the single process's columns, its drift report to the last digit (from the
    partitions' merged counts), the values per draw of the whole table's top customers (300 here, chosen across
    the partitions), and a one-file dated copy for the monitor."""
    from churnclv.scoring.registry import connect, load_bundle

    bundle = load_bundle(connect(trained_home.tracking_uri, trained_home.home / "mlruns" / "artifacts"),
                         "models:/churn-clv@champion")
    single = score_table(bundle, seed_transactions, as_of=SEED_AS_OF, draws=True)  # 4,000 < 20,000: all of them
    snapshot = bundle.snapshot(seed_transactions, as_of=SEED_AS_OF)
    scored = score_partitions(bundle, log.transactions, log.client, as_of=SEED_AS_OF, keep=300)
    assert scored.drift is not None and scored.drift == bundle_drift(bundle, snapshot, as_of=SEED_AS_OF)
    metadata = score_metadata(bundle, as_of=SEED_AS_OF) | {"drift": json.dumps(scored.drift)}
    path = write_scores_dataset(scored.tables, tmp_path / "scores", metadata, log.client, schema=scored.schema)
    got = pd.read_parquet(path).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(got.drop(columns=VALUE_DRAWS_COLUMN), single.drop(columns=VALUE_DRAWS_COLUMN),
                                  check_exact=False, rtol=1e-12)
    kept = got[VALUE_DRAWS_COLUMN].notna().to_numpy()
    top = single["customer_id"].iloc[top_positions(single["value_at_risk"].to_numpy(), 300)]
    assert kept.sum() == 300 and set(got.loc[kept, "customer_id"]) == set(top)
    holders = compute(log.client, *[dask.delayed(_customer_set)(d) for d in log.transactions.to_delayed()])
    per_partition = [len(held & set(top)) for held in holders]
    assert sum(per_partition) == 300 and max(per_partition) < 300  # chosen across partitions, by one bar
    want = single.set_index("customer_id")[VALUE_DRAWS_COLUMN]
    for cid, values in zip(got.loc[kept, "customer_id"], got.loc[kept, VALUE_DRAWS_COLUMN]):
        np.testing.assert_allclose(values, want[cid], rtol=1e-6)

    copy = keep_dated_copy(path, tmp_path / "dated", metadata)
    assert copy.is_file() and copy.name == dated_name(metadata) and read_score_metadata(copy) == metadata
    again = pd.read_parquet(copy).sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(again.drop(columns=VALUE_DRAWS_COLUMN), got.drop(columns=VALUE_DRAWS_COLUMN))
    assert again[VALUE_DRAWS_COLUMN].notna().sum() == 300


def _customer_set(part: pd.DataFrame) -> set[str]:
    return set(part["customer_id"].astype(str))


def test_an_order_line_dataset_multiplies_quantity_by_unit_price(tmp_path):
    """The amount as ``Quantity*Price`` on the Dask path too; a missing factor fails before anything is read."""
    lines = pd.DataFrame({"cust": ["a", "a", "b"], "when": ["2024-01-01", "2024-02-01", "2024-01-03"],
                          "Quantity": ["2", "3", "-1"], "Price": ["1.5", "2", "4"]})
    lines.to_parquet(tmp_path / "lines.parquet", index=False)
    columns = {"customer_col": "cust", "timestamp_col": "when"}
    tx = read_transactions(tmp_path / "lines.parquet", amount_col="Quantity*Price", **columns).compute()
    assert tx.sort_values(["customer_id", "timestamp"])["amount"].tolist() == [3.0, 6.0, -4.0]
    with pytest.raises(TransactionsError, match=r"missing column\(s\) 'Cost'; the input has: cust, when, Quantity"):
        read_transactions(tmp_path / "lines.parquet", amount_col="Quantity*Cost", **columns)
