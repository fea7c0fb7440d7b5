"""The campaign, suppression and erasure endpoints (FastAPI routes beside the service's own).

Every one needs the campaign store; when it is missing, locked or unreachable they answer 503
``campaign_store_unavailable`` naming it, while the scoring endpoints keep working. Who asked is the
API key's name (:func:`serving.auth.caller`), written to the audit trail with every plan, export,
suppression and erasure. Roles are checked before (:func:`serving.auth.required_role`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import anyio
import bentoml
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from churnclv.campaigns import (
    CampaignConflictError,
    CampaignInputError,
    CampaignNotFoundError,
    CampaignStoreError,
    forget,
    log_action,
    suppress,
    unsuppress,
)
from churnclv.campaigns.assign import CONTROL, TREATED
from churnclv.serving import campaigns
from churnclv.serving.auth import caller
from churnclv.serving.campaign_schemas import (
    CampaignCreate,
    CampaignCreated,
    CampaignDetail,
    CampaignList,
    ErasureReceipt,
    SuppressRequest,
    SuppressResponse,
    UnsuppressResponse,
)
from churnclv.serving.errors import ApiError, error_response, from_validation, json_response
from churnclv.serving.schemas import PrioritiseRequest

router = APIRouter(include_in_schema=False)
#: The problems of the campaign package, as HTTP answers.
STATUS = ((CampaignNotFoundError, 404, "not_found"), (CampaignConflictError, 409, "conflict"),
          (CampaignInputError, 422, "invalid_request"), (CampaignStoreError, 503, "campaign_store_unavailable"))


def service() -> Any:
    return bentoml.get_current_service()


def handled(handler: Callable) -> Callable:
    """Run ``handler`` in a worker thread (it talks to the database); errors become the one JSON format."""
    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            result = await anyio.to_thread.run_sync(functools.partial(handler, *args, **kwargs))
        except ApiError as error:
            return error_response(error)
        except tuple(cls for cls, _, _ in STATUS) as exc:
            status, code = next((s, c) for cls, s, c in STATUS if isinstance(exc, cls))
            return error_response(ApiError(status, code, str(exc)))
        return json_response(result) if isinstance(result, BaseModel) else result
    return wrapper


def parse(model: type[BaseModel], body: bytes) -> Any:
    """A request body as ``model``; invalid JSON or fields are the service's 400/413/422."""
    try:
        return model.model_validate_json(body or b"")
    except ValidationError as exc:
        errors = [{**e, "loc": list(e.get("loc", ()))} for e in exc.errors(include_url=False)]
        status, code, message, details = from_validation(json.loads(json.dumps(errors, default=str)))
        raise ApiError(status, code, message, details) from None


async def body_of(model: type[BaseModel], request: Request) -> Any:
    return parse(model, await request.body())


@router.post("/campaigns")
async def create_campaign(request: Request) -> Response:
    """Record a plan as an experiment: contacts and a control group drawn from the same ranked list."""
    try:
        wanted = await body_of(CampaignCreate, request)
    except ApiError as error:
        return error_response(error)
    who = caller(request.scope).name
    return await handled(_create)(wanted, who)


def _create(wanted: CampaignCreate, who: str) -> CampaignCreated:
    svc = service()
    engine = svc.targeting.engine()
    table = svc.state.current.need_table()
    plan_request = PrioritiseRequest(**wanted.model_dump(include=set(PrioritiseRequest.model_fields)))
    created, summary = campaigns.create(
        engine, table, svc.targeting.view(table), plan_request, name=wanted.name, control_share=wanted.control_share,
        window_days=wanted.window_days, holdout_share=wanted.holdout_share, campaign_date=wanted.campaign_date, who=who)
    info = campaigns.detail(engine, created.campaign.name)
    return CampaignCreated(created=created.created, campaign=info, plan=summary,
                           contacts=campaigns.member_list(created.contacts),
                           controls=campaigns.member_list(created.controls))


@router.get("/campaigns")
@handled
def list_campaigns() -> CampaignList:
    """Every campaign, newest first, with its status."""
    return CampaignList(campaigns=campaigns.summaries(service().targeting.engine()))


@router.get("/campaigns/{name}")
@handled
def get_campaign(name: str) -> CampaignDetail:
    """One campaign: what was asked, its groups, its latest measured effect per segment with intervals."""
    return CampaignDetail(**campaigns.detail(service().targeting.engine(), name))


def export(request: Request, name: str, group: str) -> Response:
    """A campaign's contact or control list as CSV (an export: written to the audit trail)."""
    engine = service().targeting.engine()
    members = campaigns.group_members(engine, name, group)
    log_action(engine, who=caller(request.scope).name, action="export",
               detail={"campaign": name, "list": group, "rows": len(members)})
    label = "contacts" if group == TREATED else "controls"
    return Response(campaigns.members_csv(members), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{label}-{len(members)}.csv"',
                             "cache-control": "no-store"})


@router.get("/campaigns/{name}/contacts.csv")
@handled
def contacts_csv(request: Request, name: str) -> Response:
    """Who the CRM contacts (the treated group), as CSV."""
    return export(request, name, TREATED)


@router.get("/campaigns/{name}/controls.csv")
@handled
def controls_csv(request: Request, name: str) -> Response:
    """Who the CRM must not contact (the control group), as CSV."""
    return export(request, name, CONTROL)


@router.post("/suppressions")
async def add_suppressions(request: Request) -> Response:
    """Customers who objected to marketing: never in a plan, a control group, a CSV or a preview."""
    try:
        wanted = await body_of(SuppressRequest, request)
    except ApiError as error:
        return error_response(error)
    who = caller(request.scope).name

    def run() -> SuppressResponse:
        added = suppress(service().targeting.engine(), wanted.customer_ids, reason=wanted.reason, source="api", who=who)
        return SuppressResponse(customers=len(set(wanted.customer_ids)), added=added)
    return await handled(run)()


@router.delete("/suppressions/{customer_id}")
@handled
def remove_suppression(request: Request, customer_id: str) -> UnsuppressResponse:
    """Take a customer off the suppression list (consent given again)."""
    removed = unsuppress(service().targeting.engine(), customer_id, who=caller(request.scope).name)
    return UnsuppressResponse(customer_id=customer_id, removed=removed)


@router.delete("/customers/{customer_id}")
@handled
def erase_customer(request: Request, customer_id: str) -> ErasureReceipt:
    """Erase a customer: rows out of the score tables and campaign members, the id suppressed; a receipt."""
    svc = service()
    receipt = forget(svc.targeting.engine(), [customer_id], score_files=svc.score_files(),
                     who=caller(request.scope).name, source="api")
    svc.state.refresh()  # this worker serves the rewritten table at once; the others at their next check
    return ErasureReceipt(**receipt.to_dict())
