"""CLV model: paper values, compression, robustness, predictions, size, seed recovery (all fast, seeded)."""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import OptimizeResult

from churnclv.contract.columns import PREDICTION_COLUMNS
from churnclv.features.build import build_features
from churnclv.scoring.btyd import (
    bgnbd_expected_purchases,
    bgnbd_p_alive,
    bgnbd_p_no_purchase,
    gamma_gamma_expected_spend,
)
from churnclv.scoring.clv import CLVParams
from churnclv.seeds import zoo
from churnclv.training import mle
from churnclv.training.clv import N_DRAWS, CLVModel
from churnclv.training.mle import CLVFitError, compress_bgnbd

with warnings.catch_warnings():
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import ConvergenceError

ROOT = Path(__file__).resolve().parents[2]
# Fader, Hardie & Lee (2005) CDNOW estimates: BG/NBD (alpha per week) and Gamma-Gamma.
PAPER_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_GG = {"p": 6.25, "q": 3.74, "v": 15.44}
CDNOW_LIKE_PER_DAY = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def _cdnow_weeks() -> pd.DataFrame:
    """lifetimes' CDNOW calibration summary (x, t_x, T in weeks to 0.01; zbar = mean repeat spend)."""
    path = importlib.resources.files("lifetimes") / "datasets" / "cdnow_customers_summary_with_transactions.csv"
    with path.open() as fh:
        raw = pd.read_csv(fh, index_col="ID")
    return pd.DataFrame({"frequency": raw["x"].astype(float), "recency": raw["t_x"], "T": raw["T"],
                         "monetary_value": raw["zbar"]})


def _as_days(weeks: pd.DataFrame) -> pd.DataFrame:
    return weeks.assign(recency=weeks["recency"] * 7.0, T=weeks["T"] * 7.0)


@pytest.fixture(scope="module")
def cdnow_days() -> pd.DataFrame:
    return _as_days(_cdnow_weeks())


@pytest.fixture(scope="module")
def cdnow_model(cdnow_days) -> CLVModel:
    return CLVModel().fit(cdnow_days)


def simulate_rfm(n: int, *, r: float, alpha: float, a: float, b: float, days: float, seed: int,
                 holdout_days: float = 0.0, spend: bool = True) -> pd.DataFrame:
    """Continuous-time BG/NBD customers (alpha per day), first purchases uniform on [0, days).

    Per customer: lambda ~ Gamma(r, rate alpha), dropout after repeat purchase J ~ Geometric(p),
    p ~ Beta(a, b); Poisson arrivals on [0, T + holdout_days] are cut at J. The calibration count k of
    n arrivals is Binomial(n, T/(T+holdout)); the x-th of k uniform arrival times is T·Beta(x, k-x+1).
    Columns frequency, recency, T (days), holdout (repeat purchases in the holdout) and, if ``spend``,
    Gamma-Gamma monetary_value (CDNOW estimates).
    """
    rng = np.random.default_rng(seed)
    T = days - rng.uniform(0.0, days, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    J = rng.geometric(np.clip(rng.beta(a, b, n), 1e-12, 1.0))
    n_all = rng.poisson(lam * (T + holdout_days))
    k = rng.binomial(n_all, T / (T + holdout_days))
    x = np.minimum(k, J)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(k - x + 1, 1)), 0.0)
    rfm = pd.DataFrame({"frequency": x.astype(float), "recency": t_x, "T": T,
                        "holdout": (np.minimum(n_all, J) - x).astype(float)},
                       index=pd.Index([f"C{i:06d}" for i in range(n)], name="customer_id"))
    if spend:
        nu = rng.gamma(PAPER_GG["q"], 1.0 / PAPER_GG["v"], n)
        mean = rng.gamma(PAPER_GG["p"] * np.maximum(x, 1)) / (np.maximum(x, 1) * nu)
        rfm["monetary_value"] = np.where(x > 0, mean, 0.0)
    return rfm


