"""Report figures for churn and CLV models.

Every function here is pure: it takes arrays (or a pandas Series) and returns a new
:class:`matplotlib.figure.Figure` built directly, never through ``pyplot``. Nothing touches
matplotlib's global state (``rcParams``, the pyplot figure manager, registered colour maps)
and nothing is written to disk: the caller saves the figure, e.g.
``fig.savefig(path, dpi=150)``.

Conventions used in the figures (and relied on by the tests):

* probabilities are on [0, 1]; churn labels are 0/1 (1 = churned in the label window);
* ``frequency`` is the number of *repeat* purchases and ``recency`` the age at the last
  purchase in days since the first purchase (lifetimes conventions);
* reference lines (diagonal, random model) are always drawn first, so ``ax.lines[0]`` is the
  reference and the models follow in the order given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from churnclv.training.backtest import decile_lift, gain_curve, reliability

__all__ = [
    "calibration_curve",
    "feature_importance",
    "lift_gain_chart",
    "p_alive_matrix",
    "purchases_by_frequency",
]

REPORT_SIZE = (7.0, 5.0)  # inches: one figure per report column/page width
_REFERENCE_STYLE = {"color": "0.45", "linestyle": "--", "linewidth": 1.0}


# --------------------------------------------------------------------------- validation


def _as_1d(name: str, values: npt.ArrayLike) -> np.ndarray:
    """Return ``values`` as a finite 1-D float array (a copy) or raise a clear ValueError."""
    arr = np.array(values, dtype=float, copy=True)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: nothing to plot")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(
            f"{name} has {bad.size} missing or infinite value(s), e.g. at positions {bad[:5].tolist()}"
        )
    return arr


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays must have the same length, got {lengths}")


def _labels_01(name: str, values: npt.ArrayLike) -> np.ndarray:
    y = _as_1d(name, values)
    bad = np.flatnonzero((y != 0) & (y != 1))
    if bad.size:
        raise ValueError(f"{name} must be 0/1 churn labels; {bad.size} value(s) are not, e.g. {y[bad[:5]]}")
    return y


def _probabilities(name: str, values: npt.ArrayLike) -> np.ndarray:
    p = _as_1d(name, values)
    bad = np.flatnonzero((p < 0) | (p > 1))
    if bad.size:
        raise ValueError(f"{name} must be probabilities in [0, 1]; {bad.size} are not, e.g. {p[bad[:5]]}")
    return p


# --------------------------------------------------------------------------- computations


def _thin(n_points: int, max_points: int = 2001) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spread points, always the first and the last."""
    return np.unique(np.linspace(0, n_points - 1, min(n_points, max_points)).round().astype(np.intp))


def _left_edge_bins(values: np.ndarray, left_edges: np.ndarray) -> np.ndarray:
    """Index of the bin of each value; bin i is [edge_i, edge_{i+1}), the last one open-ended."""
    return np.searchsorted(left_edges, values, side="right") - 1


def _quantile_left_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Whole-number left edges at the 0, 1/n, ..., (n-1)/n quantiles of ``values`` (duplicates merged)."""
    return np.unique(np.floor(np.quantile(values, np.arange(n_bins) / n_bins)))


def _edge_labels(left_edges: np.ndarray, max_value: float, *, integer: bool, unit: str = "") -> list[str]:
    """Readable bin labels: "3", "4–7", "25+" for whole numbers; "0–30", "≥ 30" otherwise."""
    labels = []
    for lo, hi in zip(left_edges, np.append(left_edges[1:], np.inf)):
        if integer and np.isfinite(hi):
            text = f"{lo:g}" if hi - lo == 1 else f"{lo:g}–{hi - 1:g}"
        elif np.isfinite(hi):
            text = f"{lo:g}–{hi:g}"
        else:
            text = (f"{lo:g}+" if max_value > lo else f"{lo:g}") if integer else f"≥ {lo:g}"
        labels.append(text + unit)
    return labels


def _grouped_mean(groups: np.ndarray, values: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` per group 0..n_groups-1 (NaN where empty) and the group sizes."""
    count = np.bincount(groups, minlength=n_groups)
    total = np.bincount(groups, weights=values, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan), count


# --------------------------------------------------------------------------- figures


