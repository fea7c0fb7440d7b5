"""Intervals on every forecast: per customer, for the population, and how sure each name on a list is.

Two uncertainties are carried:

- the purchase count's own: given the parameters, a customer's purchases in the next ``t`` are not a number
  but a distribution. Under BG/NBD a customer alive at T after x repeat purchases buys in (T, T+t] as a new
  BG/NBD customer with parameters (r + x, alpha + T, a, b + x) (the posteriors of the rate and of the dropout
  probability given the history), whose count distribution is Fader, Hardie & Lee (2005) "Counting your
  customers the easy way", eq. 8:

  ``P(X(t)=y) = B(a, b+y)/B(a, b) NB(y) + 1{y>0} B(a+1, b+y-1)/B(a, b) (1 - sum_{j<y} NB(j))``, with
  ``NB(j) = Gamma(r+j)/(Gamma(r) j!) (alpha/(alpha+t))^r (t/(alpha+t))^j``;

  a customer dead at T buys nothing, so ``P(Y=y | history) = (1 - P(alive)) 1{y=0} + P(alive) P(X(t)=y)``;
- the parameters': the fits' asymptotic normal on the log scale, as a fixed, seeded set of draws stored in
  the bundle (``CLVParams.param_draws_``, made by ``training.clv``).

Per customer, the count distribution given alive is mixed over the draws (it depends on (x, T) only, so it is
computed once per distinct pair) and P(alive) is the fitted one; the ends come from its cumulative sum over y,
one vectorised step per count, over the customers whose ends are not reached yet (:func:`count_interval`). The
CLV's ends are the count's ends over the CLV horizon times the customer's expected spend per purchase
(Gamma-Gamma), discounted as the CLV is. The population's totals add the customers' means and variances per
draw (customers are independent given the parameters) and mix the draws; for a horizon under a year they are
widened by the stated seasonal rule (:func:`seasonal_log_sd`). :func:`membership_probability` says how sure a
top-k list is under the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from churnclv.contract.columns import RFM_COLUMNS
from churnclv.contract.dates import SEASON_YEAR_DAYS
from churnclv.scoring.btyd import (
    BGNBD_PARAMS,
    bgnbd_expected_purchases_if_alive,
    bgnbd_p_alive,
    bgnbd_shape,
    gamma_gamma_expected_spend,
)
from churnclv.scoring.clv import DRAW_KEYS, CLVParams, _rfm_arrays

__all__ = [
    "SEASON_SEEN_LOG_SD",
    "SEASON_UNSEEN_LOG_SD",
    "PopulationInterval",
    "bgnbd_count_pmf",
    "clv_by_draw",
    "count_interval",
    "customer_interval_values",
    "customer_intervals",
    "membership_probability",
    "population_forecast",
    "population_interval",
    "seasonal_log_sd",
    "value_at_risk_draws",
]

#: Draws mixed into each customer's count distribution (the first ones of the stored set; the population's
#: totals use them all). More draws cost time per count step and change the quantiles little: for one
#: customer the count's own spread is far wider than the parameters'.
CUSTOMER_DRAWS = 20
#: A count distribution is summed up to this many purchases at most (the quantile of a customer beyond it is
#: this number: none of the logs seen comes near it in one horizon).
MAX_COUNT = 20_000
#: The population's moments sum each count distribution until less than this probability is left.
TAIL = 1e-10
#: The seasonal uncertainty rule, one for every log (not fitted to any): for a horizon shorter than a year the
#: population's totals are multiplied by a log-normal factor. Where the season ahead was never observed (no same
#: window a year earlier, so the forecast is BG/NBD's stationary rate) its sd on the log scale is
#: SEASON_UNSEEN_LOG_SD: a part of the year may run a quarter above or below the year's average (an 80% interval
#: from x0.73 to x1.38). Where it was observed, the factor measured on an earlier window (a year earlier; the
#: horizon before as-of on a log without a season, ``training.season``) may itself have moved since (the customer
#: base ages, the calendar shifts): SEASON_SEEN_LOG_SD (x0.88 to x1.14 at 80%), or the noise of the count it was
#: measured on where that is larger (a log-sd of 1/sqrt(n) for n purchases: under 100; :func:`seasonal_log_sd`).
SEASON_UNSEEN_LOG_SD = 0.25
SEASON_SEEN_LOG_SD = 0.10
#: Monte Carlo draws of the population's totals (seeded).
POPULATION_SAMPLES = 40_000
POPULATION_SEED = 91
#: The score table's column that keeps, for the customers of highest value at risk, their value at risk under
#: each of the first :data:`RANK_DRAWS` parameter draws (null for everyone else): how sure a place on a list is.
VALUE_DRAWS_COLUMN = "value_at_risk_draws"
RANK_DRAWS = 20
#: Customers kept with their values per draw: twice the longest list /prioritise returns (10,000), so that the
#: ones just below a list's end, who may enter it under a draw, are there to compete.
RANK_CANDIDATES = 20_000


def bgnbd_count_pmf(t: float, *, r, alpha, a, b, max_count: int) -> np.ndarray:
    """P(X(t) = y) for y = 0..max_count under BG/NBD (Fader, Hardie & Lee 2005, eq. 8); the parameters are
    numbers or arrays that broadcast, the result has a leading axis of length ``max_count + 1``."""
    steps = _PmfSteps(t, r=r, alpha=alpha, a=a, b=b)
    return np.stack([steps.next() for _ in range(max_count + 1)])


class _PmfSteps:
    """P(X(t) = y) of eq. 8 for y = 0, 1, ... by recurrences (vectorised over any shape of parameters):
    NB(y+1) = NB(y) (r+y)/(y+1) t/(alpha+t) and B(a, b+y+1)/B(a, b) = B(a, b+y)/B(a, b) (b+y)/(a+b+y)."""

    def __init__(self, t: float, *, r, alpha, a, b):
        r, alpha, a, b = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (r, alpha, a, b)))
        self.r, self.a, self.b = r, a, b
        self.z = t / (alpha + t)
        self.nb = np.exp(r * (np.log(alpha) - np.log(alpha + t)))  # NB(0)
        self.cum_nb = np.zeros_like(self.nb)  # sum_{j<y} NB(j)
        self.beta = np.ones_like(self.nb)  # B(a, b+y)/B(a, b)
        self.beta_before = np.ones_like(self.nb)  # B(a, b+y-1)/B(a, b)
        self.y = 0

    def keep(self, columns: np.ndarray) -> None:
        """Keep only these positions of the last axis (the pairs still needed)."""
        for name in ("r", "a", "b", "z", "nb", "cum_nb", "beta", "beta_before"):
            setattr(self, name, getattr(self, name)[..., columns])

    def next(self) -> np.ndarray:
        y, a, b = self.y, self.a, self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            dropped = np.where(a > 0, a / (a + b + y - 1.0) * self.beta_before, 0.0) if y > 0 else 0.0
            pmf = self.beta * self.nb + dropped * (1.0 - self.cum_nb)
            self.cum_nb = self.cum_nb + self.nb
            self.nb = self.nb * (self.r + y) / (y + 1.0) * self.z
            self.beta_before = self.beta
            self.beta = np.where(a > 0, self.beta * (b + y) / (a + b + y), 1.0)
        self.y += 1
        return np.maximum(pmf, 0.0)


def _draw_arrays(clv: CLVParams, count: int | None) -> dict[str, np.ndarray]:
    """The stored parameter draws (the first ``count``), or the point estimate as one draw."""
    draws = getattr(clv, "param_draws_", None)
    if draws is None:
        point = clv.bgnbd_params_ | clv.gg_params_
        return {k: np.array([point[k]], dtype=np.float64) for k in DRAW_KEYS}
    return {k: np.asarray(draws[k], dtype=np.float64)[:count] for k in DRAW_KEYS}


def _pairs(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes, x, T) of the distinct (x, T) pairs: what the count distribution given alive depends on."""
    codes, pairs = pd.factorize(x + 1j * T)
    return codes, pairs.real.copy(), pairs.imag.copy()


