"""Shared fixtures: the seed data, and one model trained on it in a temporary MLflow store.

MLflow always points at a temporary directory here, never at the repository's ``mlruns/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

SEED_CSV = Path(__file__).resolve().parents[1] / "seeds" / "transactions.csv"
SEED_AS_OF = pd.Timestamp("2025-12-31")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A PostgreSQL server's SQLAlchemy URL: CHURNCLV_TEST_POSTGRES_URL, else a throwaway cluster of Debian's
    binaries for this test session (:mod:`tests.pg_cluster`, about a second to start)."""
    from tests.pg_cluster import throwaway_cluster

    if os.environ.get("CHURNCLV_TEST_POSTGRES_URL"):
        yield os.environ["CHURNCLV_TEST_POSTGRES_URL"]
        return
    with throwaway_cluster() as url:
        yield url


@pytest.fixture()
def postgres_database(postgres_server) -> str:
    """A fresh database on :func:`postgres_server` for one test (dropped after it); its URL."""
    import uuid

    import sqlalchemy as sa

    server = sa.make_url(postgres_server)
    name = f"churnclv_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def _isolated_state(tmp_path_factory):
    """No test may touch the repository's state or a real tracking server."""
    home = tmp_path_factory.mktemp("home")
    saved = {k: os.environ.get(k) for k in ("CHURNCLV_HOME", "MLFLOW_TRACKING_URI", "PROMETHEUS_MULTIPROC_DIR")}
    os.environ["CHURNCLV_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path_factory.mktemp("prometheus"))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def seed_transactions() -> pd.DataFrame:
    from churnclv.features import load_transactions

    return load_transactions(SEED_CSV)


@dataclass(frozen=True)
class Trained:
    """A CHURNCLV_HOME with a registered champion trained on the seed data and its score table."""

    home: Path
    tracking_uri: str
    version: str
    run_id: str
    as_of: pd.Timestamp
    scores_path: Path


def fast_config():
    from churnclv.training.churn import BoostSettings, CutoffPlan
    from churnclv.training.pipeline import TrainConfig

    return TrainConfig(horizon_days=90, plan=CutoffPlan(n_cutoffs=4, step_days=28),
                       boost=BoostSettings(n_estimators=150, learning_rate=0.1, num_leaves=7, early_stopping_rounds=20))


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory, seed_transactions) -> Trained:
    from churnclv.scoring.bundle import score_table
    from churnclv.scoring.registry import connect, load_bundle
    from churnclv.scoring.scores import score_metadata, write_scores
    from churnclv.training.jobs import run_training

    home = tmp_path_factory.mktemp("trained")
    uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    client = connect(uri, home / "mlruns" / "artifacts")
    outcome = run_training(seed_transactions, as_of=SEED_AS_OF, config=fast_config(), dataset="seed",
                           client=client, artifact_root=home / "mlruns" / "artifacts", plots_dir=home / "plots")
    bundle = load_bundle(client, "models:/churn-clv@champion")
    scores = write_scores(score_table(bundle, seed_transactions, as_of=SEED_AS_OF, explain=True, draws=True),
                          home / "scores" / "latest.parquet", score_metadata(bundle, as_of=SEED_AS_OF))
    return Trained(home=home, tracking_uri=uri, version=outcome.logged.version, run_id=outcome.logged.run_id,
                   as_of=SEED_AS_OF, scores_path=scores)


@dataclass(frozen=True)
class TrainedWithEvents:
    """A bundle trained on the seed data and its seed events (:func:`seeds.events.make_seed_events`), not registered."""

    bundle: object
    events: pd.DataFrame  # canonical
    as_of: pd.Timestamp


@pytest.fixture(scope="session")
def trained_with_events(seed_transactions) -> TrainedWithEvents:
    from churnclv.features import validate_events
    from churnclv.seeds.events import make_seed_events
    from churnclv.training.pipeline import train

    events = validate_events(make_seed_events())[0]
    result = train(seed_transactions, as_of=SEED_AS_OF, config=fast_config(), events=events)
    return TrainedWithEvents(bundle=result.bundle, events=events, as_of=SEED_AS_OF)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory, seed_transactions) -> Path:
    """The seed log as a Parquet dataset, one file per month (as a warehouse exports it): the input of
    ``--dask``."""
    folder = tmp_path_factory.mktemp("seed-parquet")
    for month, rows in seed_transactions.groupby(seed_transactions["timestamp"].dt.strftime("%Y-%m")):
        rows.to_parquet(folder / f"{month}.parquet", index=False)
    return folder


def pytest_collection_modifyitems(config, items):
    """Slow tests first on every worker of ``make test``. pytest-xdist's worksteal gives each worker a
    contiguous share of this order and steals from the ends of the shares, so the slow tests are dealt
    round-robin to the head of each share: the longest start at once and the short ones fill in."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    slow = [item for item in items if item.get_closest_marker("slow")]
    fast = [item for item in items if not item.get_closest_marker("slow")]
    shares = [slow[k::workers] + fast[k * len(fast) // workers:(k + 1) * len(fast) // workers]
              for k in range(workers)]
    items[:] = [item for share in shares for item in share]
