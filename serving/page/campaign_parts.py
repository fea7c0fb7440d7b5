"""The page's Campaigns view: record a plan as a campaign, the list with status, one campaign's effect.

Rendered from the same functions as ``POST /campaigns``, ``GET /campaigns`` and ``GET
/campaigns/{name}`` (:mod:`serving.campaigns`); roles are those of the endpoints (``plan``), checked by
the middleware on ``/app/campaigns``. A new campaign is posted as JSON ``{"query": "<the form>"}``.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import anyio
import bentoml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from churnclv.serving import campaigns
from churnclv.serving.auth import caller
from churnclv.serving.campaign_routes import STATUS
from churnclv.serving.errors import ApiError, error_response
from churnclv.serving.page import forms
from churnclv.serving.page.effect_chart import effect_chart
from churnclv.serving.page.routes import render, segment_words

router = APIRouter(include_in_schema=False)


class CampaignForm(forms.PlanForm):
    """The plan's fields, a name, the control share and the global holdout's share (percents)."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^/]*$")
    control_share: float = Field(10.0, ge=0, lt=100, description="percent of each segment held out")
    holdout_share: float = Field(0.0, ge=0, lt=100, description="percent of all customers in the global holdout")
    window_days: int = Field(90, ge=1, le=3650)


async def _run(function, *args) -> HTMLResponse:
    try:
        return await anyio.to_thread.run_sync(function, *args)
    except ApiError as error:
        return error_response(error)
    except tuple(cls for cls, _, _ in STATUS) as exc:
        status, code = next((s, c) for cls, s, c in STATUS if isinstance(exc, cls))
        return error_response(ApiError(status, code, str(exc)))


@router.get("/app/campaigns")
async def campaigns_part() -> HTMLResponse:
    def run() -> HTMLResponse:
        svc = bentoml.get_current_service()
        listed = campaigns.summaries(svc.targeting.engine())
        return render("campaigns.html", campaigns=listed)
    return await _run(run)


@router.get("/app/campaigns/view")
async def campaign_part(request: Request) -> HTMLResponse:
    name = request.query_params.get("name", "")
    return await _run(_campaign, name, None)


def _campaign(name: str, created: bool | None) -> HTMLResponse:
    svc = bentoml.get_current_service()
    detail = campaigns.detail(svc.targeting.engine(), name)
    effect = detail["effect"]
    name = segment_words(svc.state.current.table)  # the words of the scores served, as on every other view
    chart = effect_chart(effect["segments"], name=name) if effect else None
    return render("campaign.html", c=detail, chart=chart, created=created, segment_name=name)


@router.post("/app/campaigns/create")
async def create_part(request: Request) -> HTMLResponse:
    try:
        body = json.loads(await request.body() or b"{}")
        query = body.get("query", "") if isinstance(body, dict) else ""
        form = forms.parse(CampaignForm, parse_qsl(str(query), keep_blank_values=True))
    except ApiError as error:
        return error_response(error)
    except ValueError:
        return error_response(ApiError(400, "invalid_json", "the body is not valid JSON"))
    who = caller(request.scope).name

    def run() -> HTMLResponse:
        svc = bentoml.get_current_service()
        table = svc.state.current.need_table()
        made, _ = campaigns.create(svc.targeting.engine(), table, svc.targeting.view(table), form.prioritise_request(),
                                   name=form.name, control_share=form.control_share / 100,
                                   window_days=form.window_days, holdout_share=form.holdout_share / 100,
                                   campaign_date=None, who=who)
        return _campaign(made.campaign.name, made.created)
    return await _run(run)