def calibration_curve(
    y_true: npt.ArrayLike,
    y_prob: npt.ArrayLike,
    *,
    n_bins: int = 10,
    label: str = "churn model",
    baselines: Mapping[str, npt.ArrayLike] | None = None,
) -> Figure:
    """Reliability diagram of predicted churn probabilities, with a histogram of the predictions.

    Parameters
    ----------
    y_true
        Observed churn in the label window, 0/1 per customer.
    y_prob
        Predicted churn probability per customer, in [0, 1].
    n_bins
        Number of equal-count bins (quantiles of the prediction) per model.
    label
        Legend name of the model.
    baselines
        Optional ``{name: probabilities}`` for the same customers, drawn as extra lines.

    Returns
    -------
    Figure
        Two axes: ``axes[0]`` the reliability diagram (``lines[0]`` the diagonal, ``lines[1]`` the
        model, then the baselines in order; x = mean predicted probability per bin, y = observed
        churn rate), ``axes[1]`` a histogram of the predictions (share of customers).
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    y = _labels_01("y_true", y_true)
    models = {label: _probabilities("y_prob", y_prob)}
    for name, prob in (baselines or {}).items():
        models[name] = _probabilities(f"baselines[{name!r}]", prob)
    _same_length(y_true=y, **{f"predictions of {name!r}": p for name, p in models.items()})

    fig = Figure(figsize=REPORT_SIZE, layout="constrained")
    ax, hist = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], label="perfectly calibrated", **_REFERENCE_STYLE)
    hist_bins = np.linspace(0.0, 1.0, 26)
    for i, (name, prob) in enumerate(models.items()):
        mean_pred, observed, _ = reliability(y, prob, n_bins)
        brier = float(np.mean((prob - y) ** 2))
        line = ax.plot(mean_pred, observed, marker="o", markersize=4, label=f"{name} (Brier {brier:.3f})")[0]
        weights = np.full(len(prob), 1.0 / len(prob))
        histtype = "stepfilled" if i == 0 else "step"
        hist.hist(prob, bins=hist_bins, weights=weights, histtype=histtype, color=line.get_color(),
                  alpha=0.45 if i == 0 else 1.0, label=name)
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="Observed churn rate (share of customers)",
           title=f"Calibration of churn probabilities ({n_bins} quantile bins, {len(y):,} customers)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", frameon=False)
    hist.set(xlabel="Predicted churn probability", ylabel="Share of\ncustomers")
    hist.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    hist.yaxis.set_major_locator(MaxNLocator(3))
    return fig


def lift_gain_chart(y_true: npt.ArrayLike, scores: Mapping[str, npt.ArrayLike]) -> Figure:
    """Cumulative-gain curve and lift by decile, one line per model.

    Parameters
    ----------
    y_true
        Observed churn in the label window, 0/1 per customer; needs at least one churner.
    scores
        ``{model name: score}``, higher = more likely to churn (any scale; only the ranking counts),
        e.g. ``{"LightGBM": p, "BG/NBD": 1 - p_alive, "RFM logistic": s}``.

    Returns
    -------
    Figure
        Two axes. ``axes[0]`` cumulative gain: ``lines[0]`` the random model, then one line per model
        (x = share of customers contacted, highest score first; y = share of churners captured;
        from (0, 0) to (1, 1), tied scores contacted together, at most 2,001 of its
        vertices drawn). ``axes[1]`` lift by decile:
        ``lines[0]`` lift 1 (random), then one line per model at x = 1..10 (1 = top 10 % of scores).
    """
    y = _labels_01("y_true", y_true)
    if not scores:
        raise ValueError("scores is empty: give at least one {model name: score}")
    if y.sum() == 0:
        raise ValueError("y_true has no churners (all 0): gain and lift are undefined")
    arrays = {name: _as_1d(f"scores[{name!r}]", s) for name, s in scores.items()}
    _same_length(y_true=y, **{f"scores of {name!r}": s for name, s in arrays.items()})

    fig = Figure(figsize=(11.0, 4.8), layout="constrained")
    gain_ax, lift_ax = fig.subplots(1, 2)
    gain_ax.plot([0, 1], [0, 1], label="random", **_REFERENCE_STYLE)
    lift_ax.axhline(1.0, label="random (lift 1)", **_REFERENCE_STYLE)
    deciles = np.arange(1, 11)
    for name, score in arrays.items():
        gx, gy = gain_curve(y, score)
        lift = decile_lift(gx, gy)
        keep = _thin(len(gx))
        line = gain_ax.plot(gx[keep], gy[keep], label=name)[0]
        lift_ax.plot(deciles, lift, marker="o", markersize=4, color=line.get_color(),
                     label=f"{name} (top decile {lift[0]:.2f}×)")
    gain_ax.set(xlim=(0, 1), ylim=(0, 1.02), title="Cumulative gain",
                xlabel="Customers contacted (share, highest score first)",
                ylabel="Churners captured (share of all churners)")
    for axis in (gain_ax.xaxis, gain_ax.yaxis):
        axis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    lift_ax.set(xticks=deciles, xlim=(0.5, 10.5), title="Lift by score decile",
                xlabel="Score decile (1 = top 10 % of scores)",
                ylabel="Lift (decile churn rate ÷ overall rate)")
    lift_ax.set_ylim(bottom=0)
    for ax in (gain_ax, lift_ax):
        ax.grid(alpha=0.3)
    gain_ax.legend(loc="lower right", frameon=False)
    lift_ax.legend(loc="best", frameon=False)
    fig.suptitle(f"Who to contact first: {len(y):,} customers, churn rate {y.mean():.1%}")
    return fig


def feature_importance(
    importance: pd.Series,
    *,
    top: int = 20,
    title: str = "Feature importance (gain)",
    xlabel: str = "Importance (total split gain)",
) -> Figure:
    """Horizontal bar chart of the ``top`` most important features, the largest at the top.

    Parameters
    ----------
    importance
        Importance per feature, indexed by feature name (e.g. LightGBM
        ``booster.feature_importance("gain")`` wrapped in a Series).
    top
        How many features to show.
    title, xlabel
        Figure title and x-axis label (state the unit of ``importance``).

    Returns
    -------
    Figure
        One axes with ``min(top, len(importance))`` bars; ``patches[0]`` is the largest.
    """
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    values = _as_1d("importance", importance.to_numpy())
    shown = pd.Series(values, index=importance.index.astype(str)).sort_values(ascending=False).head(top)
    fig = Figure(figsize=(7.0, max(2.5, 0.32 * len(shown) + 1.3)), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(shown))[::-1]  # largest at the top
    bars = ax.barh(positions, shown.to_numpy(), color="tab:blue", height=0.7)
    large = np.abs(shown.to_numpy()).max() >= 100
    ax.bar_label(bars, fmt="{:,.0f}" if large else "{:.3g}", padding=3, fontsize=8)
    ax.set_yticks(positions, shown.index.tolist())
    ax.margins(x=0.12)
    suffix = f" — top {len(shown)} of {len(importance)}" if len(shown) < len(importance) else ""
    ax.set(title=title + suffix, xlabel=xlabel)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return fig


def purchases_by_frequency(
    frequency: npt.ArrayLike,
    predicted: npt.ArrayLike,
    actual: npt.ArrayLike,
    *,
    max_frequency: int = 7,
    label: str = "model",
) -> Figure:
    """Mean predicted vs actual holdout purchases, by repeat purchases in the calibration period.

    The classic check of a BG/NBD fit (lifetimes'
    ``plot_calibration_purchases_vs_holdout_purchases``).

    Parameters
    ----------
    frequency
        Repeat purchases per customer in the calibration period (whole numbers >= 0).
    predicted
        Expected purchases per customer in the holdout window.
    actual
        Observed purchases per customer in the holdout window.
    max_frequency
        Customers with ``frequency >= max_frequency`` share the last bin, labelled "max+".
    label
        Legend name of the model.

    Returns
    -------
    Figure
        One axes, ``lines[0]`` the mean prediction and ``lines[1]`` the observed mean, both at
        x = 0..max_frequency (NaN for an empty bin). Tick labels give the customers per bin.
    """
    if max_frequency < 0:
        raise ValueError(f"max_frequency must be >= 0, got {max_frequency}")
    freq = _as_1d("frequency", frequency)
    pred, act = _as_1d("predicted", predicted), _as_1d("actual", actual)
    _same_length(frequency=freq, predicted=pred, actual=act)
    if (freq < 0).any():
        raise ValueError(f"frequency must be >= 0; {(freq < 0).sum()} value(s) are negative")
    bins = np.minimum(np.floor(freq), max_frequency).astype(np.intp)
    n_bins = max_frequency + 1
    mean_pred, count = _grouped_mean(bins, pred, n_bins)
    mean_act, _ = _grouped_mean(bins, act, n_bins)

    fig = Figure(figsize=REPORT_SIZE, layout="constrained")
    ax = fig.subplots()
    x = np.arange(n_bins)
    ax.plot(x, mean_pred, marker="o", label=f"{label} (predicted)")
    ax.plot(x, mean_act, marker="s", color="black", label="actual")
    names = _edge_labels(x.astype(float), np.inf, integer=True)  # last bin always "max+"
    ax.set_xticks(x, [f"{name}\n(n={n:,})" for name, n in zip(names, count)])
    ax.set(xlabel="Repeat purchases in the calibration period (customers per bin)",
           ylabel="Mean purchases per customer in the holdout window",
           title="Predicted vs actual holdout purchases by calibration frequency")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", frameon=False)
    return fig


def p_alive_matrix(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    p_alive: npt.ArrayLike,
    *,
    frequency_bins: int | Sequence[float] = 8,
    recency_bins: int | Sequence[float] = 8,
) -> Figure:
    """Heat map of mean P(alive) by frequency bucket (rows) and recency bucket (columns).

    Parameters
    ----------
    frequency
        Repeat purchases per customer (whole numbers >= 0).
    recency
        Age at the last purchase, in days since the first purchase (lifetimes' ``recency``;
        higher = bought more recently relative to the customer's age).
    p_alive
        Model probability that the customer is still active, in [0, 1].
    frequency_bins, recency_bins
        Either a number of quantile bins (edges rounded down to whole numbers, duplicates merged)
        or the sorted left edges of the bins: bin i is [edge_i, edge_{i+1}), the last one
        open-ended. Values below the first edge are rejected.

    Returns
    -------
    Figure
        Two axes: ``axes[0]`` the heat map (``images[0]`` holds the matrix of means, frequency
        increasing upwards, recency to the right, empty cells masked and drawn light grey; each cell
        is annotated with its mean), ``axes[1]`` the colour bar.
    """
    freq, rec = _as_1d("frequency", frequency), _as_1d("recency", recency)
    alive = _probabilities("p_alive", p_alive)
    _same_length(frequency=freq, recency=rec, p_alive=alive)
    f_edges = _resolve_edges("frequency", freq, frequency_bins)
    r_edges = _resolve_edges("recency", rec, recency_bins)
    cell = _left_edge_bins(freq, f_edges) * len(r_edges) + _left_edge_bins(rec, r_edges)
    means, _ = _grouped_mean(cell, alive, len(f_edges) * len(r_edges))
    matrix = np.ma.masked_invalid(means.reshape(len(f_edges), len(r_edges)))

    fig = Figure(figsize=REPORT_SIZE, layout="constrained")
    ax = fig.subplots()
    cmap = colormaps["viridis"].with_extremes(bad="0.92")  # a copy: the registered map is untouched
    image = ax.imshow(matrix, cmap=cmap, vmin=0.0, vmax=1.0, origin="lower", aspect="auto",
                      interpolation="nearest")
    _annotate_cells(ax, matrix)
    whole = bool(np.all(rec == np.floor(rec)))
    ax.set_xticks(np.arange(len(r_edges)), _edge_labels(r_edges, float(rec.max()), integer=whole),
                  rotation=30, ha="right")
    ax.set_yticks(np.arange(len(f_edges)),
                  _edge_labels(f_edges, float(freq.max()), integer=bool(np.all(freq == np.floor(freq)))))
    ax.set(xlabel="Recency: age at last purchase (days since first purchase)",
           ylabel="Frequency (repeat purchases)",
           title=f"Mean probability alive by frequency and recency ({len(alive):,} customers)")
    fig.colorbar(image, ax=ax, label="Mean P(alive)   (grey cell: no customers)")
    return fig


def _resolve_edges(name: str, values: np.ndarray, bins: int | Sequence[float]) -> np.ndarray:
    """Left edges of the bins: quantile-based for an int, validated for explicit edges."""
    if isinstance(bins, (int, np.integer)):
        if bins < 1:
            raise ValueError(f"{name}_bins must be at least 1, got {bins}")
        return _quantile_left_edges(values, int(bins))
    edges = _as_1d(f"{name}_bins", bins)
    if np.any(np.diff(edges) <= 0):
        raise ValueError(f"{name}_bins must be strictly increasing left edges, got {edges.tolist()}")
    below = int((values < edges[0]).sum())
    if below:
        raise ValueError(f"{below} {name} value(s) are below the first bin edge {edges[0]:g}")
    return edges


def _annotate_cells(ax: Axes, matrix: np.ma.MaskedArray) -> None:
    """Write each non-empty cell's value in it, dark text on light cells and vice versa."""
    if matrix.size > 400:  # too many cells to read: the colours say enough
        return
    rows, cols = np.nonzero(~np.ma.getmaskarray(matrix))
    for r, c in zip(rows, cols):
        value = float(matrix[r, c])
        ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="black" if value > 0.6 else "white")