def _alive_steps(t: float, x_u: np.ndarray, T_u: np.ndarray, draws: dict) -> _PmfSteps:
    """Count distributions given alive at T, one row per draw, one column per (x, T) pair."""
    col = lambda k: draws[k][:, None]
    return _PmfSteps(t, r=col("r") + x_u, alpha=col("alpha") + T_u, a=col("a") + 0 * x_u, b=col("b") + x_u)


def count_interval(x, t_x, T, *, t: float, clv: CLVParams, level: float, draws: int | None = CUSTOMER_DRAWS,
                   reach: bool = False, pairs: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(low, high): each customer's interval of purchases in (T, T+t] (times in the fitting unit) at ``level``.

    The predictive distribution is ``1 - P(alive)`` at 0 plus ``P(alive)`` times the count distribution given
    alive mixed over the first ``draws`` parameter draws (module doc); F is its cumulative sum over y. A count's
    F jumps, so no interval holds exactly ``level``; the ends are chosen to come nearest:

    - the lower end is the count whose P(Y < low) = F(low - 1) is nearest ``(1 - level) / 2``;
    - the upper end the count whose P(low <= Y <= high) = F(high) - F(low - 1) is nearest ``level`` (a customer
      with 85% on 0 gets [0, 0]: 85% is nearer 80% than the 96% of [0, 1]; an equal-tailed rule would aim at
      90% above 0 and cover far more than its level wherever most customers buy nothing).

    ``reach``: the upper end is the first count whose interval holds at least ``level`` (for spend: the values of
    the purchases vary too, and an interval of counts that just holds its level holds less of the spend).

    ``pairs``: :func:`_pairs` of (x, T), if computed already.

    One vectorised step per count y = 0, 1, ... touches only the customers whose upper end is not reached yet,
    and the (x, T) pairs they need.
    """
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    bg = bgnbd_shape(clv.bgnbd_params_)
    p_alive = bgnbd_p_alive(x, t_x, T, **bg)
    codes, x_u, T_u = _pairs(x, T) if pairs is None else pairs
    steps = _alive_steps(t, x_u, T_u, _draw_arrays(clv, draws))
    tail = (1.0 - level) / 2.0
    n = len(x)
    low, high = np.zeros(n), np.full(n, float(MAX_COUNT))
    aim = np.full(n, np.inf)  # F(low - 1) + level, once the lower end is known
    previous = np.zeros(n)  # F(y - 1)
    active = np.arange(n)  # customers whose upper end is not known yet
    columns = np.arange(len(x_u))  # pairs still computed; position in ``columns`` = column of ``steps``
    cdf = np.zeros(len(x_u))
    while active.size and steps.y <= MAX_COUNT:
        y = steps.y
        cdf[columns] += steps.next().mean(axis=0)
        F = 1.0 - p_alive[active] * (1.0 - np.minimum(cdf[codes[active]], 1.0))
        before = previous[active]
        first = np.isinf(aim[active]) & (F >= tail)  # the lower end is y or y + 1
        up = first & (F - tail < tail - before)
        low[active[first]] = y + up[first]
        aim[active[first]] = np.minimum(np.where(up, F, before)[first] + level, 1.0 - 1e-12)
        reached = F >= aim[active]
        back = reached & (aim[active] - before < F - aim[active]) & (y - 1 >= low[active]) & (not reach)
        high[active[reached]] = y - back[reached]
        previous[active] = F
        active = active[~reached]
        needed = np.zeros(len(x_u), bool)
        needed[codes[active]] = True
        keep = needed[columns]
        if not keep.all():
            steps.keep(keep)
            columns = columns[keep]
    return low, high


def _probabilities(level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    return tail, 1.0 - tail


def customer_intervals(clv: CLVParams, rfm: pd.DataFrame, *, horizon_days: float, season_factor: float = 1.0,
                       spend_per_purchase: np.ndarray | None = None) -> pd.DataFrame:
    """Per customer ``expected_purchases_low/_high`` (purchases in the next ``horizon_days``) and
    ``clv_low/_high`` at ``clv.interval_level``, indexed like ``rfm`` (the CLV's upper end by ``reach``, see
    :func:`count_interval`).

    ``season_factor`` multiplies the purchase rate of the horizon ahead (as the shipped forecast does): a
    Poisson process at rate f·lambda over t is one at lambda over f·t, so the count distribution is read at
    ``f·t``. The CLV's ends are the counts' ends over the CLV horizon times the customer's expected spend per
    purchase and the share of its expected purchases the discounting keeps (``clv / (E[purchases] · spend)``).
    ``spend_per_purchase``: the Gamma-Gamma expected spend per purchase of each customer, if computed already.
    """
    frame = customer_interval_values(clv, {c: rfm[c].to_numpy(dtype=np.float64) for c in RFM_COLUMNS if c in rfm},
                                     horizon_days=horizon_days, season_factor=season_factor,
                                     spend_per_purchase=spend_per_purchase)
    return pd.DataFrame(frame, index=rfm.index)


def customer_interval_values(clv: CLVParams, values: dict[str, np.ndarray], *, horizon_days: float,
                             season_factor: float = 1.0,
                             spend_per_purchase: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """:func:`customer_intervals` on float64 arrays of the RFM columns (:func:`scoring.clv.rfm_values`): one array
    per interval column."""
    x = values["frequency"].astype(np.int64)
    unit = clv.bgnbd_params_["time_unit_days"]
    t_x, T = values["recency"] / unit, values["T"] / unit
    level, pairs = clv.interval_level, _pairs(x, T)
    purchases = count_interval(x, t_x, T, t=season_factor * horizon_days / unit, clv=clv, level=level, pairs=pairs)
    lifetime = count_interval(x, t_x, T, t=clv.clv_horizon_days / unit, clv=clv, level=level, reach=True, pairs=pairs)
    spend = (gamma_gamma_expected_spend(x, values["monetary_value"], **clv.gg_params_)
             if spend_per_purchase is None else np.asarray(spend_per_purchase, dtype=np.float64))
    kept = _discount_share(clv, pairs)
    return {
        "expected_purchases_low": purchases[0], "expected_purchases_high": purchases[1],
        "clv_low": lifetime[0] * spend * kept, "clv_high": lifetime[1] * spend * kept,
    }


def _discount_share(clv: CLVParams, pairs: tuple) -> np.ndarray:
    """Discounted over undiscounted expected purchases over the CLV horizon, given alive, per customer of the
    (x, T) ``pairs`` (:func:`_pairs`, times in units)."""
    bg = bgnbd_shape(clv.bgnbd_params_)
    codes, x_u, T_u = pairs
    unit = clv.bgnbd_params_["time_unit_days"]
    total = bgnbd_expected_purchases_if_alive(clv.clv_horizon_days / unit, x_u, T_u, **bg)
    discounted = clv._discounted_purchases_if_alive(x_u, T_u, bg)
    share = np.divide(discounted, total, out=np.ones_like(total), where=total > 1e-12)
    return np.clip(share, 0.0, 1.0)[codes]


# --------------------------------------------------------------------------------------------------
# The population
# --------------------------------------------------------------------------------------------------


def _alive_moments(t: float, x_u: np.ndarray, T_u: np.ndarray, draws: dict) -> tuple[np.ndarray, np.ndarray]:
    """E[X] and E[X^2] of the count given alive, per draw (rows) and (x, T) pair (columns): sums over y
    until less than :data:`TAIL` is left (or :data:`MAX_COUNT`). The running sums are kept for the pairs still
    summed only, and written out as pairs finish."""
    steps = _alive_steps(t, x_u, T_u, draws)
    k, n = len(draws["r"]), len(x_u)
    m1, m2 = np.zeros((k, n)), np.zeros((k, n))
    s1, s2, cdf = np.zeros((k, n)), np.zeros((k, n)), np.zeros((k, n))
    columns = np.arange(n)
    while columns.size and steps.y <= MAX_COUNT:
        y = steps.y
        pmf = steps.next()
        s1 += y * pmf
        s2 += y * y * pmf
        cdf += pmf
        keep = (1.0 - cdf).max(axis=0) > TAIL
        if steps.y > MAX_COUNT:
            keep[:] = False
        if not keep.all():
            m1[:, columns[~keep]], m2[:, columns[~keep]] = s1[:, ~keep], s2[:, ~keep]
            steps.keep(keep)
            columns, s1, s2, cdf = columns[keep], s1[:, keep], s2[:, keep], cdf[:, keep]
    return m1, m2


@dataclass(frozen=True)
class PopulationInterval:
    """Total purchases and spend of the scored customers over ``horizon_days``: the forecast and its interval.

    ``seasonal_widening``: the log-sd the interval was widened by because the season ahead was never observed
    (0 where it was); ``note`` says so in words."""

    horizon_days: int
    level: float
    purchases: float
    purchases_low: float
    purchases_high: float
    spend: float
    spend_low: float
    spend_high: float
    seasonal_widening: float
    note: str

    def to_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in self.__dict__.items()}

    def scaled(self, factor: float, note: str) -> PopulationInterval:
        """The forecast and its ends times ``factor`` (another total level, the same relative width); ``note`` is
        added to this one's."""
        keys = ("purchases", "purchases_low", "purchases_high", "spend", "spend_low", "spend_high")
        return replace(self, **{k: getattr(self, k) * factor for k in keys},
                       note="; ".join(n for n in (self.note, note) if n))

    def describe(self) -> str:
        """One line, e.g. 'total purchases in the next 91 days: 1,234 (80% interval 1,100–1,380); spend ...'."""
        pct = f"{self.level:.0%}"
        line = (f"total purchases in the next {self.horizon_days} days: {self.purchases:,.0f} ({pct} interval "
                f"{self.purchases_low:,.0f}–{self.purchases_high:,.0f}); spend {self.spend:,.0f} "
                f"({self.spend_low:,.0f}–{self.spend_high:,.0f})")
        return line + (f"; {self.note}" if self.note else "")


def _spend_terms(clv_draw: dict, x: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E[z], E[1/nu^2]) per customer for one Gamma-Gamma draw: one purchase's expected spend p E[1/nu] and the
    second inverse moment of nu's posterior Gamma(q + p x, rate v + x m) (Fader, Hardie & Lee 2005, "RFM and
    CLV", eq. 5 is E[z])."""
    p, q, v = clv_draw["p"], clv_draw["q"], clv_draw["v"]
    shape, rate = q + p * x, v + x * m
    inv1 = rate / (shape - 1.0)
    inv2 = rate * rate / ((shape - 1.0) * np.maximum(shape - 2.0, 1e-3))
    return p * inv1, inv2


def seasonal_log_sd(*, season_seen: bool, horizon_days: int, measured_on: int = 0) -> float:
    """The stated seasonal rule (:data:`SEASON_UNSEEN_LOG_SD`, :data:`SEASON_SEEN_LOG_SD`); 0 for a horizon of a
    year or more (it holds every season). A factor measured on a window of ``measured_on`` purchases (0: none)
    is at least as uncertain as that count, whose Poisson log-sd is 1/sqrt(n): the rule covers a window of 100
    purchases or more; a smaller one's own noise is larger (25 purchases: 0.20)."""
    if horizon_days >= SEASON_YEAR_DAYS:
        return 0.0
    rule = SEASON_SEEN_LOG_SD if season_seen else SEASON_UNSEEN_LOG_SD
    return float(max(rule, 1.0 / np.sqrt(measured_on) if measured_on > 0 else 0.0))


def population_interval(clv: CLVParams, rfm: pd.DataFrame, *, horizon_days: int, season_factor: float = 1.0,
                        season_log_sd: float = 0.0, season_seen: bool = True,
                        seed: int = POPULATION_SEED) -> PopulationInterval:
    """Total purchases and spend of the customers of ``rfm`` in the next ``horizon_days``, with their interval at
    ``clv.interval_level``.

    Per parameter draw k, the customers are independent: the total's mean and variance are the sums of the
    customers' (``E[Y] = P(alive) E[X]``, ``E[Y^2] = P(alive) E[X^2]`` with X the count given alive; spend
    S = the sum of Y purchases' values, ``Var S = E[Y] p E[1/nu^2] + E[Y^2] p^2 E[1/nu^2] - (E[Y] p E[1/nu])^2``).
    The totals are the mixture over draws of normals with these moments (central limit: thousands of
    customers). Both totals are also multiplied by a log-normal factor of log-sd ``season_log_sd``
    (:func:`seasonal_log_sd`: the stated seasonal rule; 0 judges the BG/NBD model alone); ``season_seen`` says
    whether the season ahead was observed (the note). The interval's ends are Monte Carlo quantiles (``seed``).
    """
    x, t_x, T = _rfm_arrays(rfm)
    m = np.maximum(rfm["monetary_value"].to_numpy(dtype=np.float64), 0.0)
    unit = clv.bgnbd_params_["time_unit_days"]
    t_x, T = t_x / unit, T / unit
    draws = _draw_arrays(clv, None)
    codes, x_u, T_u = _pairs(x, T)
    m1, m2 = _alive_moments(season_factor * horizon_days / unit, x_u, T_u, draws)
    n_draws = len(draws["r"])
    mean, var = np.zeros((2, n_draws)), np.zeros((2, n_draws))
    for k in range(n_draws):
        one = {key: float(draws[key][k]) for key in DRAW_KEYS}
        alive = bgnbd_p_alive(x, t_x, T, r=one["r"], alpha=one["alpha"], a=one["a"], b=one["b"])
        ey, ey2 = alive * m1[k][codes], alive * m2[k][codes]
        ez, inv2 = _spend_terms(one, x, m)
        mean[:, k] = ey.sum(), (ey * ez).sum()
        var[0, k] = (ey2 - ey * ey).sum()
        var[1, k] = (ey * one["p"] * inv2 + ey2 * one["p"] ** 2 * inv2 - (ey * ez) ** 2).sum()
    widen = float(season_log_sd)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, n_draws, POPULATION_SAMPLES)
    noise = rng.standard_normal((2, POPULATION_SAMPLES))
    factor = np.exp(widen * rng.standard_normal(POPULATION_SAMPLES))
    totals = np.maximum(mean[:, pick] + np.sqrt(np.maximum(var[:, pick], 0.0)) * noise, 0.0) * factor
    probs = _probabilities(clv.interval_level)
    low, high = np.quantile(totals, probs, axis=1)
    spread = f"x{np.exp(-1.2816 * widen):.2f} to x{np.exp(1.2816 * widen):.2f} at 80%"
    note = ("" if not widen else f"the season ahead was never observed: the interval is widened by the stated "
            f"seasonal rule ({spread})" if not season_seen else f"the season's factor, measured on an earlier window, "
            f"may have moved since: the interval is widened by the stated seasonal rule ({spread})")
    return PopulationInterval(horizon_days=int(horizon_days), level=float(clv.interval_level),
                              purchases=float(mean[0].mean()), purchases_low=float(low[0]),
                              purchases_high=float(high[0]), spend=float(mean[1].mean()), spend_low=float(low[1]),
                              spend_high=float(high[1]), seasonal_widening=widen, note=note)


