"""Recording a measured effect: its per-segment counts and sums, once per campaign and data date.

Counts only, no customer ids: a measured effect stays when a member is later erased. Recording the
same measurement twice (two workers measuring at once) leaves one row per segment.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from churnclv.campaigns.audit import record_action, utcnow
from churnclv.campaigns.effect import Effect
from churnclv.campaigns.errors import CampaignInputError, CampaignNotFoundError
from churnclv.campaigns.models import Measurement
from churnclv.campaigns.read import find_campaign
from churnclv.campaigns.store import store_errors, writing
from churnclv.campaigns.suppress import insert_ignoring_duplicates

__all__ = ["record_effect"]


def record_effect(engine: Engine, name: str, effect: Effect, *, who: str, now: dt.datetime | None = None) -> int:
    """Store ``effect`` (from :func:`campaigns.effect.measure_effect`) for campaign ``name``.

    Returns the number of segments recorded (a repeat of the same data date adds nothing). Raises
    :class:`CampaignNotFoundError` for an unknown name, :class:`CampaignInputError` for an empty log.
    """
    if effect.data_through is None:
        raise CampaignInputError("an effect measured on an empty log cannot be recorded")
    at = now or utcnow()
    outcomes = effect.outcomes(name)
    with store_errors(engine), writing(engine).begin() as connection:
        info = find_campaign(connection, name)
        if info is None:
            raise CampaignNotFoundError(f"no campaign is called {name!r}")
        rows = [{"campaign_id": info.id, "data_through": effect.data_through, "measured_at": at,
                 "finished": effect.finished, "segment": r.segment, "n_treated": int(r.n_treated),
                 "n_control": int(r.n_control), "retained_treated": int(r.retained_treated),
                 "retained_control": int(r.retained_control), "spend_treated": float(r.spend_treated),
                 "spend_control": float(r.spend_control)} for r in outcomes.itertuples(index=False)]
        insert_ignoring_duplicates(connection, Measurement, rows)
        record_action(connection, who=who, action="measure_effect", at=at,
                      detail={"campaign": name, "data_through": effect.data_through, "finished": effect.finished,
                              "segments": len(rows)})
    return len(rows)
