"""The fitted CLV model as data: BG/NBD (purchases, P(alive)) + Gamma-Gamma (spend) parameters, predicting in days.

Predictions are computed from the parameters alone with the closed forms of :mod:`scoring.btyd`
(vectorised numpy; no lifetimes object or training data is kept). All public inputs are in days; the
conversion to the fitting time unit happens inside. Fitting lives in ``training.clv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnclv.contract.columns import RFM_COLUMNS
from churnclv.contract.defaults import CLV_HORIZON_DAYS, DISCOUNT_RATE
from churnclv.scoring.btyd import (
    bgnbd_expected_purchases_if_alive,
    bgnbd_p_alive,
    bgnbd_p_no_purchase,
    bgnbd_shape,
    discount_schedule,
    gamma_gamma_expected_spend,
)

#: The default level of the intervals on every forecast (a central 80% interval).
INTERVAL_LEVEL = 0.8
#: The parameters a draw holds: BG/NBD's, then Gamma-Gamma's.
DRAW_KEYS = ("r", "alpha", "a", "b", "p", "q", "v")

__all__ = ["DRAW_KEYS", "INTERVAL_LEVEL", "CLVParams", "check_rfm", "rfm_values", "validate_rfm"]


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
    check_rfm({c: _numbers(rfm[c]) for c in needed}, rfm.index)


def _numbers(column: pd.Series) -> np.ndarray:
    """A column as float64 (non-numeric values NaN); numeric columns without pandas' parsing."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def check_rfm(values: dict[str, np.ndarray], index: pd.Index) -> None:
    """:func:`validate_rfm`'s checks on float64 arrays (``frequency``, ``recency``, ``T``, optionally
    ``monetary_value``; ``index``: the customers, named in the message)."""
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
                f"e.g. customers {_examples(index, bad)}"
            )


def rfm_values(rfm: pd.DataFrame) -> dict[str, np.ndarray]:
    """The four RFM columns of a table as float64 arrays, checked (:func:`validate_rfm`)."""
    missing = [c for c in RFM_COLUMNS if c not in rfm.columns]
    if missing:
        raise ValueError(f"RFM table is missing column(s) {missing}; it has {list(rfm.columns)[:20]}")
    values = {c: _numbers(rfm[c]) for c in RFM_COLUMNS}
    check_rfm(values, rfm.index)
    return values


