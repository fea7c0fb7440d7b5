"""BG/NBD + Gamma-Gamma customer-lifetime-value model: a robust fit on compressed RFM counts.

The purchase process is the BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the
easy way", Marketing Science 24(2)); spend per purchase is the Gamma-Gamma model (Fader, Hardie &
Lee 2005, "RFM and CLV: using iso-value curves for customer base analysis", JMR 42(4)).

Fitting maximises lifetimes' own weighted negative log-likelihoods
(``BetaGeoFitter._negative_log_likelihood``, ``GammaGammaFitter._negative_log_likelihood``) with the
same optimiser lifetimes uses (scipy BFGS on log-parameters, autograd gradients), but:

- on *compressed* sufficient statistics: recency and T are rounded to whole time units (weeks by
  default, what lifetimes gives with ``freq="W"``) and identical ``(x, t_x, T)`` rows become one row
  with a count passed as ``weights`` — 1M customers become a few tens of thousands of rows;
- from good initial values: method-of-moments, then (for large inputs) a fit on a 20k-customer
  subsample whose exact Hessian seeds BFGS on the full data;
- robustly: penalizers are tried in order, an optimum where BFGS reports precision loss is accepted
  when its gradient is tiny and a Newton step from it is negligible, degenerate parameters (any of
  r, alpha, a, b near 0 or absurdly large) are rejected, and when nothing works :class:`CLVFitError`
  says what was tried. ``CLVModel.fit_report_`` records the path taken.

Predictions are computed from the parameters alone (vectorised numpy; no lifetimes object or
training data is kept), so a fitted :class:`CLVModel` pickles to a few kilobytes. All public inputs
are in days; the conversion to the fitting time unit happens inside.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, minimize
from scipy.special import expit, hyp2f1

from features import ChurnclvError

__all__ = [
    "CLVFitError",
    "CLVModel",
    "bgnbd_expected_purchases",
    "bgnbd_expected_purchases_if_alive",
    "bgnbd_p_alive",
    "bgnbd_p_no_purchase",
    "compress_bgnbd",
    "compress_gamma_gamma",
    "discount_schedule",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "gamma_gamma_expected_spend",
    "validate_rfm",
]

logger = logging.getLogger("churnclv.training.clv")

DAYS_PER_YEAR = 365.0
MONTH_DAYS = DAYS_PER_YEAR / 12.0
RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
PREDICTION_COLUMNS = (
    "p_alive", "expected_purchases", "p_no_purchase", "expected_spend_per_purchase", "expected_spend", "clv",
)

#: Fewest customers / repeat customers a fit is attempted on (hundreds are needed for stable estimates).
MIN_CUSTOMERS = 10
MIN_REPEAT_CUSTOMERS = 2
#: Shape parameters (r, a, b, p, q) outside this range are degenerate (a = b = 0) or absurd.
SHAPE_RANGE = (1e-4, 1e5)
#: Scale parameters outside this range, relative to the data's own scale (alpha / max T, v / mean spend).
SCALE_RANGE = (1e-6, 1e6)
#: A BFGS stop with precision loss is accepted when max |gradient| of the mean NLL (log-parameters) is below
#: GRAD_TOL, the Hessian there is positive definite and a Newton step would move no log-parameter by more
#: than NEWTON_STEP_TOL (0.1% of the parameter).
GRAD_TOL = 1e-4
NEWTON_STEP_TOL = 1e-3
OPTIMIZER_TOL = 1e-7  # lifetimes' default ``tol``
#: Warm start: when the compressed data has more rows than this, first fit a subsample of this many customers.
WARM_START_MIN_ROWS = 5_000
WARM_START_CUSTOMERS = 20_000
LIFETIMES_DEFAULT_START = 0.1  # lifetimes starts every log-parameter at 0.1


class CLVFitError(ChurnclvError, ValueError):
    """The CLV model could not be fitted; the message says what was tried and what to do."""


# --------------------------------------------------------------------------------------------------
# Input contract
# --------------------------------------------------------------------------------------------------


def _examples(index: pd.Index, mask: np.ndarray, *, k: int = 5) -> str:
    return ", ".join(repr(v) for v in index[mask][:k].tolist())


def validate_rfm(rfm: pd.DataFrame, *, require_monetary: bool = True) -> None:
    """Check an RFM table (lifetimes conventions, days); raise ValueError naming column, count, examples.

    Parameters
    ----------
    rfm : one row per customer with ``frequency`` (repeat purchase days, whole numbers >= 0),
        ``recency`` (days from first to last purchase, 0 when frequency is 0), ``T`` (days from first
        purchase to the as-of day, >= recency) and, if ``require_monetary``, ``monetary_value`` (mean
        spend per repeat purchase day, currency units). Other columns are ignored.
    """
    needed = RFM_COLUMNS if require_monetary else RFM_COLUMNS[:3]
    missing = [c for c in needed if c not in rfm.columns]
    if missing:
        raise ValueError(f"RFM table is missing column(s) {missing}; it has {list(rfm.columns)[:20]}")
    values = {c: pd.to_numeric(rfm[c], errors="coerce").to_numpy(dtype=np.float64) for c in needed}
    x, t_x, T = values["frequency"], values["recency"], values["T"]
    checks = [(c, ~np.isfinite(v), "missing, non-numeric or infinite values") for c, v in values.items()]
    checks += [
        ("frequency", (x < 0) | (x != np.round(x)), "values that are not whole numbers >= 0"),
        ("recency", t_x < 0, "negative values (days)"),
        ("recency", t_x > T, "values larger than T (recency and T are both in days)"),
        ("recency", (x == 0) & (t_x != 0), "non-zero values where frequency is 0"),
    ]
    for column, bad, what in checks:
        if bad.any():
            raise ValueError(
                f"RFM column {column!r} has {int(bad.sum())} row(s) with {what}; "
                f"e.g. customers {_examples(rfm.index, bad)}"
            )


def _rfm_arrays(rfm: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frequency (int64), recency and T (float64 days) of a validated RFM table."""
    x = rfm["frequency"].to_numpy(dtype=np.float64).astype(np.int64)
    return x, rfm["recency"].to_numpy(dtype=np.float64), rfm["T"].to_numpy(dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# Compression to sufficient statistics
# --------------------------------------------------------------------------------------------------


def _whole_units(days: np.ndarray, time_unit_days: float) -> np.ndarray:
    """Days to whole time units, rounded half up (unbiased for day-level data; exact on a unit grid)."""
    return np.floor(np.asarray(days, dtype=np.float64) / time_unit_days + 0.5).astype(np.int64)


def compress_bgnbd(
    frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, *, time_unit_days: float
) -> pd.DataFrame:
    """Group customers with the same (x, t_x, T) in whole time units into one row with a count.

    Parameters
    ----------
    frequency : repeat purchases x per customer (whole numbers).
    recency, T : days from the first purchase to the last purchase / to the as-of day.
    time_unit_days : length of the fitting time unit in days (7 = weeks); recency and T are rounded
        to whole units, as lifetimes' summary with ``freq="W"`` gives whole weeks.

    Returns
    -------
    DataFrame with int64 columns ``x``, ``t_x``, ``T`` (time units) and ``weight`` (customers),
    sorted by (x, t_x, T); ``weight`` sums to the number of customers.
    """
    x = np.asarray(frequency).astype(np.int64)
    t_x, T_ = _whole_units(recency, time_unit_days), _whole_units(T, time_unit_days)
    if x.size == 0:
        return pd.DataFrame({k: np.zeros(0, np.int64) for k in ("x", "t_x", "T", "weight")})
    base = int(T_.max()) + 1
    if (int(x.max()) + 1) * base * base < 2**62:  # one int64 key per row: fast hashing
        key = (x * base + t_x) * base + T_
        counts = pd.Series(key).value_counts(sort=False).sort_index()
        keys = counts.index.to_numpy(np.int64)
        return pd.DataFrame({"x": keys // (base * base), "t_x": keys // base % base, "T": keys % base,
                             "weight": counts.to_numpy(np.int64)})
    grouped = pd.DataFrame({"x": x, "t_x": t_x, "T": T_}).groupby(["x", "t_x", "T"], sort=True).size()
    return grouped.rename("weight").reset_index().astype(np.int64)


def compress_gamma_gamma(frequency: np.ndarray, monetary_value: np.ndarray) -> pd.DataFrame:
    """Repeat customers (x > 0, m > 0) grouped on identical (x, m) with a count.

    Returns
    -------
    DataFrame with columns ``x`` (int64), ``m`` (float64, mean spend per repeat purchase, currency
    units) and ``weight`` (customers), sorted by (x, m).
    """
    x = np.asarray(frequency).astype(np.int64)
    m = np.asarray(monetary_value, dtype=np.float64)
    keep = (x > 0) & (m > 0)
    grouped = pd.DataFrame({"x": x[keep], "m": m[keep]}).groupby(["x", "m"], sort=True).size()
    return grouped.rename("weight").reset_index().astype({"x": np.int64, "m": np.float64, "weight": np.int64})


# --------------------------------------------------------------------------------------------------
# Robust maximum likelihood
# --------------------------------------------------------------------------------------------------


def _lifetimes_objectives() -> dict[str, Any]:
    """lifetimes' negative log-likelihoods with autograd derivatives (imported lazily: importing
    lifetimes changes global warning filters, which ``catch_warnings`` undoes)."""
    with warnings.catch_warnings():
        from autograd import hessian, value_and_grad
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    bg, gg = BetaGeoFitter._negative_log_likelihood, GammaGammaFitter._negative_log_likelihood
    return {"bgnbd": (value_and_grad(bg), hessian(bg)), "gamma_gamma": (value_and_grad(gg), hessian(gg))}


@contextlib.contextmanager
def _numerics() -> Iterator[None]:
    """Silence floating-point warnings at trial points and undo the ``warnings.simplefilter`` calls that
    lifetimes' likelihoods make on every evaluation (no global state is changed by a fit)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _minimize(fun_and_grad: Callable, x0: np.ndarray, args: tuple, *, hess_inv0=None, tol=OPTIMIZER_TOL):
    """lifetimes' optimiser call (BFGS, analytic gradient, tol 1e-7), optionally with an initial inverse Hessian."""
    options = {} if hess_inv0 is None else {"hess_inv0": hess_inv0}
    with _numerics():
        return minimize(fun_and_grad, x0, jac=True, args=args, method="BFGS", tol=tol, options=options)


def _hessian(hessian_fn: Callable, x: np.ndarray, args: tuple) -> np.ndarray | None:
    """The symmetrised Hessian at x, or None unless it is finite and positive definite."""
    with _numerics():
        H = np.asarray(hessian_fn(x, *args), dtype=np.float64)
    H = (H + H.T) / 2
    return H if np.all(np.isfinite(H)) and np.linalg.eigvalsh(H).min() > 0 else None


def _judge_optimum(res: OptimizeResult, hessian_fn: Callable, args: tuple) -> tuple[str, str, float]:
    """('converged' | 'precision_loss_accepted' | 'rejected', reason, max |gradient|) for a BFGS result."""
    grad = np.asarray(res.jac, dtype=np.float64)
    max_grad = float(np.max(np.abs(grad))) if grad.size else math.inf
    if not (np.all(np.isfinite(res.x)) and np.isfinite(res.fun) and np.isfinite(max_grad)):
        return "rejected", "non-finite parameters or likelihood", max_grad
    if res.success:
        return "converged", "", max_grad
    if max_grad > GRAD_TOL:
        return "rejected", f"optimizer stopped ({res.message}) with max |gradient| {max_grad:.1e} > {GRAD_TOL:g}", max_grad
    H = _hessian(hessian_fn, res.x, args)
    if H is None:
        return "rejected", f"optimizer stopped ({res.message}) where the Hessian is not positive definite", max_grad
    step = float(np.max(np.abs(np.linalg.solve(H, grad))))
    if step > NEWTON_STEP_TOL:
        return "rejected", f"optimizer stopped ({res.message}) {step:.1e} (log-parameter) from the optimum", max_grad
    return "precision_loss_accepted", f"{res.message}; max |gradient| {max_grad:.1e}, Newton step {step:.1e}", max_grad


def _degenerate(params: dict[str, float], *, shapes: Sequence[str], scales: dict[str, float]) -> str:
    """Why the parameters are degenerate or absurd ('' if they are fine). ``scales``: name -> data scale."""
    ratios = {k: (params[k], SHAPE_RANGE) for k in shapes} | {k: (params[k] / s, SCALE_RANGE) for k, s in scales.items()}
    low = [f"{k}={params[k]:.3g}" for k, (v, (lo, _)) in ratios.items() if not v >= lo]
    high = [f"{k}={params[k]:.3g}" for k, (v, (_, hi)) in ratios.items() if not v <= hi]
    parts = ([f"degenerate, near 0: {', '.join(low)}"] if low else []) + (
        [f"absurdly large: {', '.join(high)}"] if high else [])
    return f"parameters {'; '.join(parts)}" if parts else ""


def _attempt(
    objective: tuple[Callable, Callable], x0: np.ndarray, args: tuple, *, hess_inv0, label: str,
    to_params: Callable[[np.ndarray], dict[str, float]], check: Callable[[dict[str, float]], str],
) -> tuple[dict, OptimizeResult]:
    """One BFGS run judged: a JSON-ready record (outcome 'converged', 'precision_loss_accepted' or 'rejected')."""
    fun_and_grad, hessian_fn = objective
    res = _minimize(fun_and_grad, np.asarray(x0, dtype=np.float64), args, hess_inv0=hess_inv0)
    path, reason, max_grad = _judge_optimum(res, hessian_fn, args)
    finite = bool(np.all(np.isfinite(res.x)))
    params = to_params(res.x) if finite else {}
    if path != "rejected" and check(params):
        path, reason = "rejected", check(params)
    record = {
        "penalizer": float(args[-1]), "start": label, "status": int(res.status), "message": str(res.message),
        "iterations": int(res.nit), "evaluations": int(res.nfev), "max_abs_gradient": max_grad,
        "params": {k: float(v) for k, v in params.items()}, "outcome": path, "reason": reason,
    }
    return record, res


def _search(
    *,
    model: str,
    penalizers: Sequence[float],
    build_args: Callable[[float], tuple],
    to_params: Callable[[np.ndarray], dict[str, float]],
    check: Callable[[dict[str, float]], str],
    first_start: tuple[str, np.ndarray, Any],
    later_start: tuple[str, np.ndarray, Any],
) -> tuple[dict[str, float], dict]:
    """Try penalizers in order, each from up to four starts; return the first acceptable optimum.

    Starts per penalizer: ``first_start`` (first penalizer; ``later_start`` for the others), then
    lifetimes' default start (all log-parameters 0.1), each followed by a restart from where it
    ended if BFGS stopped with precision loss. Returns (params, report); raises CLVFitError listing every attempt.
    """
    objective = _lifetimes_objectives()[model]
    default = ("lifetimes_default", np.full(len(later_start[1]), LIFETIMES_DEFAULT_START), None)
    attempts: list[dict] = []
    for i, penalizer in enumerate(penalizers):
        args = build_args(float(penalizer))
        starts = [first_start if i == 0 else later_start, default]
        while starts:
            label, x0, hess_inv0 = starts.pop(0)
            record, res = _attempt(objective, x0, args, hess_inv0=hess_inv0, label=label,
                                   to_params=to_params, check=check)
            attempts.append(record)
            if record["outcome"] != "rejected":
                return record["params"], _search_report(record, attempts)
            logger.info("%s fit with penalizer %g from the %s start rejected: %s",
                        model, penalizer, label, record["reason"])
            if label != "restart" and res.status == 2 and record["params"]:
                starts.insert(0, ("restart", res.x, None))
    raise CLVFitError(_failure_message(model, attempts))


def _search_report(record: dict, attempts: list[dict]) -> dict:
    return {
        "penalizer": record["penalizer"],
        "path": record["outcome"],
        "precision_loss_accepted": record["outcome"] == "precision_loss_accepted",
        "detail": record["reason"],
        "attempts": attempts,
        "n_attempts": len(attempts),
        "iterations": int(sum(a["iterations"] for a in attempts)),
    }


def _failure_message(model: str, attempts: list[dict]) -> str:
    tried = "; ".join(f"penalizer {a['penalizer']:g} from the {a['start']} start: {a['reason']}" for a in attempts)
    label = "BG/NBD" if model == "bgnbd" else "Gamma-Gamma"
    if model == "gamma_gamma":
        advice = ("Check monetary_value for outliers or a currency mix-up; Gamma-Gamma needs q > 1 (a finite "
                  "mean spend) and enough repeat customers with positive spend.")
    else:
        advice = ("Check the RFM input (frequency = repeat purchase days, recency and T in days). Parameters "
                  "running off to infinity call for larger penalizers, e.g. CLVModel(penalizers=(0.1, 0.5, 1.0)); "
                  "a or b near 0 means the data show (almost) no dropout or all-or-nothing dropout: use a "
                  "longer history or a later as-of date, or smaller penalizers (they pull a and b towards 0).")
    return f"The {label} model could not be fitted after {len(attempts)} attempt(s) ({tried}). {advice}"


# --------------------------------------------------------------------------------------------------
# BG/NBD fit
# --------------------------------------------------------------------------------------------------


def _bgnbd_moments(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Method-of-moments start (log r, log alpha, log a, log b) in the scaled time unit.

    Ignoring dropout, X(T) is NBD: E = rT/alpha, Var = rT/alpha + rT^2/alpha^2, so the pooled rate
    m = sum x / sum T and the over-dispersion r/alpha^2 give alpha and r; a = 1, b = 3 (mean dropout
    probability 0.25) is typical of published fits.
    """
    m = max(float(np.sum(w * x) / max(np.sum(w * T), 1e-12)), 1e-6)
    over = float((np.sum(w * (x - m * T) ** 2) - np.sum(w * m * T)) / max(np.sum(w * T**2), 1e-12))
    r = float(np.clip(m * m / over, 0.05, 5.0)) if over > 0 else 1.0
    return np.log([r, r / m, 1.0, 3.0])


def _bgnbd_warm_start(summary: pd.DataFrame, args: tuple, x0: np.ndarray) -> tuple[tuple, dict | None]:
    """Start for the full fit: ('subsample', optimum, inverse Hessian) of a ~WARM_START_CUSTOMERS
    subsample (binomial thinning of the counts, seeded), or ('moments', x0, None) for small inputs.

    BFGS from the subsample optimum with its exact inverse Hessian needs a handful of iterations on
    the full rows instead of 20-30. Returns (start, report or None).
    """
    n = int(summary["weight"].sum())
    if len(summary) <= WARM_START_MIN_ROWS or n <= 2 * WARM_START_CUSTOMERS:
        return ("moments", x0, None), None
    fun_and_grad, hessian_fn = _lifetimes_objectives()["bgnbd"]
    w_sub = np.random.default_rng(0).binomial(summary["weight"].to_numpy(), WARM_START_CUSTOMERS / n)
    keep = w_sub > 0
    sub_args = (args[0][keep], args[1][keep], args[2][keep], w_sub[keep].astype(np.float64), args[4])
    res = _minimize(fun_and_grad, x0, sub_args, tol=1e-5)
    H = _hessian(hessian_fn, res.x, sub_args) if np.all(np.isfinite(res.x)) else None
    report = {"customers": int(w_sub.sum()), "rows": int(keep.sum()), "iterations": int(res.nit),
              "used": H is not None}
    if H is None:
        return ("moments", x0, None), report
    hess_inv0 = np.linalg.inv(H)
    return ("subsample", res.x, (hess_inv0 + hess_inv0.T) / 2), report


def fit_bgnbd(summary: pd.DataFrame, *, penalizers: Sequence[float] = (0.0, 0.001, 0.01, 0.1)) -> tuple[dict, dict]:
    """Maximum-likelihood BG/NBD parameters from compressed counts (Fader, Hardie & Lee 2005, sec. 7).

    Parameters
    ----------
    summary : ``compress_bgnbd`` output: x, t_x, T (whole time units) and weight (customers).
    penalizers : lifetimes ``penalizer_coef`` values tried in order (the l2 penalty acts on the
        parameters with time scaled so that max T = 1, as in lifetimes).

    Returns
    -------
    (params, report): ``params`` = {r, alpha, a, b} with alpha in the summary's time unit; ``report``
    describes the path taken (see ``_search``) plus the warm start.

    Raises
    ------
    CLVFitError
        Too few customers, no repeat customers, or no acceptable optimum.
    """
    x, t_x, T_, w = (summary[c].to_numpy() for c in ("x", "t_x", "T", "weight"))
    n, n_repeat = int(w.sum()), int(w[x > 0].sum())
    _check_enough(n, n_repeat)
    if T_.max() <= 0:
        raise CLVFitError("Every customer made their first purchase within half a time unit of the as-of date; "
                          "the BG/NBD model needs observed time after the first purchase. Use a later as-of date.")
    scale = 1.0 / float(T_.max())  # lifetimes' _scale_time: max T = 1
    x = x.astype(np.int64)

    def build_args(penalizer: float) -> tuple:
        return (x, t_x * scale, T_ * scale, w.astype(np.float64), penalizer)

    x0 = _bgnbd_moments(x, t_x * scale, T_ * scale, w.astype(np.float64))
    first_start, warm = _bgnbd_warm_start(summary, build_args(float(penalizers[0])), x0)

    def to_params(log_params: np.ndarray) -> dict[str, float]:
        r, alpha, a, b = np.exp(log_params)
        return {"r": float(r), "alpha": float(alpha / scale), "a": float(a), "b": float(b)}

    params, report = _search(
        model="bgnbd", penalizers=penalizers, build_args=build_args,
        to_params=to_params, check=lambda p: _degenerate(p, shapes=("r", "a", "b"), scales={"alpha": 1 / scale}),
        first_start=first_start, later_start=("moments", x0, None),
    )
    return params, report | {"warm_start": warm, "customers": n, "repeat_customers": n_repeat}


def _check_enough(n: int, n_repeat: int) -> None:
    """CLVFitError for inputs no BG/NBD fit can work on: too few customers, (almost) no repeat purchases."""
    if n < MIN_CUSTOMERS:
        raise CLVFitError(
            f"Only {n} customer(s): the BG/NBD model needs at least {MIN_CUSTOMERS} (hundreds for stable "
            "estimates). Use more customers or a longer history."
        )
    if n_repeat < MIN_REPEAT_CUSTOMERS:
        raise CLVFitError(
            f"Only {n_repeat} of {n} customers have a repeat purchase (frequency > 0): the dropout parameters "
            "a and b of the BG/NBD model cannot be identified. Use a longer history or a later as-of date."
        )


# --------------------------------------------------------------------------------------------------
# Gamma-Gamma fit
# --------------------------------------------------------------------------------------------------


def fit_gamma_gamma(
    summary: pd.DataFrame, *, penalizers: Sequence[float] = (0.0, 0.001, 0.01, 0.1)
) -> tuple[dict, dict]:
    """Maximum-likelihood Gamma-Gamma parameters (Fader, Hardie & Lee 2005 "RFM and CLV", eq. 1a / note 025).

    Parameters
    ----------
    summary : ``compress_gamma_gamma`` output: x (repeat purchases), m (mean spend per repeat
        purchase, > 0) and weight.
    penalizers : tried in order. Spend is divided by its weighted mean before optimising (v is a scale
        parameter, so the unpenalised optimum is unchanged; the penalty then acts on v / mean spend).

    Returns
    -------
    (params, report): ``params`` = {p, q, v} with v in currency units; q > 1 is required (finite
    population mean spend ``p v / (q - 1)``).
    """
    x, m, w = (summary[c].to_numpy() for c in ("x", "m", "weight"))
    if w.sum() < MIN_CUSTOMERS:
        raise CLVFitError(
            f"Only {int(w.sum())} repeat customer(s) with positive monetary_value: the Gamma-Gamma spend model "
            f"needs at least {MIN_CUSTOMERS} (hundreds for stable estimates). Use a longer history."
        )
    c = float(np.sum(w * m) / np.sum(w))

    def build_args(penalizer: float) -> tuple:
        return (x.astype(np.float64), m / c, w.astype(np.float64), penalizer)

    def to_params(log_params: np.ndarray) -> dict[str, float]:
        p, q, v = np.exp(log_params)
        return {"p": float(p), "q": float(q), "v": float(v * c)}

    def check(params: dict[str, float]) -> str:
        reason = _degenerate(params, shapes=("p", "q"), scales={"v": c})
        return reason or ("" if params["q"] > 1 else f"q={params['q']:.3g} <= 1 (infinite mean spend)")

    typical = ("typical", np.log([1.0, 3.0, 2.0]), None)  # mean spend p v / (q - 1) = 1 in the scaled unit
    params, report = _search(
        model="gamma_gamma", penalizers=penalizers, build_args=build_args,
        to_params=to_params, check=check, first_start=typical, later_start=typical,
    )
    return params, report | {"customers": int(w.sum()), "spend_scale": c}


# --------------------------------------------------------------------------------------------------
# Predictions (all times in the fitting unit; vectorised over customers)
# --------------------------------------------------------------------------------------------------


def _log_death_odds(x, t_x, T, *, r, alpha, a, b) -> np.ndarray:
    """log[a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)] for x > 0 (-inf for x = 0)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) + (r + x) * (
            np.log(alpha + np.asarray(T, dtype=np.float64)) - np.log(alpha + np.asarray(t_x, dtype=np.float64))
        )
    return np.where(x > 0, odds, -np.inf)


