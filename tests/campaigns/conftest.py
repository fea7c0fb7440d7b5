"""Fixtures of the campaign tests: a fresh SQLite store per test, a ranked selection of customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from campaigns.migrate import open_store


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'churnclv.db'}"


@pytest.fixture
def engine(db_url):
    engine = open_store(db_url)
    yield engine
    engine.dispose()


def make_selected(n: int, *, seed: int = 0, segments=("at_risk", "high_value_at_risk", "steady")) -> pd.DataFrame:
    """A ranked score table of ``n`` customers ("C000001"…), best (highest value at risk) first."""
    rng = np.random.default_rng(seed)
    churn = rng.random(n)
    clv = np.round(rng.gamma(2.0, 100.0, size=n), 2)
    frame = pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(1, n + 1)],
        "segment": rng.choice(segments, size=n),
        "churn_probability": churn,
        "clv": clv,
        "value_at_risk": churn * clv,
    })
    return frame.sort_values("value_at_risk", ascending=False, ignore_index=True)


@pytest.fixture
def selected() -> pd.DataFrame:
    return make_selected(1_000)
