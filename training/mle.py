"""Robust maximum likelihood for the BTYD models on compressed sufficient statistics.

The objectives are lifetimes' own weighted negative log-likelihoods
(``BetaGeoFitter._negative_log_likelihood``, ``GammaGammaFitter._negative_log_likelihood``) with
autograd derivatives, minimised by scipy's BFGS on log-parameters as lifetimes does, but:

- on *compressed* counts: customers with the same x and the same recency and T in whole time units
  (weeks by default) become one row with a count passed as ``weights``; each row carries the *mean*
  exact recency and T of its customers, so times stay in one unit with the repeat count (a customer
  with repeat purchases always has recency > 0, which keeps the likelihood bounded);
- from good starting values (method of moments; for large inputs a subsample fit whose exact Hessian
  seeds BFGS on the full data);
- robustly, in stages, each recorded in the fit report: the maximum-likelihood estimate (a BFGS stop
  with precision loss is accepted when the gradient is tiny and a Newton step negligible); when it
  runs to the a -> 0 boundary (no dropout in the data) the limiting NBD model; when it runs off
  otherwise, the posterior mode under a weak, then a firm log-normal prior on the parameters (as the
  Bayesian BTYD implementations keep estimates finite); and, as a last resort, the NBD model or the
  method-of-moments rates. A fit only fails (:class:`CLVFitError`) when the data cannot identify a
  model at all: too few customers, no repeat purchase, no time observed after the first purchase.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, minimize
from scipy.special import digamma, gammaln

from churnclv.contract import ChurnclvError

__all__ = [
    "CLVFitError",
    "bgnbd_log_covariance",
    "gamma_gamma_log_covariance",
    "compress_bgnbd",
    "compress_gamma_gamma",
    "fit_bgnbd",
    "merge_bgnbd",
    "merge_gamma_gamma",
    "fit_gamma_gamma",
]

logger = logging.getLogger("churnclv.training.mle")

#: Fewest customers / repeat customers a fit is attempted on (hundreds are needed for stable estimates).
MIN_CUSTOMERS = 10
MIN_REPEAT_CUSTOMERS = 2
#: Shape parameters (r, a, b, p, q) outside this range are degenerate (a = b = 0) or absurd.
SHAPE_RANGE = (1e-4, 1e5)
#: Scale parameters outside this range, relative to the data's own scale (alpha / max T, v / mean spend).
SCALE_RANGE = (1e-6, 1e6)
#: A BFGS stop with precision loss is accepted when max |gradient| of the mean NLL (log-parameters) is below
#: GRAD_TOL, the Hessian there is positive definite and a Newton step would move no log-parameter by more
#: than NEWTON_STEP_TOL.
GRAD_TOL = 1e-4
NEWTON_STEP_TOL = 1e-3
OPTIMIZER_TOL = 1e-7  # lifetimes' default ``tol``
#: Warm start: when the compressed data has more rows than this, first fit a subsample of this many customers.
WARM_START_MIN_ROWS = 5_000
WARM_START_CUSTOMERS = 20_000
LIFETIMES_DEFAULT_START = 0.1  # lifetimes starts every log-parameter at 0.1
#: Standard deviations of the log-normal priors tried, in order, when the maximum-likelihood estimate runs off
#: (weak: a factor e^3 = 20 either way costs as much as one customer's likelihood; firm: e^1).
PRIOR_SDS = (3.0, 1.0)


class CLVFitError(ChurnclvError, ValueError):
    """The data cannot identify a CLV model; the message says which condition failed and what would fix it."""


# --------------------------------------------------------------------------------------------------
# Compression to sufficient statistics
# --------------------------------------------------------------------------------------------------


def compress_bgnbd(
    frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, *, time_unit_days: float
) -> pd.DataFrame:
    """Group customers with the same x and the same recency and T in whole time units into one row.

    Parameters
    ----------
    frequency : repeat purchases x per customer (whole numbers).
    recency, T : days from the first purchase to the last purchase / to the as-of day.
    time_unit_days : length of the fitting time unit in days (7 = weeks); customers whose recency and T
        round to the same whole units (and who share x) are grouped.

    Returns
    -------
    DataFrame sorted by (x, rounded t_x, rounded T) with ``x`` (int64), ``t_x`` and ``T`` (float64,
    the group's mean recency and T in time units) and ``weight`` (int64 customers, summing to the
    number of customers). Groups of identical customers are exact; otherwise the mean keeps every
    repeat customer's recency above 0.
    """
    x = np.asarray(frequency).astype(np.int64)
    t_x = np.asarray(recency, dtype=np.float64) / time_unit_days
    T_ = np.asarray(T, dtype=np.float64) / time_unit_days
    if x.size == 0:
        return pd.DataFrame({"x": np.zeros(0, np.int64), "t_x": np.zeros(0), "T": np.zeros(0),
                             "weight": np.zeros(0, np.int64)})
    return _bgnbd_cells(x, t_x, T_, np.ones(x.size, np.int64))


def _bgnbd_cells(x: np.ndarray, t_x: np.ndarray, T_: np.ndarray, weight: np.ndarray) -> pd.DataFrame:
    """Rows (of ``weight`` customers each) with the same x and the same recency and T rounded to whole
    units as one row: their weights summed, their recency and T averaged by weight; sorted by
    (x, rounded t_x, rounded T). Shared by :func:`compress_bgnbd` and :func:`merge_bgnbd`."""
    t_r, T_r = np.floor(t_x + 0.5).astype(np.int64), np.floor(T_ + 0.5).astype(np.int64)
    base = int(T_r.max()) + 1
    if (int(x.max()) + 1) * base * base < 2**62:  # one int64 key per row: fast hashing
        key = (x * base + t_r) * base + T_r
    else:
        key = pd.MultiIndex.from_arrays([x, t_r, T_r])
    codes, _ = pd.factorize(key, sort=True)
    total = np.bincount(codes, weight).astype(np.int64)
    first = np.zeros(len(total), np.int64)
    first[codes[::-1]] = np.arange(len(codes))[::-1]  # one row of each group, to read its x
    return pd.DataFrame({"x": x[first], "t_x": np.bincount(codes, t_x * weight) / total,
                         "T": np.bincount(codes, T_ * weight) / total, "weight": total})


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
    return _spend_cells(pd.DataFrame({"x": x[keep], "m": m[keep], "weight": np.ones(int(keep.sum()), np.int64)}))


def _spend_cells(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows (x, m, weight) with the same (x, m) as one row, their weights summed; sorted by (x, m)."""
    grouped = rows.groupby(["x", "m"], sort=True)["weight"].sum()
    return grouped.rename("weight").reset_index().astype({"x": np.int64, "m": np.float64, "weight": np.int64})


