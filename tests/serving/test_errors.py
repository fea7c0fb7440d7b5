"""One error format: BentoML's and Starlette's error bodies are rewritten into it."""

from __future__ import annotations

import json

from churnclv.serving.errors import error_body, from_validation, normalise


def parsed(body: bytes) -> dict:
    return json.loads(body)["error"]


def test_pydantic_errors_become_422_with_fields():
    body = json.dumps({"error": "1 validation error", "detail": [
        {"type": "too_short", "loc": ["customer_ids"], "msg": "List should have at least 1 item"}]}).encode()
    status, out = normalise(400, body)
    assert status == 422
    error = parsed(out)
    assert error["code"] == "invalid_request"
    assert error["details"] == [{"field": "customer_ids", "issue": "List should have at least 1 item"}]


def test_too_long_becomes_413_naming_the_limit_and_bad_json_400():
    status, code, message, _ = from_validation(
        [{"type": "too_long", "loc": ["transactions"], "msg": "List should have at most 50000 items"}])
    assert (status, code) == (413, "too_many_items") and "50000" in message
    status, code, _, _ = from_validation([{"type": "json_invalid", "loc": [], "msg": "Invalid JSON"}])
    assert (status, code) == (400, "invalid_json")


def test_our_errors_pass_through_and_others_are_wrapped():
    ours = error_body("no_model", "train first")
    assert normalise(503, ours) == (503, ours)
    status, out = normalise(500, b'{"error": "An unexpected error has occurred"}')
    assert status == 500 and parsed(out)["code"] == "internal" and "Traceback" not in out.decode()
    status, out = normalise(503, b"Service is not ready")
    assert parsed(out) == {"code": "not_ready", "message": "Service is not ready", "details": []}
    assert parsed(normalise(422, b'[{"error": "bad"}]')[1])["message"] == "bad"
