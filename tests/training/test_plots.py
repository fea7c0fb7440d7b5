"""Tests for training.plots: figure structure, the plotted numbers, and no global matplotlib state."""

from __future__ import annotations

import subprocess
import sys
from io import BytesIO

import matplotlib
import matplotlib.pyplot as plt  # only here, to check the module never registers figures with pyplot
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from churnclv.training import plots
from churnclv.training.backtest import gain_curve


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


@pytest.fixture
def churn_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A perfectly calibrated synthetic set: y ~ Bernoulli(p)."""
    p = rng.beta(2.0, 3.0, size=20_000)
    return (rng.random(p.size) < p).astype(float), p


@pytest.fixture
def rfm(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 3_000
    frequency = rng.poisson(2.0, size=n).astype(float)
    T = rng.uniform(30, 365, size=n).round()
    recency = np.where(frequency > 0, np.floor(rng.uniform(0, 1, size=n) * T), 0.0)
    p_alive = np.clip(0.2 + 0.8 * recency / T, 0, 1)
    predicted = 0.3 * frequency + 0.1
    actual = rng.poisson(predicted).astype(float)
    return {
        "frequency": frequency, "recency": recency, "T": T,
        "p_alive": p_alive, "predicted": predicted, "actual": actual,
    }


def _png_ok(fig: Figure) -> None:
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- calibration


def test_calibration_curve_of_a_calibrated_model_follows_the_diagonal(churn_data) -> None:
    y, p = churn_data
    fig = plots.calibration_curve(y, p, n_bins=10)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[0].get_xydata(), [[0, 0], [1, 1]])
    xy = ax.lines[1].get_xydata()
    assert xy.shape == (10, 2)
    assert np.all(np.diff(xy[:, 0]) > 0)  # quantile bins in increasing order of prediction
    assert np.max(np.abs(xy[:, 1] - xy[:, 0])) < 0.05
    assert "Brier" in ax.get_legend().get_texts()[1].get_text()
    assert ax.get_xlabel() == "" and fig.axes[1].get_xlabel() == "Predicted churn probability"
    _png_ok(fig)


def test_calibration_bins_hold_equal_counts_and_exact_means() -> None:
    y = np.array([0, 0, 1, 0, 1, 1, 1, 0], dtype=float)
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    xy = plots.calibration_curve(y, p, n_bins=4).axes[0].lines[1].get_xydata()
    np.testing.assert_allclose(xy, [[0.15, 0.0], [0.35, 0.5], [0.55, 1.0], [0.75, 0.5]])


def test_calibration_curve_draws_baselines_and_a_miscalibrated_one_is_off(churn_data) -> None:
    y, p = churn_data
    fig = plots.calibration_curve(y, p, label="LightGBM", baselines={"BG/NBD": p**2, "RFM logistic": p})
    ax = fig.axes[0]
    assert len(ax.lines) == 4
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "perfectly calibrated"
    assert [lbl.split(" (")[0] for lbl in labels[1:]] == ["LightGBM", "BG/NBD", "RFM logistic"]
    squared = ax.lines[2].get_xydata()
    assert np.all(squared[:, 1] >= squared[:, 0])  # p**2 under-predicts everywhere
    assert len(fig.axes[1].patches) == 3  # one histogram per model
    _png_ok(fig)


def test_calibration_with_fewer_customers_than_bins_drops_empty_bins() -> None:
    xy = plots.calibration_curve([0, 1, 1], [0.2, 0.5, 0.9], n_bins=10).axes[0].lines[1].get_xydata()
    np.testing.assert_allclose(xy, [[0.2, 0], [0.5, 1], [0.9, 1]])


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "0/1 churn labels"),
        ([0, 1, 1], [0.1, 1.2, 0.3], r"probabilities in \[0, 1\]"),
        ([0, 1, 1], [0.1, np.nan, 0.3], "missing or infinite"),
        ([0, 1], [0.1, 0.2, 0.3], "same length"),
        ([], [], "empty"),
    ],
)
def test_calibration_rejects_bad_input_with_a_clear_message(y, p, message) -> None:
    with pytest.raises(ValueError, match=message):
        plots.calibration_curve(y, p)


# --------------------------------------------------------------------------- lift and gain


def test_lift_gain_of_a_perfect_scorer(rng) -> None:
    y = (rng.random(5_000) < 0.3).astype(float)
    base_rate = y.mean()
    noise = rng.normal(size=y.size)
    fig = plots.lift_gain_chart(y, {"perfect": y, "random": noise, "perfect, continuous": y + 0.01 * noise})
    assert len(fig.axes) == 2
    gain_ax, lift_ax = fig.axes
    assert len(gain_ax.lines) == 4 and len(lift_ax.lines) == 4
    for line in gain_ax.lines[1:]:
        xy = line.get_xydata()
        np.testing.assert_allclose(xy[0], [0, 0])
        np.testing.assert_allclose(xy[-1], [1, 1])
        assert np.all(np.diff(xy[:, 0]) > 0) and np.all(np.diff(xy[:, 1]) >= 0)
    for i in (1, 3):  # tied or continuous, a perfect scorer captures everyone in the first base_rate
        lift = lift_ax.lines[i].get_xydata()
        np.testing.assert_allclose(lift[:, 0], np.arange(1, 11))
        assert lift[0, 1] == pytest.approx(1 / base_rate)
        # the drawn curve may be thinned to 2,001 vertices: allow one step of interpolation error
        assert np.interp(base_rate, *gain_ax.lines[i].get_xydata().T) == pytest.approx(1.0, abs=0.01)
    random_lift = lift_ax.lines[2].get_xydata()[:, 1]
    assert np.abs(random_lift - 1).max() < 0.25
    np.testing.assert_allclose(lift_ax.lines[0].get_ydata(), [1, 1])
    _png_ok(fig)


def test_lift_of_a_constant_score_is_one_and_gain_is_the_diagonal() -> None:
    y = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0, 0], dtype=float)
    fig = plots.lift_gain_chart(y, {"constant": np.zeros(10)})
    np.testing.assert_allclose(fig.axes[0].lines[1].get_xydata(), [[0, 0], [1, 1]])
    np.testing.assert_allclose(fig.axes[1].lines[1].get_ydata(), np.ones(10))


def test_lift_by_decile_on_a_hand_computed_example() -> None:
    # 20 customers, 4 churners, scores strictly decreasing: deciles are pairs of customers.
    y = np.zeros(20)
    y[[0, 1, 2, 9]] = 1
    lift = plots.lift_gain_chart(y, {"m": -np.arange(20.0)}).axes[1].lines[1].get_ydata()
    expected = np.array([2, 1, 0, 0, 1, 0, 0, 0, 0, 0]) / 2 / 0.2  # churn rate per pair / base rate
    np.testing.assert_allclose(lift, expected)


def test_gain_curve_of_many_customers_is_thinned_but_keeps_its_ends(rng) -> None:
    y = (rng.random(50_000) < 0.2).astype(float)
    score = y + rng.normal(size=y.size)
    xy = plots.lift_gain_chart(y, {"m": score}).axes[0].lines[1].get_xydata()
    assert len(xy) <= 2001
    np.testing.assert_allclose(xy[[0, -1]], [[0, 0], [1, 1]])
    exact_x, exact_y = gain_curve(y, score)
    np.testing.assert_allclose(xy[:, 1], np.interp(xy[:, 0], exact_x, exact_y))  # points are on the curve


def test_lift_gain_rejects_no_churners_and_no_models() -> None:
    with pytest.raises(ValueError, match="no churners"):
        plots.lift_gain_chart(np.zeros(5), {"m": np.arange(5.0)})
    with pytest.raises(ValueError, match="scores is empty"):
        plots.lift_gain_chart(np.array([0.0, 1.0]), {})
    with pytest.raises(ValueError, match="same length"):
        plots.lift_gain_chart(np.array([0.0, 1.0]), {"m": np.arange(3.0)})


# --------------------------------------------------------------------------- feature importance


def test_feature_importance_sorted_top_bars(rng) -> None:
    importance = pd.Series(rng.exponential(100, size=30), index=[f"feature_{i}" for i in range(30)])
    before = importance.copy()
    fig = plots.feature_importance(importance, top=12)
    pd.testing.assert_series_equal(importance, before)  # input not mutated
    (ax,) = fig.axes
    assert len(ax.patches) == 12
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == sorted(widths, reverse=True)
    np.testing.assert_allclose(widths, importance.nlargest(12).to_numpy())
    top_label = max(ax.get_yticklabels(), key=lambda t: t.get_position()[1]).get_text()
    assert top_label == importance.idxmax()  # largest bar at the top
    assert "top 12 of 30" in ax.get_title()
    _png_ok(fig)


def test_feature_importance_with_fewer_features_than_top() -> None:
    fig = plots.feature_importance(pd.Series({"recency": 3.0, "frequency": 5.0}), title="Gain")
    assert len(fig.axes[0].patches) == 2
    assert fig.axes[0].get_title() == "Gain"


# --------------------------------------------------------------------------- purchases by frequency


def test_purchases_by_frequency_means_per_bucket(rfm) -> None:
    fig = plots.purchases_by_frequency(rfm["frequency"], rfm["predicted"], rfm["actual"], max_frequency=7)
    (ax,) = fig.axes
    assert len(ax.lines) == 2
    pred, act = ax.lines[0].get_xydata(), ax.lines[1].get_xydata()
    np.testing.assert_allclose(pred[:, 0], np.arange(8))
    bucket = np.minimum(rfm["frequency"], 7)
    expected = pd.Series(rfm["actual"]).groupby(bucket).mean().reindex(np.arange(8.0))
    np.testing.assert_allclose(act[:, 1], expected.to_numpy())
    assert np.nanmax(np.abs(pred[:, 1] - act[:, 1])) < 0.5
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0].startswith("0\n(n=") and labels[-1].startswith("7+\n")
    _png_ok(fig)


def test_purchases_by_frequency_leaves_empty_buckets_blank() -> None:
    fig = plots.purchases_by_frequency([0, 0, 5], [0.1, 0.3, 2.0], [0, 1, 3], max_frequency=3)
    pred = fig.axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(pred, [0.2, np.nan, np.nan, 2.0])
    with pytest.raises(ValueError, match="negative"):
        plots.purchases_by_frequency([-1, 0], [0, 0], [0, 0])


# --------------------------------------------------------------------------- P(alive) matrix


def test_p_alive_matrix_cells_are_means_of_their_customers(rfm) -> None:
    fig = plots.p_alive_matrix(rfm["frequency"], rfm["recency"], rfm["p_alive"])
    assert len(fig.axes) == 2  # heat map + colour bar
    ax = fig.axes[0]
    matrix = ax.images[0].get_array()
    f_edges = plots._quantile_left_edges(rfm["frequency"], 8)
    r_edges = plots._quantile_left_edges(rfm["recency"], 8)
    assert matrix.shape == (len(f_edges), len(r_edges))
    assert len(ax.get_yticklabels()) == len(f_edges) and len(ax.get_xticklabels()) == len(r_edges)
    frame = pd.DataFrame({
        "f": np.searchsorted(f_edges, rfm["frequency"], side="right") - 1,
        "r": np.searchsorted(r_edges, rfm["recency"], side="right") - 1,
        "p": rfm["p_alive"],
    })
    expected = frame.groupby(["f", "r"])["p"].mean()
    got = np.ma.filled(matrix, np.nan)
    for (f, r), value in expected.items():
        assert got[f, r] == pytest.approx(value)
    assert np.isnan(got).sum() == matrix.size - len(expected)  # empty cells masked
    _png_ok(fig)


def test_p_alive_matrix_with_fixed_bins_and_blank_cells() -> None:
    fig = plots.p_alive_matrix([0, 0, 3, 12], [0, 10, 40, 200], [0.2, 0.4, 0.9, 1.0],
                               frequency_bins=[0, 1, 10], recency_bins=[0, 30, 90])
    matrix = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(np.ma.filled(matrix, np.nan),
                               [[0.3, np.nan, np.nan], [np.nan, 0.9, np.nan], [np.nan, np.nan, 1.0]])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["0", "1–9", "10+"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0–29", "30–89", "90+"]
    with pytest.raises(ValueError, match="below the first bin edge"):
        plots.p_alive_matrix([0, 1], [0, 5], [0.5, 0.5], frequency_bins=[1, 2])


# --------------------------------------------------------------------------- no global state


def test_no_global_matplotlib_state_is_changed(churn_data, rfm) -> None:
    y, p = churn_data
    rc_before = dict(matplotlib.rcParams)
    figs_before = plt.get_fignums()
    viridis_bad = matplotlib.colormaps["viridis"].get_bad().copy()
    figs = [
        plots.calibration_curve(y, p, baselines={"b": p}),
        plots.lift_gain_chart(y, {"m": p}),
        plots.feature_importance(pd.Series({"a": 1.0, "b": 2.0})),
        plots.purchases_by_frequency(rfm["frequency"], rfm["predicted"], rfm["actual"]),
        plots.p_alive_matrix(rfm["frequency"], rfm["recency"], rfm["p_alive"]),
    ]
    for fig in figs:
        fig.savefig(BytesIO(), format="png", dpi=40)
    assert plt.get_fignums() == figs_before
    assert dict(matplotlib.rcParams) == rc_before
    np.testing.assert_array_equal(matplotlib.colormaps["viridis"].get_bad(), viridis_bad)


def test_importing_the_module_does_not_import_pyplot() -> None:
    code = "import sys, training.plots; sys.exit('matplotlib.pyplot' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