def _rfm_arrays(rfm: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frequency (int64), recency and T (float64 days) of a validated RFM table."""
    x = rfm["frequency"].to_numpy(dtype=np.float64).astype(np.int64)
    return x, rfm["recency"].to_numpy(dtype=np.float64), rfm["T"].to_numpy(dtype=np.float64)



class CLVParams:
    """BG/NBD (purchases, P(alive)) + Gamma-Gamma (spend) CLV parameters and their predictions.

    Parameters
    ----------
    time_unit_days : fitting time unit in days (7 = weeks); recency and T are rounded to whole units
        for the compressed fit. ``bgnbd_params_["alpha"]`` is in this unit.
    discount_rate : annual discount rate of the CLV.
    clv_horizon_days : horizon of the CLV in days.
    interval_level : the central probability of every interval (0.8: from the 10th to the 90th percentile).

    Attributes
    ----------
    bgnbd_params_ : {r, alpha, a, b, time_unit_days}; alpha per ``time_unit_days`` days.
    gg_params_ : {p, q, v}; v in currency units.
    param_draws_ : {r, alpha, a, b, p, q, v: arrays of equal length}, a fixed, seeded set of draws of the
        parameters from the fits' asymptotic normal on the log scale (absent: intervals carry the purchase
        count's uncertainty only); alpha in ``time_unit_days``.
    fit_report_ : how each fit went (method, path, attempts, rows before/after compression, warnings).
    """

    def __init__(
        self,
        *,
        time_unit_days: float = 7.0,
        discount_rate: float = DISCOUNT_RATE,
        clv_horizon_days: int = CLV_HORIZON_DAYS,
        interval_level: float = INTERVAL_LEVEL,
    ) -> None:
        self.time_unit_days = time_unit_days
        self.discount_rate = discount_rate
        self.clv_horizon_days = clv_horizon_days
        self.interval_level = interval_level

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(time_unit_days={self.time_unit_days}, discount_rate={self.discount_rate}, "
                f"clv_horizon_days={self.clv_horizon_days}, interval_level={self.interval_level})")

    def _check_settings(self) -> None:
        if not self.time_unit_days > 0:
            raise ValueError(f"time_unit_days must be a positive number of days, not {self.time_unit_days}")
        if not 0 < self.interval_level < 1:
            raise ValueError(f"interval_level must be a probability between 0 and 1, not {self.interval_level}")

    def _fitted(self) -> None:
        if not hasattr(self, "bgnbd_params_"):
            raise ValueError("This CLV model is not fitted yet: call fit(rfm) first.")

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
        values = rfm_values(rfm)
        return pd.DataFrame(self.predict_values(values, horizon_days=horizon_days), index=rfm.index)

    def predict_values(self, values: dict[str, np.ndarray], *, horizon_days: int) -> dict[str, np.ndarray]:
        """:meth:`predict` on checked float64 arrays (:func:`rfm_values`): one array per output column."""
        self._fitted()
        if not horizon_days > 0:
            raise ValueError(f"horizon_days must be a positive number of days, not {horizon_days}")
        x = values["frequency"].astype(np.int64)
        unit = self.bgnbd_params_["time_unit_days"]
        bg = bgnbd_shape(self.bgnbd_params_)
        t_x, T = values["recency"] / unit, values["T"] / unit
        p_alive = bgnbd_p_alive(x, t_x, T, **bg)
        # E[Y(t) | alive] depends on (x, T) only, which many customers share: evaluate 2F1 once per pair.
        codes, pairs = pd.factorize(x + 1j * T)
        x_u, T_u = pairs.real, pairs.imag
        purchases = p_alive * bgnbd_expected_purchases_if_alive(horizon_days / unit, x_u, T_u, **bg)[codes]
        discounted = p_alive * self._discounted_purchases_if_alive(x_u, T_u, bg)[codes]
        spend = gamma_gamma_expected_spend(x, values["monetary_value"], **self.gg_params_)
        return {
            "p_alive": p_alive,
            "expected_purchases": purchases,
            "p_no_purchase": bgnbd_p_no_purchase(horizon_days / unit, x, t_x, T, **bg),
            "expected_spend_per_purchase": spend,
            "expected_spend": purchases * spend,
            "clv": spend * discounted,
        }

    def _discounted_purchases_if_alive(self, x, T, bg: dict) -> np.ndarray:
        """Sum over months k of (E[Y(t_k) | alive] - E[Y(t_{k-1}) | alive]) / (1 + d)^(t_k/365); times in units."""
        ends, factors = discount_schedule(horizon_days=self.clv_horizon_days, annual_rate=self.discount_rate)
        unit = self.bgnbd_params_["time_unit_days"]
        total, previous = np.zeros(len(x)), np.zeros(len(x))
        # a dozen months (rows) by (x, T) pairs (columns) in one call; summed month by month
        months = bgnbd_expected_purchases_if_alive(np.asarray(ends, dtype=np.float64)[:, None] / unit,
                                                   np.asarray(x)[None, :], np.asarray(T)[None, :], **bg)
        for cumulative, factor in zip(months, factors):
            total += factor * (cumulative - previous)
            previous = cumulative
        return total

    def to_dict(self) -> dict:
        """The settings and fitted parameters as plain JSON-ready data (see :meth:`from_dict`)."""
        self._fitted()
        draws = getattr(self, "param_draws_", None)
        return {"time_unit_days": self.time_unit_days, "discount_rate": self.discount_rate,
                "clv_horizon_days": self.clv_horizon_days, "bgnbd": dict(self.bgnbd_params_),
                "gamma_gamma": dict(self.gg_params_), "interval_level": float(self.interval_level),
                "draws": None if draws is None else {k: [float(v) for v in draws[k]] for k in DRAW_KEYS}}

    @classmethod
    def from_dict(cls, data: dict) -> CLVParams:
        """The model that :meth:`to_dict` described."""
        model = cls(time_unit_days=float(data["time_unit_days"]), discount_rate=float(data["discount_rate"]),
                    clv_horizon_days=int(data["clv_horizon_days"]),
                    interval_level=float(data.get("interval_level", INTERVAL_LEVEL)))
        model.bgnbd_params_ = {k: float(v) for k, v in data["bgnbd"].items()}
        model.gg_params_ = {k: float(v) for k, v in data["gamma_gamma"].items()}
        if data.get("draws"):  # bundles saved before the intervals have none
            model.param_draws_ = {k: np.asarray(data["draws"][k], dtype=np.float64) for k in DRAW_KEYS}
        return model
