"""Requests and responses of the campaign, suppression and erasure endpoints (pydantic)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, Field

from churnclv.serving.schemas import MAX_IDS, PrioritiseRequest, PrioritiseSummary, Request

NAME = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^/\x00-\x1f]*\S[^/\x00-\x1f]*$",
                            description="the campaign's name (unique; no '/')")]


class CampaignCreate(PrioritiseRequest):
    """What /prioritise takes, plus a name and the experiment: every plan has a control group by default."""

    name: NAME
    control_share: float = Field(0.1, ge=0, lt=1, description="share of each segment held out as control "
                                                              "(0 only when asked for explicitly)")
    window_days: int = Field(90, ge=1, le=3650, description="days after the campaign date the effect is measured")
    holdout_share: float = Field(0.0, ge=0, lt=1, description="global holdout: this share of all customers is "
                                                              "kept out of every campaign (0: none)")
    campaign_date: date | None = Field(None, ge=date(1900, 1, 1), le=date(2199, 12, 31),
                                       description="the day contacts go out (default: today, UTC)")


class Member(BaseModel):
    rank: int
    customer_id: str
    segment: str
    churn_probability: float
    clv: float
    value_at_risk: float


class CampaignInfo(BaseModel):
    name: str
    created_at: str
    campaign_date: str
    window_end: str
    requested_by: str = Field(description="the API key's name (never the key) or the command-line user")
    model_version: str | None
    scores_as_of: str | None
    control_share: float
    holdout_share: float
    horizon_days: int
    window_days: int
    parameters: dict[str, Any]
    n_treated: int
    n_control: int
    n_suppressed: int = Field(description="customers of the plan left out: on the suppression list")
    n_held_out: int = Field(description="customers of the plan left out: in the global holdout")
    status: str = Field(description="running, to measure, measured (interim) or finished")


class CampaignCreated(BaseModel):
    created: bool = Field(description="false: the same request was recorded before, and is returned")
    campaign: CampaignInfo
    contacts: list[Member] = Field(description="who the CRM contacts (treated), best first")
    controls: list[Member] = Field(description="who the CRM must NOT contact (the control group)")
    plan: PrioritiseSummary = Field(description="the plan the campaign was drawn from: save rates and their source")


class CampaignList(BaseModel):
    campaigns: list[CampaignInfo] = Field(description="newest first")


class SegmentEffect(BaseModel):
    segment: str = Field(description="a segment, or 'all'")
    n_treated: int
    n_control: int
    retention_treated: float | None = Field(description="share of treated members who bought in the window")
    retention_control: float | None
    retention_diff: float | None = Field(description="treated minus control retention")
    retention_diff_low: float | None = Field(description="lower end of its 90% interval (Beta-Binomial)")
    retention_diff_high: float | None
    spend_per_treated: float | None = Field(description="spend per treated member in the window, currency")
    spend_per_control: float | None
    spend_diff: float | None = Field(description="spend per member, treated minus control, in the window")
    value_per_contact: float | None = Field(description="spend_diff net of the campaign's contact cost")
    value_total: float | None = Field(description="value_per_contact x treated members")
    retained_extra: float | None = Field(description="customers kept by the contacts: retention_diff x treated")


class Effect(BaseModel):
    data_through: str = Field(description="the last day of the transactions it was measured on")
    finished: bool = Field(description="the window was over by then (else interim figures)")
    interval: float
    contact_cost: float = Field(description="the campaign's cost of one contact (its request's contact_cost)")
    segments: list[SegmentEffect]


class CampaignDetail(CampaignInfo):
    effect: Effect | None = Field(description="the latest measured effect (churnclv campaigns effect NAME -t ...), "
                                              "or null before any")


class SuppressRequest(Request):
    customer_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]],
                            Field(min_length=1, max_length=MAX_IDS, description=f"1 to {MAX_IDS:,} customer ids")]
    reason: str = Field("objected to marketing (GDPR Art. 21 / CCPA opt-out)", min_length=1, max_length=200)


class SuppressResponse(BaseModel):
    customers: int = Field(description="ids in the request")
    added: int = Field(description="ids that were not on the list before")


class UnsuppressResponse(BaseModel):
    customer_id: str
    removed: bool = Field(description="false: the id was not on the list")


class ErasureReceipt(BaseModel):
    customer_ids: list[str]
    score_files: dict[str, int] = Field(description="score table file -> rows removed")
    campaign_members: dict[str, int] = Field(description="campaign -> members removed (measured counts stay)")
    suppressed: int = Field(description="ids added to the suppression list, so later plans and scoring skip them")
    rows_removed: int
    at: str
