"""Typed requests and responses of the HTTP service (pydantic), and the limits they enforce.

Every error the service returns, whatever its status, has one body: :class:`ErrorBody`,
``{"error": {"code": ..., "message": ..., "details": [...]}}``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

MAX_IDS = 10_000
MAX_TRANSACTIONS = 50_000
MAX_EVENTS = 50_000
MAX_PRIORITISE = 10_000
MAX_PAGE = 500
MAX_CONTACT_COST = 1e12


class Request(BaseModel):
    """Requests refuse unknown fields, so a misspelt option is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid")


class ScoreRequest(Request):
    customer_ids: Annotated[list[str], Field(min_length=1, max_length=MAX_IDS,
                                             description=f"1 to {MAX_IDS:,} customer ids")]
    explain: bool = Field(False, description="add each customer's top churn drivers")


class Transaction(BaseModel):
    """One transaction; checked by the same contract as a file (``features.validate_transactions``)."""

    model_config = ConfigDict(extra="ignore")

    customer_id: str | int
    timestamp: str = Field(description="ISO 8601 date or date-time, e.g. 2025-11-02 or 2025-11-02T14:05:00")
    amount: float | str | None = Field(description="currency; negative = return/refund")
    order_id: str | int | None = None
    quantity: float | str | None = None
    channel: str | None = None
    category: str | None = None


class Event(BaseModel):
    """One touchpoint; checked by the same contract as an events file (``features.validate_events``)."""

    model_config = ConfigDict(extra="ignore")

    customer_id: str | int
    timestamp: str = Field(description="ISO 8601 date or date-time, e.g. 2025-11-02 or 2025-11-02T14:05:00")
    kind: str = Field(description="nps, csat, support_contact, complaint, email_sent, email_open, email_click, "
                                  "unsubscribe, visit; any other kind is counted")
    value: float | str | None = Field(None, description="the answer of an nps (0-10) or csat (1-5) event; "
                                                        "not read for other kinds")


class ScoreTransactionsRequest(Request):
    as_of: date = Field(description="score as of this day (YYYY-MM-DD); the whole day is included")
    transactions: Annotated[list[Transaction], Field(min_length=1, max_length=MAX_TRANSACTIONS,
                                                     description=f"1 to {MAX_TRANSACTIONS:,} rows")]
    events: Annotated[list[Event], Field(max_length=MAX_EVENTS)] | None = Field(
        None, description=f"the customers' touchpoints (up to {MAX_EVENTS:,}), scored as `churnclv score --events` "
                          "scores them: a model trained with events reads those on or before as_of; a customer "
                          "without any scores as one who never had an event; a model trained without events does "
                          "not read them. An unsubscribe event here does not change the suppression list (the "
                          "batch `churnclv score --events` does)")
    explain: bool = False


class PrioritiseRequest(Request):
    limit: int = Field(100, ge=1, le=MAX_PRIORITISE, description="at most this many customers")
    contact_cost: float = Field(1.0, ge=0, allow_inf_nan=False, description="cost of one touchpoint, currency")
    save_rate: float | None = Field(
        None, gt=0, le=1, description="share of the value at risk a touchpoint saves, for every segment; default: "
                                      "each segment's rate learned from finished campaigns (the prior Beta(6, 14), "
                                      "mean 0.30, where none is measured)")
    segments: Annotated[list[str], Field(min_length=1)] | None = Field(
        None, description="only these segments (default: every segment whose recommended action is a "
                           "touchpoint, i.e. not 'no_contact')")


class ProfitCurveRequest(PrioritiseRequest):
    """A plan's economics and its chosen size (``limit``, as in /prioritise), and how finely to draw the curve."""

    contact_cost: float = Field(1.0, ge=0, le=MAX_CONTACT_COST, allow_inf_nan=False,
                                description="cost of one touchpoint, currency (the curve multiplies it by up "
                                            "to every customer, so it stays within a finite number)")
    points: int = Field(200, ge=2, le=2000, description="at most this many points on the curve")


