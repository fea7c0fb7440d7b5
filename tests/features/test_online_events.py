"""features.online.events_posted: plain posted events become exactly the frame the events contract returns for
them; anything the contract would clean or reject is left to it (None)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnclv.features import validate_events
from churnclv.features.events import EVENT_KINDS
from churnclv.features.online import events_posted


def contract(columns: dict) -> pd.DataFrame:
    return validate_events(pd.DataFrame({n: pd.Series(v, dtype=object) for n, v in columns.items()}))[0]


def plain_rows(rng: np.random.Generator, n: int) -> dict:
    kinds = [str(k) for k in rng.choice([*EVENT_KINDS, "webinar", "app_login"], n)]
    stamps = []
    for day, second, style in zip(rng.integers(0, 3 * 365, n), rng.integers(0, 86_400, n), rng.integers(0, 4, n)):
        moment = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(day), seconds=int(second))
        stamps.append([f"{moment:%Y-%m-%d}", f"{moment:%Y-%m-%dT%H:%M:%S}", f"{moment:%Y-%m-%d %H:%M}",
                       f"{moment:%Y-%m-%dT%H:%M:%S}.{int(rng.integers(0, 10**6)):06d}"][style])
    values = []
    for kind in kinds:
        if kind == "nps":
            values.append(int(rng.integers(0, 11)))
        elif kind == "csat":
            values.append(float(rng.integers(1, 6)))
        else:
            values.append(None if rng.random() < 0.7 else float(np.round(rng.normal(0, 5), 3)))
    ids = [f"crm-{i}" if i % 3 else i for i in rng.integers(0, 40, n).tolist()]  # text and integer ids
    return {"customer_id": ids, "timestamp": stamps, "kind": kinds, "value": values}


@pytest.mark.parametrize("seed", range(8))
def test_plain_events_are_what_the_contract_returns_to_the_last_digit(seed):
    columns = plain_rows(np.random.default_rng(seed), 1 + 40 * seed)
    fast = events_posted(columns)
    assert fast is not None
    pd.testing.assert_frame_equal(fast, contract(columns), check_exact=True)


@pytest.mark.parametrize(("column", "value"), [
    ("customer_id", " crm-1"),  # blanks the contract strips
    ("customer_id", ""),
    ("timestamp", "2025-01-01T00:00:00Z"),  # a zone the contract converts
    ("timestamp", "01/02/2025"),
    ("timestamp", "2025-02-30"),
    ("timestamp", "2200-01-01"),
    ("kind", "NPS"),  # the contract writes it in lower case
    ("kind", " nps"),
    ("kind", ""),
    ("value", "7"),  # text the contract reads as a number
    ("value", 11),  # an NPS answer out of range: the contract names it
    ("value", None),  # an NPS without its answer
    ("value", True),
])
def test_anything_else_is_left_to_the_contract(column, value):
    columns = {"customer_id": ["crm-1", "crm-2"], "timestamp": ["2025-01-01", "2025-01-02T10:00:00"],
               "kind": ["visit", "nps"], "value": [None, 7]}
    assert events_posted(columns) is not None
    columns[column] = [columns[column][0], value]
    assert events_posted(columns) is None
