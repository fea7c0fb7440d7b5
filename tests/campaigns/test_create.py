"""Recording campaigns: frozen members, idempotent repeats, suppressed and held-out customers left out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from churnclv.campaigns.assign import assign_groups, in_global_holdout
from churnclv.campaigns.audit import audit_trail, log_action
from churnclv.campaigns.create import CampaignRequest, create_campaign
from churnclv.campaigns.errors import CampaignConflictError, CampaignInputError, CampaignNotFoundError
from churnclv.campaigns.read import campaign_members, get_campaign, list_campaigns
from churnclv.campaigns.suppress import (
    drop_suppressed,
    suppress,
    suppressed_ids,
    suppression_list,
    unsuppress,
)

REQUEST = CampaignRequest("winback-march", control_share=0.1, parameters={"budget": 500, "contact_cost": 1.0})


def _count(engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_a_campaign_records_its_members_frozen_with_their_scores(engine, selected):
    created = create_campaign(engine, REQUEST, selected, requested_by="marketing", model_version="3",
                              scores_as_of=dt.date(2025, 12, 31), campaign_date=dt.date(2026, 1, 5))
    assert created.created
    info = get_campaign(engine, "winback-march")
    assert (info.requested_by, info.model_version, info.scores_as_of) == ("marketing", "3", dt.date(2025, 12, 31))
    assert info.campaign_date == dt.date(2026, 1, 5) and info.window_end == dt.date(2026, 4, 5)
    assert info.parameters == {"budget": 500, "contact_cost": 1.0}
    assert info.n_treated + info.n_control == len(selected) and info.n_control == len(created.controls)
    stored = campaign_members(engine, "winback-march")
    pd.testing.assert_frame_equal(stored, created.members)
    expected = assign_groups(selected, campaign="winback-march", control_share=0.1)
    assert stored["group"].tolist() == expected["group"].tolist()
    assert stored["rank"].tolist() == list(range(1, len(selected) + 1))
    np.testing.assert_allclose(stored["value_at_risk"], selected["value_at_risk"])
    assert campaign_members(engine, "winback-march", group="control")["customer_id"].tolist() == \
        created.controls["customer_id"].tolist()


def test_a_repeated_request_returns_the_existing_campaign(engine, selected):
    first = create_campaign(engine, REQUEST, selected, requested_by="a")
    rescored = selected.assign(value_at_risk=selected["value_at_risk"] * 2)  # scores changed since
    again = create_campaign(engine, REQUEST, rescored.iloc[:10], requested_by="b")
    assert not again.created and again.campaign == first.campaign
    pd.testing.assert_frame_equal(again.members, first.members)  # frozen at creation
    assert _count(engine, "campaigns") == 1 and _count(engine, "members") == len(selected)
    assert (audit_trail(engine)["action"] == "create_campaign").sum() == 1


def test_the_same_name_with_a_different_request_is_a_clear_error(engine, selected):
    create_campaign(engine, REQUEST, selected, requested_by="a")
    other = CampaignRequest("winback-march", control_share=0.2, parameters={"budget": 500, "contact_cost": 1.0})
    with pytest.raises(CampaignConflictError, match="'winback-march' already exists .* different control_share"):
        create_campaign(engine, other, selected, requested_by="a")
    budget = CampaignRequest("winback-march", control_share=0.1, parameters={"budget": 900, "contact_cost": 1.0})
    with pytest.raises(CampaignConflictError, match="different parameters"):
        create_campaign(engine, budget, selected, requested_by="a")


def test_suppressed_customers_never_enter_a_campaign_and_are_counted(engine, selected):
    objected = selected["customer_id"].iloc[[0, 5, 17, 400]].tolist()
    assert suppress(engine, [*objected, "not-a-member"], reason="objected", source="api", who="admin") == 5
    created = create_campaign(engine, REQUEST, selected, requested_by="a")
    members = campaign_members(engine, "winback-march")
    assert not members["customer_id"].isin(objected).any()
    assert created.campaign.n_suppressed == 4 and len(members) == len(selected) - 4
    expected = assign_groups(selected.loc[~selected["customer_id"].isin(objected)], campaign="winback-march",
                             control_share=0.1)
    assert members["group"].tolist() == expected["group"].tolist()  # filtered before assignment


def test_the_global_holdout_is_kept_out_of_every_campaign(engine, selected):
    request = CampaignRequest("spring", control_share=0.1, holdout_share=0.2)
    created = create_campaign(engine, request, selected, requested_by="a")
    held = selected["customer_id"][in_global_holdout(selected["customer_id"], share=0.2)]
    assert 150 < len(held) < 250 and created.campaign.n_held_out == len(held)
    assert not created.members["customer_id"].isin(held).any()
    second = create_campaign(engine, CampaignRequest("summer", control_share=0.3, holdout_share=0.2), selected,
                             requested_by="a")
    assert not second.members["customer_id"].isin(held).any()


def test_a_control_share_of_zero_is_possible_when_asked(engine, selected):
    created = create_campaign(engine, CampaignRequest("all-in", control_share=0.0), selected, requested_by="a")
    assert created.campaign.n_control == 0 and len(created.contacts) == len(selected)


def test_bad_requests_and_selections_are_named(engine, selected):
    with pytest.raises(CampaignInputError, match="clv"):
        create_campaign(engine, REQUEST, selected.drop(columns="clv"), requested_by="a")
    with pytest.raises(CampaignInputError, match="1 selected customer.*missing or infinite score"):
        create_campaign(engine, REQUEST, selected.assign(clv=selected["clv"].where(selected.index != 3)),
                        requested_by="a")
    with pytest.raises(CampaignInputError, match="window_days"):
        create_campaign(engine, CampaignRequest("x", control_share=0.1, window_days=0), selected, requested_by="a")
    with pytest.raises(CampaignInputError, match="campaign name"):
        create_campaign(engine, CampaignRequest("  ", control_share=0.1), selected, requested_by="a")
    with pytest.raises(CampaignInputError, match="holdout"):
        create_campaign(engine, CampaignRequest("x", control_share=0.1, holdout_share=1.0), selected, requested_by="a")
    assert _count(engine, "campaigns") == 0


def test_listing_and_unknown_names(engine, selected):
    t0 = dt.datetime(2026, 1, 1, 9)
    create_campaign(engine, CampaignRequest("first", control_share=0.1), selected, requested_by="a", now=t0)
    create_campaign(engine, CampaignRequest("second", control_share=0.1), selected, requested_by="a",
                    now=t0 + dt.timedelta(days=1))
    assert [c.name for c in list_campaigns(engine)] == ["second", "first"]
    assert list_campaigns(engine)[0].to_dict()["created_at"] == "2026-01-02T09:00:00"
    with pytest.raises(CampaignNotFoundError, match="'third'"):
        get_campaign(engine, "third")
    with pytest.raises(CampaignNotFoundError):
        campaign_members(engine, "third")


def test_suppression_list_keeps_the_first_entry_and_can_be_undone(engine):
    assert suppress(engine, ["C1", "C2", "C2"], reason="objected", source="api", who="admin") == 2
    assert suppress(engine, ["C2", "C3"], reason="erased", source="cli", who="admin") == 1
    listed = suppression_list(engine).set_index("customer_id")
    assert listed.loc["C2", "reason"] == "objected" and listed.loc["C3", "source"] == "cli"
    assert unsuppress(engine, "C1", who="admin") and not unsuppress(engine, "C1", who="admin")
    assert suppressed_ids(engine) == {"C2", "C3"}
    frame = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C4"], "x": range(4)})
    kept, removed = drop_suppressed(frame, suppressed_ids(engine))
    assert kept["customer_id"].tolist() == ["C1", "C4"] and removed == 2
    with pytest.raises(CampaignInputError, match="blank"):
        suppress(engine, [" "], reason="r", source="s", who="w")


def test_the_audit_trail_names_who_and_what(engine):
    log_action(engine, who="crm-key", action="export", detail={"campaign": "x", "rows": np.int64(12),
                                                               "day": dt.date(2026, 1, 2)})
    suppress(engine, ["C9"], reason="objected", source="api", who="admin-key")
    trail = audit_trail(engine)
    assert trail[["who", "action"]].values.tolist() == [["crm-key", "export"], ["admin-key", "suppress"]]
    assert trail["detail"].iloc[0] == {"campaign": "x", "rows": 12, "day": "2026-01-02"}
