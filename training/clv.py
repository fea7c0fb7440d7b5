"""The CLV model: BG/NBD (purchases, P(alive)) + Gamma-Gamma (spend), fitted robustly, predicting in days.

The closed forms live in :mod:`training.btyd`, the robust fitting on compressed counts in
:mod:`training.mle`. Predictions are computed from the parameters alone (vectorised numpy; no
lifetimes object or training data is kept). All public inputs are in days; the conversion to the
fitting time unit happens inside.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd

from training.btyd import (
    bgnbd_expected_purchases_if_alive,
    bgnbd_p_alive,
    bgnbd_p_no_purchase,
    discount_schedule,
    gamma_gamma_expected_spend,
)
from training.mle import compress_bgnbd, compress_gamma_gamma, fit_bgnbd, fit_gamma_gamma

__all__ = ["CLVModel", "validate_rfm"]

logger = logging.getLogger("churnclv.training.clv")

RFM_COLUMNS = ("frequency", "recency", "T", "monetary_value")
PREDICTION_COLUMNS = (
    "p_alive", "expected_purchases", "p_no_purchase", "expected_spend_per_purchase", "expected_spend", "clv",
)


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


def _fit_warnings(bg_report: dict, gg_report: dict, *, excluded: int) -> list[str]:
    """One line for anything but a clean maximum-likelihood fit."""
    notes = [f"{label}: {report['note']}" for label, report in (("BG/NBD", bg_report), ("Gamma-Gamma", gg_report))
             if report["note"]]
    notes += [f"{label}: optimizer reported precision loss at an optimum; accepted ({report['detail']})"
              for label, report in (("BG/NBD", bg_report), ("Gamma-Gamma", gg_report))
              if report["path"] == "precision_loss_accepted"]
    if excluded > 0.01 * bg_report["repeat_customers"]:  # a handful is in the report, not worth a line
        notes.append(f"{excluded} repeat customer(s) with monetary_value <= 0 left out of the Gamma-Gamma fit")
    return notes


def _log_fit(report: dict) -> None:
    bg, gg = report["bgnbd"], report["gamma_gamma"]
    logger.info(
        "CLV fit: BG/NBD by %s (%s) after %d attempt(s), %d iterations, on %d rows (%d customers); "
        "Gamma-Gamma by %s after %d attempt(s) on %d rows",
        bg["method"], bg["path"], bg["n_attempts"], bg["iterations"], bg["rows_after"], bg["rows_before"],
        gg["method"], gg["n_attempts"], gg["rows_after"],
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
    discount_rate : annual discount rate of the CLV.
    clv_horizon_days : horizon of the CLV in days.

    Attributes
    ----------
    bgnbd_params_ : {r, alpha, a, b, time_unit_days}; alpha per ``time_unit_days`` days.
    gg_params_ : {p, q, v}; v in currency units.
    fit_report_ : how each fit went (method, path, attempts, rows before/after compression, warnings).
    """

    def __init__(
        self,
        *,
        time_unit_days: float = 7.0,
        discount_rate: float = 0.10,
        clv_horizon_days: int = 365,
    ) -> None:
        self.time_unit_days = time_unit_days
        self.discount_rate = discount_rate
        self.clv_horizon_days = clv_horizon_days

    def __repr__(self) -> str:
        return (f"CLVModel(time_unit_days={self.time_unit_days}, discount_rate={self.discount_rate}, "
                f"clv_horizon_days={self.clv_horizon_days})")

    def _check_settings(self) -> None:
        if not self.time_unit_days > 0:
            raise ValueError(f"time_unit_days must be a positive number of days, not {self.time_unit_days}")

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
            The data cannot identify a model (too few customers or repeat buyers; the message says which).
        """
        self._check_settings()
        validate_rfm(rfm)
        x, t_x, T = _rfm_arrays(rfm)
        m = rfm["monetary_value"].to_numpy(dtype=np.float64)
        bg_summary = compress_bgnbd(x, t_x, T, time_unit_days=self.time_unit_days)
        bgnbd, bg_report = fit_bgnbd(bg_summary)
        gg_summary = compress_gamma_gamma(x, m)
        gg, gg_report = fit_gamma_gamma(gg_summary)
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
