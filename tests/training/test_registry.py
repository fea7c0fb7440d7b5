"""MLflow tracking and registry in a temporary store: what a run logs, the bundle, the champion gate."""

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from contract import ChurnclvError
from contract.defaults import CHAMPION, MODEL_NAME
from scoring.registry import connect, load_bundle
from tests.conftest import SEED_AS_OF, fast_config
from training.churn import BoostSettings
from training.jobs import run_training
from training.registry import compare, promote


def test_a_run_logs_params_metrics_plots_and_the_data_fingerprint(trained_home):
    client = connect(trained_home.tracking_uri)
    run = client.get_run(trained_home.run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["as_of"] == "2025-12-31" and params["horizon_days"] == "90"
    assert params["boost.seed"] == "42" and params["data.rows"] == "25057"
    assert params["clv.bgnbd.path"] in ("converged", "precision_loss_accepted") and float(params["clv.bgnbd.r"]) > 0
    assert {"lightgbm.roc_auc", "bgnbd.roc_auc", "rfm_logistic.roc_auc", "lightgbm.purchases_total_error_pct",
            "lightgbm.spend_spearman", "lightgbm.brier", "lightgbm.lift_top_decile"} <= set(metrics)
    names = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/calibration.png", "plots/lift_gain.png", "plots/feature_importance.png",
            "plots/purchases_by_frequency.png", "plots/p_alive.png"} <= names
    assert run.info.artifact_uri.startswith(str(trained_home.home / "mlruns" / "artifacts"))


def test_the_first_version_is_the_champion_with_its_as_of(trained_home):
    client = connect(trained_home.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    assert str(champion.version) == trained_home.version and champion.run_id == trained_home.run_id
    assert champion.tags["as_of"] == "2025-12-31"


def test_the_registered_bundle_scores_like_the_pyfunc_and_holds_no_customer_data(trained_home, seed_transactions):
    client = connect(trained_home.tracking_uri)
    bundle = load_bundle(client, "models:/churn-clv@champion")
    assert bundle.metadata["version"] == trained_home.version
    sample = seed_transactions.loc[seed_transactions["customer_id"].isin(["C00001", "C00002", "C00003"])]
    direct = bundle.score(sample, as_of=SEED_AS_OF)
    via_pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{trained_home.version}").predict(
        sample, params={"as_of": "2025-12-31"})
    pd.testing.assert_frame_equal(direct, via_pyfunc, check_dtype=False)
    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{trained_home.version}"))
    blob = b"".join(p.read_bytes() for p in model_dir.rglob("*") if p.is_file())
    assert len(blob) < 3_000_000
    assert b"C00001" not in blob and b"C01234" not in blob


def test_compare_needs_both_auc_and_purchase_error_at_least_as_good():
    old = {"lightgbm.roc_auc": 0.78, "lightgbm.purchases_total_error_pct": -5.0}
    assert compare({"lightgbm.roc_auc": 0.78, "lightgbm.purchases_total_error_pct": 5.0}, old)[0]
    assert not compare({"lightgbm.roc_auc": 0.79, "lightgbm.purchases_total_error_pct": -6.0}, old)[0]
    assert not compare({"lightgbm.roc_auc": 0.77, "lightgbm.purchases_total_error_pct": -1.0}, old)[0]


def test_a_worse_model_is_registered_as_challenger_and_promote_overrides(tmp_path, seed_transactions):
    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    common = dict(as_of=SEED_AS_OF, dataset="seed", client=client, artifact_root=tmp_path / "artifacts",
                  plots_dir=tmp_path / "plots")
    first = run_training(seed_transactions, config=fast_config(), **common)
    weak = fast_config().__class__(horizon_days=90, plan=fast_config().plan,
                                   boost=BoostSettings(n_estimators=1, fixed_rounds=1, num_leaves=2))
    second = run_training(seed_transactions, config=weak, **common)
    assert first.promoted and not second.promoted
    assert f"kept v{first.logged.version} as champion" in second.reason and "challenger" in second.reason
    assert str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == first.logged.version
    promote(client, second.logged.version)
    assert str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == second.logged.version
    with pytest.raises(ChurnclvError, match="no version 99"):
        promote(client, "99")


def test_the_gate_scores_an_older_champion_on_the_challengers_window(tmp_path, seed_transactions):
    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    common = dict(dataset="seed", client=client, artifact_root=tmp_path / "artifacts", plots_dir=tmp_path / "plots",
                  config=fast_config())
    old = run_training(seed_transactions, as_of=SEED_AS_OF - pd.Timedelta(days=120), **common)
    new = run_training(seed_transactions, as_of=SEED_AS_OF, **common)
    assert old.promoted
    assert f"champion v{old.logged.version} re-scored on this backtest window" in new.reason
    # the re-scored champion saw nothing after its own as-of: its window metrics are an honest comparison
    from training.pipeline import until, window_metrics

    champion = load_bundle(client, f"models:/{MODEL_NAME}/{old.logged.version}")
    origin = pd.Timestamp(new.result.bundle.metadata["backtest_origin"])
    measured = window_metrics(champion, until(seed_transactions, SEED_AS_OF), origin=origin, horizon_days=90)
    assert f"vs champion's {measured['lightgbm.roc_auc']:.4f}" in new.reason
