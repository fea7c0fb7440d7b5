"""The bundle as data: saved to a directory of JSON and LightGBM text, read back with identical scores."""

from __future__ import annotations

import json
from dataclasses import replace

import mlflow.pyfunc
import pandas as pd
import pytest

from scoring.artifact import (
    ARTIFACT,
    FORMAT,
    MANIFEST,
    VERSION,
    BundleFormatError,
    load_bundle_dir,
    save_bundle,
)
from scoring.bundle import ChurnCLVBundle
from scoring.clv import CLVParams
from scoring.pyfunc import BundleModel
from tests.conftest import SEED_AS_OF, fast_config
from training.pipeline import train
from training.registry import signature


@pytest.fixture(scope="module")
def bundle(seed_transactions) -> ChurnCLVBundle:
    return train(seed_transactions, as_of=SEED_AS_OF, config=fast_config()).bundle


def _refuse_constants(name: str):
    raise AssertionError(f"{name} is not plain JSON")


def test_a_saved_bundle_scores_identically_and_its_json_is_plain(bundle, seed_transactions, tmp_path):
    path = save_bundle(bundle, tmp_path / "bundle")
    loaded = load_bundle_dir(path)
    for explain in (False, True):
        pd.testing.assert_frame_equal(loaded.score(seed_transactions, as_of=SEED_AS_OF, explain=explain),
                                      bundle.score(seed_transactions, as_of=SEED_AS_OF, explain=explain))
    data = json.loads((path / MANIFEST).read_text(), parse_constant=_refuse_constants)
    assert (data["format"], data["version"]) == (FORMAT, VERSION) == ("churnclv-bundle", 1)
    assert data["as_of"] == "2025-12-31" and data["horizon_days"] == 90
    assert data["churn"]["features"] == list(bundle.models.churn.features)
    assert sorted(p.name for p in path.iterdir()) == ["bundle.json", "churn.txt", "purchases.txt"]
    assert type(loaded.models.clv) is CLVParams and loaded.policy == bundle.policy
    assert loaded.metadata["as_of"] == bundle.metadata["as_of"] and loaded.churn_method == bundle.churn_method


def test_a_bundle_without_boosters_round_trips(bundle, seed_transactions, tmp_path):
    btyd_only = ChurnCLVBundle(models=replace(bundle.models, churn=None, purchases=None), purchases_method="bgnbd",
                               policy=bundle.policy, metadata={"note": float("nan")})
    path = save_bundle(btyd_only, tmp_path / "bundle")
    assert sorted(p.name for p in path.iterdir()) == ["bundle.json"]
    loaded = load_bundle_dir(path)
    assert loaded.churn_method == "bgnbd" and loaded.metadata == {"note": None}
    pd.testing.assert_frame_equal(loaded.score(seed_transactions, as_of=SEED_AS_OF),
                                  btyd_only.score(seed_transactions, as_of=SEED_AS_OF))


def test_a_failed_save_leaves_the_earlier_bundle_whole(bundle, tmp_path):
    path = save_bundle(bundle, tmp_path / "bundle")
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    broken = ChurnCLVBundle(models=bundle.models, purchases_method="bgnbd", policy=bundle.policy,
                            metadata={"not json": object()})
    with pytest.raises(TypeError):
        save_bundle(broken, path)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]


def test_another_format_version_is_refused(bundle, tmp_path):
    path = save_bundle(bundle, tmp_path / "bundle")
    data = json.loads((path / MANIFEST).read_text())
    (path / MANIFEST).write_text(json.dumps({**data, "version": VERSION + 1}))
    with pytest.raises(BundleFormatError, match="version 2; this churnclv reads 'churnclv-bundle' version 1"):
        load_bundle_dir(path)
    with pytest.raises(BundleFormatError, match="not a saved churnclv bundle"):
        load_bundle_dir(tmp_path)


def test_the_pyfunc_model_reads_the_bundle_and_needs_as_of(bundle, seed_transactions, tmp_path):
    saved = save_bundle(bundle, tmp_path / "bundle")
    sample = seed_transactions.loc[seed_transactions["customer_id"].isin(["C00001", "C00002"])]
    mlflow.pyfunc.save_model(tmp_path / "model", python_model=BundleModel(), artifacts={ARTIFACT: str(saved)},
                             signature=signature(sample, bundle.score(sample, as_of=SEED_AS_OF), "2025-12-31"),
                             input_example=(sample, {"as_of": "2025-12-31"}))
    model = mlflow.pyfunc.load_model(str(tmp_path / "model"))
    pd.testing.assert_frame_equal(model.predict(sample, params={"as_of": "2025-12-31"}),
                                  bundle.score(sample, as_of=SEED_AS_OF))
    with pytest.raises(ValueError, match="params must include as_of"):  # MLflow itself fills the default
        model.unwrap_python_model().predict(None, sample, params={})
    # the only pickle is the stateless entry point: a reference to scoring.pyfunc.BundleModel, no fitted state
    assert (tmp_path / "model" / "python_model.pkl").stat().st_size < 1_000
