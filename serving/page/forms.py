"""The page's forms as typed requests: query parameters in, the JSON endpoints' own requests out.

A bad value gets the service's one error format, naming the form field (:func:`parse`).
"""

from __future__ import annotations

import math
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from churnclv.serving.errors import ApiError, from_validation
from churnclv.serving.schemas import MAX_CONTACT_COST, MAX_PRIORITISE, CustomersRequest, PrioritiseRequest

#: Rows on one page of a list.
PAGE_ROWS = 25


class Form(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def problems(self) -> list[dict]:
        """What is wrong across fields (``{"field", "issue"}``), once each field is valid on its own."""
        return []


class PlanForm(Form):
    """The contact plan: economics, segments, and a budget or a number of contacts."""

    contact_cost: float = Field(1.0, ge=0, le=MAX_CONTACT_COST, allow_inf_nan=False,
                                description="cost of one contact, currency")
    save_rate: float | None = Field(None, gt=0, le=100, allow_inf_nan=False,
                                    description="percent of the value at risk a contact saves (blank: each "
                                                "segment's rate learned from campaigns)")
    plan_by: Literal["budget", "contacts"] = "contacts"
    budget: float | None = Field(None, gt=0, allow_inf_nan=False, description="spend at most this on contacts")
    contacts: int | None = Field(None, ge=1, le=MAX_PRIORITISE, description="contact at most this many")
    segments: list[str] | None = None
    page: int = Field(1, ge=1)

    def problems(self) -> list[dict]:
        if self.plan_by != "budget":
            return []
        if self.budget is None:
            return [{"field": "budget", "issue": "give a budget, or plan by number of contacts"}]
        if self.budget < self.contact_cost:
            return [{"field": "budget", "issue": f"{self.budget:g} does not pay for one contact at {self.contact_cost:g}"}]
        return []

    @property
    def limit(self) -> int:
        """Contacts the plan may hold: the budget's worth (at most /prioritise's limit), or ``contacts``."""
        if self.plan_by == "contacts":
            return self.contacts or 100
        if self.contact_cost == 0:
            return MAX_PRIORITISE
        return max(1, math.floor(min(MAX_PRIORITISE, self.budget / self.contact_cost + 1e-9)))

    def prioritise_request(self) -> PrioritiseRequest:
        rate = None if self.save_rate is None else self.save_rate / 100
        return PrioritiseRequest(limit=self.limit, contact_cost=self.contact_cost, save_rate=rate,
                                 segments=self.segments or None)

    def query(self) -> dict:
        """The form's values as query parameters (without the page)."""
        return self.model_dump(exclude={"page"}, exclude_none=True)


class CustomersForm(Form):
    segment: str | None = None
    page: int = Field(1, ge=1)

    def customers_request(self) -> CustomersRequest:
        return CustomersRequest(segment=self.segment, offset=(self.page - 1) * PAGE_ROWS, limit=PAGE_ROWS)


class CustomerForm(Form):
    id: str = Field(min_length=1, max_length=200, description="a customer id")


F = TypeVar("F", bound=Form)


def parse(form: type[F], items: list[tuple[str, str]]) -> F:
    """A form from query parameters (blank ones left out; ``segments`` may repeat); a 422 naming each
    bad field otherwise."""
    data: dict = {}
    for name, value in items:
        if value.strip() == "":
            continue
        if name == "segments":
            data.setdefault(name, []).append(value)
        else:
            data[name] = value.strip()
    try:
        parsed = form.model_validate(data)
    except ValidationError as exc:
        _, code, message, details = from_validation(exc.errors())
        raise ApiError(422, code, message, details) from None
    if problems := parsed.problems():
        raise ApiError(422, "invalid_request", "; ".join(f"{p['field']}: {p['issue']}" for p in problems), problems)
    return parsed
