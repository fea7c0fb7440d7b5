"""Erasure on the store (SQLite and PostgreSQL): members out of every campaign, counts and measurements kept,
the id suppressed as erased (also when it was suppressed before), score files rewritten, the receipt."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churnclv.campaigns import (
    ERASED,
    CampaignRequest,
    audit_trail,
    campaign_members,
    create_campaign,
    erased_ids,
    forget,
    get_campaign,
    suppress,
    suppression_list,
)


def test_forget_removes_members_and_score_rows_keeps_counts_and_says_where(engine, selected, tmp_path):
    first = create_campaign(engine, CampaignRequest("a", control_share=0.2), selected.head(300), requested_by="t")
    create_campaign(engine, CampaignRequest("b", control_share=0.2), selected.head(100), requested_by="t")
    who = first.members["customer_id"].iloc[0]  # in both campaigns (the top of the list)
    objected = first.members["customer_id"].iloc[1]
    suppress(engine, [objected], reason="objected", source="test", who="t")
    table = pa.Table.from_pandas(selected, preserve_index=False).replace_schema_metadata({b"churnclv": b"{}"})
    parquet, csv = tmp_path / "latest.parquet", tmp_path / "old.csv"
    pq.write_table(table, parquet)
    selected.to_csv(csv, index=False)
    receipt = forget(engine, [who, objected], score_files=[parquet, csv, tmp_path / "missing.parquet"], who="admin",
                     source="test", now=dt.datetime(2026, 1, 2))
    assert receipt.score_files == {str(parquet): 2, str(csv): 2}
    assert receipt.campaigns == {"a": 2, "b": 2} and receipt.suppressed == 1 and receipt.rows_removed == 8
    assert pq.read_schema(parquet).metadata == {b"churnclv": b"{}"}  # the score table's metadata stays
    assert not {who, objected} & (set(pd.read_parquet(parquet)["customer_id"]) | set(pd.read_csv(csv)["customer_id"]))
    assert len(campaign_members(engine, "a")) == 298 and get_campaign(engine, "a").n_treated + \
        get_campaign(engine, "a").n_control == 300  # the recorded counts stay
    assert erased_ids(engine) == {who, objected}
    listed = suppression_list(engine)
    assert set(listed.loc[listed["reason"] == ERASED, "customer_id"]) == {who, objected}
    detail = audit_trail(engine).query("action == 'forget'")["detail"].iloc[0]
    assert detail["customers"] == 2 and who not in str(detail)  # counts in the trail, not the ids
