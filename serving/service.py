"""The churnclv HTTP service: ``bentoml serve serving.service:ChurnCLV`` (or ``churnclv serve``).

Configured by environment variables (:class:`contract.settings.Settings`), read once per process by
:func:`configuration`; the served state lives in ``state``, the score table in ``table``, the model in
``model``, prioritisation in ``ranking`` (answered by ``plans``), segment totals and pages of customers
in ``summary``, keys, roles and limits in ``auth``, the error format in ``errors``; the page at /app in
``page``; campaigns, suppressions and erasure in ``campaign_routes`` (the store and learned save rates in
``targeting``). ``POST /score``, ``/score_transactions`` and ``/prioritise`` are answered by ``lane``, a lean
path inside the Guard, rather than by BentoML's API machinery (which costs more than a lookup).
"""

from __future__ import annotations

import functools
from pathlib import Path

import anyio
import bentoml
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from churnclv.contract.settings import Settings
from churnclv.serving import campaign_routes, connections, gauges, lane, lifecycle, openapi, plans, summary
from churnclv.serving.auth import Access, Guard
from churnclv.serving.batching import Batcher
from churnclv.serving.bento import packaged_model
from churnclv.serving.bentoml_fixes import cancel_timeout_timers
from churnclv.serving.errors import answers, quiet_validation_tracebacks
from churnclv.serving.lane import Answers, Lane
from churnclv.serving.page.campaign_parts import router as campaign_parts
from churnclv.serving.page.routes import router as page
from churnclv.serving.schemas import (
    CustomersRequest,
    CustomersResponse,
    ModelInfo,
    ProfitCurveRequest,
    ProfitCurveResponse,
    ReloadRequest,
    ReloadResponse,
    SegmentsResponse,
)
from churnclv.serving.state import ServeConfig, ServingState, model_info
from churnclv.serving.targeting import Targeting, score_files

routes = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)  # GET /model, /segments, /docs.json
routes.include_router(page)  # the marketers' page at /app (serving.page)
routes.include_router(campaign_parts)  # its Campaigns view
routes.include_router(campaign_routes.router)  # /campaigns, /suppressions, DELETE /customers/{id}
# BentoML builds uvicorn's configuration right after importing this module and has no option for it: the
# one change at import, in the process that serves: head deadline, connection cap, JSON protocol errors.
connections.install()
# started by churnclv serve (CHURNCLV_WATCH_PARENT=1): this process stops when its parent dies (serving.lifecycle)
lifecycle.watch_parent()


@functools.cache
def settings() -> Settings:
    """This process's settings, read from the environment once."""
    return Settings.load()


@functools.cache
def configuration() -> tuple[ServeConfig, Access]:
    """This process's settings, read from the environment once (the service and its middleware share them;
    the key file is read once). Raises a ``ChurnclvError``: an invalid setting, or no API key unless open
    on a loopback host."""
    return ServeConfig.from_settings(settings()), Access.from_settings(settings())


# Chosen with benchmarks/serving.py (2 cores, 1M customers): 2 workers serve ~1.7x the requests of 1; no
# tracing (no exporter is configured; it tripled the cost of a request) and no access log (a line per request
# cost ~15% of the throughput; /metrics counts requests by endpoint and status). Override either with
# BENTOML_CONFIG_OPTIONS, e.g. "services.churnclv.workers=1 services.churnclv.logging.access.enabled=true".
@bentoml.service(name="churnclv", workers=2, traffic={"timeout": 60}, tracing={"excluded_urls": "."},
                 logging={"access": {"enabled": False}})
@bentoml.asgi_app(routes, path="/")
class ChurnCLV:
    def __init__(self) -> None:
        quiet_validation_tracebacks()
        cancel_timeout_timers()  # BentoML 1.4 leaves a live timer per request: GC pauses otherwise
        config, _ = configuration()  # refuses to start without an API key, unless open on loopback
        self.state = ServingState(config, packaged=packaged_model())  # a Bento serves the model it carries
        self.state.refresh(force=True)
        self.state.watch()
        self.posted = Batcher()  # /score_transactions: concurrent requests' histories scored in one pass
        self.answers = Answers()  # /prioritise: answers kept while the table and the campaign store are unchanged
        gauges.watch(self.state)  # the monitor's verdict and the drift report as /metrics gauges
        self.targeting = Targeting(settings().campaign_store,  # suppressions, learned save rates, campaigns
                                   served=lambda: self.state.current)  # and the uplift model served now

    def score_files(self) -> list[Path]:
        """The score tables an erasure rewrites: the served one and those under $CHURNCLV_HOME/scores/."""
        return score_files(self.state.config.scores_path, settings().root)

    def __is_ready__(self) -> bool:
        return self.state.current.ready

    @bentoml.api(route="/profit_curve")
    @answers
    async def profit_curve(self, request: ProfitCurveRequest, /) -> ProfitCurveResponse:
        """Expected net value by number of contacts (best first) for a plan's economics and segments, with
        the plan of the request (what /prioritise returns for it) and the best plan marked."""
        table = self.state.current.need_table()
        view = await anyio.to_thread.run_sync(self.targeting.view, table)
        return plans.profit_curve_response(table, request, view=view)

    @routes.get("/segments")
    @answers
    async def segments(self) -> SegmentsResponse:
        """Customers, total CLV and value at risk per segment, and for the whole score table."""
        return summary.segments_response(self.state.current.need_table())

    @bentoml.api(route="/customers")
    @answers
    async def customers(self, request: CustomersRequest, /) -> CustomersResponse:
        """A page of customers (of one segment, or all) by decreasing value at risk."""
        return summary.customers_response(self.state.current.need_table(), request)

    @routes.get("/model")
    @answers
    async def model(self) -> ModelInfo:
        """The served model (pinned version, backtest, trained as of) and the score table's facts."""
        return ModelInfo(**model_info(self.state.current))

    @bentoml.api(route="/reload")
    @answers
    async def reload(self, request: ReloadRequest, /) -> ReloadResponse:
        """Load a new champion and/or score table now; requests in flight finish on the old ones.

        Reloads the worker that answers; the other workers find a changed table or champion at their
        next check (every CHURNCLV_REFRESH_SECONDS, 5 by default)."""
        changed = await anyio.to_thread.run_sync(lambda: self.state.refresh(force=request.force))
        served = self.state.current
        return ReloadResponse(model_version=served.model.version if served.model else None,
                              score_table_as_of=served.table.as_of if served.table else None,
                              customers=len(served.table) if served.table else 0,
                              reloaded=changed, problems=list(served.problems))

    @bentoml.on_shutdown
    def close(self) -> None:
        self.state.close()
        self.targeting.close()


@routes.get("/docs.json", include_in_schema=False)
async def docs() -> JSONResponse:
    """The OpenAPI 3.1 document (:mod:`serving.openapi`) in place of BentoML's 3.0.2 one."""
    described = tuple((api.route, api.func.__doc__ or "") for api in ChurnCLV.apis.values())
    described += tuple((path, handler.__doc__ or "") for path, handler in lane.HANDLERS.items())
    gets = tuple((path, getattr(ChurnCLV.inner, path.strip("/")).__doc__ or "") for path in ("/model", "/segments"))
    return JSONResponse(openapi.document((*described, *gets)))


ChurnCLV.add_asgi_middleware(Guard, access=lambda: configuration()[1])
ChurnCLV.add_asgi_middleware(Lane)  # inside the Guard: POST /score, /score_transactions, /prioritise (serving.lane)
