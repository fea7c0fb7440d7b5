"""Campaigns, their members and their measurements, read back out of the store as plain data."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, select

from churnclv.campaigns.errors import CampaignNotFoundError
from churnclv.campaigns.models import Campaign, Measurement, Member
from churnclv.campaigns.store import store_errors

__all__ = ["MEMBER_COLUMNS", "MEASUREMENT_COLUMNS", "CampaignInfo", "campaign_members", "find_campaign",
           "get_campaign", "list_campaigns", "measurements"]

#: The frozen members of a campaign, in rank order.
MEMBER_COLUMNS = ("customer_id", "group", "rank", "segment", "churn_probability", "clv", "value_at_risk")
#: Per campaign and segment, the measured counts (the input of :func:`campaigns.rates.learn_save_rates`).
MEASUREMENT_COLUMNS = ("campaign", "segment", "data_through", "finished", "n_treated", "n_control",
                       "retained_treated", "retained_control", "spend_treated", "spend_control")


@dataclasses.dataclass(frozen=True)
class CampaignInfo:
    """A recorded campaign (no members): what was asked, by whom, on which scores, with how many."""

    id: int
    name: str
    created_at: dt.datetime
    campaign_date: dt.date
    requested_by: str
    model_version: str | None
    scores_as_of: dt.date | None
    control_share: float
    holdout_share: float
    horizon_days: int
    window_days: int
    parameters: dict[str, Any]
    fingerprint: str
    n_treated: int
    n_control: int
    n_suppressed: int
    n_held_out: int

    @property
    def window_end(self) -> dt.date:
        """The last day of the effect window: ``campaign_date + window_days``."""
        return self.campaign_date + dt.timedelta(days=self.window_days)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (dates as ISO text)."""
        out = dataclasses.asdict(self)
        return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in out.items()}


_FIELDS = [f.name for f in dataclasses.fields(CampaignInfo)]


def _info(row: Campaign) -> CampaignInfo:
    return CampaignInfo(**{name: getattr(row, name) for name in _FIELDS})


def find_campaign(connection: Connection, name: str) -> CampaignInfo | None:
    """The campaign called ``name`` on an open connection, or None."""
    query = select(*(getattr(Campaign, f) for f in _FIELDS)).where(Campaign.name == name)
    row = connection.execute(query).first()
    return None if row is None else CampaignInfo(**row._asdict())


def list_campaigns(engine: Engine) -> list[CampaignInfo]:
    """Every campaign, newest first."""
    query = select(*(getattr(Campaign, f) for f in _FIELDS)).order_by(Campaign.created_at.desc(), Campaign.id.desc())
    with store_errors(engine), engine.connect() as connection:
        return [CampaignInfo(**row._asdict()) for row in connection.execute(query)]


def get_campaign(engine: Engine, name: str) -> CampaignInfo:
    """The campaign called ``name``; :class:`CampaignNotFoundError` when there is none."""
    with store_errors(engine), engine.connect() as connection:
        info = find_campaign(connection, name)
    if info is None:
        raise CampaignNotFoundError(f"no campaign is called {name!r}")
    return info


def _members(connection: Connection, campaign_id: int, group: str | None) -> pd.DataFrame:
    query = select(*(getattr(Member, c) for c in MEMBER_COLUMNS)).where(Member.campaign_id == campaign_id)
    if group is not None:
        query = query.where(Member.group == group)
    rows = connection.execute(query.order_by(Member.rank)).all()
    return pd.DataFrame(rows, columns=list(MEMBER_COLUMNS)).astype(
        {"customer_id": "str", "group": "str", "segment": "str", "rank": "int64",
         "churn_probability": "float64", "clv": "float64", "value_at_risk": "float64"})


def campaign_members(engine: Engine, name: str, *, group: str | None = None) -> pd.DataFrame:
    """The frozen members of a campaign in rank order (:data:`MEMBER_COLUMNS`); ``group`` filters."""
    with store_errors(engine), engine.connect() as connection:
        info = find_campaign(connection, name)
        if info is None:
            raise CampaignNotFoundError(f"no campaign is called {name!r}")
        return _members(connection, info.id, group)


def measurements(engine: Engine, *, finished_only: bool = False, latest_only: bool = True) -> pd.DataFrame:
    """Measured counts per campaign and segment (:data:`MEASUREMENT_COLUMNS`).

    ``latest_only`` keeps each campaign's measurement on its latest data date; ``finished_only`` keeps
    only measurements whose window was over (what :func:`campaigns.rates.learn_save_rates` pools).
    """
    query = select(Campaign.name.label("campaign"), *(getattr(Measurement, c) for c in MEASUREMENT_COLUMNS[1:]))
    query = query.join(Campaign, Campaign.id == Measurement.campaign_id)
    if finished_only:
        query = query.where(Measurement.finished.is_(True))
    with store_errors(engine), engine.connect() as connection:
        rows = connection.execute(query.order_by(Measurement.campaign_id, Measurement.segment)).all()
    frame = pd.DataFrame(rows, columns=list(MEASUREMENT_COLUMNS))
    if latest_only and len(frame):
        latest = frame.groupby("campaign")["data_through"].transform("max")
        frame = frame.loc[frame["data_through"] == latest].reset_index(drop=True)
    return frame
