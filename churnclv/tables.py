"""Every table the commands print, drawn in one place (rich): a new metric is a new row here.

The functions take plain results (an eligibility report, a metrics dict, a frame of judged rows) and
return a ``rich.table.Table``; the commands print them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

#: The metrics of a backtest, in the order of the tables' rows, with their labels.
METRIC_ROWS = {
    "roc_auc": "churn ROC AUC", "pr_auc": "churn PR AUC", "brier": "Brier score",
    "calibration_error": "calibration error", "lift_top_decile": "lift, top decile",
    "purchases_total_error_pct": "total purchases error %", "purchases_mae": "purchases MAE / customer",
    "spend_total_error_pct": "total spend error %", "spend_mae": "spend MAE / customer",
    "spend_spearman": "spend Spearman",
}
#: The rows only the real-future judge reports (``churnclv backtest``).
REAL_FUTURE_ROWS = {**METRIC_ROWS, "purchases_poisson_deviance": "purchases Poisson deviance",
                    "purchases_spearman": "purchases Spearman"}
#: The column titles of the churn ranking metrics.
CHURN_COLUMNS = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "lift_top_decile": "lift 10%", "brier": "Brier",
                 "calibration_error": "calib. error"}
#: The models of ``train``'s backtest, as its metrics are keyed, and their column titles.
TRAIN_MODELS = {"model": "churnclv", "without_events": "without events", "bgnbd": "BG/NBD",
                "rfm_logistic": "RFM logistic"}


def eligibility_table(report: Any) -> Table:
    """The eligibility gates as a table: value, what the model needs, ok / warning / FAILED."""
    from rich.table import Table

    table = Table(title=f"Can this log support the models? (as of {report.as_of})")
    for column in ("gate", "value", "needs", "status"):
        table.add_column(column, justify="right" if column in ("value", "needs") else "left")
    colour = {"ok": "green", "warning": "yellow", "FAILED": "red"}
    for g in report.gates:
        fmt = (lambda v: f"{v:.0%}") if g.name.startswith("share") else (lambda v: f"{v:,.0f}")
        table.add_row(g.name, fmt(g.value), f"{'>=' if g.at_least else '<='} {fmt(g.threshold)}",
                      f"[{colour[g.status]}]{g.status}[/]")
    return table


def events_table(coverage: dict, *, as_of: str) -> Table:
    """The events beside the eligibility report (:func:`features.events.event_coverage`): per kind the events
    up to as-of, the customers with one and their share; the kinds that become features first."""
    from rich.table import Table

    from churnclv.features.events import EVENT_KINDS

    table = Table(title=f"Events the models see (as of {as_of})")
    for column in ("kind", "events", "customers", "coverage"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    kinds = coverage["kinds"]
    for kind in sorted(kinds, key=lambda k: (k not in EVENT_KINDS, EVENT_KINDS.index(k) if k in EVENT_KINDS else 0, k)):
        c = kinds[kind]
        label = kind if kind in EVENT_KINDS else f"{kind} (counted as other)"
        table.add_row(label, f"{c['events']:,}", f"{c['customers']:,}", f"{c['share']:.0%}")
    return table


def metrics_table(metrics: dict[str, dict[str, float]]) -> Table:
    """``train``'s backtest on the held-out horizon: metrics down, models across (blank where not measured)."""
    from rich.table import Table

    table = Table(title="Backtest on the held-out horizon")
    table.add_column("metric")
    shown = [m for m in TRAIN_MODELS if m in metrics or m != "without_events"]  # the same run without --events
    for m in shown:
        table.add_column(TRAIN_MODELS[m], justify="right")
    for key, label in METRIC_ROWS.items():
        table.add_row(label, *(f"{metrics[m][key]:.3f}" if key in metrics.get(m, {}) else "" for m in shown))
    return table


def real_future_table(rows: pd.DataFrame) -> Table:
    """One date of :func:`training.realfuture.judge_many`: how each model ranked churners (models down, the
    ranking metrics across; "n/a" where it could not be computed, blank where the score is a ranking only)."""
    import pandas as pd
    from rich.markup import escape
    from rich.table import Table

    from churnclv.training.realfuture import CHURN_KEYS, MODEL_LABELS, MODEL_METRICS, MODELS, OPTIONAL_MODELS

    first = rows.iloc[0]
    start = pd.Timestamp(first["as_of"]) + pd.Timedelta(days=1)
    table = Table(title=f"Trained on data to {first['as_of']}; judged on {start:%Y-%m-%d} .. "
                        f"{first['window_end']} (unseen): churn ranking")
    table.add_column("model")
    for key in CHURN_KEYS:
        table.add_column(CHURN_COLUMNS[key], justify="right")
    by_model = rows.set_index("model")
    for m in MODELS:
        if m in OPTIONAL_MODELS and pd.isna(by_model.at[m, "roc_auc"]):
            continue  # a candidate this log does not have
        label = f"churnclv ({first['churn_method']})" if m == "churnclv" else MODEL_LABELS[m]
        table.add_row(escape(label), *(_cell(by_model, m, key, MODEL_METRICS) for key in CHURN_KEYS))
    return table


def real_future_forecasts(rows: pd.DataFrame) -> Table:
    """One date of :func:`training.realfuture.judge_many`: the purchase and spend forecasts (metrics down, the
    models that forecast across)."""
    from rich.markup import escape
    from rich.table import Table

    from churnclv.training.realfuture import (
        CHURN_KEYS,
        MODEL_LABELS,
        MODEL_METRICS,
        MODELS,
        PURCHASE_KEYS,
        SPEND_KEYS,
    )

    forecasting = [m for m in MODELS if set(MODEL_METRICS[m]) - set(CHURN_KEYS)]
    table = Table(title="purchase and spend forecasts")
    table.add_column("metric")
    for m in forecasting:
        table.add_column(escape(MODEL_LABELS[m]), justify="right")
    by_model = rows.set_index("model")
    for key in PURCHASE_KEYS + SPEND_KEYS:  # the intervals are said beneath, in words
        table.add_row(REAL_FUTURE_ROWS[key], *(_cell(by_model, m, key, MODEL_METRICS) for m in forecasting))
    return table


def _cell(by_model: pd.DataFrame, model: str, key: str, measured: dict) -> str:
    """A metric as text: blank where the model does not forecast it, "n/a" where it could not be computed."""
    import pandas as pd

    if key not in measured[model]:
        return ""
    value = by_model.at[model, key]
    return "n/a" if pd.isna(value) else f"{value:.3f}"
