"""Touchpoint features and the events contract: hand-computed values, missing as NaN, no look-ahead, named errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnclv.features.events import EVENT_FEATURES, event_features, no_events, unknown_customers
from churnclv.features.io import EventsError, load_events, validate_events

AS_OF = "2025-06-30"
CUSTOMERS = pd.Index(["A", "B", "C"])


def frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "timestamp", "kind", "value"])


EVENTS = frame([
    ("A", "2025-01-10", "nps", 9),          # an older answer, replaced by the later one
    ("A", "2025-06-20 10:00", "nps", 3),    # 10 days old: detractor
    ("A", "2025-06-25", "csat", 4),
    ("A", "2025-06-29", "support_contact", None),
    ("A", "2025-05-01", "support_contact", None),   # 60 days old: in 90 days, not in 30
    ("A", "2025-06-30 23:59", "complaint", None),   # the as-of day is seen whole
    ("A", "2025-06-10", "email_sent", None),
    ("A", "2025-06-12", "email_sent", None),
    ("A", "2025-06-11", "email_open", None),
    ("A", "2025-04-15", "email_sent", None),        # 76 days old
    ("A", "2025-04-16", "email_open", None),
    ("A", "2025-04-17", "email_click", None),
    ("A", "2025-06-01", "visit", None),
    ("A", "2025-06-05", "webinar", None),           # another kind: counted
    ("B", "2025-03-01", "unsubscribe", None),
    ("B", "2025-06-15", "nps", 8),                  # passive
    ("B", "2025-06-16", "csat", 1),                 # the worst answer of the last 90 days: 0.0
    ("Z", "2025-06-01", "visit", None),             # not a customer of the table
])


def features(events: pd.DataFrame = EVENTS, as_of: str = AS_OF) -> pd.DataFrame:
    return event_features(validate_events(events)[0], as_of=as_of, customers=CUSTOMERS)


def test_hand_computed_features():
    f = features()
    assert list(f.columns) == list(EVENT_FEATURES) and list(f.index) == ["A", "B", "C"]
    a = f.loc["A"]
    assert (a["nps_last"], a["nps_age_days"], a["nps_group"]) == (3, 10, -1)
    assert (a["csat_last"], a["csat_age_days"]) == (4, 5)
    assert a["survey_worst_90d"] == pytest.approx(0.3)  # NPS 3 / 10 beside CSAT (4 - 1) / 4 = 0.75
    assert (a["support_contacts_30d"], a["support_contacts_90d"], a["days_since_support_contact"]) == (1, 2, 1)
    assert (a["complaints_30d"], a["complaints_90d"], a["days_since_complaint"]) == (1, 1, 0)
    assert a["email_open_rate_30d"] == 0.5 and a["email_open_rate_90d"] == pytest.approx(2 / 3)
    assert a["email_click_rate_30d"] == 0 and a["email_click_rate_90d"] == pytest.approx(1 / 3)
    assert a["email_open_trend"] == pytest.approx(0.5 - 1.0)  # the 60 days before: 1 open of 1 sent
    assert a["days_since_email_open"] == 19
    assert (a["visits_30d"], a["days_since_visit"], a["unsubscribed"], a["other_events_90d"]) == (1, 29, 0, 1)
    b = f.loc["B"]
    assert (b["nps_last"], b["nps_group"], b["unsubscribed"], b["survey_worst_90d"]) == (8, 0, 1, 0.0)


def test_missing_is_nan_and_counts_are_zero():
    c = features().loc["C"]  # no event at all
    counts = [k for k in EVENT_FEATURES if k.endswith(("_30d", "_90d")) and "rate" not in k and k != "survey_worst_90d"]
    assert (c[counts] == 0).all() and c["unsubscribed"] == 0
    assert c.drop(counts + ["unsubscribed"]).isna().all()
    b = features().loc["B"]
    assert np.isnan(b["email_open_rate_30d"]) and np.isnan(b["days_since_visit"])


def test_no_event_after_the_as_of_day_changes_any_feature():
    future = frame([(c, f"2025-07-{d:02d}", k, v) for c in ("A", "B", "C") for d in (1, 15)
                    for k, v in (("nps", 0), ("csat", 1), ("complaint", None), ("email_sent", None),
                                 ("email_open", None), ("unsubscribe", None), ("visit", None))])
    pd.testing.assert_frame_equal(features(pd.concat([EVENTS, future])), features())


def test_features_move_with_the_as_of_day():
    earlier = features(as_of="2025-06-19")
    assert earlier.loc["A", "nps_last"] == 9 and earlier.loc["A", "nps_group"] == 1
    assert earlier.loc["A", "complaints_90d"] == 0 and np.isnan(earlier.loc["A", "days_since_complaint"])


def test_events_of_unknown_customers_are_counted():
    assert unknown_customers(validate_events(EVENTS)[0], CUSTOMERS) == (1, 1, ["Z"])


@pytest.mark.parametrize(("row", "column", "issue"), [
    (("", "2025-06-01", "visit", None), "customer_id", "empty id"),
    (("A", "yesterday", "visit", None), "timestamp", "do not parse as dates"),
    (("A", "2025-06-01", "", None), "kind", "empty kind"),
    (("A", "2025-06-01", "nps", 11), "value", "'nps' are not an answer from 0 to 10"),
    (("A", "2025-06-01", "nps", None), "value", "'nps' are not an answer from 0 to 10"),
    (("A", "2025-06-01", "csat", 0), "value", "'csat' are not an answer from 1 to 5"),
    (("A", "2025-06-01", "csat", "good"), "value", "'csat' are not an answer from 1 to 5"),
])
def test_each_kind_of_bad_row_is_named_with_its_count_and_an_example(row, column, issue):
    bad = pd.concat([EVENTS, frame([row, row])], ignore_index=True)
    with pytest.raises(EventsError) as caught:
        validate_events(bad)
    message = str(caught.value)
    assert f"column '{column}': 2 row(s)" in message and issue in message and "row 19" in message
    events, rejected = validate_events(bad, bad_rows="drop")
    assert len(events) == len(EVENTS) and sorted(set(rejected["row"])) == [19, 20]


def test_a_missing_column_names_the_option_and_a_value_column_is_optional(tmp_path):
    with pytest.raises(EventsError, match="(?s)missing required column.*'kind'.*--kind-col"):
        validate_events(EVENTS.drop(columns="kind"))
    no_values = EVENTS.loc[~EVENTS["kind"].isin(["nps", "csat"])].drop(columns="value")
    path = tmp_path / "events.csv"
    no_values.rename(columns={"customer_id": "user", "kind": "event"}).to_csv(path, index=False)
    loaded = load_events(path, customer_col="user", kind_col="event")
    assert len(loaded) == len(no_values) and loaded["value"].isna().all()
    with pytest.raises(EventsError, match="no such file"):
        load_events(tmp_path / "nowhere.csv")


def test_of_several_answers_on_the_latest_day_the_last_in_the_log_counts():
    same_day = frame([("A", "2025-06-20 09:00", "nps", 2), ("C", "2025-06-21", "visit", None),
                      ("A", "2025-06-20 08:00", "nps", 10), ("A", "2025-06-19", "nps", 0)])
    a = features(same_day).loc["A"]
    assert (a["nps_last"], a["nps_age_days"], a["nps_group"], a["survey_worst_90d"]) == (10, 10, 1, 0.0)


def random_events(seed: int, n: int = 3000) -> pd.DataFrame:
    """Seeded canonical events of ids C00000..C00299 (C00200 on: not customers of the table) over 2025,
    every kind and another, several on one day, some after the as-of day."""
    rng = np.random.default_rng(seed)
    kinds = np.array(["nps", "csat", "support_contact", "complaint", "email_sent", "email_open", "email_click",
                      "unsubscribe", "visit", "webinar"])
    kind = kinds[rng.integers(0, len(kinds), n)]
    value = np.where(kind == "nps", rng.integers(0, 11, n), np.where(kind == "csat", rng.integers(1, 6, n), np.nan))
    stamps = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h")
    ids = [f"C{k:05d}" for k in rng.integers(0, 300, n)]
    return validate_events(frame(list(zip(ids, stamps, kind, value))))[0]


@pytest.mark.parametrize("seed", range(3))
def test_numbered_and_hashed_ids_give_the_same_features(seed):
    """Numbered ids are looked up through a table over their numbers, other ids by hashing: the same rows."""
    events = random_events(seed)
    customers = pd.Index([f"C{k:05d}" for k in range(200)], dtype="str")
    numbered = event_features(events, as_of=AS_OF, customers=customers)
    hashed = event_features(events.assign(customer_id=events["customer_id"].astype(object)), as_of=AS_OF,
                            customers=pd.Index(customers.tolist(), dtype=object))
    pd.testing.assert_frame_equal(numbered, hashed, check_index_type=False)
    assert numbered["visits_30d"].sum() > 0 and numbered["nps_last"].notna().sum() > 50
    shuffled = customers[np.random.default_rng(seed).permutation(200)]  # any order of the table's customers
    pd.testing.assert_frame_equal(event_features(events, as_of=AS_OF, customers=shuffled), numbered.loc[shuffled])


def test_no_event_gives_every_customer_the_features_of_none():
    got = event_features(no_events(), as_of=AS_OF, customers=CUSTOMERS)
    pd.testing.assert_frame_equal(got, features().loc[["C"] * 3].set_axis(got.index))  # C has no event
