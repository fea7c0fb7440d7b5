"""The service's hot endpoints on a lean path: ``POST /score``, ``/score_transactions`` and ``/prioritise``.

BentoML's ``@bentoml.api`` machinery (its IO descriptors, pydantic in and pydantic out, the request context)
cost a worker ~0.4 ms a request, more than a ``/score`` of 100 ids itself (py-spy in a worker under
``benchmarks/serving.py``). These three are answered by :class:`Lane` instead, an ASGI middleware just inside
:class:`serving.auth.Guard`: a request still passes BentoML's metrics, timeout and concurrency middleware (so
``/metrics`` counts it by endpoint and status as before) and the Guard's keys, rate limits, size caps, media
type and error format. The body is checked by the same pydantic request models (an empty body or ``null`` is
``{}``, as BentoML reads it), a bad one answered in one line naming each bad field
(:func:`serving.errors.from_validation`); the answer is built from plain values in the documented response
model's shape (its fields in order, defaults included) and written by orjson. The OpenAPI document
(:mod:`serving.openapi`) describes them from :data:`HANDLERS`. (BentoML's CORS middleware, off here, would sit
inside this one and not see these answers.)

A ``/prioritise`` answer is kept for its parameters while the score table and the campaign store's view are
the same objects (:class:`Answers`, :meth:`serving.targeting.Targeting.cached_view`): a new table, model or
uplift model, or any change to the store, makes a new view and so a new answer.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import bentoml
import orjson
import pandas as pd
from pydantic import BaseModel, ValidationError

from churnclv.contract.dates import iso, on_or_before
from churnclv.serving import plans
from churnclv.serving.batching import INLINE_ROWS
from churnclv.serving.errors import ApiError, error_body, from_validation
from churnclv.serving.model import validated_events
from churnclv.serving.schemas import MAX_IDS, PrioritiseRequest, ScoreRequest, ScoreTransactionsRequest
from churnclv.serving.table import NO_DRIVERS, lookup, score_rows

log = logging.getLogger("churnclv.serving")

#: Answers kept for /prioritise (per table and view), and the most bytes they may hold together.
MAX_ANSWERS, MAX_ANSWER_BYTES = 64, 64 * 2**20
JSON_HEADERS = [(b"content-type", b"application/json")]
INTERNAL = "an unexpected error occurred; the server log has the details"
PLAIN_SCORE_FIELDS = frozenset({"customer_ids", "explain"})


def parsed(model: type[BaseModel], body: bytes) -> Any:
    """``body`` as a request ``model``; an :class:`ApiError` (400, 413 or 422) naming each bad field."""
    try:
        return model.model_validate_json(b"{}" if body in (b"", b"null") else body)
    except ValidationError as exc:
        raise ApiError(*from_validation(exc.errors(include_url=False))) from None


def plain_score_request(body: bytes) -> ScoreRequest | None:
    """The request of a plain /score body, an object of ``customer_ids`` (1 to :data:`MAX_IDS` strings) and maybe
    ``explain`` (true or false), read by orjson without pydantic's pass (a tenth of a 100-id /score); None for any
    other body, which :func:`parsed` judges (and names what is wrong)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or not data.keys() <= PLAIN_SCORE_FIELDS:
        return None
    ids, explain = data.get("customer_ids"), data.get("explain", False)
    if type(ids) is not list or not 1 <= len(ids) <= MAX_IDS or type(explain) is not bool:
        return None
    if not all(type(c) is str for c in ids):
        return None
    return ScoreRequest.model_construct(customer_ids=ids, explain=explain)


def dumps(answer: dict) -> bytes:
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


async def score(service: Any, body: bytes) -> bytes:
    """The batch scores of known customers (top churn drivers if ``explain``); unknown ids apart."""
    request = plain_score_request(body) or parsed(ScoreRequest, body)
    table = service.state.current.need_table()
    if not request.explain:  # the rows' text made once per table (serving.table.RowTexts)
        rows, unknown = table.row_texts.answer(request.customer_ids)
        return b"".join((b'{"as_of":', dumps(table.as_of), b',"model_version":', dumps(table.model_version),
                         b',"scores":[', rows, b'],"unknown_ids":', dumps(unknown), b',"warnings":[]}'))
    positions, unknown = lookup(table, request.customer_ids)
    return dumps({"as_of": table.as_of, "model_version": table.model_version,
                  "scores": score_rows(table, positions, explain=True), "unknown_ids": unknown,
                  "warnings": [NO_DRIVERS] if table.drivers is None else []})


