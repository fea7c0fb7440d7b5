"""The service's ASGI app, once per session, on the model and score table of ``trained_home``.

Tests that need another situation (no model, another score table) swap the service's
``state`` for the duration of the test with the ``swap_state`` fixture.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from churnclv.scoring import scores

with warnings.catch_warnings():  # starlette's note about httpx2, once
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

KEY = "test-key-1-0123456789"
KEY2 = "test-key-2-0123456789"
#: Keys with a role (and a name, which the audit trail records): tests/serving/test_campaigns.py
READ_KEY, PLAN_KEY = "read-key-0123456789", "plan-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
SERVICE_ENV = ("MLFLOW_TRACKING_URI", "CHURNCLV_MODEL_URI", "CHURNCLV_SCORES_PATH", "CHURNCLV_API_KEYS_FILE",
               "CHURNCLV_OPEN", "BENTOML_HOST", "CHURNCLV_MAX_BODY_BYTES")


@dataclass
class Harness:
    client: Any  # starlette TestClient
    service: Any  # the ChurnCLV instance
    trained: Any  # tests/conftest.py Trained

    def config(self, **changes):
        from churnclv.serving.state import ServeConfig

        home = self.trained.home
        settings = {"model_uri": "models:/churn-clv@champion", "scores_path": self.trained.scores_path,
                    "tracking_uri": self.trained.tracking_uri, "artifact_root": home / "mlruns" / "artifacts",
                    "refresh_seconds": 0}
        return ServeConfig(**{**settings, **changes})


@pytest.fixture(scope="session")
def harness(trained_home):
    from _bentoml_sdk.service import get_current_service

    with pytest.MonkeyPatch.context() as mp:
        for name in SERVICE_ENV:
            mp.delenv(name, raising=False)
        mp.setenv("CHURNCLV_HOME", str(trained_home.home))
        mp.setenv("CHURNCLV_API_KEYS", f"{KEY},{KEY2},{READ_KEY} name=analyst role=read,{PLAN_KEY} name=marketing role=plan")
        mp.setenv("CHURNCLV_REFRESH_SECONDS", "0")
        for name, value in (("CHURNCLV_RATE_LIMIT", "1000000/minute"), ("CHURNCLV_AUTH_FAILURE_LIMIT", "1000000/minute"),
                            ("CHURNCLV_RATE_LIMIT_STORE", str(trained_home.home / "run" / "in-process-limits.sqlite"))):
            mp.setenv(name, value)  # limits no test of another subject reaches (tests/serving/test_limits.py)
        from churnclv.serving.service import ChurnCLV

        with TestClient(ChurnCLV.to_asgi(), raise_server_exceptions=False) as client:
            yield Harness(client, get_current_service(), trained_home)


@pytest.fixture()
def api(harness):
    """The test client of the service as loaded at start; the served state is restored after the test."""
    original = harness.service.state
    yield harness
    harness.service.state = original


@pytest.fixture(scope="session")
def batch(trained_home) -> pd.DataFrame:
    return pd.read_parquet(trained_home.scores_path)


def error_of(response) -> dict:
    """The error object of a response, checking that it has our one format."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "details"} <= set(body["error"]), body
    assert "Traceback" not in response.text
    return body["error"]


def write_scores(frame: pd.DataFrame, path: Path, **metadata) -> Path:
    return scores.write_scores(frame, path, {"as_of": "2025-12-31", "model_uri": "models:/churn-clv/1",
                                             "model_version": "1", "trained_as_of": "2025-12-31",
                                             "horizon_days": "90", **metadata})
