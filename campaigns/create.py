"""Recording a campaign: its request, provenance and frozen members, in one transaction, once.

The API layer ranks the customers as ``/prioritise`` does and passes them here. Suppressed customers
and, when a global holdout is set, its customers are removed first (and counted); the rest are split
into ``treated`` and ``control`` by :func:`campaigns.assign.assign_groups`. The members keep the
scores they had at selection, so a later reload or retraining does not change the experiment.

Idempotent: the request's fingerprint (control share, holdout share, windows and the parameters, not
who asked or on which day) is stored with it. Asking again with the same name and the same request
returns the stored campaign and its members; the same name with a different request is a
:class:`CampaignConflictError`; two processes racing on one name leave one campaign.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from churnclv.campaigns.assign import CONTROL, TREATED, assign_groups, check_share, in_global_holdout
from churnclv.campaigns.audit import jsonable, record_action, utcnow
from churnclv.campaigns.errors import CampaignConflictError, CampaignInputError
from churnclv.campaigns.models import ID_LENGTH, NAME_LENGTH, Campaign, Member, Suppression
from churnclv.campaigns.read import CampaignInfo, _members, find_campaign
from churnclv.campaigns.store import store_errors, writing

__all__ = ["SCORE_COLUMNS", "CampaignRequest", "Created", "create_campaign"]

#: Columns the selected customers must carry (the score table's, as ranked by the plan).
SCORE_COLUMNS = ("customer_id", "segment", "churn_probability", "clv", "value_at_risk")


@dataclasses.dataclass(frozen=True)
class CampaignRequest:
    """What a marketer asks for; equal requests under one name are one campaign.

    Attributes
    ----------
    name : the campaign's name (unique in the store; at most 200 characters).
    control_share : share of each segment held out, in [0, 1); the API's default is 0.1.
    window_days : days after the campaign date in which the effect is measured.
    horizon_days : the scores' horizon (days) the plan was made on.
    holdout_share : the global holdout's share of all customers, in [0, 1) (0: none).
    parameters : the rest of the request as JSON (budget, contact cost, segments, limits…).
    """

    name: str
    control_share: float
    window_days: int = 90
    horizon_days: int = 90
    holdout_share: float = 0.0
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def checked(self) -> CampaignRequest:
        """The request with its numbers validated (:class:`CampaignInputError` names the bad one)."""
        name = self.name.strip()
        if not name or len(name) > NAME_LENGTH:
            raise CampaignInputError(f"a campaign name must have 1 to {NAME_LENGTH} characters, not {len(name)}")
        for label, days in (("window_days", self.window_days), ("horizon_days", self.horizon_days)):
            if int(days) != days or days <= 0:
                raise CampaignInputError(f"{label} must be a whole number of days above 0, not {days!r}")
        return dataclasses.replace(
            self, name=name, window_days=int(self.window_days), horizon_days=int(self.horizon_days),
            control_share=check_share(self.control_share, what="the control share"),
            holdout_share=check_share(self.holdout_share, what="the global holdout share"),
            parameters=jsonable(self.parameters))

    def fingerprint(self) -> str:
        """SHA-256 of the request's canonical JSON (name excluded: it is the key)."""
        body = {"control_share": self.control_share, "window_days": self.window_days,
                "horizon_days": self.horizon_days, "holdout_share": self.holdout_share,
                "parameters": jsonable(self.parameters)}
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Created:
    """The recorded campaign, its members (rank order) and whether this call created it."""

    campaign: CampaignInfo
    members: pd.DataFrame
    created: bool

    @property
    def contacts(self) -> pd.DataFrame:
        """The treated members: who the CRM contacts."""
        return self.members.loc[self.members["group"] == TREATED]

    @property
    def controls(self) -> pd.DataFrame:
        """The control members: who the CRM must not contact."""
        return self.members.loc[self.members["group"] == CONTROL]


def _check_scores(selected: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in SCORE_COLUMNS if c not in selected.columns]
    if missing:
        raise CampaignInputError(f"the selected customers lack the column(s) {', '.join(missing)}")
    frame = selected.loc[:, list(SCORE_COLUMNS)].astype({"customer_id": "str", "segment": "str"})
    numbers = frame[["churn_probability", "clv", "value_at_risk"]].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers).all(axis=1)
    if bad.any():
        raise CampaignInputError(f"{int(bad.sum())} selected customer(s) have a missing or infinite score, "
                                 f"e.g. {', '.join(frame.loc[bad, 'customer_id'].head(3))}")
    long = frame["customer_id"].str.len() > ID_LENGTH
    if long.any():
        raise CampaignInputError(f"{int(long.sum())} customer id(s) are longer than {ID_LENGTH} characters")
    return frame.assign(rank=np.arange(1, len(frame) + 1, dtype=np.int64))


def _conflict(existing: CampaignInfo, request: CampaignRequest) -> CampaignConflictError:
    asked = {"control_share": request.control_share, "window_days": request.window_days,
             "horizon_days": request.horizon_days, "holdout_share": request.holdout_share}
    differ = [k for k, v in asked.items() if getattr(existing, k) != v]
    differ += ["parameters"] if existing.parameters != jsonable(request.parameters) else []
    return CampaignConflictError(f"a campaign named {existing.name!r} already exists (created "
                                 f"{existing.created_at:%Y-%m-%d %H:%M} UTC) with a different "
                                 f"{', '.join(differ) or 'request'}; choose another name")


