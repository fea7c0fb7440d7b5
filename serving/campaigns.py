"""Campaigns from the served scores: a plan recorded as an experiment, and its measured effect read back.

:func:`create` ranks the customers as ``/prioritise`` does (suppressed customers out, learned save
rates unless the request sets one) and records the whole qualifying list, up to ``limit``, with
:func:`campaigns.create_campaign`: a control group drawn from it, stratified by segment. The command
line (``churnclv plan``) calls the same function on the same table, so both make the same campaign.
:func:`effect_rows` turns a recorded measurement (counts only) into the effect per segment with a
Beta-Binomial interval of the retention difference.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from churnclv.campaigns import (
    CampaignInfo,
    CampaignRequest,
    Created,
    campaign_members,
    create_campaign,
    get_campaign,
    list_campaigns,
    measurements,
)
from churnclv.campaigns.assign import CONTROL
from churnclv.campaigns.effect import retention_interval
from churnclv.serving.plans import plan_of
from churnclv.serving.schemas import PrioritiseRequest
from churnclv.serving.table import ScoreTable, score_rows
from churnclv.serving.targeting import View

#: Columns of the contact and control lists (CSV and JSON).
LIST_COLUMNS = ("rank", "customer_id", "segment", "churn_probability", "clv", "value_at_risk")
#: Central probability of the effect intervals.
INTERVAL = 0.9


def selected(table: ScoreTable, request: PrioritiseRequest, view: View | None) -> tuple[pd.DataFrame, Any]:
    """The customers a campaign draws from (best first, :data:`campaigns.create.SCORE_COLUMNS`) and the
    plan's summary."""
    plan, _, summary = plan_of(table, request, view)
    rows = score_rows(table, plan.positions)
    frame = pd.DataFrame(rows, columns=["customer_id", "segment", "churn_probability", "clv", "value_at_risk"])
    return frame, summary


def create(engine: Engine, table: ScoreTable, view: View | None, request: PrioritiseRequest, *, name: str,
           control_share: float, window_days: int, holdout_share: float, campaign_date: dt.date | None,
           who: str) -> tuple[Created, Any]:
    """Record the campaign of ``request`` on ``table`` (idempotent per name and request) and the plan summary."""
    frame, summary = selected(table, request, view)
    parameters = request.model_dump(mode="json")  # not the table's day: a repeat after a reload is the same campaign
    wanted = CampaignRequest(name=name, control_share=control_share, window_days=window_days,
                             horizon_days=int(table.attrs.get("horizon_days") or 90), holdout_share=holdout_share,
                             parameters=parameters)
    as_of = _day(table.as_of)
    created = create_campaign(engine, wanted, frame, requested_by=who, model_version=table.model_version,
                              scores_as_of=as_of, campaign_date=campaign_date)
    return created, summary


def _day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def member_list(members: pd.DataFrame) -> list[dict[str, Any]]:
    """Members as the answers list them (:data:`LIST_COLUMNS`)."""
    return members.loc[:, list(LIST_COLUMNS)].to_dict("records")


def members_csv(members: pd.DataFrame) -> str:
    """A contact or control list as CSV text (:data:`LIST_COLUMNS`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LIST_COLUMNS)
    writer.writerows(members.loc[:, list(LIST_COLUMNS)].itertuples(index=False, name=None))
    return out.getvalue()


def status_of(info: CampaignInfo, measured: pd.DataFrame, today: dt.date) -> str:
    """``finished`` (measured over the whole window), ``measured (interim)``, ``running`` or ``to measure``."""
    mine = measured.loc[measured["campaign"] == info.name] if len(measured) else measured
    if len(mine) and bool(mine["finished"].any()):
        return "finished"
    if len(mine):
        return "measured (interim)"
    return "running" if today <= info.window_end else "to measure"


def summaries(engine: Engine, *, today: dt.date | None = None) -> list[dict[str, Any]]:
    """Every campaign, newest first, with its status and window end (``GET /campaigns``)."""
    measured = measurements(engine, latest_only=True)
    day = today or dt.datetime.now(dt.UTC).date()
    return [{**info.to_dict(), "status": status_of(info, measured, day), "window_end": info.window_end.isoformat()}
            for info in list_campaigns(engine)]


def effect_rows(measured: pd.DataFrame, *, contact_cost: float = 0.0, interval: float = INTERVAL,
                seed: int = 0) -> list[dict[str, Any]]:
    """Per segment and ``all``: retention of each group, the difference with its interval, spend per member,
    and the incremental value per contact and in total (the spend difference net of ``contact_cost``)."""
    if not len(measured):
        return []
    numbers = ["n_treated", "n_control", "retained_treated", "retained_control", "spend_treated", "spend_control"]
    table = measured.loc[:, ["segment", *numbers]]
    table = pd.concat([table, table[numbers].sum().to_frame().T.assign(segment="all")], ignore_index=True)
    rng = np.random.default_rng(seed)
    rows = []
    for r in table.itertuples(index=False):
        n_t, n_c, x_t, x_c = int(r.n_treated), int(r.n_control), int(r.retained_treated), int(r.retained_control)
        low, high = retention_interval(x_t, n_t, x_c, n_c, interval=interval, draws=20_000, rng=rng)
        rt = x_t / n_t if n_t else None
        rc = x_c / n_c if n_c else None
        st = float(r.spend_treated) / n_t if n_t else None
        sc = float(r.spend_control) / n_c if n_c else None
        rows.append({"segment": str(r.segment), "n_treated": n_t, "n_control": n_c, "retention_treated": rt,
                     "retention_control": rc, "retention_diff": None if rt is None or rc is None else rt - rc,
                     "retention_diff_low": None if np.isnan(low) else low,
                     "retention_diff_high": None if np.isnan(high) else high,
                     "spend_per_treated": st, "spend_per_control": sc,
                     "spend_diff": None if st is None or sc is None else st - sc,
                     "value_per_contact": None if st is None or sc is None else st - sc - contact_cost,
                     "value_total": None if st is None or sc is None else (st - sc - contact_cost) * n_t,
                     "retained_extra": None if rt is None or rc is None else (rt - rc) * n_t})
    return rows


def detail(engine: Engine, name: str) -> dict[str, Any]:
    """One campaign (``GET /campaigns/{name}``): what was asked, its groups' sizes, its latest measured effect."""
    info = get_campaign(engine, name)
    measured = measurements(engine, latest_only=True)
    mine = measured.loc[measured["campaign"] == name] if len(measured) else measured
    today = dt.datetime.now(dt.UTC).date()
    effect = None
    if len(mine):
        effect = {"data_through": pd.Timestamp(mine["data_through"].iloc[0]).date().isoformat(),
                  "finished": bool(mine["finished"].iloc[0]), "interval": INTERVAL,
                  "contact_cost": float(info.parameters.get("contact_cost") or 0.0),
                  "segments": effect_rows(mine, contact_cost=float(info.parameters.get("contact_cost") or 0.0))}
    return {**info.to_dict(), "status": status_of(info, measured, today), "window_end": info.window_end.isoformat(),
            "effect": effect}


def group_members(engine: Engine, name: str, group: str) -> pd.DataFrame:
    """The contact (``treated``) or control list of a campaign, in rank order."""
    return campaign_members(engine, name, group=group)


__all__ = ["CONTROL", "INTERVAL", "LIST_COLUMNS", "create", "detail", "effect_rows", "group_members",
           "member_list", "members_csv", "selected", "status_of", "summaries"]
