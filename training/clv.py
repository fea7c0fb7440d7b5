"""Fitting the CLV model: BG/NBD + Gamma-Gamma, robustly, on compressed counts.

The closed forms and the predictions live in :mod:`scoring.clv` (the artifact reads them back), the
robust fitting in :mod:`training.mle`. :class:`CLVModel` is :class:`scoring.clv.CLVParams` with ``fit``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd

from scoring.clv import CLVParams, _rfm_arrays, validate_rfm
from training.mle import compress_bgnbd, compress_gamma_gamma, fit_bgnbd, fit_gamma_gamma

__all__ = ["CLVModel"]

logger = logging.getLogger("churnclv.training.clv")


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
