"""How far to trust what is served: the monitor's latest verdict and the score table's drift, in ``GET /model``,
the page and ``/metrics``.

- The verdict is the file ``churnclv monitor`` writes beside the served score table (``monitor.json``,
  :data:`scoring.scores.MONITOR_FILE`), read again whenever it changes.
- The drift report is in the score table's own metadata (``churnclv score`` writes it, :mod:`scoring.drift`).
- The Prometheus gauges (``churnclv_monitor_*``, ``churnclv_drift_*``) are set from both by :func:`watch`, a
  daemon thread of each worker, at start and at every refresh period; in BentoML's multiprocess mode a gauge
  shows the value its worker set last (``mostrecent``).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from pathlib import Path
from typing import Any

from churnclv.scoring.scores import MONITOR_FILE
from churnclv.serving.table import ScoreTable, file_fingerprint

log = logging.getLogger("churnclv.serving")
#: The verdict as a gauge's value (-1: no check yet).
VERDICT_VALUES = {"holding": 0.0, "degrading": 1.0, "broken": 2.0}
_read: dict[str, tuple[tuple | None, dict | None]] = {}


def monitor_path(table: ScoreTable) -> Path:
    return Path(table.path).parent / MONITOR_FILE


def monitor_verdict(table: ScoreTable | None) -> dict | None:
    """The monitor's latest verdict beside the served table (None: no check yet, or a file that is not one)."""
    if table is None:
        return None
    path = monitor_path(table)
    fingerprint = file_fingerprint(path)
    known = _read.get(str(path))
    if known is not None and known[0] == fingerprint:
        return known[1]
    try:
        found = json.loads(path.read_text(encoding="utf-8")) if fingerprint is not None else None
    except (OSError, ValueError):
        found = None
    found = found if isinstance(found, dict) and found.get("verdict") in VERDICT_VALUES else None
    _read[str(path)] = (fingerprint, found)
    return found


def drift(table: ScoreTable | None) -> dict | None:
    """The drift report of the served table (:func:`scoring.drift.drift_report`), None when it has none."""
    text = None if table is None else table.attrs.get("drift")
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def trust_warnings(table: ScoreTable | None) -> list[str]:
    """The lines a client should read: the drift warning; a degrading or broken verdict."""
    lines = []
    report = drift(table)
    if report and report.get("warning"):
        lines.append(str(report["warning"]))
    verdict = monitor_verdict(table)
    if verdict and verdict["verdict"] != "holding":
        lines.append(f"monitor: the model is {verdict['verdict']} on the scores as of {verdict.get('scores_as_of')} "
                     f"(v{verdict.get('model_version')}): " + "; ".join(verdict.get("reasons") or []))
    return lines


@functools.cache
def gauges() -> dict[str, Any]:
    """The gauges, created on first use (after BentoML set PROMETHEUS_MULTIPROC_DIR in the worker)."""
    from prometheus_client import Gauge

    def gauge(name: str, text: str, labels: tuple[str, ...] = ()) -> Any:
        return Gauge(name, text, labelnames=labels, multiprocess_mode="mostrecent")

    return {
        "verdict": gauge("churnclv_monitor_verdict", "Latest monitor verdict: 0 holding, 1 degrading, 2 broken, -1 none"),
        "roc_auc": gauge("churnclv_monitor_roc_auc", "Churn AUC of the latest checked score table on what happened"),
        "backtest_roc_auc": gauge("churnclv_monitor_backtest_roc_auc", "Churn AUC of the same model in its backtest"),
        "lift_top_decile": gauge("churnclv_monitor_lift_top_decile", "Top-decile lift of the latest checked table"),
        "purchases_total_error_pct": gauge("churnclv_monitor_purchases_total_error_pct",
                                           "Total purchases forecast against realised, percent"),
        "psi": gauge("churnclv_drift_psi", "Population stability index of a model input, served scores vs training",
                     ("feature",)),
        "psi_max": gauge("churnclv_drift_psi_max", "Largest PSI over the model inputs"),
        "drifted": gauge("churnclv_drift_features", "Model inputs above the PSI warning line (0.25)"),
        "outside": gauge("churnclv_drift_outside_range_share", "Share of scored customers outside the training range"),
        "unseen": gauge("churnclv_drift_unseen_share", "Share of scored customers the model never saw"),
        "warning": gauge("churnclv_drift_warning", "1 when a model input drifted beyond the warning line"),
    }


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")


def publish(table: ScoreTable | None) -> None:
    """Set the gauges from the served table's drift report and the monitor's verdict beside it."""
    g = gauges()
    verdict = monitor_verdict(table)
    g["verdict"].set(VERDICT_VALUES[verdict["verdict"]] if verdict else -1.0)
    for key in ("roc_auc", "backtest_roc_auc", "lift_top_decile", "purchases_total_error_pct"):
        g[key].set(_number((verdict or {}).get(key)))
    report = drift(table) or {}
    for feature, value in (report.get("psi") or {}).items():
        g["psi"].labels(feature=feature).set(_number(value))
    g["psi_max"].set(_number(report.get("psi_max")))
    g["drifted"].set(float(len(report.get("drifted") or [])) if report else float("nan"))
    g["outside"].set(_number(report.get("outside_range")))
    g["unseen"].set(_number(report.get("unseen")))
    g["warning"].set(1.0 if report.get("warning") else 0.0 if report else float("nan"))


def watch(state) -> threading.Thread:
    """Publish now, then every ``state.config.refresh_seconds`` (at least once a minute) in a daemon thread."""
    every = state.config.refresh_seconds if state.config.refresh_seconds > 0 else 60.0

    def loop() -> None:
        while True:
            try:
                publish(state.current.table)
            except Exception:  # never let the gauges stop the service
                log.exception("could not publish the monitor and drift gauges")
            if state._stop.wait(every):
                return

    thread = threading.Thread(target=loop, name="churnclv-gauges", daemon=True)
    thread.start()
    return thread
