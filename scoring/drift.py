"""Drift: are the customers being scored like the ones the model was trained on?

At training, :func:`reference` keeps, per model input, the edges of its deciles over the training snapshot
(the customers at the model's as-of day), the share of those customers in each bin and the range seen
(data only: edges, shares, min, max; no customer). At score time, :func:`drift_report` compares the scored
snapshot with it:

- the population stability index per feature, ``PSI = Σ (a − e) · ln(a / e)`` over the bins (missing values
  are a bin of their own; a share of 0 counts as :data:`FLOOR`);
- the share of customers with at least one input outside the training range;
- the share of customers the model never saw: a first purchase after the model's as-of day (their ``T``, days
  since the first purchase, is shorter than the days from the model's as-of day to the scores').

The stated line (:data:`PSI_WARN`): a PSI above 0.25 is a shift that matters, the usual rule of credit
scoring (below 0.1 no shift, 0.1–0.25 a moderate one). Any feature above it gives the one warning line of
:func:`warning_line`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from churnclv.contract.columns import RFM_COLUMNS

#: Decile bins over the training snapshot.
BINS = 10
#: A PSI above this is a shift that matters (the warning); 0.1 to this a moderate one.
PSI_WARN = 0.25
PSI_MODERATE = 0.10
#: An empty bin counts as this share (the PSI of an empty bin would be infinite).
FLOOR = 1e-4


def model_inputs(models) -> list[str]:
    """The columns a bundle's models read (its LightGBM features, the BG/NBD's RFM inputs), sorted."""
    names = set(RFM_COLUMNS)
    for scorer in (models.churn, models.purchases):
        if scorer is not None:
            names |= set(scorer.features)
    return sorted(names)


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)


def _bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Customers of ``values`` in each bin ``(-inf, e1], (e1, e2], … (ek, inf)``, then the count missing."""
    finite = np.isfinite(values)
    counts = np.bincount(np.searchsorted(edges, values[finite], side="left"), minlength=len(edges) + 1)
    return np.append(counts, (~finite).sum())


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin (:func:`_bin_counts`)."""
    return _bin_counts(values, edges) / max(len(values), 1)


def feature_reference(column: pd.Series, *, bins: int = BINS) -> dict:
    """One feature's reference: its inner decile edges (repeated ones merged), the training shares per bin
    (the last one: missing values), its finite minimum and maximum."""
    values = _numbers(column)
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return {"edges": [], "shares": _shares(values, np.array([])).tolist(), "min": None, "max": None}
    edges = np.unique(np.quantile(finite, np.arange(1, bins) / bins))
    return {"edges": edges.tolist(), "shares": _shares(values, edges).tolist(),
            "min": float(finite.min()), "max": float(finite.max())}


def reference(snapshot: pd.DataFrame, *, features: Iterable[str]) -> dict:
    """What a bundle keeps of its training snapshot for drift (plain JSON data): the customers and, per
    feature of ``features`` present in ``snapshot``, :func:`feature_reference`."""
    return {"customers": int(len(snapshot)), "bins": BINS,
            "features": {f: feature_reference(snapshot[f]) for f in features if f in snapshot.columns}}


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins (shares floored at :data:`FLOOR`)."""
    e, a = np.maximum(np.asarray(expected, float), FLOOR), np.maximum(np.asarray(actual, float), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def outside(values: np.ndarray, ref: dict) -> np.ndarray:
    """Which values lie outside the training range (missing values are not outside)."""
    if ref["min"] is None:
        return np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & ((values < ref["min"]) | (values > ref["max"]))


def _unseen(snapshot: pd.DataFrame, *, as_of, trained_as_of) -> np.ndarray:
    """Which customers' first purchase came after the model's as-of day (``T`` in days at ``as_of``)."""
    if len(snapshot) == 0 or trained_as_of is None:
        return np.zeros(len(snapshot), dtype=bool)
    gap = (pd.Timestamp(as_of) - pd.Timestamp(trained_as_of)).days
    return _numbers(snapshot["T"]) < gap if gap > 0 else np.zeros(len(snapshot), dtype=bool)


def unseen_share(snapshot: pd.DataFrame, *, as_of, trained_as_of) -> float:
    """Share of customers whose first purchase came after the model's as-of day (``T`` in days at ``as_of``)."""
    unseen = _unseen(snapshot, as_of=as_of, trained_as_of=trained_as_of)
    return float(unseen.mean()) if len(unseen) else 0.0


def drift_counts(snapshot: pd.DataFrame, ref: dict, *, as_of, trained_as_of) -> dict:
    """What :func:`drift_report` reads of ``snapshot``, as counts that add up over groups of customers (the
    partitions of a cluster: :func:`merge_counts`): customers, per feature the customers in each training bin and
    outside the training range, customers with any input outside it, customers the model never saw."""
    features = {f: r for f, r in ref.get("features", {}).items() if f in snapshot.columns}
    bins, out_by, out_any = {}, {}, np.zeros(len(snapshot), dtype=bool)
    for name, r in features.items():
        values = _numbers(snapshot[name])
        bins[name] = _bin_counts(values, np.asarray(r["edges"], float))
        off = outside(values, r)
        out_any |= off
        out_by[name] = int(off.sum())
    return {"customers": int(len(snapshot)), "bins": bins, "outside_by_feature": out_by,
            "outside_range": int(out_any.sum()),
            "unseen": int(_unseen(snapshot, as_of=as_of, trained_as_of=trained_as_of).sum())}


def merge_counts(parts: Iterable[dict]) -> dict:
    """The :func:`drift_counts` of all the customers of ``parts`` (each a :func:`drift_counts` of its own)."""
    parts = list(parts)
    names = parts[0]["bins"] if parts else {}
    return {"customers": sum(p["customers"] for p in parts),
            "bins": {f: np.sum([p["bins"][f] for p in parts], axis=0) for f in names},
            "outside_by_feature": {f: sum(p["outside_by_feature"][f] for p in parts) for f in names},
            "outside_range": sum(p["outside_range"] for p in parts), "unseen": sum(p["unseen"] for p in parts)}


def report_of_counts(counts: dict, ref: dict) -> dict:
    """:func:`drift_report` from the :func:`drift_counts` of the scored customers (merged, on a cluster).

    ``psi``: per feature, largest first; ``drifted``: the features above :data:`PSI_WARN`; ``outside_range``:
    share of customers with any input outside the training range (``outside_by_feature`` per feature);
    ``unseen``: :func:`unseen_share`; ``warning``: :func:`warning_line` or None.
    """
    n = counts["customers"]
    scores = {name: psi(ref["features"][name]["shares"], binned / max(n, 1)) for name, binned in counts["bins"].items()}
    ordered = dict(sorted(scores.items(), key=lambda kv: -kv[1]))
    report = {
        "threshold": PSI_WARN,
        "customers": int(n),
        "training_customers": int(ref.get("customers", 0)),
        "psi": ordered,
        "psi_max": max(ordered.values()) if ordered else 0.0,
        "drifted": [f for f, v in ordered.items() if v > PSI_WARN],
        "outside_range": counts["outside_range"] / n if n else 0.0,
        "outside_by_feature": {f: c / n if n else 0.0 for f, c in counts["outside_by_feature"].items()},
        "unseen": counts["unseen"] / n if n else 0.0,
    }
    return {**report, "warning": warning_line(report)}


def drift_report(snapshot: pd.DataFrame, ref: dict, *, as_of, trained_as_of) -> dict:
    """The scored ``snapshot`` against the training reference ``ref`` (:func:`reference`), as plain data
    (:func:`report_of_counts` of its :func:`drift_counts`)."""
    return report_of_counts(drift_counts(snapshot, ref, as_of=as_of, trained_as_of=trained_as_of), ref)


def warning_line(report: dict) -> str | None:
    """One line naming the drifted features (largest PSI first), or None when none is above the line."""
    drifted = report["drifted"]
    if not drifted:
        return None
    named = ", ".join(f"{f} {report['psi'][f]:.2f}" for f in drifted[:6]) + (" …" if len(drifted) > 6 else "")
    return (f"drift: {len(drifted)} of {len(report['psi'])} model inputs moved beyond PSI {report['threshold']:g} "
            f"since training ({named}); {_pct(report['outside_range'])} of customers are outside the training range, "
            f"{_pct(report['unseen'])} were never seen by the model: retrain (churnclv retrain -t …)")


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%" if math.isfinite(share) else "–"


def bundle_drift(bundle, snapshot: pd.DataFrame, *, as_of) -> dict | None:
    """:func:`drift_report` of a bundle's scored ``snapshot``; None for a bundle trained before it kept a reference."""
    ref = bundle.metadata.get("drift_reference")
    if not ref:
        return None
    return drift_report(snapshot, ref, as_of=as_of, trained_as_of=bundle.metadata.get("as_of"))


def bundle_drift_counts(bundle, snapshot: pd.DataFrame, *, as_of) -> dict | None:
    """:func:`drift_counts` of a bundle's scored ``snapshot`` (one partition of customers); None for a bundle
    without a reference. :func:`bundle_drift_of_counts` turns the merged counts into the report."""
    ref = bundle.metadata.get("drift_reference")
    if not ref:
        return None
    return drift_counts(snapshot, ref, as_of=as_of, trained_as_of=bundle.metadata.get("as_of"))


def bundle_drift_of_counts(bundle, parts: Iterable[dict | None]) -> dict | None:
    """The drift report of the customers of every partition (their :func:`bundle_drift_counts`, merged)."""
    ref, kept = bundle.metadata.get("drift_reference"), [p for p in parts if p is not None]
    return report_of_counts(merge_counts(kept), ref) if ref and kept else None
