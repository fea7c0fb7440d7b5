"""The score table's file carries its as-of day and model in its own Parquet metadata."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pyarrow.parquet as pq
import pytest

from churnclv.contract import ChurnclvError
from churnclv.scoring.scores import (
    METADATA_FIELDS,
    METADATA_KEY,
    read_score_metadata,
    score_metadata,
    write_scores,
)

TABLE = pd.DataFrame({"customer_id": ["a", "b"], "clv": [1.0, 2.0]})
BUNDLE = SimpleNamespace(metadata={"uri": "models:/churn-clv/3", "version": "3", "as_of": "2025-12-31"},
                         horizon_days=90, interval_level=0.8)


def test_the_metadata_is_in_the_parquet_file_itself(tmp_path):
    metadata = score_metadata(BUNDLE, as_of=pd.Timestamp("2026-01-15"))
    assert metadata == {"as_of": "2026-01-15", "model_uri": "models:/churn-clv/3", "model_version": "3",
                        "trained_as_of": "2025-12-31", "horizon_days": "90", "interval_level": "0.8"}
    assert tuple(metadata) == METADATA_FIELDS
    path = write_scores(TABLE.copy(), tmp_path / "scores.parquet", metadata)
    assert METADATA_KEY in pq.read_schema(path).metadata  # not pandas' experimental attrs
    assert read_score_metadata(path) == metadata
    pd.testing.assert_frame_equal(pd.read_parquet(path), TABLE)
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]  # written atomically: no temporary left


def test_a_table_written_with_attrs_is_still_read(tmp_path):
    """Tables of earlier versions kept the metadata in pandas' attrs (PANDAS_ATTRS)."""
    old = TABLE.copy()
    old.attrs = {"as_of": "2025-12-31", "model_version": "1"}
    old.to_parquet(tmp_path / "old.parquet", index=False)
    assert read_score_metadata(tmp_path / "old.parquet") == {"as_of": "2025-12-31", "model_version": "1"}
    TABLE.to_parquet(tmp_path / "bare.parquet", index=False)
    assert read_score_metadata(tmp_path / "bare.parquet") == {}


def test_csv_has_no_metadata(tmp_path):
    path = write_scores(TABLE, tmp_path / "scores.csv", score_metadata(BUNDLE, as_of="2026-01-15"))
    assert read_score_metadata(path) == {}
    assert pd.read_csv(path)["customer_id"].tolist() == ["a", "b"]


def test_a_failed_write_keeps_the_earlier_table(tmp_path):
    path = write_scores(TABLE, tmp_path / "scores.parquet", {"as_of": "2025-12-31"})
    with pytest.raises(Exception):  # noqa: B017 - whatever Arrow raises for an unwritable column
        write_scores(TABLE.assign(bad=[object(), object()]), path, {"as_of": "2026-01-15"})
    assert read_score_metadata(path) == {"as_of": "2025-12-31"}
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(ChurnclvError, match="cannot read the score table's metadata"):
        read_score_metadata(tmp_path / "junk.parquet")