async def score_transactions(service: Any, body: bytes) -> bytes:
    """Score the customers of a posted history (and their touchpoints, if posted) with the served model, as
    of a day."""
    request = parsed(ScoreTransactionsRequest, body)
    model = service.state.current.need_model()
    events = await posted_events(request.events)
    rows, unscored, used = await service.posted.score(model, request.transactions, as_of=request.as_of,
                                                      explain=request.explain, events=events)  # serving.batching
    return dumps({"as_of": iso(request.as_of), "model_version": model.version, "scores": rows,
                  "unscored_ids": unscored, "transactions_used": used, "events_used": events_read(events, request)})


async def prioritise(service: Any, body: bytes) -> bytes:
    """Who to contact first: expected value saved by a touchpoint, positive only, best first."""
    request = parsed(PrioritiseRequest, body)
    table = service.state.current.need_table()
    targeting = service.targeting
    view = targeting.cached_view(table)
    if view is None:  # the campaign store may have changed: read it off the event loop
        view = await anyio.to_thread.run_sync(targeting.view, table)
    key = request.model_dump_json()
    answer = service.answers.get(table, view, key)
    if answer is None:
        answer = plans.prioritise_response(table, request, view=view).model_dump_json().encode()
        service.answers.put(table, view, key, answer)
    return answer


#: path -> its handler: (the service, the request body) -> the JSON answer.
HANDLERS: dict[str, Callable[[Any, bytes], Awaitable[bytes]]] = {
    "/score": score, "/score_transactions": score_transactions, "/prioritise": prioritise}


class Answers:
    """Answers kept for one score table and one view of the campaign store (the same objects), by request; the
    oldest go first beyond :data:`MAX_ANSWERS` or :data:`MAX_ANSWER_BYTES`, all of them when either changes."""

    def __init__(self) -> None:
        self._of: tuple[Any, Any] | None = None
        self._kept: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0

    def get(self, table: Any, view: Any, key: str) -> bytes | None:
        if self._of is None or self._of[0] is not table or self._of[1] is not view:
            return None
        answer = self._kept.get(key)
        if answer is not None:
            self._kept.move_to_end(key)
        return answer

    def put(self, table: Any, view: Any, key: str, answer: bytes) -> None:
        if self._of is None or self._of[0] is not table or self._of[1] is not view:
            self._of, self._kept, self._bytes = (table, view), OrderedDict(), 0
        self._bytes += len(answer) - len(self._kept.pop(key, b""))
        self._kept[key] = answer
        while self._kept and (len(self._kept) > MAX_ANSWERS or self._bytes > MAX_ANSWER_BYTES):
            self._bytes -= len(self._kept.popitem(last=False)[1])

    def __len__(self) -> int:
        return len(self._kept)


async def posted_events(events: list | None) -> pd.DataFrame | None:
    """The posted events in canonical form (a 422 naming the bad rows), None if none were posted; a long list is
    checked in a thread."""
    if not events:
        return None
    if len(events) <= INLINE_ROWS:
        return validated_events(events)
    return await anyio.to_thread.run_sync(validated_events, events)


def events_read(events: pd.DataFrame | None, request: ScoreTransactionsRequest) -> int:
    """Posted events the model may read: on or before the as-of day, of a customer of the posted transactions."""
    if events is None:
        return 0
    posted = {str(t.customer_id).strip() for t in request.transactions}
    return int((on_or_before(events["timestamp"], request.as_of) & events["customer_id"].isin(posted).to_numpy()).sum())


async def read_all(receive: Callable[[], Awaitable[dict]]) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def respond(send: Callable[[dict], Awaitable[None]], status: int, body: bytes,
                  extra: list | None = None) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Lane:
    """ASGI middleware answering :data:`HANDLERS` (see the module); every other request goes on to BentoML.

    ``service`` returns the service instance (BentoML's current one by default)."""

    def __init__(self, app: Callable, service: Callable[[], Any] = bentoml.get_current_service):
        self.app = app
        self.service = service

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        handler = HANDLERS.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None:
            return await self.app(scope, receive, send)
        if scope["method"] != "POST":
            return await respond(send, 405, error_body("method_not_allowed", "Method Not Allowed"),
                                 [(b"allow", b"POST")])
        try:
            answer = await handler(self.service(), await read_all(receive))
        except ApiError as error:
            return await respond(send, error.status, error_body(error.code, error.message, error.details))
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            return await respond(send, 500, error_body("internal", INTERNAL))
        await respond(send, 200, answer)