def population_forecast(models, table: pd.DataFrame) -> PopulationInterval:
    """:func:`population_interval` of a bundle's ``Models`` on its as-of snapshot (features with RFM): the
    horizon, the season's factor and whether the season ahead was ever observed come from ``models``. The interval
    is centred on the shipped total, BG/NBD's expected purchases times ``models.total_factor`` (whichever level the
    judging window chose; on the table a model was trained at, the sum of its scores' ``expected_purchases``, the
    Poisson model being scaled to it there), keeping its relative width: the mixture's mean differs from it by the
    season's effect on BG/NBD's clock (a factor applied as a longer or shorter horizon, not as a multiple) and the
    draws' skew."""
    interval = population_interval(models.clv, table, horizon_days=models.horizon_days,
                                   season_factor=models.season_factor,
                                   season_log_sd=seasonal_log_sd(season_seen=models.season_seen,
                                                                 horizon_days=models.horizon_days,
                                                                 measured_on=models.season_measured_on),
                                   season_seen=models.season_seen)
    shipped = float(np.asarray(table["bgnbd_expected_purchases"], dtype=np.float64).sum()) * models.total_factor
    level = "" if models.level_factor == 1.0 else (f"the total is the LightGBM Poisson model's own, chosen on the "
                                                   f"judging window (x{models.level_factor:.2f} BG/NBD's with the "
                                                   "season)")
    return interval.scaled(shipped / interval.purchases, level)


