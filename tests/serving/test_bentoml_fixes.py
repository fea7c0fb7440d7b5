"""BentoML 1.4's request timeout, patched to cancel its timer: no live timer per request, same 504."""

from __future__ import annotations

import asyncio
import json

from bentoml._internal.server.http.traffic import TimeoutMiddleware

from churnclv.serving.bentoml_fixes import cancel_timeout_timers


async def fast(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def slow(scope, receive, send):
    await asyncio.sleep(1)
    await fast(scope, receive, send)


async def call(app) -> list[dict]:
    sent = []

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "path": "/score"}, receive, send)
    return sent


def test_requests_leave_no_live_timer_and_a_timeout_still_answers_504():
    cancel_timeout_timers()
    cancel_timeout_timers()  # idempotent

    async def scenario():
        for _ in range(200):
            assert (await call(TimeoutMiddleware(fast, timeout=60)))[0]["status"] == 200
        live = [h for h in asyncio.get_running_loop()._scheduled if not h.cancelled()]
        late = await call(TimeoutMiddleware(slow, timeout=0.05))
        return live, late

    live, late = asyncio.run(scenario())
    assert live == []
    assert late[0]["status"] == 504
    assert json.loads(late[1]["body"])["error"]["code"] == "timeout"
