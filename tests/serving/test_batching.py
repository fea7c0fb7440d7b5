"""serving.batching: posted histories of concurrent requests scored in one pass give each request the scores
of a pass of its own, to the last digit."""

from __future__ import annotations

import asyncio
from datetime import date

import pandas as pd

from churnclv.serving.batching import Batcher, Job, score_jobs
from churnclv.serving.model import answer_rows, posted_columns, score_encoded, score_history, validated
from churnclv.serving.schemas import Transaction
from tests.serving.test_service import history

AS_OF = date(2025, 12, 31)


def requests(batch: pd.DataFrame, seed_transactions) -> list[list[Transaction]]:
    """Histories of seed customers, one with the id of another but its own rows, one of two customers, one the
    contract must clean (blanks around the id), one with a return only."""
    ids = batch["customer_id"].iloc[[2, 40, 41, 333]].tolist()
    own = [[Transaction(**row) for row in history(seed_transactions, cid, pd.Timestamp(AS_OF))] for cid in ids]
    borrowed = [t.model_copy(update={"customer_id": ids[0]}) for t in own[1]]  # same id, another history
    padded = [t.model_copy(update={"customer_id": f" {t.customer_id} "}) for t in own[3]]
    refund = [Transaction(customer_id="refund-only", timestamp="2025-05-01", amount=-20.0)]
    return [own[0], borrowed, own[1] + own[2], padded, refund, own[2]]


def test_a_pass_of_many_requests_scores_each_as_a_pass_of_its_own(harness, batch, seed_transactions):
    model = harness.service.state.current.model
    posted = requests(batch, seed_transactions)
    jobs = [Job(model, validated(posted_columns(p), AS_OF)[0], AS_OF, explain) for p in posted
            for explain in (False, True)]
    jobs.append(Job(model, jobs[0].enc, date(2025, 6, 30), False))  # another as-of day: another pass
    together = score_jobs(jobs)
    for job, got in zip(jobs, together):
        alone = score_encoded(model, job.enc, as_of=job.as_of, explain=job.explain)
        assert got == answer_rows(alone, job.enc)[0]  # the same Python floats: to the last digit
    assert [r["customer_id"] for r in together[2]] == [r["customer_id"] for r in together[0]]  # the same id, apart
    assert together[2][0]["churn_probability"] != together[0][0]["churn_probability"]
    assert together[8] == []  # a return only: nobody to score, as alone


def test_concurrent_requests_share_passes_and_get_their_own_answers(harness, batch, seed_transactions):
    model = harness.service.state.current.model
    posted = requests(batch, seed_transactions) * 3
    batcher = Batcher()

    async def all_at_once():
        return await asyncio.gather(*(batcher.score(model, p, as_of=AS_OF, explain=False) for p in posted))

    answers = asyncio.run(all_at_once())
    assert batcher.passes < len(posted)  # the requests that waited were scored together
    for p, answer in zip(posted, answers):
        assert answer == score_history(model, p, as_of=AS_OF, explain=False)
