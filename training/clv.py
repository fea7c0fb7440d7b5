"""Fitting the CLV model: BG/NBD + Gamma-Gamma, robustly, on compressed counts.

The closed forms and the predictions live in :mod:`scoring.clv` (the artifact reads them back), the
robust fitting in :mod:`training.mle`. :class:`CLVModel` is :class:`scoring.clv.CLVParams` with ``fit``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnclv.scoring.btyd import BGNBD_PARAMS, bgnbd_shape
from churnclv.scoring.clv import DRAW_KEYS, CLVParams, _rfm_arrays, validate_rfm
from churnclv.training.mle import (
    bgnbd_log_covariance,
    compress_bgnbd,
    compress_gamma_gamma,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_log_covariance,
    merge_bgnbd,
    merge_gamma_gamma,
)

__all__ = ["CLVCounts", "CLVModel"]

logger = logging.getLogger("churnclv.training.clv")

#: How many parameter draws a fitted model keeps (the bundle stores them; every interval reads them), and
#: the seed that fixes them (the same data give the same draws, so the same intervals).
N_DRAWS = 100
DRAW_SEED = 20050101
#: Gamma-Gamma draws keep q above this (q <= 1: an infinite mean spend).
MIN_Q = 1.05
#: A draw moves a log-parameter by at most this much (a factor e^4 = 55 either way): a parameter the data
#: barely identify (a log-sd of several units) would otherwise draw values that overflow.
MAX_LOG_SHIFT = 4.0


def parameter_draws(bgnbd: dict, gg: dict, *, bg_cov: np.ndarray, gg_cov: np.ndarray, n: int = N_DRAWS,
                    seed: int = DRAW_SEED) -> dict[str, np.ndarray]:
    """``n`` seeded draws of (r, alpha, a, b, p, q, v) from the asymptotic normal of the fits on the log scale:
    log-parameters ~ N(log estimate, covariance); BG/NBD and Gamma-Gamma independent (separate likelihoods).
    Parameters the fit holds at 0 (the NBD limit's a, b) stay 0; q stays above :data:`MIN_Q`; no draw moves a
    log-parameter by more than :data:`MAX_LOG_SHIFT`."""
    rng = np.random.default_rng(seed)
    out = {}
    for names, point, cov in ((BGNBD_PARAMS, bgnbd, bg_cov), (("p", "q", "v"), gg, gg_cov)):
        centre = np.array([point[k] for k in names], dtype=np.float64)
        shift = np.clip(rng.multivariate_normal(np.zeros(len(names)), cov, size=n, method="eigh"),
                        -MAX_LOG_SHIFT, MAX_LOG_SHIFT)
        values = centre * np.exp(shift)  # 0 stays 0
        out |= {k: values[:, i] for i, k in enumerate(names)}
    out["q"] = np.maximum(out["q"], MIN_Q)
    return {k: out[k] for k in DRAW_KEYS}


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


@dataclass(frozen=True)
class CLVCounts:
    """What a CLV fit reads of an RFM table: its compressed BG/NBD and Gamma-Gamma counts.

    They stay small however many customers there are (thousands of rows for millions of customers),
    and the counts of disjoint groups of customers merge into those of their union
    (:meth:`merge`): a cluster computes them on partitions of customers and the fit runs on the sum.

    Attributes
    ----------
    bgnbd : :func:`training.mle.compress_bgnbd` output. gamma_gamma : :func:`compress_gamma_gamma` output.
    customers : rows of the RFM table. repeat : customers with frequency > 0.
    excluded : repeat customers with monetary_value <= 0 (left out of the Gamma-Gamma fit).
    """

    bgnbd: pd.DataFrame
    gamma_gamma: pd.DataFrame
    customers: int
    repeat: int
    excluded: int

    @classmethod
    def of(cls, rfm: pd.DataFrame, *, time_unit_days: float) -> CLVCounts:
        """The counts of an RFM table (``features.build_features`` output), checked against its contract."""
        validate_rfm(rfm)
        x, t_x, T = _rfm_arrays(rfm)
        m = rfm["monetary_value"].to_numpy(dtype=np.float64)
        return cls(bgnbd=compress_bgnbd(x, t_x, T, time_unit_days=time_unit_days),
                   gamma_gamma=compress_gamma_gamma(x, m), customers=len(rfm), repeat=int(np.sum(x > 0)),
                   excluded=int(np.sum((x > 0) & ~(m > 0))))

    @classmethod
    def merge(cls, parts: Sequence[CLVCounts]) -> CLVCounts:
        """The counts of the union of disjoint groups of customers (equal to :meth:`of` on all of them)."""
        return cls(bgnbd=merge_bgnbd([p.bgnbd for p in parts]),
                   gamma_gamma=merge_gamma_gamma([p.gamma_gamma for p in parts]),
                   customers=sum(p.customers for p in parts), repeat=sum(p.repeat for p in parts),
                   excluded=sum(p.excluded for p in parts))


class CLVModel(CLVParams):
    """:class:`scoring.clv.CLVParams` fitted on an RFM table (scikit-learn style ``fit``).

    Attributes
    ----------
    fit_report_ : how each fit went (method, path, attempts, rows before/after compression, warnings).
    """

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
        return self.fit_counts(CLVCounts.of(rfm, time_unit_days=self.time_unit_days))

    def fit_counts(self, counts: CLVCounts) -> CLVModel:
        """Fit BG/NBD and Gamma-Gamma on the compressed counts of an RFM table (:meth:`fit` on
        ``CLVCounts.of(rfm)``; the counts were compressed in ``time_unit_days``)."""
        self._check_settings()
        bgnbd, bg_report = fit_bgnbd(counts.bgnbd)
        gg, gg_report = fit_gamma_gamma(counts.gamma_gamma)
        self.bgnbd_params_ = bgnbd | {"time_unit_days": float(self.time_unit_days)}
        self.gg_params_ = gg
        bg_cov = bgnbd_log_covariance(counts.bgnbd, bgnbd, method=bg_report["method"])
        gg_cov = gamma_gamma_log_covariance(counts.gamma_gamma, gg, method=gg_report["method"])
        self.param_draws_ = parameter_draws(bgnbd, gg, bg_cov=bg_cov, gg_cov=gg_cov)
        bg_report = bg_report | {"log_sd": dict(zip(BGNBD_PARAMS, np.sqrt(np.diag(bg_cov)).tolist()))}
        gg_report = gg_report | {"log_sd": dict(zip(("p", "q", "v"), np.sqrt(np.diag(gg_cov)).tolist()))}
        excluded = counts.excluded
        self.fit_report_ = {
            "time_unit_days": float(self.time_unit_days),
            "bgnbd": bg_report | {"rows_before": counts.customers, "rows_after": len(counts.bgnbd)},
            "gamma_gamma": gg_report | {"rows_before": counts.repeat - excluded, "rows_after": len(counts.gamma_gamma),
                                        "excluded_nonpositive_spend": excluded},
            "warnings": _fit_warnings(bg_report, gg_report, excluded=excluded),
        }
        _log_fit(self.fit_report_)
        return self

    def to_lifetimes(self) -> tuple[Any, Any]:
        """Fresh lifetimes ``BetaGeoFitter`` / ``GammaGammaFitter`` carrying only the fitted ``params_``
        (for lifetimes' plots and methods; their time unit is ``bgnbd_params_["time_unit_days"]`` days)."""
        self._fitted()
        with warnings.catch_warnings():
            from lifetimes import BetaGeoFitter, GammaGammaFitter
        bgf, ggf = BetaGeoFitter(), GammaGammaFitter()
        bgf.params_ = pd.Series(bgnbd_shape(self.bgnbd_params_))
        ggf.params_ = pd.Series(self.gg_params_)
        return bgf, ggf