def _plain_lifetimes(rfm: pd.DataFrame, *, penalizer: float = 0.0) -> dict:
    """lifetimes' BetaGeoFitter on the given (uncompressed) summary; its stdout print is swallowed."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        fitter = BetaGeoFitter(penalizer_coef=penalizer).fit(rfm["frequency"], rfm["recency"], rfm["T"])
    return fitter.params_.to_dict()


def _relative_error(got: dict, want: dict) -> dict:
    return {k: abs(got[k] / want[k] - 1) for k in want}


# --------------------------------------------------------------------------------------------------
# Paper values and compression
# --------------------------------------------------------------------------------------------------


def test_cdnow_paper_values_on_the_exact_grid(cdnow_days):
    """CDNOW times are given to 0.01 week, so a 0.07-day unit compresses them exactly: FHL 2005 within 1%."""
    model = CLVModel(time_unit_days=0.07).fit(cdnow_days)
    bg = dict(model.bgnbd_params_, alpha=model.bgnbd_params_["alpha"] * 0.07 / 7)  # alpha per week
    assert max(_relative_error(bg, PAPER_BGNBD).values()) < 0.01, bg
    assert max(_relative_error(model.gg_params_, PAPER_GG).values()) < 0.01, model.gg_params_
    assert model.fit_report_["bgnbd"]["rows_after"] < len(cdnow_days)  # identical rows really merged


def test_compressed_fit_on_the_exact_grid_equals_plain_lifetimes(cdnow_days):
    """Weights on rows of identical customers give lifetimes' own estimates on the uncompressed summary."""
    model = CLVModel(time_unit_days=0.07).fit(cdnow_days)
    plain = _plain_lifetimes(_cdnow_weeks())
    ours = dict(model.bgnbd_params_, alpha=model.bgnbd_params_["alpha"] * 0.07 / 7)
    np.testing.assert_allclose([ours[k] for k in plain], list(plain.values()), rtol=5e-4)


def test_cdnow_in_whole_weeks_stays_close_to_the_paper(cdnow_model):
    """Grouping CDNOW's 0.01-week times into whole-week cells (keeping each cell's mean times) moves no
    parameter by more than 1% from the paper's exact fit."""
    assert cdnow_model.bgnbd_params_["time_unit_days"] == 7.0
    errors = _relative_error(cdnow_model.bgnbd_params_, PAPER_BGNBD)
    assert max(errors.values()) < 0.01, errors
    report = cdnow_model.fit_report_["bgnbd"]
    assert (report["path"], report["method"], report["rows_before"]) == ("converged", "mle", 2357)
    assert report["rows_after"] == 682


