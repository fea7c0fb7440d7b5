"""Acquisition cohorts: per-customer cohort features and the cohort retention table.

A customer's cohort is the calendar month of their first purchase, written "YYYY-MM".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnclv.contract.dates import AsOf
from churnclv.features._prep import History, combine, customers, encode, history, unique_sorted

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COHORT_COLUMNS = ("cohort", "tenure_months")


def month_numbers(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 (int64) of day numbers (days since 1970-01-01)."""
    return np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]").astype(np.int64)


def month_labels(months: np.ndarray) -> pd.Index:
    """"YYYY-MM" strings of month numbers, built once per distinct month."""
    if len(months) == 0:
        return pd.Index([], dtype="str")
    m0 = int(months.min())
    labels = [f"{1970 + m // 12:04d}-{m % 12 + 1:02d}" for m in range(m0, int(months.max()) + 1)]
    return pd.Index(labels, dtype="str").take(months - m0)


def cohort_from_history(h: History) -> dict[str, Any]:
    """``cohort`` ("YYYY-MM" of the first purchase day) and ``tenure_months`` (int64, whole
    calendar months from the first purchase month to the as-of month)."""
    first = month_numbers(h.first_day)
    as_of_month = int(month_numbers(np.array([h.as_of]))[0])
    return {"cohort": month_labels(first).array, "tenure_months": as_of_month - first}


def cohort_features(transactions: pd.DataFrame, *, as_of: AsOf) -> pd.DataFrame:
    """Cohort month and tenure per customer with a purchase at or before ``as_of``.

    Returns
    -------
    DataFrame indexed by sorted ``customer_id``: ``cohort`` (str "YYYY-MM"),
    ``tenure_months`` (int64, calendar months since the first purchase month).
    """
    h = history(encode(transactions), as_of=as_of)
    return pd.DataFrame(cohort_from_history(h), index=h.cust.ids)


def _active_months(transactions: pd.DataFrame, as_of: AsOf) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Distinct (customer, purchase month) pairs up to as-of, as month offsets.

    Returns each pair's cohort offset (customer's first purchase month minus ``m0``), its
    months since that first purchase month ``k``, the as-of month's offset, and ``m0`` (the
    earliest purchase month, months since 1970-01).
    """
    enc = encode(transactions)
    cust = customers(enc, as_of=as_of)
    as_of_month = int(month_numbers(np.array([cust.as_of]))[0])
    days = enc.day[cust.purchase]
    d0 = int(days.min()) if len(days) else cust.as_of
    months = month_numbers(np.arange(d0, cust.as_of + 1))[days - d0]  # calendar lookup per distinct day
    m0 = int(months.min()) if len(months) else as_of_month
    width = as_of_month - m0 + 1
    pairs = unique_sorted(combine(cust.p_codes, months - m0, width, len(enc.uniques)))
    owner, month = pairs // width, pairs % width
    is_first = np.ones(len(pairs), dtype=bool)
    is_first[1:] = owner[1:] != owner[:-1]
    first = month[is_first][np.cumsum(is_first) - 1]
    return first, month - first, width - 1, m0


def cohort_table(transactions: pd.DataFrame, *, as_of: AsOf) -> pd.DataFrame:
    """Monthly retention by acquisition cohort, from purchases at or before ``as_of``.

    Returns
    -------
    DataFrame indexed by ``cohort`` ("YYYY-MM", only months in which someone first bought):
    ``customers`` (int64, cohort size), then integer columns ``0..k`` (months since
    acquisition), each the share of the cohort's customers with a purchase in that calendar
    month (month 0 is 1.0). Cells for months after the as-of month are NaN.
    """
    cohort, k, last, m0 = _active_months(transactions, as_of)
    size = last + 1
    counts = np.bincount(cohort * size + k, minlength=size * size).reshape(size, size)
    offsets = np.flatnonzero(counts[:, 0])
    sizes = counts[offsets, 0]
    shares = counts[offsets] / sizes[:, None]
    shares[offsets[:, None] + np.arange(size)[None, :] > last] = np.nan
    index = pd.Index(month_labels(offsets + m0), name="cohort")
    columns = {"customers": sizes.astype(np.int64)} | {j: shares[:, j] for j in range(size)}
    return pd.DataFrame(columns, index=index)


def _cell_text(share: float) -> str:
    percent = 100 * share
    return f"{percent:.0f}%" if percent >= 9.95 or percent == 0 else f"{percent:.1f}%"


def _annotate(ax, shares: np.ndarray, vmax: float) -> None:
    """Write each defined cell's percentage, white on dark cells."""
    for i, j in zip(*np.nonzero(np.isfinite(shares))):
        colour = "white" if shares[i, j] > 0.6 * vmax else "black"
        ax.text(j, i, _cell_text(shares[i, j]), ha="center", va="center", fontsize=7, color=colour)


def _label_axes(ax, table: pd.DataFrame) -> None:
    """Months on x, "cohort (n=size)" on y, thinned out for large tables."""
    n_rows, n_cols = len(table), table.shape[1] - 1
    step = max(1, n_cols // 24)
    ax.set_xticks(range(0, n_cols, step), [str(c) for c in table.columns[1::step]])
    ystep = max(1, n_rows // 40)
    labels = [f"{c}  (n={n:,})" for c, n in zip(table.index, table["customers"])]
    ax.set_yticks(range(0, n_rows, ystep), labels[::ystep])
    ax.set_xlabel("months since first purchase")
    ax.set_ylabel("cohort (first purchase month)")


def plot_cohort_table(table: pd.DataFrame, *, max_annotated_cells: int = 600) -> Figure:
    """Heat-map of a :func:`cohort_table` (rows: cohorts with their sizes; columns: months).

    The colour scale spans the shares from month 1 on (month 0 is always 100%); cells are
    annotated with percentages when the table has at most ``max_annotated_cells`` cells.
    Returns a ``matplotlib.figure.Figure`` on the Agg canvas; nothing is shown or saved.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    shares = table.drop(columns="customers").to_numpy(np.float64)
    n_rows, n_cols = shares.shape
    fig = Figure(figsize=(min(3 + 0.6 * n_cols, 28), min(1.8 + 0.32 * n_rows, 20)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title("Share of each acquisition cohort purchasing, by months since first purchase")
    if shares.size == 0:
        ax.text(0.5, 0.5, "no customers", ha="center", va="center", transform=ax.transAxes)
        return fig
    later = shares[:, 1:]
    vmax = float(np.nanmax(later)) if np.isfinite(later).any() and np.nanmax(later) > 0 else 1.0
    cmap = colormaps["YlGnBu"].with_extremes(bad="whitesmoke")
    image = ax.imshow(np.ma.masked_invalid(shares), aspect="auto", cmap=cmap, vmin=0.0, vmax=vmax,
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, label="share of cohort (month 0 = 100%)", format=PercentFormatter(xmax=1.0))
    if shares.size <= max_annotated_cells:
        _annotate(ax, shares, vmax)
    _label_axes(ax, table)
    return fig
