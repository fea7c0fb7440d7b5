"""Point-in-time customer features from a transaction log.

Public API: :func:`load_transactions`, :func:`validate_transactions`, :func:`build_features`,
:func:`load_events`, :func:`validate_events`, :func:`event_features` (touchpoints beside the purchases),
:func:`make_labels`, :func:`cohort_table`. Every function takes an explicit ``as_of``; only
transactions on or before that day are read. This package imports only :mod:`contract` of churnclv.
"""

from churnclv.features._prep import Encoded, encode
from churnclv.features.build import build_features
from churnclv.features.cohorts import cohort_table, plot_cohort_table
from churnclv.features.events import EVENT_FEATURES, event_features
from churnclv.features.io import (
    EventsError,
    TransactionsError,
    amount_factors,
    load_events,
    load_transactions,
    read_cdnow,
    validate_events,
    validate_transactions,
)
from churnclv.features.labels import make_labels
from churnclv.features.rfm import rfm_features

__all__ = [
    "EVENT_FEATURES",
    "Encoded",
    "encode",
    "EventsError",
    "TransactionsError",
    "amount_factors",
    "event_features",
    "load_events",
    "validate_events",
    "build_features",
    "cohort_table",
    "load_transactions",
    "make_labels",
    "plot_cohort_table",
    "read_cdnow",
    "rfm_features",
    "validate_transactions",
]
