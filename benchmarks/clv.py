"""Benchmark: BG/NBD fit, plain lifetimes on the day-level summary vs CLVModel's compressed weekly fit.

Draws customers from the BG/NBD model with CDNOW-like parameters (r=0.243, alpha=4.414 per week,
a=0.793, b=2.426; Fader, Hardie & Lee 2005), first purchases spread over two years, day resolution
(``seeds.generate.simulate_bgnbd_summary``), then times in the same process:

(a) ``lifetimes.BetaGeoFitter().fit`` on frequency / recency / T in days, no compression;
(b) what ``CLVModel.fit`` runs for BG/NBD: ``compress_bgnbd`` (whole weeks, customers in one cell counted, mean times kept)
    + ``fit_bgnbd`` (warm start, robust search) — median of ``--repeats`` runs;
(c) for information, the whole ``CLVModel.fit`` (input checks, BG/NBD and Gamma-Gamma on simulated
    Gamma-Gamma spend).

Usage: ``.venv/bin/python benchmarks/clv.py [--customers 1000000] [--seed 0] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from churnclv.seeds.generate import CDNOW_LIKE, simulate_bgnbd_summary
from churnclv.training.clv import CLVModel
from churnclv.training.mle import compress_bgnbd, fit_bgnbd

PAPER_WEEKS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def simulate(n_customers: int, *, seed: int) -> pd.DataFrame:
    """RFM in days for ``n_customers`` CDNOW-like BG/NBD customers over two years, with Gamma-Gamma spend."""
    rng = np.random.default_rng(seed)
    rfm = simulate_bgnbd_summary(n_customers, **asdict(CDNOW_LIKE), start=0.0, end=730.0, rng=rng)
    x = rfm["frequency"].to_numpy()
    nu = rng.gamma(shape=3.74, scale=1.0 / 15.44, size=len(rfm))  # Gamma-Gamma, CDNOW estimates
    mean_spend = rng.gamma(shape=6.25 * np.maximum(x, 1.0)) / (np.maximum(x, 1.0) * nu)
    return rfm.assign(monetary_value=np.where(x > 0, np.round(mean_spend, 2), 0.0))


def plain_lifetimes(rfm: pd.DataFrame) -> tuple[float, dict]:
    """Seconds and parameters (alpha per day) of lifetimes' BetaGeoFitter on the day-level summary."""
    with warnings.catch_warnings():
        from lifetimes import BetaGeoFitter
    start = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        fitter = BetaGeoFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"])
    return time.perf_counter() - start, fitter.params_.to_dict()


def ours(rfm: pd.DataFrame, *, time_unit_days: float = 7.0) -> tuple[float, dict, dict, int]:
    """Seconds, parameters (alpha per week), report and compressed rows of CLVModel's BG/NBD part."""
    start = time.perf_counter()
    summary = compress_bgnbd(rfm["frequency"].to_numpy(), rfm["recency"].to_numpy(), rfm["T"].to_numpy(),
                             time_unit_days=time_unit_days)
    params, report = fit_bgnbd(summary)
    return time.perf_counter() - start, params, report, len(summary)


def _row(name: str, params: dict, *, alpha_factor: float) -> str:
    values = [params["r"], params["alpha"] * alpha_factor, params["a"], params["b"]]
    return f"  {name:<34}" + "".join(f"{v:>10.4f}" for v in values)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    rfm = simulate(args.customers, seed=args.seed)
    print(f"simulated {len(rfm):,} customers (CDNOW-like BG/NBD, 2 years, days) in {time.perf_counter() - t0:.1f} s")
    ours(rfm.head(5_000))  # warm-up: imports lifetimes/autograd outside the timed region

    t_plain, p_plain = plain_lifetimes(rfm)
    runs = [ours(rfm) for _ in range(max(1, args.repeats))]
    t_ours = statistics.median(r[0] for r in runs)
    _, p_ours, report, rows_after = runs[0]
    model = CLVModel()
    t_full = time.perf_counter()
    model.fit(rfm)
    t_full = time.perf_counter() - t_full

    print(f"\nrows: {len(rfm):,} customers -> {rows_after:,} distinct (x, t_x, T) in whole weeks "
          f"({len(rfm) / rows_after:.0f}x fewer)")
    print(f"(a) plain lifetimes BetaGeoFitter.fit, day-level summary : {t_plain:8.3f} s")
    print(f"(b) CLVModel BG/NBD: compress to weeks + fit (median of {len(runs)}): {t_ours:8.3f} s  "
          f"[runs: {', '.join(f'{r[0]:.3f}' for r in runs)}]")
    print(f"    speed-up (a)/(b): {t_plain / t_ours:.1f}x")
    print(f"(c) full CLVModel.fit (checks + BG/NBD + Gamma-Gamma)   : {t_full:8.3f} s")
    print(f"    method: {report['method']} ({report['path']}), {report['n_attempts']} attempt(s), "
          f"{report['iterations']} BFGS iterations on the full rows; warm start: {report['warm_start']}")
    print(f"\nparameters (alpha per WEEK)        {'r':>10}{'alpha':>10}{'a':>10}{'b':>10}")
    print(_row("generating (CDNOW, FHL 2005)", PAPER_WEEKS, alpha_factor=1.0))
    print(_row("(a) plain lifetimes, days", p_plain, alpha_factor=1.0 / 7.0))
    print(_row("(b) CLVModel, whole weeks", p_ours, alpha_factor=1.0))
    diffs = {k: p_ours[k] / (p_plain[k] / (7.0 if k == "alpha" else 1.0)) - 1 for k in PAPER_WEEKS}
    print("  (b)/(a) - 1: " + ", ".join(f"{k} {v:+.2%}" for k, v in diffs.items()))
    print("  Gamma-Gamma (c): " + ", ".join(f"{k}={v:.3f}" for k, v in model.gg_params_.items())
          + "  (generating p=6.25, q=3.74, v=15.44)")


if __name__ == "__main__":
    main()