class CustomersRequest(Request):
    segment: str | None = Field(None, description="only this segment (default: every customer)")
    offset: int = Field(0, ge=0, description="skip this many customers (by decreasing value at risk)")
    limit: int = Field(50, ge=1, le=MAX_PAGE, description=f"at most this many customers (1 to {MAX_PAGE})")


class ReloadRequest(Request):
    force: bool = Field(False, description="reload the model and the table even if they look unchanged")


class Driver(BaseModel):
    feature: str
    value: float | None
    contribution: float


class CustomerScore(BaseModel):
    customer_id: str
    churn_probability: float
    p_alive: float
    expected_purchases: float = Field(description="purchases expected over the model's horizon")
    expected_spend: float = Field(description="spend expected over the model's horizon, currency")
    clv: float = Field(description="discounted expected spend over the CLV horizon, currency")
    value_at_risk: float = Field(description="churn_probability x clv, currency")
    segment: str
    recommended_action: str
    expected_purchases_low: float | None = Field(None, description="lower end of the interval of purchases over the "
                                                 "horizon (80% by default: the model's interval_level)")
    expected_purchases_high: float | None = Field(None, description="upper end of that interval")
    clv_low: float | None = Field(None, description="lower end of the CLV's interval, currency")
    clv_high: float | None = Field(None, description="upper end of the CLV's interval, currency")
    drivers: list[Driver] | None = None


class ScoreResponse(BaseModel):
    as_of: str = Field(description="the day the scores were computed as of")
    model_version: str
    scores: list[CustomerScore]
    unknown_ids: list[str] = Field(description="ids not in the score table (not an error)")
    warnings: list[str] = []


class ScoreTransactionsResponse(BaseModel):
    as_of: str
    model_version: str
    scores: list[CustomerScore]
    unscored_ids: list[str] = Field(description="customers of the posted history without a purchase by as_of")
    transactions_used: int
    events_used: int = Field(0, description="posted events on or before as_of of the customers of the posted "
                                            "transactions (those the model may read)")


class Prioritised(BaseModel):
    rank: int
    customer_id: str
    expected_value_saved: float = Field(description="value_at_risk x save_rate (the segment's) - contact_cost, currency; "
                                                    "clv x uplift - contact_cost when the uplift model ranks the plan")
    value_at_risk: float
    churn_probability: float
    clv: float
    clv_low: float | None = Field(None, description="lower end of the CLV's interval (the model's interval level)")
    clv_high: float | None = Field(None, description="upper end of the CLV's interval")
    segment: str
    recommended_action: str
    uplift: float | None = Field(None, description="the customer's retention uplift by the per-customer uplift model "
                                                   "(when it ranks the plan)")
    membership: float | None = Field(None, description="share of the model's parameter draws under which this plan "
                                                       "lists the customer too (1: a solid name); None when the score "
                                                       "table keeps no values per draw for them (see summary.membership)")


class SegmentRate(BaseModel):
    segment: str
    rate: float = Field(description="the save rate planned with: share of would-be churners a contact keeps")
    low: float = Field(description="lower end of its 90% interval")
    high: float = Field(description="upper end of its 90% interval")
    source: str = Field(description="'measured' (learned from finished campaigns), 'assumed' (the prior) or "
                                    "'set' (the request's save_rate)")
    n: int = Field(description="members (treated + control) of the finished campaigns it was learned from")
    campaigns: int = Field(description="finished campaigns it was learned from")
    harmful: bool = Field(description="contacts lowered retention (the measured interval lies below 0): the "
                                      "segment is left out of plans on learned rates")
    measured_rate: float | None = Field(description="the measured rate without the prior (may be negative)")


