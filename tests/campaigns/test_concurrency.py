"""Two real processes writing into one fresh SQLite store at once lose and duplicate nothing.

Each process opens the store (both migrate it at once), then creates campaigns (some under names the
other also creates, with the same request), writes audit rows, suppresses overlapping customers and
records the same measured effects. Afterwards every row is there exactly once.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing

import pandas as pd
import sqlalchemy as sa

from churnclv.campaigns.audit import audit_trail, log_action
from churnclv.campaigns.create import CampaignRequest, create_campaign
from churnclv.campaigns.effect import measure_effect
from churnclv.campaigns.migrate import open_store
from churnclv.campaigns.read import list_campaigns, measurements
from churnclv.campaigns.record import record_effect
from churnclv.campaigns.suppress import suppress, suppressed_ids
from tests.campaigns.conftest import make_selected

ROUNDS, MEMBERS, AUDITS = 6, 300, 25


def _transactions(selected: pd.DataFrame) -> pd.DataFrame:
    ids = selected["customer_id"].iloc[::3]
    return pd.DataFrame({"customer_id": ids, "timestamp": pd.Timestamp("2026-01-10"), "amount": 20.0})


def _worker(url: str, me: int, barrier) -> None:
    barrier.wait()
    engine = open_store(url)
    selected = make_selected(MEMBERS, seed=1)
    for i in range(ROUNDS):
        shared = create_campaign(engine, CampaignRequest(f"shared-{i}", control_share=0.2), selected,
                                 requested_by=f"worker-{me}", campaign_date=dt.date(2026, 1, 1))
        create_campaign(engine, CampaignRequest(f"own-{me}-{i}", control_share=0.1),
                        make_selected(MEMBERS, seed=100 * me + i), requested_by=f"worker-{me}")
        effect = measure_effect(shared.members, _transactions(selected), campaign_date=dt.date(2026, 1, 1),
                                window_days=30, draws=200, bootstrap=20)
        record_effect(engine, f"shared-{i}", effect, who=f"worker-{me}")
        suppress(engine, [f"X{me}-{i}", f"X-both-{i}"], reason="objected", source="race", who=f"worker-{me}")
    for k in range(AUDITS):
        log_action(engine, who=f"worker-{me}", action="ping", detail={"k": k})
    engine.dispose()


def test_two_processes_writing_at_once_lose_and_duplicate_nothing(db_url):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_worker, args=(db_url, me, barrier)) for me in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    assert [w.exitcode for w in workers] == [0, 0]

    engine = open_store(db_url)
    names = sorted(c.name for c in list_campaigns(engine))
    assert names == sorted([f"shared-{i}" for i in range(ROUNDS)]
                           + [f"own-{me}-{i}" for me in (1, 2) for i in range(ROUNDS)])
    with engine.connect() as connection:
        members = connection.execute(sa.text("SELECT COUNT(*), COUNT(DISTINCT campaign_id || '/' || customer_id) "
                                             "FROM members")).one()
    assert tuple(members) == (3 * ROUNDS * MEMBERS,) * 2
    trail = audit_trail(engine)
    assert (trail["action"] == "create_campaign").sum() == 3 * ROUNDS  # one per campaign, repeats add none
    pings = trail.loc[trail["action"] == "ping"]
    assert sorted(pings.apply(lambda r: (r["who"], r["detail"]["k"]), axis=1)) == \
        sorted((f"worker-{me}", k) for me in (1, 2) for k in range(AUDITS))
    assert suppressed_ids(engine) == ({f"X{me}-{i}" for me in (1, 2) for i in range(ROUNDS)}
                                      | {f"X-both-{i}" for i in range(ROUNDS)})
    measured = measurements(engine)
    assert len(measured) == ROUNDS * measured["segment"].nunique()
    assert not measured.duplicated(subset=["campaign", "segment"]).any()
    engine.dispose()
