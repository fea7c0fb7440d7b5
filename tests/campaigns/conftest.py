"""Fixtures of the campaign tests: a fresh store per test, a ranked selection of customers.

The store is a SQLite file, and every store test also runs on a fresh database of a PostgreSQL server:
the one ``CHURNCLV_TEST_POSTGRES_URL`` names (e.g. ``postgresql+psycopg://postgres@127.0.0.1:55432/postgres``),
else a throwaway cluster the session starts from Debian's ``postgresql`` binaries (:mod:`tests.pg_cluster`;
``make test`` installs them when missing).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from churnclv.campaigns.migrate import open_store
from tests.pg_cluster import binaries

POSTGRES = os.environ.get("CHURNCLV_TEST_POSTGRES_URL")
#: PostgreSQL runs when a server is named, or when its binaries are installed (a throwaway cluster is started).
BACKENDS = ["sqlite", "postgresql"] if POSTGRES or binaries() is not None else ["sqlite"]


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> str:
    """A fresh store's URL: a SQLite file, then a fresh database of the PostgreSQL server (tests/conftest.py)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'churnclv.db'}"
    return request.getfixturevalue("postgres_database")


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
