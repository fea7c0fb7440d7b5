"""Fixtures of the campaign tests: a fresh store per test, a ranked selection of customers.

The store is a SQLite file; with ``CHURNCLV_TEST_POSTGRES_URL`` set to a PostgreSQL server's URL
(e.g. ``postgresql+psycopg://postgres@127.0.0.1:55432/postgres``) every store test also runs on a
fresh database of that server.
"""

from __future__ import annotations

import os
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from campaigns.migrate import open_store

POSTGRES = os.environ.get("CHURNCLV_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES else ["sqlite"]


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'churnclv.db'}"
        return
    server = sa.make_url(POSTGRES)
    name = f"churnclv_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


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
