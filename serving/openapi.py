"""The service's OpenAPI 3.1 document (``GET /docs.json``), written from the pydantic models themselves.

BentoML 1.4 declares OpenAPI 3.0.2 while emitting JSON Schema 2020-12 (pydantic's: numeric
``exclusiveMinimum``, ``type: null``), so validating clients and code generators reject it; it also lists
no security scheme and only 200/400/404/500. This document is OpenAPI 3.1 (whose schema dialect *is*
pydantic's), declares the bearer key, and lists every status the service really answers, each with the
one error body (:class:`serving.schemas.ErrorBody`).
"""

from __future__ import annotations

import functools
import re
from importlib import metadata
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from churnclv.contract.settings import AUTH_FAILURE_LIMIT, RATE_LIMIT
from churnclv.serving import campaign_schemas, schemas
from churnclv.serving.auth import BODY_SECONDS, MIN_KEY_LENGTH
from churnclv.serving.connections import HEAD_SECONDS

REF = "#/components/schemas/{model}"
#: Why each error status is answered; every one has the body :class:`serving.schemas.ErrorBody`.
ERRORS = {
    400: "invalid JSON, a malformed request or a non-numeric Content-Length",
    401: "missing or invalid API key (with WWW-Authenticate: Bearer)",
    403: "the key's role does not allow this operation (read < plan < admin), or open mode (no keys): only "
         "loopback clients are answered",
    404: "no campaign of that name",
    409: "a campaign of that name exists with a different request",
    408: f"the request body was not complete within {BODY_SECONDS:g} s (the head: {HEAD_SECONDS:g} s)",
    413: "the body is over the byte limit, or a list over its item limit (the message names it)",
    415: "the body is not application/json",
    429: f"too many requests (code rate_limited: the key is over CHURNCLV_RATE_LIMIT, {RATE_LIMIT} by default), or "
         f"too many failed authentications from the client's address (code auth_locked_out: over "
         f"CHURNCLV_AUTH_FAILURE_LIMIT, {AUTH_FAILURE_LIMIT} by default; every request of that address needing a key "
         "is refused until the window lets one more in); Retry-After gives the seconds to wait",
    422: "invalid fields or transactions (details name each field and issue)",
    500: "an unexpected error (no stack trace; the server log has it)",
    503: "no model or no score table loaded yet (the message says what to run), or the campaign store is "
         "missing, locked or unreachable (the message names it)",
    504: "the request took longer than the service's 60 s request timeout",
}
POST_ERRORS = (400, 401, 403, 408, 413, 415, 422, 500, 504)
#: path -> (summary, request model or None for GET, response model, extra error statuses)
OPERATIONS: dict[str, tuple[str, type[BaseModel] | None, type[BaseModel], tuple[int, ...]]] = {
    "/score": ("Batch scores of known customers", schemas.ScoreRequest, schemas.ScoreResponse, (503,)),
    "/score_transactions": ("Score a posted transaction history", schemas.ScoreTransactionsRequest,
                            schemas.ScoreTransactionsResponse, (503,)),
    "/prioritise": ("Who to contact first", schemas.PrioritiseRequest, schemas.PrioritiseResponse, (503,)),
    "/profit_curve": ("Expected net value by number of contacts", schemas.ProfitCurveRequest,
                      schemas.ProfitCurveResponse, (503,)),
    "/customers": ("A page of customers by value at risk", schemas.CustomersRequest, schemas.CustomersResponse,
                   (503,)),
    "/segments": ("Totals per segment", None, schemas.SegmentsResponse, (401, 403, 500, 503)),
    "/reload": ("Load a new champion or score table now", schemas.ReloadRequest, schemas.ReloadResponse, ()),
    "/model": ("What is served", None, schemas.ModelInfo, (401, 403, 500, 503)),
}
#: request examples (in the document only: BentoML's own spec generator refuses ``examples`` in a model)
EXAMPLES = {"/score_transactions": {"as_of": "2025-12-31", "explain": True, "transactions": [
    {"customer_id": "crm-7", "timestamp": "2025-03-02", "amount": 40.0},
    {"customer_id": "crm-7", "timestamp": "2025-09-14T10:30:00", "amount": 55.5},
    {"customer_id": "crm-8", "timestamp": "2025-12-01", "amount": 20.0, "quantity": 2}]}}
#: The campaign store's operations: (path, method) -> (summary, request model or None, response model or a
#: media type, error statuses). Every one may answer 503: the campaign store is missing, locked or unreachable.
STORE_ERRORS = (401, 403, 500, 503)
CAMPAIGN_OPERATIONS: dict[tuple[str, str], tuple[str, type[BaseModel] | None, type[BaseModel] | str, tuple[int, ...]]] = {
    ("/campaigns", "post"): ("Record a plan as an experiment (role plan)", campaign_schemas.CampaignCreate,
                             campaign_schemas.CampaignCreated, (*POST_ERRORS, 403, 409, 503)),
    ("/campaigns", "get"): ("Every campaign with its status (role plan)", None, campaign_schemas.CampaignList,
                            STORE_ERRORS),
    ("/campaigns/{name}", "get"): ("One campaign and its measured effect (role plan)", None,
                                   campaign_schemas.CampaignDetail, (*STORE_ERRORS, 404)),
    ("/campaigns/{name}/contacts.csv", "get"): ("Who to contact, as CSV (role plan; audited)", None, "text/csv",
                                                (*STORE_ERRORS, 404)),
    ("/campaigns/{name}/controls.csv", "get"): ("Who NOT to contact: the control group, as CSV (role plan; audited)",
                                                None, "text/csv", (*STORE_ERRORS, 404)),
    ("/suppressions", "post"): ("Suppress customers who objected to marketing (role admin)",
                                campaign_schemas.SuppressRequest, campaign_schemas.SuppressResponse,
                                (*POST_ERRORS, 403, 503)),
    ("/suppressions/{customer_id}", "delete"): ("Take a customer off the suppression list (role admin)", None,
                                                campaign_schemas.UnsuppressResponse, STORE_ERRORS),
    ("/customers/{customer_id}", "delete"): ("Erase a customer; a receipt of what was removed where (role admin)",
                                             None, campaign_schemas.ErasureReceipt, (*STORE_ERRORS, 422)),
}
PUBLIC = {
    "/healthz": ("The process is up (no key)", "text/plain", ()),
    "/livez": ("The process is up (no key)", "text/plain", ()),
    "/readyz": ("200 when the model and the score table are loaded, else 503 (no key)", "text/plain", (503,)),
    "/metrics": ("Prometheus metrics (no key)", "text/plain", ()),
}