def bgnbd_p_alive(x, t_x, T, *, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """P(alive at T | x, t_x, T) under the BG/NBD model.

    Fader, Hardie & Lee (2008) "Computing P(alive) using the BG/NBD model" (Hardie note 021), eq. 2:
    ``1 / (1 + delta(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``; 1 for customers without repeats
    (in the BG/NBD model a customer can only drop out right after a repeat purchase).
    Times in the unit of ``alpha``.
    """
    return expit(-_log_death_odds(x, t_x, T, r=r, alpha=alpha, a=a, b=b))


def bgnbd_expected_purchases_if_alive(t, x, T, *, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """E[Y(t) | alive at T, x, T]: the numerator of Fader, Hardie & Lee (2005) eq. 10,

    ``(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)]``, ``z = t/(alpha+T+t)``.
    It does not depend on t_x. The hypergeometric term is evaluated after Euler's transformation,
    ``(1-z)^(r+x) 2F1(r+x, b+x; c; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z)``, which stays finite for
    large x (lifetimes falls back to it only when the direct form overflows).
    """
    x = np.asarray(x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if abs(a - 1.0) < 1e-9:  # removable singularity at a = 1
        a = 1.0 + 1e-9
    z = np.asarray(t, dtype=np.float64) / (alpha + T + t)
    c = a + b + x - 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hyp_term = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        return np.maximum(c / (a - 1.0) * (1.0 - hyp_term), 0.0)


def bgnbd_expected_purchases(t, x, t_x, T, *, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] — Fader, Hardie & Lee (2005) eq. 10,

    ``P(alive | x, t_x, T) * E[Y(t) | alive at T, x, T]`` (see ``bgnbd_expected_purchases_if_alive``).
    Times in the unit of ``alpha``.
    """
    params = {"r": r, "alpha": alpha, "a": a, "b": b}
    return bgnbd_p_alive(x, t_x, T, **params) * bgnbd_expected_purchases_if_alive(t, x, T, **params)


def bgnbd_p_no_purchase(t, x, t_x, T, *, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """P(Y(t) = 0 | x, t_x, T): no purchase in (T, T+t] under the BG/NBD model.

    The x* = 0 case of P(Y(t) = x* | x, t_x, T) (derived as in Fader, Hardie & Lee's note "Deriving an
    expression for P(X(t) = x)", with the BG/NBD likelihood of their 2005 paper, eq. 3): a customer
    who is dead at T never buys again; one alive at T stays alive until their next purchase and has
    rate lambda ~ Gamma(r+x, alpha+T) given the history, so

    ``P = 1 - P(alive) + P(alive) ((alpha+T)/(alpha+T+t))^(r+x)``.
    """
    x = np.asarray(x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    p_alive = bgnbd_p_alive(x, t_x, T, r=r, alpha=alpha, a=a, b=b)
    survive = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
    return 1.0 - p_alive + p_alive * survive


def gamma_gamma_expected_spend(x, m, *, p: float, q: float, v: float) -> np.ndarray:
    """E(M | p, q, v, m_x, x): conditional expected spend per purchase — Fader, Hardie & Lee (2005)
    "RFM and CLV", eq. 5: ``(q-1)/(px+q-1) * p v/(q-1) + px/(px+q-1) * m_x``.

    Customers without repeat purchases (x = 0) get the population mean ``p v / (q - 1)``; negative
    observed means (net returns) are treated as 0.
    """
    x = np.asarray(x, dtype=np.float64)
    m_x = np.maximum(np.asarray(m, dtype=np.float64), 0.0)
    weight = p * x / (p * x + q - 1.0)
    return (1.0 - weight) * (p * v / (q - 1.0)) + weight * m_x


def discount_schedule(*, horizon_days: float, annual_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Month ends (days, the last one cut at ``horizon_days``) and their discount factors
    ``1 / (1 + annual_rate)^(t / 365)`` (end-of-period discounting, as lifetimes' CLV)."""
    n_months = max(1, math.ceil(horizon_days / MONTH_DAYS - 1e-9))
    ends = np.minimum(np.arange(1, n_months + 1) * MONTH_DAYS, float(horizon_days))
    return ends, (1.0 + annual_rate) ** (-ends / DAYS_PER_YEAR)


def _fit_warnings(bg_report: dict, gg_report: dict, *, excluded: int) -> list[str]:
    """Human-readable notes on anything but a clean, unpenalised fit."""
    notes = []
    for label, report in (("BG/NBD", bg_report), ("Gamma-Gamma", gg_report)):
        if report["penalizer"]:
            notes.append(f"{label} needed penalizer {report['penalizer']:g} (estimates are shrunk towards 0)")
        if report["path"] == "precision_loss_accepted":
            notes.append(f"{label}: optimizer reported precision loss at an optimum; accepted ({report['detail']})")
    if excluded:
        notes.append(f"{excluded} repeat customer(s) with monetary_value <= 0 left out of the Gamma-Gamma fit")
    return notes


def _log_fit(report: dict) -> None:
    bg, gg = report["bgnbd"], report["gamma_gamma"]
    logger.info(
        "CLV fit: BG/NBD %s with penalizer %g after %d attempt(s), %d iterations, on %d rows (%d customers); "
        "Gamma-Gamma %s with penalizer %g after %d attempt(s) on %d rows",
        bg["path"], bg["penalizer"], bg["n_attempts"], bg["iterations"], bg["rows_after"], bg["rows_before"],
        gg["path"], gg["penalizer"], gg["n_attempts"], gg["rows_after"],
    )
    for note in report["warnings"]:
        logger.info("CLV fit: %s", note)


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


class CLVModel:
    """BG/NBD (purchases, P(alive)) + Gamma-Gamma (spend) CLV model, scikit-learn style.

    Parameters
    ----------
    time_unit_days : fitting time unit in days (7 = weeks); recency and T are rounded to whole units
        for the compressed fit. ``bgnbd_params_["alpha"]`` is in this unit.
    penalizers : lifetimes ``penalizer_coef`` values tried in order until a fit is acceptable.
    discount_rate : annual discount rate of the CLV.
    clv_horizon_days : horizon of the CLV in days.

    Attributes
    ----------
    bgnbd_params_ : {r, alpha, a, b, time_unit_days}; alpha per ``time_unit_days`` days.
    gg_params_ : {p, q, v}; v in currency units.
    fit_report_ : how each fit went (path, penalizer, attempts, rows before/after compression, warnings).
    """

    def __init__(
        self,
        *,
        time_unit_days: float = 7.0,
        penalizers: tuple[float, ...] = (0.0, 0.001, 0.01, 0.1),
        discount_rate: float = 0.10,
        clv_horizon_days: int = 365,
    ) -> None:
        self.time_unit_days = time_unit_days
        self.penalizers = penalizers
        self.discount_rate = discount_rate
        self.clv_horizon_days = clv_horizon_days

    def __repr__(self) -> str:
        return (f"CLVModel(time_unit_days={self.time_unit_days}, penalizers={self.penalizers}, "
                f"discount_rate={self.discount_rate}, clv_horizon_days={self.clv_horizon_days})")

    def _check_settings(self) -> None:
        if not self.time_unit_days > 0:
            raise ValueError(f"time_unit_days must be a positive number of days, not {self.time_unit_days}")
        if len(self.penalizers) == 0 or any(not p >= 0 for p in self.penalizers):
            raise ValueError(f"penalizers must be a non-empty sequence of numbers >= 0, not {self.penalizers}")

    def fit(self, rfm: pd.DataFrame) -> CLVModel:
        """Fit BG/NBD and Gamma-Gamma on an RFM table.

        Parameters
        ----------
        rfm : one row per customer: frequency (repeat purchase days), recency and T (days),
            monetary_value (mean spend per repeat purchase day) — ``features.build_features`` output.

        Raises
        ------
        ValueError
            The RFM table breaks its contract (column, count and example customers named).
        CLVFitError
            A model could not be fitted (the message says what was tried).
        """
        self._check_settings()
        validate_rfm(rfm)
        x, t_x, T = _rfm_arrays(rfm)
        m = rfm["monetary_value"].to_numpy(dtype=np.float64)
        bg_summary = compress_bgnbd(x, t_x, T, time_unit_days=self.time_unit_days)
        bgnbd, bg_report = fit_bgnbd(bg_summary, penalizers=self.penalizers)
        gg_summary = compress_gamma_gamma(x, m)
        gg, gg_report = fit_gamma_gamma(gg_summary, penalizers=self.penalizers)
        self.bgnbd_params_ = bgnbd | {"time_unit_days": float(self.time_unit_days)}
        self.gg_params_ = gg
        excluded = int(np.sum((x > 0) & ~(m > 0)))
        self.fit_report_ = {
            "time_unit_days": float(self.time_unit_days),
            "bgnbd": bg_report | {"rows_before": len(rfm), "rows_after": len(bg_summary)},
            "gamma_gamma": gg_report | {"rows_before": int(np.sum(x > 0)) - excluded, "rows_after": len(gg_summary),
                                        "excluded_nonpositive_spend": excluded},
            "warnings": _fit_warnings(bg_report, gg_report, excluded=excluded),
        }
        _log_fit(self.fit_report_)
        return self

    def _fitted(self) -> None:
        if not hasattr(self, "bgnbd_params_"):
            raise ValueError("This CLVModel is not fitted yet: call fit(rfm) first.")

    def predict(self, rfm: pd.DataFrame, *, horizon_days: int) -> pd.DataFrame:
        """Per-customer predictions at the as-of date of ``rfm``.

        Parameters
        ----------
        rfm : frequency, recency, T (days), monetary_value; other columns are ignored.
        horizon_days : forecast horizon in days after the as-of date.

        Returns
        -------
        DataFrame indexed like ``rfm`` with p_alive (P(alive) at the as-of date), expected_purchases
        and p_no_purchase (repeat purchases in the next ``horizon_days``: expectation and probability
        of none), expected_spend_per_purchase (Gamma-Gamma), expected_spend (= expected_purchases ×
        expected_spend_per_purchase) and clv (expected spend over ``clv_horizon_days``, discounted
        monthly at ``discount_rate`` per year).
        """
        self._fitted()
        if not horizon_days > 0:
            raise ValueError(f"horizon_days must be a positive number of days, not {horizon_days}")
        validate_rfm(rfm)
        x, t_x, T = _rfm_arrays(rfm)
        unit = self.bgnbd_params_["time_unit_days"]
        bg = {k: self.bgnbd_params_[k] for k in ("r", "alpha", "a", "b")}
        t_x, T = t_x / unit, T / unit
        p_alive = bgnbd_p_alive(x, t_x, T, **bg)
        # E[Y(t) | alive] depends on (x, T) only, which many customers share: evaluate 2F1 once per pair.
        codes, pairs = pd.factorize(x + 1j * T)
        x_u, T_u = pairs.real, pairs.imag
        purchases = p_alive * bgnbd_expected_purchases_if_alive(horizon_days / unit, x_u, T_u, **bg)[codes]
        discounted = p_alive * self._discounted_purchases_if_alive(x_u, T_u, bg)[codes]
        spend = gamma_gamma_expected_spend(x, rfm["monetary_value"].to_numpy(dtype=np.float64), **self.gg_params_)
        return pd.DataFrame(
            {
                "p_alive": p_alive,
                "expected_purchases": purchases,
                "p_no_purchase": bgnbd_p_no_purchase(horizon_days / unit, x, t_x, T, **bg),
                "expected_spend_per_purchase": spend,
                "expected_spend": purchases * spend,
                "clv": spend * discounted,
            },
            index=rfm.index,
        )

    def _discounted_purchases_if_alive(self, x, T, bg: dict) -> np.ndarray:
        """Sum over months k of (E[Y(t_k) | alive] - E[Y(t_{k-1}) | alive]) / (1 + d)^(t_k/365); times in units."""
        ends, factors = discount_schedule(horizon_days=self.clv_horizon_days, annual_rate=self.discount_rate)
        unit = self.bgnbd_params_["time_unit_days"]
        total, previous = np.zeros(len(x)), np.zeros(len(x))
        for end, factor in zip(ends, factors):  # a dozen months, each vectorised over (x, T) pairs
            cumulative = bgnbd_expected_purchases_if_alive(end / unit, x, T, **bg)
            total += factor * (cumulative - previous)
            previous = cumulative
        return total

    def to_lifetimes(self) -> tuple[Any, Any]:
        """Fresh lifetimes ``BetaGeoFitter`` / ``GammaGammaFitter`` carrying only the fitted ``params_``
        (for lifetimes' plots and methods; their time unit is ``bgnbd_params_["time_unit_days"]`` days)."""
        self._fitted()
        with warnings.catch_warnings():
            from lifetimes import BetaGeoFitter, GammaGammaFitter
        bgf, ggf = BetaGeoFitter(), GammaGammaFitter()
        bgf.params_ = pd.Series({k: self.bgnbd_params_[k] for k in ("r", "alpha", "a", "b")})
        ggf.params_ = pd.Series(self.gg_params_)
        return bgf, ggf