class PrioritiseSummary(BaseModel):
    qualifying: int = Field(description="customers whose expected value saved is positive")
    returned: int
    expected_value_saved_returned: float
    expected_value_saved_qualifying: float
    contact_cost: float
    save_rate: float | None = Field(description="the request's save rate (None: the rates per segment below)")
    segments: list[str] | None
    save_rates: list[SegmentRate] = Field([], description="per segment, the rate planned with and where it comes from")
    left_out_segments: list[str] = Field([], description="segments left out: contacts there lowered retention")
    suppressed: int = Field(0, description="customers of the score table left out: on the suppression list")
    uplift: str = Field("", description="whether a per-customer uplift model ranks the plan, or how many more "
                                        "outcomes it needs")
    ranked_by: str = Field("save_rates", description="'uplift' (clv x uplift - contact_cost, the per-customer uplift "
                                                     "model) or 'save_rates' (value_at_risk x save_rate - contact_cost)")
    sleeping_dogs: int = Field(0, description="customers left out because a contact credibly lowers their retention "
                                              "(by the uplift model, or their segment's measured effect)")
    membership: str = Field("", description="what each customer's membership refers to, or why there is none")
    warnings: list[str] = []


class PrioritiseResponse(BaseModel):
    as_of: str
    model_version: str
    customers: list[Prioritised]
    summary: PrioritiseSummary


class ScoreTableInfo(BaseModel):
    path: str
    as_of: str
    customers: int
    model_version: str
    trained_as_of: str
    has_drivers: bool


class ModelInfo(BaseModel):
    name: str
    version: str
    uri: str
    run_id: str
    trained_as_of: str
    horizon_days: int
    population: dict[str, Any] | None = Field(None, description="total purchases and spend over the horizon at "
                                              "training, with their interval (level, low, high, seasonal note)")
    metrics: dict[str, Any] = Field(description="backtest metrics of the served model")
    baselines: dict[str, Any]
    data: dict[str, Any] = Field(description="fingerprint of the training data")
    score_table: ScoreTableInfo | None
    monitor: dict[str, Any] | None = Field(None, description="the latest live outcome check (churnclv monitor): "
                                           "verdict holding|degrading|broken, its reasons and figures")
    drift: dict[str, Any] | None = Field(None, description="the score table's customers against the training "
                                         "snapshot: PSI per model input, shares outside the range and never seen")
    warnings: list[str] = []


class SegmentSummary(BaseModel):
    segment: str
    recommended_action: str
    customers: int
    clv: float = Field(description="total CLV of the segment, currency")
    value_at_risk: float = Field(description="total value at risk of the segment, currency")
    churn_probability: float = Field(description="mean churn probability of the segment")


class SegmentsResponse(BaseModel):
    as_of: str
    model_version: str
    customers: int
    clv: float = Field(description="total CLV, currency")
    value_at_risk: float = Field(description="total value at risk, currency")
    segments: list[SegmentSummary] = Field(description="by decreasing value at risk")


class CustomersResponse(BaseModel):
    as_of: str
    model_version: str
    segment: str | None
    total: int = Field(description="customers in the segment (or in the table)")
    offset: int
    customers: list[CustomerScore] = Field(description="by decreasing value at risk")


class CurvePoint(BaseModel):
    contacts: int
    expected_net_value: float = Field(description="expected value saved minus contact costs, currency")


class ProfitCurveResponse(BaseModel):
    as_of: str
    model_version: str
    customers: int = Field(description="customers in the segments: the curve's last point")
    points: list[CurvePoint] = Field(description="contacts (best first) -> expected net value, from 0 contacts")
    chosen: CurvePoint = Field(description="the plan of the request: what /prioritise returns for it")
    best: CurvePoint = Field(description="every qualifying customer contacted: the most net value")
    save_rates: list[SegmentRate] = Field([], description="per segment, the rate planned with and where it comes from")
    left_out_segments: list[str] = []
    suppressed: int = Field(0, description="customers left out: on the suppression list")
    warnings: list[str] = []


class ReloadResponse(BaseModel):
    model_version: str | None
    score_table_as_of: str | None
    customers: int
    reloaded: list[str] = Field(description="what was swapped in: 'model', 'score_table'")
    problems: list[str] = Field(description="what is still missing, and what to run")


class ErrorDetail(BaseModel):
    field: str | None = None
    issue: str
    count: int | None = None


class Error(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorBody(BaseModel):
    error: Error