# --------------------------------------------------------------------------------------------------
# Rank stability
# --------------------------------------------------------------------------------------------------


def membership_probability(values_by_draw: np.ndarray, *, k: int) -> np.ndarray:
    """Each customer's share of parameter draws in which they are among the ``k`` highest values.

    ``values_by_draw``: one row per draw, one column per customer (e.g. :func:`clv_by_draw` times the churn
    probability). A customer listed in the top k by the point estimate with membership 0.95 would be in the
    list under 95% of the parameter values the data allow."""
    values = np.asarray(values_by_draw, dtype=np.float64)
    n = values.shape[1]
    if k <= 0:
        return np.zeros(n)
    if k >= n:
        return np.ones(n)
    threshold = -np.partition(-values, k - 1, axis=1)[:, k - 1]  # the k-th highest value of each draw
    return (values >= threshold[:, None]).mean(axis=0)


def clv_by_draw(clv: CLVParams, rfm: pd.DataFrame, *, draws: int | None = None) -> np.ndarray:
    """Every customer's CLV under each stored parameter draw (rows: draws), the closed forms of
    :meth:`CLVParams.predict` with the draw's parameters."""
    table = _draw_arrays(clv, draws)
    rows = []
    for k in range(len(table["r"])):
        model = CLVParams(time_unit_days=clv.time_unit_days, discount_rate=clv.discount_rate,
                          clv_horizon_days=clv.clv_horizon_days, interval_level=clv.interval_level)
        model.bgnbd_params_ = {key: float(table[key][k]) for key in BGNBD_PARAMS} | {
            "time_unit_days": clv.bgnbd_params_["time_unit_days"]}
        model.gg_params_ = {key: float(table[key][k]) for key in ("p", "q", "v")}
        rows.append(model.predict(rfm, horizon_days=1)["clv"].to_numpy())
    return np.array(rows)

