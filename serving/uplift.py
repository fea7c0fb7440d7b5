"""The per-customer uplift model as the service holds it: the registered ``churn-clv-uplift@champion``
loaded beside the churn model (:class:`serving.state.ServingState`), with its uplift for every customer
of the served score table, computed once per model and table (at start or reload, never per request).

No model registered is the normal state before enough campaigns have finished: then nothing is served
and plans rank by the segments' save rates (:mod:`serving.targeting` says how many more outcomes the
model needs). A model that cannot be loaded, or that needs a column the score table lacks, is named in
one line (``uplift_problem``) and plans fall back to the segments' rates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnclv.contract import ChurnclvError, first_line
from churnclv.scoring.registry import StoreUnreachableError, resolve
from churnclv.scoring.uplift import UpliftScorer, load_registered
from churnclv.serving.table import ScoreTable

__all__ = ["ServedUplift", "next_uplift", "predict_table"]


@dataclass(frozen=True)
class ServedUplift:
    """The loaded uplift model and its predictions for one score table (row order of the table)."""

    version: str
    model: UpliftScorer = field(repr=False)
    metrics: dict
    fingerprint: tuple | None = None  # of the score table predicted on
    uplift: np.ndarray | None = field(default=None, repr=False)  # mean over the bagged pairs
    uplift_high: np.ndarray | None = field(default=None, repr=False)  # upper end of its 80% interval

    def on(self, table: ScoreTable) -> ServedUplift:
        """These predictions if they are of ``table``, else the model's predictions for it."""
        if self.fingerprint == table.fingerprint and self.uplift is not None and len(self.uplift) == len(table):
            return self
        predicted = predict_table(self.model, table)
        return ServedUplift(self.version, self.model, self.metrics, table.fingerprint,
                            predicted["uplift"].to_numpy(), predicted["uplift_high"].to_numpy())


def predict_table(model: UpliftScorer, table: ScoreTable) -> pd.DataFrame:
    """Uplift, low and high per row of ``table`` from its score columns; ``ValueError`` naming the
    columns the model needs and the table lacks."""
    missing = [f for f in model.features if f not in table.numbers]
    if missing:
        raise ValueError(f"the uplift model needs column(s) {', '.join(missing)}, which the score table lacks")
    return model.predict(pd.DataFrame({f: table.numbers[f] for f in model.features}))


def _load(client: Any, uri: str) -> tuple[UpliftScorer, dict, str]:
    model, mv = load_registered(client, uri)
    metrics = dict(client.get_run(mv.run_id).data.metrics) if getattr(mv, "run_id", None) else {}
    return model, metrics, str(mv.version)


def next_uplift(client: Callable[[], Any], uri: str, old: ServedUplift | None, table: ScoreTable | None, *,
                force: bool = False) -> tuple[ServedUplift | None, str | None, bool]:
    """What to serve next: (uplift or None, a problem in one line or None, whether it changed).

    The registry is asked which version ``uri`` points at (one query); a new version is loaded, and
    predictions are made again when the model or the score table changed. No model registered: None, no
    problem. Whatever fails, the previous uplift keeps being served and the problem is said.
    """
    try:
        _, mv = resolve(client(), uri)
    except StoreUnreachableError as exc:
        return old, f"the uplift model is not checked: {exc}", False
    except ChurnclvError:
        return None, None, old is not None  # none registered (yet)
    except Exception as exc:  # noqa: BLE001 - the registry is unreachable: keep what is served
        return old, f"the uplift model is not checked: {first_line(exc)}", False
    version = None if mv is None else str(mv.version)
    try:
        if force or old is None or old.version != version:
            model, metrics, version = _load(client(), uri)
            current = ServedUplift(version, model, metrics)
        else:
            current = old
        if table is not None:
            current = current.on(table)
    except Exception as exc:  # noqa: BLE001 - whatever fails, the segments' rates rank the plans
        return old, f"cannot use the uplift model {uri} (v{version}): {first_line(exc)}", False
    return current, None, current is not old