def merge_bgnbd(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """:func:`compress_bgnbd` of the union of disjoint groups of customers, from their compressed counts.

    A group's mean recency and T round to the group's own whole units (every member is within half a
    unit of them), so rows of the parts with the same x and rounded times are one group of the union:
    their weights add up and their mean times are weighted by them. The result equals compressing every
    customer at once (the means to the last bits of floating point), however the customers were split.
    """
    both = pd.concat([p for p in parts if len(p)] or list(parts[:1]), ignore_index=True)
    if both.empty:
        return both
    return _bgnbd_cells(both["x"].to_numpy(np.int64), both["t_x"].to_numpy(np.float64),
                        both["T"].to_numpy(np.float64), both["weight"].to_numpy(np.int64))


def merge_gamma_gamma(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """:func:`compress_gamma_gamma` of the union of disjoint groups of customers, from their compressed counts."""
    return _spend_cells(pd.concat(list(parts), ignore_index=True))


# --------------------------------------------------------------------------------------------------
# Objectives and one judged optimisation
# --------------------------------------------------------------------------------------------------


@cache
def _lifetimes_objectives() -> dict[str, tuple[Callable, Callable]]:
    """lifetimes' negative log-likelihoods with autograd derivatives (imported lazily: importing
    lifetimes changes global warning filters, which ``catch_warnings`` undoes)."""
    with warnings.catch_warnings():
        from autograd import hessian, value_and_grad
        from lifetimes import BetaGeoFitter, GammaGammaFitter
    bg, gg = BetaGeoFitter._negative_log_likelihood, GammaGammaFitter._negative_log_likelihood
    return {"bgnbd": (value_and_grad(bg), hessian(bg)), "gamma_gamma": (value_and_grad(gg), hessian(gg))}


@dataclass(frozen=True)
class Objective:
    """A mean negative log-likelihood (or log-posterior) of log-parameters with gradient and Hessian."""

    value_and_grad: Callable
    hessian: Callable


def _objective(model: str, prior: tuple[np.ndarray, float] | None = None, *, customers: float = 1.0) -> Objective:
    """lifetimes' objective of ``model``, plus a log-normal prior ``(centre, sd)`` on the parameters
    divided by the number of customers (the objective is a mean over customers)."""
    value_and_grad, hessian = _lifetimes_objectives()[model]
    if prior is None:
        return Objective(value_and_grad, hessian)
    centre, sd = prior
    k = 1.0 / (sd * sd * customers)

    def posterior(theta, *args):
        value, grad = value_and_grad(theta, *args)
        d = np.asarray(theta) - centre
        return value + 0.5 * k * float(d @ d), np.asarray(grad) + k * d

    return Objective(posterior, lambda theta, *args: hessian(theta, *args) + k * np.eye(len(theta)))


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


Start = tuple[str, np.ndarray, Any]  # (label, log-parameters, initial inverse Hessian or None)


@dataclass(frozen=True)
class Problem:
    """One model's fitting problem: its data arguments and how log-parameters become checked parameters."""

    model: str
    args: tuple
    to_params: Callable[[np.ndarray], dict[str, float]]
    check: Callable[[dict[str, float]], str]
    customers: float


def _attempt(problem: Problem, objective: Objective, start: Start, *, stage: str) -> tuple[dict, OptimizeResult]:
    """One BFGS run judged: a JSON-ready record (outcome 'converged', 'precision_loss_accepted' or 'rejected')."""
    label, x0, hess_inv0 = start
    res = _minimize(objective.value_and_grad, np.asarray(x0, dtype=np.float64), problem.args, hess_inv0=hess_inv0)
    path, reason, max_grad = _judge_optimum(res, objective.hessian, problem.args)
    with np.errstate(over="ignore"):
        params = problem.to_params(res.x) if np.all(np.isfinite(res.x)) else {}
    if path != "rejected" and problem.check(params):
        path, reason = "rejected", problem.check(params)
    record = {
        "stage": stage, "start": label, "status": int(res.status), "message": str(res.message),
        "iterations": int(res.nit), "evaluations": int(res.nfev), "max_abs_gradient": max_grad,
        "params": {k: float(v) for k, v in params.items()}, "outcome": path, "reason": reason,
    }
    return record, res


def _stage(problem: Problem, objective: Objective, starts: Sequence[Start], *, stage: str,
           attempts: list[dict]) -> dict | None:
    """Try ``starts`` in order (each followed by a restart from where it ended if BFGS stopped with precision
    loss); append every attempt to ``attempts``; return the first accepted record, or None."""
    queue = list(starts)
    while queue:
        start = queue.pop(0)
        record, res = _attempt(problem, objective, start, stage=stage)
        attempts.append(record)
        if record["outcome"] != "rejected":
            return record
        logger.debug("%s %s fit from the %s start rejected: %s", problem.model, stage, start[0], record["reason"])
        if start[0] != "restart" and res.status == 2 and record["params"]:
            queue.insert(0, ("restart", res.x, None))
    return None


def _report(method: str, record: dict, attempts: list[dict], note: str = "") -> dict:
    return {
        "method": method,
        "path": record["outcome"],
        "detail": record["reason"],
        "note": note,
        "attempts": attempts,
        "n_attempts": len(attempts),
        "iterations": int(sum(a["iterations"] for a in attempts)),
    }


def _robust(problem: Problem, starts: Sequence[Start], centre: np.ndarray) -> tuple[dict | None, list[dict]]:
    """Maximum likelihood, then the posterior mode under each prior of :data:`PRIOR_SDS`.

    Returns (the accepted record with its ``method``, or None; every attempt).
    """
    attempts: list[dict] = []
    record = _stage(problem, _objective(problem.model), starts, stage="mle", attempts=attempts)
    if record is not None:
        return record | {"method": "mle"}, attempts
    if _ran_to_no_dropout(attempts):
        return None, attempts
    for sd in PRIOR_SDS:
        prior = _objective(problem.model, (centre, sd), customers=problem.customers)
        stage = f"map_prior_sd{sd:g}"
        record = _stage(problem, prior, [("prior_centre", centre, None)], stage=stage, attempts=attempts)
        if record is not None:
            return record | {"method": stage}, attempts
    return None, attempts


def _ran_to_no_dropout(attempts: list[dict]) -> bool:
    """Did a maximum-likelihood attempt run to the a -> 0 boundary (mean dropout probability a / (a + b) under
    1e-3)? Not where a and b both ran to 0 (both underflow): the mean is then unknown."""
    return any(a["stage"] == "mle" and a["params"].get("a", 1.0) < SHAPE_RANGE[0]
               and 999 * a["params"]["a"] < a["params"].get("b", 0.0) for a in attempts)


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


def _bgnbd_warm_start(problem: Problem, summary: pd.DataFrame, x0: np.ndarray) -> tuple[Start, dict | None]:
    """Start for the full fit: ('subsample', optimum, inverse Hessian) of a ~WARM_START_CUSTOMERS
    subsample (binomial thinning of the counts, seeded), or ('moments', x0, None) for small inputs.

    BFGS from the subsample optimum with its exact inverse Hessian needs a handful of iterations on
    the full rows instead of 20-30. Returns (start, report or None).
    """
    n = int(summary["weight"].sum())
    if len(summary) <= WARM_START_MIN_ROWS or n <= 2 * WARM_START_CUSTOMERS:
        return ("moments", x0, None), None
    objective = _objective("bgnbd")
    args = problem.args
    w_sub = np.random.default_rng(0).binomial(summary["weight"].to_numpy(), WARM_START_CUSTOMERS / n)
    keep = w_sub > 0
    sub_args = (args[0][keep], args[1][keep], args[2][keep], w_sub[keep].astype(np.float64), 0.0)
    res = _minimize(objective.value_and_grad, x0, sub_args, tol=1e-5)
    H = _hessian(objective.hessian, res.x, sub_args) if np.all(np.isfinite(res.x)) else None
    report = {"customers": int(w_sub.sum()), "rows": int(keep.sum()), "iterations": int(res.nit),
              "used": H is not None}
    if H is None:
        return ("moments", x0, None), report
    hess_inv0 = np.linalg.inv(H)
    return ("subsample", res.x, (hess_inv0 + hess_inv0.T) / 2), report


def _nbd_objective(theta: np.ndarray, x: np.ndarray, T: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood of the NBD model (BG/NBD with a -> 0: nobody drops out) and its
    gradient in (log r, log alpha): ``ln Gamma(r+x) - ln Gamma(r) + r ln alpha - (r+x) ln(alpha+T)``
    per customer (Fader, Hardie & Lee 2005, eq. 6 with A_2 = 0 and no dropout term)."""
    r, alpha = np.exp(theta)
    ll = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + T)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - np.log(alpha + T)
    d_alpha = r / alpha - (r + x) / (alpha + T)
    total = w.sum()
    return -float(w @ ll) / total, -np.array([r * float(w @ d_r), alpha * float(w @ d_alpha)]) / total


def _fit_nbd(x: np.ndarray, T: np.ndarray, w: np.ndarray, x0: np.ndarray) -> tuple[np.ndarray, dict]:
    """The NBD limit's (log r, log alpha) by BFGS from the moments start; falls back to the start itself."""
    with _numerics():
        res = minimize(_nbd_objective, x0, jac=True, args=(x, T, w), method="BFGS", tol=OPTIMIZER_TOL)
    max_grad = float(np.max(np.abs(res.jac))) if np.all(np.isfinite(res.jac)) else math.inf
    ok = bool(np.all(np.isfinite(res.x)) and max_grad < GRAD_TOL * 10 and np.all(np.abs(res.x) < 20))
    record = {"stage": "nbd_limit", "start": "moments", "status": int(res.status), "message": str(res.message),
              "iterations": int(res.nit), "evaluations": int(res.nfev), "max_abs_gradient": max_grad,
              "outcome": "converged" if ok else "rejected",
              "reason": "" if ok else f"NBD fit did not converge ({res.message})"}
    return (res.x if ok else x0), record


def fit_bgnbd(summary: pd.DataFrame) -> tuple[dict, dict]:
    """BG/NBD parameters from compressed counts (Fader, Hardie & Lee 2005, sec. 7), robustly.

    Parameters
    ----------
    summary : ``compress_bgnbd`` output: x, t_x, T (time units) and weight (customers).

    Returns
    -------
    (params, report): ``params`` = {r, alpha, a, b} with alpha in the summary's time unit (a = b = 0 is
    the NBD limit: no dropout); ``report`` says which ``method`` gave them ('mle', 'nbd_limit',
    'map_prior_sd3', 'map_prior_sd1', 'moments'), why, every attempt, and the warm start.

    Raises
    ------
    CLVFitError
        Too few customers, no repeat customers, or no time observed after the first purchases.
    """
    x, t_x, T_, w = (summary[c].to_numpy() for c in ("x", "t_x", "T", "weight"))
    n, n_repeat = int(w.sum()), int(w[x > 0].sum())
    _check_enough(n, n_repeat)
    if T_.max() <= 0:
        raise CLVFitError("every customer made their first purchase on the as-of day: the BG/NBD model needs "
                          "observed time after the first purchase. Use a later as-of date.")
    scale = 1.0 / float(T_.max())  # lifetimes' _scale_time: max T = 1
    x = x.astype(np.int64)
    wf = w.astype(np.float64)

    def to_params(log_params: np.ndarray) -> dict[str, float]:
        r, alpha, a, b = np.exp(log_params)
        return {"r": float(r), "alpha": float(alpha / scale), "a": float(a), "b": float(b)}

    problem = Problem("bgnbd", (x, t_x * scale, T_ * scale, wf, 0.0), to_params,
                      lambda p: _degenerate(p, shapes=("r", "a", "b"), scales={"alpha": 1 / scale}), n)
    x0 = _bgnbd_moments(x, t_x * scale, T_ * scale, wf)
    first, warm = _bgnbd_warm_start(problem, summary, x0)
    default = ("lifetimes_default", np.full(4, LIFETIMES_DEFAULT_START), None)
    record, attempts = _robust(problem, [first, default], centre=x0)
    extra = {"warm_start": warm, "customers": n, "repeat_customers": n_repeat}
    if record is not None:
        note = "" if record["method"] == "mle" else (
            "the maximum-likelihood estimate runs off to a boundary; estimates are the posterior mode under a "
            f"log-normal prior (sd {record['method'].removeprefix('map_prior_sd')} on log-parameters)")
        return record["params"], _report(record["method"], record, attempts, note) | extra
    log_nbd, nbd = _fit_nbd(x, T_ * scale, wf, x0[:2])
    attempts.append(nbd)
    r, alpha = np.exp(log_nbd)
    params = {"r": float(r), "alpha": float(alpha / scale), "a": 0.0, "b": 0.0}
    if nbd["outcome"] == "converged":
        why = ("the data show no dropout (a -> 0 at the maximum likelihood)" if _ran_to_no_dropout(attempts)
               else "no BG/NBD estimate was acceptable")
        method, note = "nbd_limit", f"{why}: fitted the NBD limit (nobody drops out; P(alive) = 1)"
    else:
        method, note = "moments", "no fit converged: purchase rates from the method of moments, no dropout"
    return params, _report(method, nbd | {"params": params}, attempts, note) | extra


def _check_enough(n: int, n_repeat: int) -> None:
    """CLVFitError for inputs no BG/NBD fit can work on: too few customers, (almost) no repeat purchases."""
    if n < MIN_CUSTOMERS:
        raise CLVFitError(
            f"only {n} customer(s): the BG/NBD model needs at least {MIN_CUSTOMERS} (hundreds for stable "
            "estimates). Use more customers or a longer history."
        )
    if n_repeat < MIN_REPEAT_CUSTOMERS:
        raise CLVFitError(
            f"only {n_repeat} of {n} customers have a repeat purchase (frequency > 0): the BG/NBD model needs at "
            f"least {MIN_REPEAT_CUSTOMERS} to tell buying from dropping out. Use a longer history or a later as-of date."
        )


# --------------------------------------------------------------------------------------------------
# Gamma-Gamma fit
# --------------------------------------------------------------------------------------------------


def fit_gamma_gamma(summary: pd.DataFrame) -> tuple[dict, dict]:
    """Gamma-Gamma parameters (Fader, Hardie & Lee 2005 "RFM and CLV", eq. 1a / note 025), robustly.

    Parameters
    ----------
    summary : ``compress_gamma_gamma`` output: x (repeat purchases), m (mean spend per repeat
        purchase, > 0) and weight. Spend is divided by its weighted mean before optimising (v is a scale
        parameter, so the optimum is unchanged; the prior then acts on v / mean spend).

    Returns
    -------
    (params, report): ``params`` = {p, q, v} with v in currency units and q > 1 (a finite population
    mean spend ``p v / (q - 1)``). With fewer than MIN_CUSTOMERS repeat customers, or when no estimate is
    acceptable, every customer gets the population mean spend (method 'population_mean').
    """
    x, m, w = (summary[c].to_numpy() for c in ("x", "m", "weight"))
    n = int(w.sum())
    c = float(np.sum(w * m) / np.sum(w)) if n else 0.0
    record, attempts = None, []
    if n >= MIN_CUSTOMERS:

        def to_params(log_params: np.ndarray) -> dict[str, float]:
            p, q, v = np.exp(log_params)
            return {"p": float(p), "q": float(q), "v": float(v * c)}

        def check(params: dict[str, float]) -> str:
            reason = _degenerate(params, shapes=("p", "q"), scales={"v": c})
            return reason or ("" if params["q"] > 1 else f"q={params['q']:.3g} <= 1 (infinite mean spend)")

        typical = np.log([1.0, 3.0, 2.0])  # mean spend p v / (q - 1) = 1 in the scaled unit
        problem = Problem("gamma_gamma", (x.astype(np.float64), m / c, w.astype(np.float64), 0.0), to_params, check, n)
        record, attempts = _robust(problem, [("typical", typical, None)], centre=typical)
    if record is not None:
        note = "" if record["method"] == "mle" else "the maximum-likelihood estimate runs off; prior mode used"
        return record["params"], _report(record["method"], record, attempts, note) | {"customers": n, "spend_scale": c}
    mean = float(np.sum(w * x * m) / np.sum(w * x)) if n else 0.0
    params = {"p": 1.0, "q": 1e6, "v": mean * (1e6 - 1.0)}  # weight on the customer's own mean ~ x / 1e6
    why = (f"only {n} repeat customer(s) with positive spend" if n < MIN_CUSTOMERS
           else "no Gamma-Gamma estimate was acceptable")
    record = {"outcome": "converged", "reason": "", "iterations": 0, "params": params}
    note = f"{why}: every customer's spend per purchase is the population mean, {mean:.4g}"
    return params, _report("population_mean", record, attempts, note) | {"customers": n, "spend_scale": c}


# --------------------------------------------------------------------------------------------------
# Parameter uncertainty: the asymptotic normal of the estimates on the log scale
# --------------------------------------------------------------------------------------------------


def _prior_sd(method: str) -> float | None:
    """The prior's sd of a posterior-mode fit ('map_prior_sd3' -> 3.0), None for a maximum-likelihood fit."""
    return float(method.removeprefix("map_prior_sd")) if method.startswith("map_prior_sd") else None


def _information(model: str, log_params: np.ndarray, args: tuple, *, customers: float, method: str) -> np.ndarray | None:
    """The observed information ``n · H`` (H: Hessian of the mean objective at the estimate), with the
    prior's curvature for a posterior-mode fit; None unless finite and positive definite."""
    sd = _prior_sd(method)
    objective = _objective(model, None if sd is None else (np.zeros(len(log_params)), sd), customers=customers)
    H = _hessian(objective.hessian, np.asarray(log_params, dtype=np.float64), args)
    return None if H is None else H * customers


def _nbd_information(x: np.ndarray, T: np.ndarray, w: np.ndarray, log_params: np.ndarray) -> np.ndarray | None:
    """The NBD limit's observed information in (log r, log alpha): central differences of its gradient."""
    h, grads = 1e-5, []
    for i in range(2):
        step = np.zeros(2)
        step[i] = h
        grads.append((_nbd_objective(log_params + step, x, T, w)[1] - _nbd_objective(log_params - step, x, T, w)[1]) / (2 * h))
    H = np.array(grads)
    H = (H + H.T) / 2 * float(w.sum())
    return H if np.all(np.isfinite(H)) and np.linalg.eigvalsh(H).min() > 0 else None


def bgnbd_log_covariance(summary: pd.DataFrame, params: dict, *, method: str) -> np.ndarray:
    """Asymptotic covariance of (log r, log alpha, log a, log b) of a :func:`fit_bgnbd` estimate: the
    inverse observed information of lifetimes' likelihood on the compressed counts (Fader, Hardie & Lee 2005,
    eq. 6), with the prior's curvature for a posterior-mode fit. Zeros where the fit has no curvature to
    read (a method-of-moments fallback, or a Hessian that is not positive definite); in the NBD limit
    (a = b = 0) only (log r, log alpha) vary."""
    x, t_x, T_, w = (summary[c].to_numpy() for c in ("x", "t_x", "T", "weight"))
    x, wf, scale = x.astype(np.int64), w.astype(np.float64), 1.0 / float(T_.max())
    log_ra = np.log([params["r"], params["alpha"] * scale])
    cov = np.zeros((4, 4))
    with _numerics():
        if params["a"] > 0 and method != "moments":
            info = _information("bgnbd", np.concatenate([log_ra, np.log([params["a"], params["b"]])]),
                                (x, t_x * scale, T_ * scale, wf, 0.0), customers=float(wf.sum()), method=method)
            if info is not None:
                return np.linalg.inv(info)
        elif method != "moments":
            info = _nbd_information(x, T_ * scale, wf, log_ra)
            if info is not None:
                cov[:2, :2] = np.linalg.inv(info)
    return cov


def gamma_gamma_log_covariance(summary: pd.DataFrame, params: dict, *, method: str) -> np.ndarray:
    """Asymptotic covariance of (log p, log q, log v) of a :func:`fit_gamma_gamma` estimate (the inverse
    observed information of lifetimes' likelihood, Fader, Hardie & Lee's note 025 eq. 1a); zeros for the
    population-mean fallback or a Hessian that is not positive definite."""
    cov = np.zeros((3, 3))
    if method == "population_mean":
        return cov
    x, m, w = (summary[c].to_numpy() for c in ("x", "m", "weight"))
    c = float(np.sum(w * m) / np.sum(w))
    log_params = np.log([params["p"], params["q"], params["v"] / c])
    with _numerics():
        info = _information("gamma_gamma", log_params, (x.astype(np.float64), m / c, w.astype(np.float64), 0.0),
                            customers=float(w.sum()), method=method)
    return cov if info is None else np.linalg.inv(info)
