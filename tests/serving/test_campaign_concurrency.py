"""Campaigns created and effects recorded from two service workers and the command line at once lose and
duplicate nothing: real processes (a 2-worker server, several ``churnclv`` commands), on SQLite and on
a PostgreSQL server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import SEED_CSV
from tests.serving.test_server import KEY, running_server, server_env

pytestmark = pytest.mark.slow
BEARER = {"Authorization": f"Bearer {KEY}"}
CHURNCLV = Path(sys.executable).parent / "churnclv"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'churnclv.db'}"
    return request.getfixturevalue("postgres_database")


def cli(home: Path, url: str, tracking: str, *words: str) -> subprocess.Popen:
    env = server_env(CHURNCLV_HOME=str(home), CHURNCLV_DB_URL=url, MLFLOW_TRACKING_URI=tracking)
    return subprocess.Popen([str(CHURNCLV), *words], env=env, cwd=home, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_two_workers_and_the_command_line_at_once_lose_and_duplicate_nothing(trained_home, tmp_path, store_url):
    home = tmp_path / "home"
    (home / "scores").mkdir(parents=True)
    shutil.copy(trained_home.scores_path, home / "scores" / "latest.parquet")
    names = [f"c{i}" for i in range(10)]
    with running_server(home, tmp_path, workers=2, CHURNCLV_DB_URL=store_url,
                        MLFLOW_TRACKING_URI=trained_home.tracking_uri) as url:
        # the past campaign whose effect is recorded from two commands at once
        past = {"name": "past", "limit": 300, "campaign_date": "2025-09-01", "window_days": 60}
        assert httpx.post(f"{url}/campaigns", json=past, headers=BEARER, timeout=60).status_code == 200

        def create(name: str) -> dict:
            r = httpx.post(f"{url}/campaigns", json={"name": name, "limit": 200}, headers=BEARER, timeout=120)
            assert r.status_code == 200, r.text
            return r.json()

        commands = [cli(home, store_url, trained_home.tracking_uri, "plan", name, "--limit", "200")
                    for name in ("c0", "c5", "cli-only")]
        commands += [cli(home, store_url, trained_home.tracking_uri, "campaigns", "effect", "past", "-t", str(SEED_CSV))
                     for _ in range(2)]
        with ThreadPoolExecutor(8) as pool:  # every name twice over HTTP, spread over both workers
            answers = list(pool.map(create, names + names))
            suppressed = list(pool.map(lambda i: httpx.post(f"{url}/suppressions", headers=BEARER, timeout=60,
                                                            json={"customer_ids": [f"nobody-{i}", "nobody-x"]}),
                                       range(6)))
        outputs = [c.communicate(timeout=300)[0] for c in commands]
        assert all(c.returncode == 0 for c in commands), "\n".join(outputs)
    assert all(r.status_code == 200 for r in suppressed)
    by_name: dict[str, list[dict]] = {}
    for answer in answers:
        by_name.setdefault(answer["campaign"]["name"], []).append(answer)
    for name, pair in by_name.items():  # the same request twice: one campaign, the same groups
        assert pair[0]["controls"] == pair[1]["controls"] and pair[0]["contacts"] == pair[1]["contacts"], name
        assert sum(a["created"] for a in pair) <= 1
    engine = sa.create_engine(store_url)
    with engine.connect() as connection:
        campaigns = dict(connection.execute(sa.text("SELECT name, n_treated + n_control FROM campaigns")).all())
        members = dict(connection.execute(sa.text(
            "SELECT c.name, count(*) FROM members m JOIN campaigns c ON c.id = m.campaign_id GROUP BY c.name")).all())
        duplicates = connection.execute(sa.text(
            "SELECT count(*) FROM (SELECT campaign_id, customer_id FROM members GROUP BY campaign_id, customer_id "
            "HAVING count(*) > 1) d")).scalar()
        measured = connection.execute(sa.text(
            "SELECT count(*), count(DISTINCT segment) FROM measurements")).one()
        created = connection.execute(sa.text("SELECT count(*) FROM audit WHERE action = 'create_campaign'")).scalar()
        nobody = connection.execute(sa.text("SELECT count(*) FROM suppressions WHERE customer_id LIKE 'nobody-%'")).scalar()
    engine.dispose()
    assert sorted(campaigns) == sorted([*names, "cli-only", "past"])
    assert members == campaigns and duplicates == 0
    assert created == len(campaigns)  # one creation each, whoever asked first
    assert measured[0] == measured[1]  # the effect recorded once per segment, though measured twice at once
    assert nobody == 7
