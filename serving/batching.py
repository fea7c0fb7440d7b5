"""Posted histories of concurrent requests scored together (``POST /score_transactions``).

A pass through the bundle for one customer costs ~2 ms of CPU, most of it per pass, not per customer. So a
worker scores what is waiting in one pass: while a pass runs (on the event loop for up to
:data:`INLINE_PASS_ROWS` posted rows, else in a thread), the requests that arrive queue up and become the next
pass; an idle worker scores a request at once, so nothing waits for a batch to fill. Each request's customers are renamed apart (``"<n>|<id>"``) for the pass,
so two requests may post the same id with different histories (their events renamed alike); every feature of a customer depends on
that customer's rows and events alone (:func:`features.build_features`), so a customer's scores are the same to the
last digit in a pass of one or of many (tests/serving/test_batching.py).

Requests are grouped by model, as-of day, ``explain`` and the optional columns they carry (a column
absent is not the same input as a column of missing values). Rows that went through the contract's frame
(:func:`serving.model.validated`) are scored alone. If a pass fails, each of its requests is scored alone,
so an error reaches only the request that caused it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import anyio
import numpy as np
import pandas as pd

from churnclv.features import Encoded
from churnclv.features.online import encode_posted, rows_until
from churnclv.serving.model import ServedModel, posted_columns, scored_rows, unscored_ids, validated

#: At most this many requests, and posted rows, in one pass.
MAX_REQUESTS, MAX_ROWS = 64, 20_000
WIDTH = 6  # digits of a request's number in the renamed ids
#: Plain histories up to this many rows are encoded on the event loop; longer ones (and any the contract
#: must read) in a thread.
INLINE_ROWS = 500
#: Turns of the event loop a pass waits before it starts: a request already on the wire when the last pass ended
#: reaches the queue in about three (its bytes read, BentoML's timeout middleware's task, the Guard and the parse),
#: so it joins this pass instead of waiting out the next (~10 us a turn; passes of ~4 requests, not 1 then 3).
GATHER_TICKS = 3
#: A pass of up to this many posted rows is scored on the event loop itself (a few ms): in a thread, each step of
#: the requests served meanwhile waits for the GIL (up to its 5 ms switch interval), which tripled the latency.
INLINE_PASS_ROWS = 400


@dataclass(frozen=True)
class Job:
    model: ServedModel
    enc: Encoded
    as_of: date
    explain: bool
    events: pd.DataFrame | None = None  # canonical (serving.model.validated_events); None: none posted

    @property
    def group(self) -> tuple | None:
        """Jobs of one group are scored in one pass; None: alone."""
        if self.enc.frame is not None:
            return None
        return id(self.model), self.as_of, self.explain, tuple(sorted(self.enc._columns))


def merged(encs: list[Encoded]) -> Encoded:
    """One :class:`Encoded` of several requests' rows, the n-th request's ids renamed ``"<n>|<id>"``."""
    offsets = np.cumsum([0] + [len(e.uniques) for e in encs[:-1]])
    ids = [f"{n:0{WIDTH}d}|{c}" for n, e in enumerate(encs) for c in e.uniques.tolist()]
    columns = {name: np.concatenate([e._columns[name] for e in encs]) for name in encs[0]._columns}
    return Encoded(None, np.concatenate([e.codes + o for e, o in zip(encs, offsets)]).astype(np.int32),
                   pd.Index(ids, dtype="str"), np.concatenate([e.day for e in encs]),
                   np.concatenate([e.amount for e in encs]), _columns=columns)


def merged_events(jobs: list[Job]) -> pd.DataFrame | None:
    """The events of several requests in one canonical frame, the n-th request's ids renamed as :func:`merged`
    renames them; None when no request posted any (a customer without events is one who never had any, as
    in a pass of its own)."""
    parts = [e.assign(customer_id=f"{n:0{WIDTH}d}|" + e["customer_id"].astype(str))
             for n, e in enumerate(j.events for j in jobs) if e is not None]
    return pd.concat(parts, ignore_index=True) if parts else None


def split(rows: list[dict], n: int) -> list[list[dict]]:
    """The answer rows of a merged pass, per request, with the ids as posted (in the order of a pass of its own)."""
    out: list[list[dict]] = [[] for _ in range(n)]
    for row in rows:
        renamed = row["customer_id"]
        row["customer_id"] = renamed[WIDTH + 1:]
        out[int(renamed[:WIDTH])].append(row)
    return out


def score_group(jobs: list[Job]) -> list[list[dict] | BaseException]:
    """Each job's answer rows (:func:`serving.model.scored_rows`), from one pass when they share a group (else, or on
    failure, one by one)."""
    first = jobs[0]
    if len(jobs) > 1:
        try:
            rows = scored_rows(first.model, merged([j.enc for j in jobs]), as_of=first.as_of, explain=first.explain,
                               events=merged_events(jobs))
            return split(rows, len(jobs))
        except Exception:  # noqa: BLE001 - someone's rows failed the pass: each request on its own
            pass
    out: list[list[dict] | BaseException] = []
    for job in jobs:
        try:
            out.append(scored_rows(job.model, job.enc, as_of=job.as_of, explain=job.explain, events=job.events))
        except Exception as exc:  # noqa: BLE001 - handed to the request it belongs to
            out.append(exc)
    return out


def score_jobs(jobs: list[Job]) -> list[list[dict] | BaseException]:
    """Each job's answer rows (or the exception its scoring raised), in order, grouped into passes."""
    groups: dict[Any, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(job.group if job.group is not None else ("alone", i), []).append(i)
    results: list[Any] = [None] * len(jobs)
    for members in groups.values():
        for i, result in zip(members, score_group([jobs[i] for i in members])):
            results[i] = result
    return results


class Batcher:
    """Scores posted histories of one worker's event loop in passes (see the module)."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Job, asyncio.Future]] = []
        self._running = False
        self.passes = 0  # passes through the bundle so far

    async def score(self, model: ServedModel, transactions: Sequence[Any], *, as_of: date, explain: bool,
                    events: pd.DataFrame | None = None) -> tuple[list[dict], list[str], int]:
        """What :func:`serving.model.score_history` returns, the scoring shared with concurrent requests
        (``events``: the customers' canonical events, if any). Plain rows of a small history are encoded on the
        event loop (~0.2 ms for 20); others in a thread."""
        columns = posted_columns(transactions)
        enc = encode_posted(columns) if len(transactions) <= INLINE_ROWS else None
        if enc is not None:
            used = rows_until(enc, as_of)
        else:
            enc, used = await anyio.to_thread.run_sync(validated, columns, as_of)
        rows = await self.score_job(Job(model, enc, as_of, explain, events))
        return rows, unscored_ids(rows, enc), used

    async def score_job(self, job: Job) -> list[dict]:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((job, future))
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._run())
        return await future

    def _next(self) -> list[tuple[Job, asyncio.Future]]:
        taken, rows = 0, 0
        for job, _ in self._waiting:
            if taken and (taken >= MAX_REQUESTS or rows + len(job.enc.codes) > MAX_ROWS):
                break
            taken, rows = taken + 1, rows + len(job.enc.codes)
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return batch

    async def _run(self) -> None:
        try:
            while self._waiting:
                for _ in range(GATHER_TICKS):  # requests already read (or on the wire) join this pass
                    await asyncio.sleep(0)
                batch = self._next()
                self.passes += 1
                try:
                    jobs = [job for job, _ in batch]
                    if sum(len(job.enc.codes) for job in jobs) <= INLINE_PASS_ROWS:
                        results = score_jobs(jobs)  # a few customers: ~2 ms, less than a thread's GIL hand-offs
                        await asyncio.sleep(0)  # let the requests that arrived meanwhile in before the next pass
                    else:
                        results = await anyio.to_thread.run_sync(score_jobs, jobs)
                except Exception as exc:  # noqa: BLE001 - every request of the pass hears it
                    results = [exc] * len(batch)
                except BaseException:  # cancelled (the worker stops): so are the requests waiting
                    for _, future in [*batch, *self._waiting]:
                        future.cancel()
                    self._waiting = []
                    raise
                for (_, future), result in zip(batch, results):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._running = False
