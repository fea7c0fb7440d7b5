"""Loading and indexing the score table; what a refresh swaps in and what it keeps (registry stubbed);
the service's configuration from the settings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnclv.contract.settings import Settings
from churnclv.serving import state
from churnclv.serving.state import ServeConfig, ServingState
from churnclv.serving.table import load_score_table, lookup, score_rows
from tests.serving.conftest import write_scores


def small_table(n: int = 4, *, drivers: bool = True) -> pd.DataFrame:
    frame = pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "churn_probability": np.linspace(0.1, 0.9, n), "p_alive": np.linspace(0.9, 0.1, n),
        "expected_purchases": np.arange(n, dtype=float), "expected_spend": np.arange(n) * 10.0,
        "clv": np.arange(n) * 100.0 + 1.0, "value_at_risk": np.linspace(0.1, 0.9, n) * (np.arange(n) * 100.0 + 1.0),
        "segment": ["steady", "at_risk", "at_risk", "loyal"][:n] + ["steady"] * max(0, n - 4),
        "recommended_action": ["newsletter", "automated_winback", "automated_winback", "no_contact"][:n]
        + ["newsletter"] * max(0, n - 4),
    })
    if drivers:
        frame["drivers"] = [json.dumps([{"feature": "recency", "value": float(i), "contribution": 0.1}]) for i in range(n)]
    return frame


def test_load_index_and_lookup(tmp_path):
    path = write_scores(small_table(), tmp_path / "s.parquet", model_version="7")
    table = load_score_table(path)
    assert len(table) == 4 and table.as_of == "2025-12-31" and table.model_version == "7"
    positions, unknown = lookup(table, ["c2", "zz", "c0", "c2"])
    assert positions.tolist() == [2, 0] and unknown == ["zz"]
    rows = score_rows(table, positions, explain=True)
    assert rows[0]["customer_id"] == "c2" and rows[0]["segment"] == "at_risk"
    assert rows[0]["clv"] == pytest.approx(201.0)
    assert rows[1]["drivers"] == [{"feature": "recency", "value": 0.0, "contribution": 0.1}]
    assert score_rows(table, positions)[0]["drivers"] is None  # not asked for


def test_a_table_without_drivers_loads_and_says_so(tmp_path):
    table = load_score_table(write_scores(small_table(drivers=False), tmp_path / "s.parquet"))
    assert table.drivers is None
    assert score_rows(table, np.array([1]), explain=True)[0]["drivers"] is None  # asked, none kept


def test_unusable_tables_are_refused_with_a_message(tmp_path):
    with pytest.raises(ValueError, match="no column.*clv"):
        load_score_table(write_scores(small_table().drop(columns="clv"), tmp_path / "a.parquet"))
    dup = small_table().assign(customer_id=["a", "a", "b", "c"])
    with pytest.raises(ValueError, match="unique"):
        load_score_table(write_scores(dup, tmp_path / "b.parquet"))
    with pytest.raises(FileNotFoundError, match="churnclv score"):
        load_score_table(tmp_path / "missing.parquet")


class FakeModel:
    def __init__(self, version):
        self.version = version
        self.metadata = {"version": version}


@pytest.fixture()
def registry(monkeypatch):
    """A stub registry: ``registry["version"]`` is what the alias points at, ``registry["loads"]`` counts loads."""
    stub = {"version": "1", "loads": 0, "down": False}

    def resolve(client, uri):
        if stub["down"]:
            raise ConnectionError("registry down")
        return stub["version"]

    def load(client, uri):
        stub["loads"] += 1
        return FakeModel(stub["version"])

    monkeypatch.setattr(state, "resolve_version", resolve)
    monkeypatch.setattr(state, "load_model", load)
    return stub


def make_state(tmp_path) -> ServingState:
    config = ServeConfig(model_uri="models:/churn-clv@champion", scores_path=tmp_path / "scores.parquet",
                         tracking_uri="sqlite:///unused", artifact_root=None, refresh_seconds=0)
    return ServingState(config, client=object())


def test_refresh_loads_what_changed_and_nothing_else(tmp_path, registry):
    served = make_state(tmp_path)
    assert served.refresh() == ["model"]
    assert served.current.model.version == "1" and served.current.table is None
    assert "churnclv score" in served.current.table_problem and not served.current.ready
    write_scores(small_table(), tmp_path / "scores.parquet")
    assert served.refresh() == ["score_table"] and served.current.ready
    assert served.refresh() == [] and registry["loads"] == 1
    registry["version"] = "2"
    write_scores(small_table(3), tmp_path / "scores.parquet", model_version="2")
    assert served.refresh() == ["model", "score_table"]
    assert served.current.model.version == "2" and len(served.current.table) == 3


def test_a_bad_new_table_keeps_the_old_one_and_is_not_retried(tmp_path, registry, monkeypatch):
    served = make_state(tmp_path)
    write_scores(small_table(), tmp_path / "scores.parquet")
    served.refresh()
    before = served.current.table
    (tmp_path / "scores.parquet").write_bytes(b"not parquet")
    assert served.refresh() == []
    assert served.current.table is before
    assert "cannot load the score table" in served.current.table_problem
    assert "still serving the table as of 2025-12-31" in served.current.table_problem
    monkeypatch.setattr(state, "load_score_table", lambda path: pytest.fail("retried a known-bad file"))
    served.refresh()


def test_registry_down_keeps_the_model(tmp_path, registry):
    served = make_state(tmp_path)
    served.refresh()
    registry["down"] = True
    assert served.refresh() == []
    assert served.current.model.version == "1"
    assert "cannot reach the model registry" in served.current.model_problem
    assert "still serving v1" in served.current.model_problem


def test_serve_config_comes_from_the_settings(tmp_path):
    settings = Settings.load({"CHURNCLV_HOME": str(tmp_path), "CHURNCLV_REFRESH_SECONDS": "0.5",
                              "CHURNCLV_MODEL_URI": "models:/churn-clv/3"})
    config = ServeConfig.from_settings(settings)
    assert config == ServeConfig(model_uri="models:/churn-clv/3", scores_path=tmp_path / "scores" / "latest.parquet",
                                 tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
                                 artifact_root=tmp_path / "mlruns" / "artifacts", refresh_seconds=0.5)
    named = Settings.load({"CHURNCLV_HOME": str(tmp_path), "CHURNCLV_SCORES_PATH": str(tmp_path / "s.csv"),
                           "MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    config = ServeConfig.from_settings(named)
    assert (config.scores_path, config.tracking_uri, config.artifact_root) == (tmp_path / "s.csv", "http://mlflow:5000", None)
    assert config.refresh_seconds == 5.0 and config.model_uri == "models:/churn-clv@champion"


def _run_state(trained_home, model_uri: str) -> ServingState:
    """A state on the real store of ``trained_home`` serving a run's model: no registered version to pin."""
    config = ServeConfig(model_uri=model_uri, scores_path=trained_home.scores_path,
                         tracking_uri=trained_home.tracking_uri,
                         artifact_root=trained_home.home / "mlruns" / "artifacts", refresh_seconds=0)
    return ServingState(config)


def test_a_run_uri_without_a_registered_version_loads_and_refreshes(trained_home):
    served = _run_state(trained_home, f"runs:/{trained_home.run_id}/model")
    assert served.refresh() == ["model", "score_table"]
    assert served.current.ready and served.current.problems == []
    assert served.current.model.bundle.metadata["as_of"] == "2025-12-31"
    assert served.refresh() == [] and served.refresh() == []
    assert served.refresh(force=True) == ["model", "score_table"]


def test_a_run_uri_that_cannot_load_is_reported_on_every_refresh_and_not_retried(trained_home, monkeypatch):
    uri = "runs:/0123456789abcdef0123456789abcdef/model"
    served = _run_state(trained_home, uri)
    assert served.refresh() == ["score_table"]
    problem = served.current.model_problem
    assert problem.startswith(f"cannot load {uri}: ") and "vNone" not in problem
    monkeypatch.setattr(state, "load_model", lambda client, uri: pytest.fail("retried a model that failed"))
    assert served.refresh() == [] and served.current.model_problem == problem
