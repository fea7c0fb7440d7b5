"""Closed forms of the BTYD models: BG/NBD (and its no-dropout NBD limit) and Gamma-Gamma.

Pure, vectorised numpy functions of the parameters and one customer's (x, t_x, T); no fitting, no
state. Times are in the unit of ``alpha``. The BG/NBD model is Fader, Hardie & Lee (2005),
"Counting your customers the easy way", Marketing Science 24(2); the Gamma-Gamma spend model is
Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base analysis", JMR
42(4). ``a = 0`` is the limit of BG/NBD without dropout (the NBD model): P(alive) = 1 and the
purchase rate given the history is Gamma(r + x, alpha + T).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import betaincinv, expit, hyp2f1, roots_legendre

from churnclv.contract.dates import DISCOUNT_YEAR_DAYS

__all__ = [
    "BGNBD_PARAMS",
    "bgnbd_expected_purchases",
    "bgnbd_expected_purchases_if_alive",
    "bgnbd_p_alive",
    "bgnbd_p_no_purchase",
    "bgnbd_shape",
    "discount_schedule",
    "gamma_gamma_expected_spend",
]

MONTH_DAYS = DISCOUNT_YEAR_DAYS / 12.0
#: The BG/NBD parameters every closed form here takes (a fit's params also hold its ``time_unit_days``).
BGNBD_PARAMS = ("r", "alpha", "a", "b")
#: From this dropout shape ``a`` on, scipy's 2F1 in the closed form of E[Y(t) | alive] loses its digits (NaN from
#: a of about 250, 0 beyond: a fit with a and b in the thousands, a dropout probability nearly the same for
#: everyone); the mean over the dropout probability is then taken by quadrature (agrees to 1e-5 from a = 50).
QUADRATURE_FROM_A = 100.0
QUADRATURE_NODES = 64


def _log_death_odds(x, t_x, T, *, r, alpha, a, b) -> np.ndarray:
    """log[a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)] for x > 0 (-inf for x = 0 or a = 0)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) + (r + x) * (
            np.log(alpha + np.asarray(T, dtype=np.float64)) - np.log(alpha + np.asarray(t_x, dtype=np.float64))
        )
    return np.where((x > 0) & (a > 0), odds, -np.inf)


def bgnbd_shape(params: dict) -> dict[str, float]:
    """The :data:`BGNBD_PARAMS` of a fit's parameters, as the closed forms take them (``**bgnbd_shape(p)``)."""
    return {k: params[k] for k in BGNBD_PARAMS}


def bgnbd_p_alive(x, t_x, T, *, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """P(alive at T | x, t_x, T) under the BG/NBD model.

    Fader, Hardie & Lee (2008) "Computing P(alive) using the BG/NBD model" (Hardie note 021), eq. 2:
    ``1 / (1 + delta(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x))``; 1 for customers without repeats
    (in the BG/NBD model a customer can only drop out right after a repeat purchase) and for a = 0.
    """
    return expit(-_log_death_odds(x, t_x, T, r=r, alpha=alpha, a=a, b=b))


def bgnbd_expected_purchases_if_alive(t, x, T, *, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """E[Y(t) | alive at T, x, T]: the numerator of Fader, Hardie & Lee (2005) eq. 10,

    ``(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)]``, ``z = t/(alpha+T+t)``.
    It does not depend on t_x. The hypergeometric term is evaluated after Euler's transformation,
    ``(1-z)^(r+x) 2F1(r+x, b+x; c; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z)``, which stays finite for
    large x. For a = 0 (no dropout) it is the NBD's ``(r+x) t / (alpha+T)``.
    """
    x = np.asarray(x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if a == 0:
        return (r + x) * t / (alpha + T)
    if a >= QUADRATURE_FROM_A:
        return _expected_if_alive_by_quadrature(t, x, T, r=r, alpha=alpha, a=a, b=b)
    if abs(a - 1.0) < 1e-9:  # removable singularity at a = 1
        a = 1.0 + 1e-9
    z = np.asarray(t, dtype=np.float64) / (alpha + T + t)
    c = a + b + x - 1.0
    with np.errstate(all="ignore"):
        hyp_term = np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        return np.maximum(c / (a - 1.0) * (1.0 - hyp_term), 0.0)


def _expected_if_alive_by_quadrature(t, x, T, *, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """E[Y(t) | alive at T, x, T] as the mean over the dropout probability p ~ Beta(a, b+x) (given x repeats and
    alive) of ``(1 - ((alpha+T)/(alpha+T+p t))^(r+x)) / p``: the expected purchases in t of a customer who drops
    out after each with probability p, ``(1 - exp(-lambda p t)) / p``, averaged over the rate lambda ~
    Gamma(r+x, alpha+T) given the history. Gauss-Legendre over the Beta's quantiles (p depends on x alone), a
    node at a time: memory of one result."""
    u, w = roots_legendre(QUADRATURE_NODES)
    t, x, T = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (t, x, T)))
    x_u, codes = np.unique(x, return_inverse=True)
    p = np.maximum(betaincinv(a, b + x_u[:, None], (u + 1.0) / 2.0), 1e-300)  # (distinct x, nodes)
    codes, z, total = codes.reshape(x.shape), t / (alpha + T), np.zeros(x.shape)
    for k in range(QUADRATURE_NODES):
        p_k = p[codes, k]
        total += w[k] / 2.0 * -np.expm1(-(r + x) * np.log1p(p_k * z)) / p_k
    return total


def bgnbd_expected_purchases(t, x, t_x, T, *, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in (T, T+t] — Fader, Hardie & Lee (2005) eq. 10,

    ``P(alive | x, t_x, T) * E[Y(t) | alive at T, x, T]`` (see ``bgnbd_expected_purchases_if_alive``).
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
    return ends, (1.0 + annual_rate) ** (-ends / DISCOUNT_YEAR_DAYS)