def _component_schemas(operations: dict) -> tuple[dict, dict]:
    every = [*operations.values(), *CAMPAIGN_OPERATIONS.values()]
    models = [(m, "validation") for _, m, _, _ in every if m is not None]
    models += [(m, "serialization") for _, _, m, _ in every if not isinstance(m, str)]
    models += [(schemas.ErrorBody, "serialization")]
    refs, top = models_json_schema(models, ref_template=REF)
    return dict(refs), top.get("$defs", {})


def _content(schema: dict, media: str = "application/json") -> dict:
    return {media: {"schema": schema}}


def _errors(statuses: tuple[int, ...]) -> dict:
    body = {"$ref": REF.format(model="ErrorBody")}
    return {str(s): {"description": ERRORS[s], "content": _content(body)} for s in sorted(set(statuses))}


def _operation(path: str, summary: str, doc: str, request: Any, response: Any, errors: tuple[int, ...]) -> dict:
    operation = {"operationId": path.strip("/"), "summary": summary, "description": doc,
                 "security": [{"bearer": []}], "tags": ["churnclv"],
                 "responses": {"200": {"description": "success", "content": _content(response)}, **_errors(errors)}}
    if request is not None:
        operation["requestBody"] = {"required": True, "content": _content(request)}
        if path in EXAMPLES:
            operation["requestBody"]["content"]["application/json"]["example"] = EXAMPLES[path]
    return operation


def build(descriptions: dict[str, str] | None = None) -> dict:
    """The OpenAPI 3.1 document; ``descriptions`` (path -> text) describe the operations."""
    refs, definitions = _component_schemas(OPERATIONS)
    descriptions = descriptions or {}
    paths: dict[str, dict] = {}
    for path, (summary, request, response, extra) in OPERATIONS.items():
        errors = extra if request is None else POST_ERRORS + extra
        request_ref = None if request is None else refs[(request, "validation")]
        operation = _operation(path, summary, descriptions.get(path, summary), request_ref,
                               refs[(response, "serialization")], errors)
        paths[path] = {"get" if request is None else "post": operation}
    for (path, method), (summary, request, response, errors) in CAMPAIGN_OPERATIONS.items():
        body = {"type": "string"} if isinstance(response, str) else refs[(response, "serialization")]
        operation = _operation(path, summary, summary, None if request is None else refs[(request, "validation")],
                               body, errors)
        operation["operationId"] = f"{method}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
        if isinstance(response, str):
            operation["responses"]["200"]["content"] = _content(body, response)
        names = re.findall(r"{(\w+)}", path)
        if names:
            operation["parameters"] = [{"name": n, "in": "path", "required": True,
                                        "schema": {"type": "string", "minLength": 1}} for n in names]
        paths.setdefault(path, {})[method] = operation
    for operations in paths.values():  # every operation that needs a key may be refused by the rate limits
        for operation in operations.values():
            operation["responses"]["429"] = {**_errors((429,))["429"], "headers": {"Retry-After": {
                "description": "whole seconds to wait before the next request", "schema": {"type": "integer"}}}}
    for path, (summary, media, errors) in PUBLIC.items():
        paths[path] = {"get": {"operationId": path.strip("/"), "summary": summary, "security": [],
                               "tags": ["infrastructure"],
                               "responses": {"200": {"description": "success", "content": _content({"type": "string"}, media)},
                                             **_errors(errors)}}}
    try:
        version = metadata.version("churnclv")
    except metadata.PackageNotFoundError:
        version = "0"
    return {
        "openapi": "3.1.0",
        "info": {"title": "churnclv", "version": version,
                 "description": "Churn and customer-lifetime-value scores. Every operation but the infrastructure "
                                f"ones needs `Authorization: Bearer <key>` (keys of at least {MIN_KEY_LENGTH} "
                                "characters). Every error has the body `ErrorBody`. Rate limits: "
                                f"{RATE_LIMIT} per key (CHURNCLV_RATE_LIMIT) and {AUTH_FAILURE_LIMIT} failed "
                                "authentications per client address (CHURNCLV_AUTH_FAILURE_LIMIT), by default, "
                                "for the whole service; over either, 429 with Retry-After."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": definitions,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "an API key of the service"}}},
        "security": [{"bearer": []}],
    }


@functools.cache
def document(descriptions: tuple[tuple[str, str], ...] = ()) -> dict:
    """:func:`build`, once per process (the same object every call: do not change it)."""
    return build(dict(descriptions))
