"""The score table at a glance: totals per segment (``GET /segments``) and customers a page at a time
(``POST /customers``), both read off the ranking built when the table was loaded (:mod:`serving.ranking`).

A page is a slice of a ladder (customers by decreasing value at risk), so it costs the same with a
million customers as with a thousand; the totals are one pass over the table's columns, once per table.
"""

from __future__ import annotations

import numpy as np

from churnclv.serving.errors import ApiError
from churnclv.serving.schemas import CustomersRequest, CustomersResponse, SegmentsResponse, SegmentSummary
from churnclv.serving.table import ScoreTable, score_rows

#: The summaries of the table served last (a table never changes; a reload brings a new one).
_computed: dict[int, tuple[ScoreTable, list[SegmentSummary]]] = {}


def segment_summaries(table: ScoreTable) -> list[SegmentSummary]:
    """Customers, total CLV, total value at risk and mean churn probability per segment, by decreasing
    value at risk. Computed once per table (~40 ms with a million customers); do not change the result."""
    known = _computed.get(id(table))
    if known is None or known[0] is not table:
        _computed.clear()
        known = _computed[id(table)] = (table, _summaries(table))
    return known[1]


def _summaries(table: ScoreTable) -> list[SegmentSummary]:
    """A segment's recommended action is the policy's (one action per segment)."""
    clv, churn, action = table.numbers["clv"], table.numbers["churn_probability"], table.texts["recommended_action"]
    rows = [SegmentSummary(segment=name, recommended_action=str(action[ladder.positions[0]]),
                           customers=len(ladder.positions), clv=float(np.nansum(clv[ladder.positions])),
                           value_at_risk=float(ladder.cumulative[-1]),
                           churn_probability=float(np.nanmean(churn[ladder.positions])))
            for name, ladder in table.ranking.by_segment.items() if len(ladder.positions)]
    return sorted(rows, key=lambda row: (-row.value_at_risk, row.segment))


def segments_response(table: ScoreTable) -> SegmentsResponse:
    """What ``GET /segments`` answers."""
    segments = segment_summaries(table)
    return SegmentsResponse(as_of=table.as_of, model_version=table.model_version, customers=len(table),
                            clv=sum(s.clv for s in segments), value_at_risk=float(table.ranking.everyone.cumulative[-1]),
                            segments=segments)


def customers_response(table: ScoreTable, request: CustomersRequest) -> CustomersResponse:
    """What ``POST /customers`` answers: one page of a segment's customers (or everyone's), by decreasing
    value at risk; 422 for a segment no customer is in."""
    if request.segment is not None and request.segment not in table.ranking.by_segment:
        known = ", ".join(sorted(table.ranking.by_segment))
        raise ApiError(422, "invalid_request", f"unknown segment {request.segment!r}; the score table has: {known}",
                       [{"field": "segment", "issue": f"unknown segment {request.segment!r}"}])
    ladder = table.ranking.everyone if request.segment is None else table.ranking.by_segment[request.segment]
    positions = ladder.positions[request.offset: request.offset + request.limit]
    return CustomersResponse(as_of=table.as_of, model_version=table.model_version, segment=request.segment,
                             total=len(ladder.positions), offset=request.offset, customers=score_rows(table, positions))
