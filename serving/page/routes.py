"""The page's routes: the shell and static files (public, no data) and the HTML parts (API key needed).

Each part is rendered from the answer of a JSON endpoint, built by the same function the endpoint calls:
the overview from ``GET /model`` and ``GET /segments``, a segment's customers from ``POST /customers``, the
plan from ``POST /prioritise`` and ``POST /profit_curve``, a customer from ``POST /score``. Errors are the
service's one JSON format (the page shows the message and marks the fields it names).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import bentoml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from churnclv.campaigns import CampaignStoreError, log_action
from churnclv.serving import plans, summary
from churnclv.serving.auth import caller
from churnclv.serving.errors import ApiError, error_response
from churnclv.serving.page import chart, forms, words
from churnclv.serving.schemas import Prioritised, ProfitCurveRequest
from churnclv.serving.state import Served, model_info
from churnclv.serving.table import ScoreTable, lookup, score_rows
from churnclv.serving.targeting import View

HERE = Path(__file__).parent
STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
CSV_COLUMNS = list(Prioritised.model_fields)
#: The page runs only its own files: an injected script could not run, nor read the key it holds.
POLICY = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
          "frame-ancestors 'none'")
#: Points asked of the profit curve for the chart (it is drawn over the part where the decisions are).
CURVE_POINTS = 1000

router = APIRouter(include_in_schema=False)


@functools.cache
def templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(money=words.money, percent=words.percent, count=words.count, label=words.label,
                       plain=lambda v: f"{v:g}")
    return env


def render(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates().get_template(name).render(**context), headers={"cache-control": "no-store"})


def served() -> Served:
    """What the service serves now (one snapshot for the whole request)."""
    return bentoml.get_current_service().state.current


def segment_words(table: ScoreTable | None) -> Callable[[str], str]:
    """The name every view of the page gives a segment key of this table (:func:`words.segment_names`); the
    policy's name in words for a key the table has no customer in (or when no table is loaded)."""
    names = words.segment_names(summary.segment_summaries(table)) if table is not None else {}
    return lambda key: names.get(key) or words.label(key)


def view(table: ScoreTable) -> View:
    """The suppression list and learned save rates the service plans with (:mod:`serving.targeting`)."""
    return bentoml.get_current_service().targeting.view(table)


def audit_export(who: str, rows: int) -> None:
    """Write the export of a plan's list to the audit trail (503 when the store cannot take it)."""
    targeting = bentoml.get_current_service().targeting
    try:
        log_action(targeting.engine(), who=who, action="export", detail={"list": "plan preview (page)", "rows": rows})
    except CampaignStoreError as exc:
        raise targeting.unavailable(exc) from None


def part(handler: Callable) -> Callable:
    """A part's handler: a raised :class:`ApiError` becomes its JSON error answer."""
    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(*args, **kwargs)
        except ApiError as error:
            return error_response(error)
    return wrapper


@router.get("/app")
async def shell() -> HTMLResponse:
    """The page itself: it asks for the key, then fetches the parts below."""
    page = render("shell.html", version=static_version())
    page.headers.update({"content-security-policy": POLICY, "referrer-policy": "no-referrer"})
    return page


@router.get("/app/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        return error_response(ApiError(404, "not_found", f"no static file {name!r}"))
    return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name],
                    headers={"cache-control": "public, max-age=3600"})


@functools.cache
def static_version() -> str:
    """Changes when a static file changes (a cache-busting query string)."""
    return hashlib.sha256(b"".join((HERE / "static" / n).read_bytes() for n in sorted(STATIC))).hexdigest()[:10]


@router.get("/app/overview")
@part
async def overview() -> HTMLResponse:
    now = served()
    table = now.need_table()
    info = model_info(now)
    horizon = int(table.attrs.get("horizon_days") or info["horizon_days"] or 0)
    segments = summary.segments_response(table)
    churn_rate = words.churn_rate(segments.segments)
    return render("overview.html", info=info, segments=segments, churn_rate=churn_rate, segment_name=segment_words(table),
                  grade=words.grade(info["metrics"], churn_rate=churn_rate), grades=words.GRADES, horizon=horizon,
                  stale=words.stale_days(table.as_of, horizon, datetime.now(UTC).date()))


@router.get("/app/customers")
@part
async def customers(request: Request) -> HTMLResponse:
    now = served()
    form = forms.parse(forms.CustomersForm, request.query_params.multi_items())
    answer = summary.customers_response(now.need_table(), form.customers_request())
    return render("customers.html", answer=answer, form=form, rows=forms.PAGE_ROWS,
                  segment_name=segment_words(now.table))


@router.get("/app/plan")
@part
async def plan(request: Request) -> HTMLResponse:
    now = served()
    form = forms.parse(forms.PlanForm, request.query_params.multi_items())
    table = now.need_table()
    wanted = form.prioritise_request()
    first = (form.page - 1) * forms.PAGE_ROWS
    targeting = await anyio.to_thread.run_sync(view, table)  # the campaign store: off the event loop
    answer = plans.prioritise_response(table, wanted, rows=slice(first, first + forms.PAGE_ROWS), view=targeting)
    curve = plans.profit_curve_response(table, ProfitCurveRequest(**wanted.model_dump(), points=CURVE_POINTS),
                                        view=targeting)
    return render("plan.html", form=form, answer=answer, curve=curve, chart=chart.profit_chart(curve),
                  segments=summary.segment_summaries(table), contactable=table.contactable,
                  segment_name=segment_words(table), first=first, query=urlencode(form.query(), doseq=True))


@router.get("/app/plan.csv")
@part
async def plan_csv(request: Request) -> Response:
    """The whole list of the plan (every page), as ``POST /prioritise`` returns it, and each segment's name on
    the page (``segment_name``) beside its key."""
    now = served()
    form = forms.parse(forms.PlanForm, request.query_params.multi_items())
    table = now.need_table()
    answer = plans.prioritise_response(table, form.prioritise_request(), view=await anyio.to_thread.run_sync(view, table))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    name_of = segment_words(table)
    writer.writerow([*CSV_COLUMNS, "segment_name"])
    writer.writerows([*(getattr(row, c) for c in CSV_COLUMNS), name_of(row.segment)] for row in answer.customers)
    name = f"contact-plan-{answer.as_of}-{len(answer.customers)}.csv"
    await anyio.to_thread.run_sync(audit_export, caller(request.scope).name, len(answer.customers))
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"})


@router.get("/app/customer")
@part
async def customer(request: Request) -> HTMLResponse:
    now = served()
    form = forms.parse(forms.CustomerForm, request.query_params.multi_items())
    table = now.need_table()
    positions, unknown = lookup(table, [form.id])
    if unknown:
        raise ApiError(404, "unknown_customer", f"no customer {form.id!r} in the scores as of {table.as_of}",
                       [{"field": "id", "issue": "not in the score table"}])
    row = score_rows(table, positions, explain=True)[0]
    drivers = [words.driver_text(d["feature"], d["value"], d["contribution"]) for d in row.get("drivers") or []]
    horizon = int(table.attrs.get("horizon_days") or 0)
    return render("customer.html", row=row, drivers=drivers, has_drivers=table.drivers is not None,
                  horizon=horizon, as_of=table.as_of, segment_name=segment_words(table), level=float(table.attrs.get("interval_level") or 0) or None)