def test_gamma_gamma_equals_plain_lifetimes(cdnow_days, cdnow_model):
    repeat = cdnow_days[cdnow_days["frequency"] > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"]).params_.to_dict()
    np.testing.assert_allclose([cdnow_model.gg_params_[k] for k in gg], list(gg.values()), rtol=5e-4)


def test_compress_bgnbd_keeps_every_customer_once():
    rfm = simulate_rfm(5_000, **CDNOW_LIKE_PER_DAY, days=730, seed=3, spend=False)
    summary = compress_bgnbd(rfm["frequency"], rfm["recency"], rfm["T"], time_unit_days=7.0)
    assert summary["weight"].sum() == len(rfm) and len(summary) < len(rfm)
    cells = pd.DataFrame({"x": rfm["frequency"].astype(np.int64), "t_x": np.floor(rfm["recency"] / 7 + 0.5),
                          "T": np.floor(rfm["T"] / 7 + 0.5)})
    sizes = cells.value_counts().sort_index()
    assert len(summary) == len(sizes) and sorted(summary["weight"]) == sorted(sizes)
    for column, days in (("t_x", rfm["recency"]), ("T", rfm["T"])):  # cell means keep the totals
        assert (summary[column] * summary["weight"]).sum() == pytest.approx(days.sum() / 7, rel=1e-12)
    assert (summary.loc[summary["x"] > 0, "t_x"] > 0).all() and (summary.loc[summary["x"] == 0, "t_x"] == 0).all()


def test_repeat_purchases_within_days_keep_the_likelihood_bounded():
    """Customers who bought again within three days have x > 0 and recency < half a week. Rounded to whole
    weeks their recency would be 0 and the likelihood unbounded as alpha -> 0; cell means keep the
    weekly fit at the maximum likelihood, next to the day-level fit."""
    rfm = simulate_rfm(4_000, r=2.0, alpha=20.0, a=0.8, b=3.0, days=200, seed=4, spend=False)
    quick = rfm.index[:400]
    rfm.loc[quick, "frequency"] = 1.0
    rfm.loc[quick, "recency"] = np.minimum(np.arange(400) % 3 + 1.0, rfm.loc[quick, "T"])
    rfm = rfm.loc[rfm["T"] >= 3]
    weekly = CLVModel().fit(rfm.assign(monetary_value=0.0))
    daily = CLVModel(time_unit_days=1.0).fit(rfm.assign(monetary_value=0.0))
    assert weekly.fit_report_["bgnbd"]["method"] == "mle"
    per_day = dict(weekly.bgnbd_params_, alpha=weekly.bgnbd_params_["alpha"] * 7)
    assert max(_relative_error(per_day, {k: daily.bgnbd_params_[k] for k in PAPER_BGNBD}).values()) < 0.05


# --------------------------------------------------------------------------------------------------
# Robustness
# --------------------------------------------------------------------------------------------------


def test_homogeneous_dropout_on_a_flat_ridge_is_recovered():
    """Homogeneous dropout (a=50, b=500: a long flat ridge in a, b): the maximum likelihood is found on the
    day-level data, with a tiny gradient, and recovers r, alpha and the mean dropout probability."""
    rfm = simulate_rfm(3_000, r=3.0, alpha=30.0, a=50.0, b=500.0, days=730, seed=0)
    model = CLVModel(time_unit_days=1.0).fit(rfm)
    report, p = model.fit_report_["bgnbd"], model.bgnbd_params_
    assert report["method"] == "mle" and report["attempts"][-1]["max_abs_gradient"] < mle.GRAD_TOL
    assert abs(p["r"] / 3.0 - 1) < 0.1 and abs(p["alpha"] / 30.0 - 1) < 0.1
    assert abs(p["a"] / (p["a"] + p["b"]) / (50 / 550) - 1) < 0.1  # mean dropout probability


def test_prior_keeps_a_runaway_estimate_finite_where_lifetimes_raises():
    """Here the maximum-likelihood estimate runs off to a, b -> infinity (absurd): the posterior mode under a
    weak log-normal prior is finite, recovers r, and the report says why."""
    rfm = simulate_rfm(3_000, r=0.3, alpha=60.0, a=50.0, b=500.0, days=730, seed=1)
    with pytest.raises(ConvergenceError):
        _plain_lifetimes(rfm)
    model = CLVModel().fit(rfm)
    report, p = model.fit_report_["bgnbd"], model.bgnbd_params_
    assert report["method"].startswith("map_prior") and report["n_attempts"] > 1
    rejected = [a for a in report["attempts"] if a["outcome"] == "rejected"]
    assert rejected and all(a["stage"] == "mle" for a in rejected)
    assert all(mle.SHAPE_RANGE[0] < p[k] < mle.SHAPE_RANGE[1] for k in ("r", "a", "b"))
    assert abs(p["r"] / 0.3 - 1) < 0.1
    assert any("prior" in w for w in model.fit_report_["warnings"])


def test_dropout_shapes_that_both_run_to_zero_fall_to_the_prior_not_a_crash():
    """The no_dropout shape drawn with seed 1, at the stacked cutoff 2024-04-25 (343 customers): the maximum
    likelihood runs a and b both to 0, where a / (a + b), the mean dropout probability, is 0 / 0 (it raised
    ZeroDivisionError). Not known to be no dropout, so the posterior mode under the prior answers."""
    features = build_features(zoo.make_no_dropout(seed=1).transactions, as_of=pd.Timestamp("2024-04-25"))
    model = CLVModel().fit(features)
    report, p = model.fit_report_["bgnbd"], model.bgnbd_params_
    both = [a for a in report["attempts"] if a["stage"] == "mle" and a["params"].get("a") == 0.0 == a["params"]["b"]]
    assert both and report["method"].startswith("map_prior")
    assert all(mle.SHAPE_RANGE[0] < p[k] < mle.SHAPE_RANGE[1] for k in ("r", "a", "b"))


def test_no_dropout_is_the_nbd_limit_not_an_error():
    """Nobody drops out (p ~ Beta(1e-4, 100)): the likelihood runs to a -> 0 (the NBD limit); we fit the
    limiting NBD model, recover r and alpha, and say so."""
    rfm = simulate_rfm(5_000, r=1.0, alpha=30.0, a=1e-4, b=100.0, days=365, seed=0)
    model = CLVModel().fit(rfm)
    report, p = model.fit_report_["bgnbd"], model.bgnbd_params_
    assert report["method"] == "nbd_limit" and p["a"] == 0.0
    assert abs(p["r"] - 1.0) < 0.1 and abs(p["alpha"] / (30.0 / 7) - 1) < 0.1
    assert any("no dropout" in w for w in model.fit_report_["warnings"])
    out = model.predict(rfm, horizon_days=91)
    assert (out["p_alive"] == 1.0).all() and np.isfinite(out.to_numpy()).all()
    x, T = rfm["frequency"].to_numpy(), rfm["T"].to_numpy() / 7  # NBD: (r + x) t / (alpha + T)
    np.testing.assert_allclose(out["expected_purchases"], (p["r"] + x) * 13 / (p["alpha"] + T), rtol=1e-12)


def test_gamma_gamma_with_few_repeat_customers_uses_the_population_mean(cdnow_days):
    few = pd.concat([cdnow_days[cdnow_days["frequency"] == 0], cdnow_days[cdnow_days["frequency"] > 0].head(5)])
    model = CLVModel().fit(few)
    assert model.fit_report_["gamma_gamma"]["method"] == "population_mean"
    repeat = few[few["frequency"] > 0]
    mean = (repeat["frequency"] * repeat["monetary_value"]).sum() / repeat["frequency"].sum()
    spend = model.predict(few, horizon_days=91)["expected_spend_per_purchase"]
    np.testing.assert_allclose(spend, mean, rtol=1e-4)


def test_judge_optimum_accepts_only_a_true_optimum(cdnow_days):
    summary = compress_bgnbd(cdnow_days["frequency"], cdnow_days["recency"], cdnow_days["T"], time_unit_days=7.0)
    scale = 1 / summary["T"].max()
    args = (summary["x"].to_numpy(), summary["t_x"].to_numpy() * scale, summary["T"].to_numpy() * scale,
            summary["weight"].to_numpy(np.float64), 0.0)
    fun_and_grad, hessian = mle._lifetimes_objectives()["bgnbd"]
    best = mle._minimize(fun_and_grad, np.zeros(4), args)
    lost = "Desired error not necessarily achieved due to precision loss."

    def result(x):
        fun, jac = fun_and_grad(x, *args)
        return OptimizeResult(x=x, fun=fun, jac=jac, success=False, status=2, message=lost, nit=5)

    assert mle._judge_optimum(result(best.x), hessian, args)[0] == "precision_loss_accepted"
    path, reason, _ = mle._judge_optimum(result(best.x + 0.01), hessian, args)
    assert path == "rejected" and "gradient" in reason


def test_hopeless_inputs_raise_clv_fit_error(cdnow_days):
    with pytest.raises(CLVFitError, match="only 3 customer"):
        CLVModel().fit(cdnow_days.head(3))
    no_repeats = cdnow_days[cdnow_days["frequency"] == 0]
    with pytest.raises(CLVFitError, match="repeat purchase") as err:
        CLVModel().fit(no_repeats)
    assert isinstance(err.value, ValueError)


def test_bad_rfm_is_rejected_with_column_count_and_examples(cdnow_days):
    broken = cdnow_days.copy()
    broken.loc[[1, 2], "recency"] = broken.loc[[1, 2], "T"] + 1
    with pytest.raises(ValueError, match=r"'recency' has 2 row\(s\) with values larger than T.*1, 2"):
        CLVModel().fit(broken)
    with pytest.raises(ValueError, match="missing column"):
        CLVModel().fit(cdnow_days.drop(columns="monetary_value"))
    with pytest.raises(ValueError, match="not fitted"):
        CLVModel().predict(cdnow_days, horizon_days=30)


def test_fit_logs_the_path_and_leaves_warning_filters_alone(cdnow_days, caplog):
    """lifetimes' likelihoods call warnings.simplefilter on every evaluation; a fit must undo that."""
    with warnings.catch_warnings(), caplog.at_level(logging.INFO, logger="churnclv.training.clv"):
        warnings.resetwarnings()
        CLVModel().fit(cdnow_days)
        assert warnings.filters == []
    assert any("BG/NBD by mle (converged)" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------------


def test_predict_shapes_ranges_and_clv(cdnow_model, cdnow_days):
    out = cdnow_model.predict(cdnow_days, horizon_days=91)
    assert list(out.columns) == list(PREDICTION_COLUMNS) and out.index.equals(cdnow_days.index)
    assert out.notna().all().all()
    assert out["p_alive"].between(0, 1).all() and out["p_no_purchase"].between(0, 1).all()
    assert (out["expected_purchases"] >= 0).all() and (out["clv"] > 0).all()
    np.testing.assert_allclose(out["expected_spend"], out["expected_purchases"] * out["expected_spend_per_purchase"])
    assert (out["p_no_purchase"] >= 1 - out["p_alive"] - 1e-12).all()  # dead customers never buy
    year = cdnow_model.predict(cdnow_days, horizon_days=365)["expected_spend"]
    assert (out["clv"] <= year + 1e-9).all() and out["clv"].sum() < 0.97 * year.sum()
    undiscounted = CLVModel(discount_rate=0.0)
    undiscounted.__dict__.update({k: v for k, v in cdnow_model.__dict__.items() if k.endswith("_")})
    np.testing.assert_allclose(undiscounted.predict(cdnow_days, horizon_days=91)["clv"], year, rtol=1e-9)


def test_predictions_equal_lifetimes_formulas(cdnow_model, cdnow_days):
    """Eq. 10, P(alive) and Gamma-Gamma eq. 5 against lifetimes' implementations (weeks)."""
    bgf, ggf = cdnow_model.to_lifetimes()
    bg = {k: cdnow_model.bgnbd_params_[k] for k in ("r", "alpha", "a", "b")}
    extra = pd.DataFrame({"frequency": [0.0, 1, 5, 40, 120], "recency": [0.0, 2, 30, 38, 38.5],
                          "T": [38.86, 38.86, 38.86, 38.86, 38.86], "monetary_value": [0.0, 5, 20, 50, 200]})
    weeks = pd.concat([_cdnow_weeks(), extra], ignore_index=True)
    x, t_x, T = weeks["frequency"].to_numpy(), weeks["recency"].to_numpy(), weeks["T"].to_numpy()
    for t in (1.0, 13.0, 52.0):
        np.testing.assert_allclose(bgnbd_expected_purchases(t, x, t_x, T, **bg),
                                   bgf.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T),
                                   rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(bgnbd_p_alive(x, t_x, T, **bg), bgf.conditional_probability_alive(x, t_x, T),
                               rtol=1e-10)
    m = weeks["monetary_value"].to_numpy()
    repeat = x > 0
    np.testing.assert_allclose(gamma_gamma_expected_spend(x, m, **cdnow_model.gg_params_)[repeat],
                               ggf.conditional_expected_average_profit(x[repeat], m[repeat]), rtol=1e-10)
    p, q, v = (cdnow_model.gg_params_[k] for k in ("p", "q", "v"))
    assert gamma_gamma_expected_spend([0.0], [0.0], p=p, q=q, v=v)[0] == pytest.approx(p * v / (q - 1))


def test_p_no_purchase_and_expected_purchases_agree_with_simulation():
    """True CDNOW-like parameters, 60k simulated customers, 91-day holdout, by frequency group."""
    rfm = simulate_rfm(60_000, **CDNOW_LIKE_PER_DAY, days=365, holdout_days=91, seed=11, spend=False)
    args = (rfm["frequency"].to_numpy(), rfm["recency"].to_numpy(), rfm["T"].to_numpy())
    p0 = bgnbd_p_no_purchase(91.0, *args, **CDNOW_LIKE_PER_DAY)
    expected = bgnbd_expected_purchases(91.0, *args, **CDNOW_LIKE_PER_DAY)
    group = np.digitize(rfm["frequency"].to_numpy(), [1, 2, 4, 8])
    frame = pd.DataFrame({"group": group, "p0": p0, "none": rfm["holdout"] == 0,
                          "expected": expected, "actual": rfm["holdout"]})
    by_group = frame.groupby("group").agg(n=("p0", "size"), p0=("p0", "mean"), none=("none", "mean"),
                                          expected=("expected", "mean"), actual=("actual", "mean"),
                                          sd=("actual", "std"))
    se_share = np.sqrt(by_group["p0"] * (1 - by_group["p0"]) / by_group["n"])
    assert ((by_group["none"] - by_group["p0"]).abs() < 4 * se_share + 1e-3).all(), by_group
    se_mean = by_group["sd"] / np.sqrt(by_group["n"])
    assert ((by_group["actual"] - by_group["expected"]).abs() < 4 * se_mean + 1e-3).all(), by_group
    x0 = rfm["frequency"].to_numpy() == 0  # closed form without repeats: ((alpha+T)/(alpha+T+t))^r
    alpha, r = CDNOW_LIKE_PER_DAY["alpha"], CDNOW_LIKE_PER_DAY["r"]
    T0 = rfm["T"].to_numpy()[x0]
    np.testing.assert_allclose(p0[x0], ((alpha + T0) / (alpha + T0 + 91)) ** r, rtol=1e-12)


def test_model_round_trips_as_json_without_data():
    """The artifact stores the fitted CLV model as JSON: settings, parameters and the fixed set of parameter
    draws (7 numbers each, however many customers), no data."""
    rfm = simulate_rfm(20_000, **CDNOW_LIKE_PER_DAY, days=730, seed=5)
    model = CLVModel().fit(rfm)
    text = json.dumps(model.to_dict())
    without_draws = json.dumps(model.to_dict() | {"draws": None})
    assert len(without_draws) < 1_000, len(without_draws)
    assert len(text) - len(without_draws) < 7 * N_DRAWS * 25, len(text)
    json.dumps(model.fit_report_)  # plain JSON-ready report (logged to MLflow)
    loaded = CLVParams.from_dict(json.loads(text))
    assert type(loaded) is CLVParams
    pd.testing.assert_frame_equal(loaded.predict(rfm, horizon_days=30), model.predict(rfm, horizon_days=30))


# --------------------------------------------------------------------------------------------------
# Seed sample
# --------------------------------------------------------------------------------------------------

TRUE_PARAMS = ROOT / "seeds" / "true_params.json"
SEED_CSV = ROOT / "seeds" / "transactions.csv"


@pytest.mark.skipif(not (TRUE_PARAMS.exists() and SEED_CSV.exists()), reason="seed sample not generated")
def test_seed_sample_recovers_true_parameters():
    """4,000 customers identify r and alpha to ~3-4% (1 SE) and a, b to ~10-13% (1 SE): we allow about
    four standard errors, plus a few % for the collapse of same-day purchases into one purchase day."""
    from churnclv.features import build_features, load_transactions

    truth = json.loads(TRUE_PARAMS.read_text())
    rfm = build_features(load_transactions(SEED_CSV), as_of=truth["end"])
    model = CLVModel().fit(rfm)
    want = {k: truth["bgnbd"][k] for k in ("r", "a", "b")} | {"alpha": truth["bgnbd"]["alpha_per_week"]}
    errors = _relative_error(model.bgnbd_params_, want)
    tolerance = {"r": 0.20, "alpha": 0.20, "a": 0.40, "b": 0.55}
    assert all(errors[k] < tolerance[k] for k in tolerance), (model.bgnbd_params_, want)
    assert model.fit_report_["bgnbd"]["method"] == "mle"


def test_expected_purchases_stay_finite_where_the_direct_formula_fails():
    """a = 1 (removable singularity) and x = 200 (2F1 overflow): lifetimes gives NaN, eq. 10 is finite."""
    x, t_x, T = np.array([0.0, 3, 200]), np.array([0.0, 20, 39]), np.full(3, 39.0)
    at_one = bgnbd_expected_purchases(10.0, x, t_x, T, r=0.5, alpha=3.0, a=1.0, b=2.0)
    below = bgnbd_expected_purchases(10.0, x, t_x, T, r=0.5, alpha=3.0, a=1.0 - 1e-5, b=2.0)
    above = bgnbd_expected_purchases(10.0, x, t_x, T, r=0.5, alpha=3.0, a=1.0 + 1e-5, b=2.0)
    assert np.all(np.isfinite(at_one))
    np.testing.assert_allclose(at_one, (below + above) / 2, rtol=1e-5)  # continuous through a = 1
    assert 30 < at_one[2] < 60  # ~5 purchases a week for a customer still buying