def top_positions(value_at_risk: np.ndarray, count: int = RANK_CANDIDATES) -> np.ndarray:
    """Row positions, in order, of the ``count`` highest values at risk (missing ones count as lowest); all
    of them when there are no more (the customers whose values per draw a score table keeps)."""
    var = np.nan_to_num(np.asarray(value_at_risk, dtype=np.float64), nan=-np.inf)
    if count >= len(var):
        return np.arange(len(var))
    return np.sort(np.argpartition(-var, count - 1)[:count]) if count > 0 else np.empty(0, np.int64)


def value_at_risk_draws(clv: CLVParams, rfm: pd.DataFrame, value_at_risk: np.ndarray, point_clv: np.ndarray, *,
                        candidates: int = RANK_CANDIDATES, draws: int = RANK_DRAWS) -> tuple[np.ndarray, np.ndarray]:
    """(positions, values): the ``candidates`` customers of highest ``value_at_risk`` (row positions of ``rfm``)
    and their value at risk under each of the first ``draws`` parameter draws (float32, one row per customer).

    A draw moves the CLV (:func:`clv_by_draw`); the shipped value at risk is scaled by the draw's CLV over the
    point estimate's (``point_clv``, BG/NBD's CLV at the fitted parameters): the churn probability and the
    shipped forecast's spread over customers stay as they are. Bundles without stored draws: no positions."""
    if getattr(clv, "param_draws_", None) is None or not len(value_at_risk):
        return np.empty(0, np.int64), np.empty((0, draws), np.float32)
    positions = top_positions(value_at_risk, candidates)
    rfm = rfm.iloc[positions]
    by_draw = clv_by_draw(clv, rfm, draws=draws)  # draws x customers
    point = np.asarray(point_clv, dtype=np.float64)[positions]
    factor = np.divide(by_draw, point, out=np.ones_like(by_draw), where=point > 1e-12)
    return positions, (np.asarray(value_at_risk, dtype=np.float64)[positions] * factor).T.astype(np.float32)
