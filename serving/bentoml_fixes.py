"""A workaround for BentoML 1.4's request timeout, applied by the service when it starts.

``bentoml._internal.server.http.traffic.TimeoutMiddleware`` schedules ``loop.call_later(timeout,
...)`` for every request and never cancels it, so each request leaves a timer handle, a future and
a context alive for ``traffic.timeout`` seconds (60 by default). At a few thousand requests/s
that is over a million live objects, and every full garbage collection scans them all: pauses of
50-250 ms about once a second, which is the whole p99 (seen with ``benchmarks/serving.py``, on
``/healthz`` too). :func:`cancel_timeout_timers` gives the middleware the same behaviour with the
timer cancelled when the request ends, and answers a timeout in the service's error format.
"""

from __future__ import annotations

import asyncio
from typing import Any

from churnclv.serving.errors import error_body


async def _call(self: Any, scope: dict, receive: Any, send: Any) -> None:
    """``TimeoutMiddleware.__call__`` as in BentoML 1.4.40, plus ``timer.cancel()``."""
    if scope["type"] not in ("http", "websocket"):
        return await self.app(scope, receive, send)
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

    async def _send(message: dict) -> None:
        if not waiter.done():
            waiter.set_result(None)
        await send(message)

    task = asyncio.ensure_future(self.app(scope, receive, _send))
    try:
        await waiter
    except TimeoutError:
        if task.cancel():
            body = error_body("timeout", f"the request took longer than {self.timeout:g} seconds")
            await send({"type": "http.response.start", "status": 504,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
    else:
        await task
    finally:
        timer.cancel()


def cancel_timeout_timers() -> None:
    """Patch BentoML 1.4's ``TimeoutMiddleware`` (idempotent; nothing on other versions)."""
    import bentoml
    from bentoml._internal.server.http import traffic

    middleware = getattr(traffic, "TimeoutMiddleware", None)
    if middleware is None or not bentoml.__version__.startswith("1.4.") or middleware.__call__ is _call:
        return
    middleware.__call__ = _call
