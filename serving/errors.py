"""One error format for every answer that is not a success, and the helpers that produce it.

``{"error": {"code": "...", "message": "...", "details": [{"field", "issue", "count"}]}}``.
Handlers raise :class:`ApiError`; :func:`answers` turns it into that response. BentoML's own
error bodies (invalid JSON, pydantic errors, 404/405/500) are rewritten into it by
:func:`normalise` in the middleware.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from starlette.responses import Response

from churnclv.contract.errors import first_line

STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
                422: "invalid_request", 500: "internal", 503: "not_ready"}


class ApiError(Exception):
    """An answer other than success: HTTP status, a stable code, a message and details."""

    def __init__(self, status: int, code: str, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []


def error_body(code: str, message: str, details: list[dict] | None = None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": details or []}}).encode()


def error_response(error: ApiError) -> Response:
    return Response(error_body(error.code, error.message, error.details), status_code=error.status,
                    media_type="application/json")


def json_response(model: BaseModel) -> Response:
    """A pydantic response as one JSON body with a Content-Length (BentoML would stream it chunked)."""
    return Response(model.model_dump_json(), media_type="application/json")


def answers(handler: Callable) -> Callable:
    """Decorate an API method: its pydantic result is sent by :func:`json_response`, and a raised
    :class:`ApiError` becomes its JSON error response. The annotations (and so the OpenAPI schema)
    stay those of ``handler``."""
    if inspect.iscoroutinefunction(handler):
        @functools.wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return json_response(await handler(*args, **kwargs))
            except ApiError as error:
                return error_response(error)
    else:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return json_response(handler(*args, **kwargs))
            except ApiError as error:
                return error_response(error)
    wrapper.__signature__ = inspect.signature(handler)  # BentoML inspects the handler on every call
    return wrapper


def _field(loc: list) -> str | None:
    return ".".join(str(part) for part in loc) or None


def from_validation(errors: list[dict]) -> tuple[int, str, str, list[dict]]:
    """(status, code, message, details) for pydantic's error list as BentoML returns it.

    Invalid JSON -> 400 ``invalid_json``; a list over its limit -> 413 ``too_many_items``; any other
    problem -> 422 ``invalid_request``.
    """
    details = [{"field": _field(e.get("loc", [])), "issue": e.get("msg", "invalid")} for e in errors]
    types = {e.get("type") for e in errors}
    if "json_invalid" in types:
        return 400, "invalid_json", "the body is not valid JSON", details
    if "too_long" in types:
        limits = "; ".join(f"{d['field']}: {d['issue']}" for d, e in zip(details, errors) if e.get("type") == "too_long")
        return 413, "too_many_items", f"too many items in one request ({limits})", details
    noun = "problem" if len(details) == 1 else "problems"
    return 422, "invalid_request", f"{len(details)} {noun} in the request: " + "; ".join(
        f"{d['field'] or 'body'}: {d['issue']}" for d in details), details


def normalise(status: int, body: bytes) -> tuple[int, bytes]:
    """Rewrite any error body that is not already in our format (BentoML's, Starlette's) into it."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict) and "code" in parsed["error"]:
        return status, body
    if status == 400 and isinstance(parsed, dict) and isinstance(parsed.get("detail"), list):
        status, code, message, details = from_validation(parsed["detail"])
        return status, error_body(code, message, details)
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):  # BentoML: ({"error": ...},)
        parsed = parsed[0]
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        message = parsed["error"]
    else:
        message = body.decode("utf-8", "replace").strip() or "error"
    if status >= 500 and status != 503:
        message = "an unexpected error occurred; the server log has the details"
    return status, error_body(STATUS_CODES.get(status, "error"), message)


class _QuietValidation(logging.Filter):
    """Drop the traceback BentoML logs for every invalid request (bad JSON, pydantic errors)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__name__ == "ValidationError":
            record.exc_info, record.exc_text = None, None
            record.msg, record.args = "invalid request: %s", (first_line(exc),)
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def quiet_validation_tracebacks() -> None:
    """Install :class:`_QuietValidation` on BentoML's HTTP logger (once)."""
    logger = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, _QuietValidation) for f in logger.filters):
        logger.addFilter(_QuietValidation())