def _existing(connection, request: CampaignRequest, fingerprint: str) -> Created | None:
    info = find_campaign(connection, request.name)
    if info is None:
        return None
    if info.fingerprint != fingerprint:
        raise _conflict(info, request)
    return Created(campaign=info, members=_members(connection, info.id, None), created=False)


def _suppressed_among(connection, ids: np.ndarray) -> np.ndarray:
    listed = np.asarray(list(connection.scalars(select(Suppression.customer_id))), dtype=object)
    return np.isin(ids, listed) if len(listed) else np.zeros(len(ids), dtype=bool)


def _member_rows(campaign_id: int, members: pd.DataFrame) -> list[dict[str, Any]]:
    columns = ["customer_id", "group", "rank", "segment", "churn_probability", "clv", "value_at_risk"]
    values = [members[c].tolist() for c in columns]
    return [dict(zip(["campaign_id", *columns], (campaign_id, *row))) for row in zip(*values)]


def create_campaign(
    engine: Engine,
    request: CampaignRequest,
    selected: pd.DataFrame,
    *,
    requested_by: str,
    model_version: str | None = None,
    scores_as_of: dt.date | None = None,
    campaign_date: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Created:
    """Record a campaign and its members in one transaction, or return the identical one recorded before.

    Parameters
    ----------
    engine : the campaign store (:func:`campaigns.migrate.open_store`).
    request : what was asked (:class:`CampaignRequest`).
    selected : the ranked customers, best first, with :data:`SCORE_COLUMNS` (one row per customer).
    requested_by : the API key's name or the command-line user (never the key itself).
    model_version, scores_as_of : the registered model version and the score table's as-of day.
    campaign_date : the day the contacts go out (default: today, UTC); the effect window follows it.
    now : the creation time (UTC; default: now).

    Returns
    -------
    :class:`Created`: the campaign (``n_suppressed``, ``n_held_out`` count who was removed before the
    split), its members in rank order and ``created`` (False: an identical request was recorded before).

    Raises
    ------
    CampaignConflictError : the name is taken by a different request.
    CampaignInputError : a bad share, window, name, or selected frame (which column, how many rows).
    CampaignStoreError : the store is locked or unreachable (nothing is recorded).
    """
    request = request.checked()
    fingerprint = request.fingerprint()
    frame = _check_scores(selected)
    at = now or utcnow()
    with store_errors(engine):
        with engine.connect() as connection:  # the cheap path for a repeated request: no lock
            found = _existing(connection, request, fingerprint)
        if found is not None:
            return found
        try:
            return _record(engine, request, fingerprint, frame, at=at, requested_by=requested_by,
                           model_version=model_version, scores_as_of=scores_as_of,
                           campaign_date=campaign_date or at.date())
        except IntegrityError:  # another process recorded the same name first (PostgreSQL race)
            with engine.connect() as connection:
                found = _existing(connection, request, fingerprint)
            if found is None:
                raise
            return found


def _record(engine: Engine, request: CampaignRequest, fingerprint: str, frame: pd.DataFrame, *,
            at: dt.datetime, requested_by: str, model_version: str | None, scores_as_of: dt.date | None,
            campaign_date: dt.date) -> Created:
    with writing(engine).begin() as connection:
        found = _existing(connection, request, fingerprint)  # recorded while this one waited for the lock
        if found is not None:
            return found
        ids = frame["customer_id"].to_numpy(dtype=object)
        suppressed = _suppressed_among(connection, ids)
        held_out = in_global_holdout(ids, share=request.holdout_share) & ~suppressed
        members = assign_groups(frame.loc[~suppressed & ~held_out], campaign=request.name,
                                control_share=request.control_share)
        n_control = int((members["group"] == CONTROL).sum())
        values = dict(name=request.name, created_at=at, campaign_date=campaign_date, requested_by=requested_by,
                      model_version=model_version, scores_as_of=scores_as_of,
                      control_share=request.control_share, holdout_share=request.holdout_share,
                      horizon_days=request.horizon_days, window_days=request.window_days,
                      parameters=dict(request.parameters), fingerprint=fingerprint,
                      n_treated=len(members) - n_control, n_control=n_control,
                      n_suppressed=int(suppressed.sum()), n_held_out=int(held_out.sum()))
        campaign_id = connection.execute(insert(Campaign).values(**values).returning(Campaign.id)).scalar_one()
        if len(members):
            connection.execute(insert(Member), _member_rows(campaign_id, members))
        record_action(connection, who=requested_by, action="create_campaign", at=at,
                      detail={"campaign": request.name, "treated": values["n_treated"], "control": n_control,
                              "suppressed": values["n_suppressed"], "held_out": values["n_held_out"]})
    info = CampaignInfo(id=campaign_id, **values)
    return Created(campaign=info, members=members.loc[:, ["customer_id", "group", "rank", "segment",
                   "churn_probability", "clv", "value_at_risk"]].reset_index(drop=True), created=True)
