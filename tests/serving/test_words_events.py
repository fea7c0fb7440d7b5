"""The touchpoint drivers read as words on the page."""

import math

import pytest

from churnclv.features.events import EVENT_FEATURES
from churnclv.serving.page.words import FEATURES, driver_text


@pytest.mark.parametrize(("feature", "value", "text"), [
    ("nps_last", 3.0, "Last NPS answer: 3 (detractor) — raises the churn risk"),
    ("nps_last", 9.0, "Last NPS answer: 9 (promoter) — raises the churn risk"),
    ("nps_last", math.nan, "Last NPS answer: no answer — raises the churn risk"),
    ("nps_group", -1.0, "NPS group: detractor — raises the churn risk"),
    ("days_since_email_open", math.nan, "Days since an e-mail was last opened: never — raises the churn risk"),
    ("days_since_email_open", 61.0, "Days since an e-mail was last opened: 61 — raises the churn risk"),
    ("email_open_rate_30d", 0.25, "Share of e-mails opened in the last 30 days: 25% — raises the churn risk"),
    ("email_open_trend", -0.3, "E-mail opening, last 30 days against the 60 before: -30 points — raises the churn risk"),
    ("complaints_90d", 2.0, "Complaints in the last 90 days: 2 — raises the churn risk"),
    ("unsubscribed", 1.0, "Unsubscribed from e-mail: yes — raises the churn risk"),
])
def test_event_drivers_in_words(feature, value, text):
    assert driver_text(feature, value, 0.1) == text


def test_every_event_feature_has_words():
    assert set(EVENT_FEATURES) <= set(FEATURES)
