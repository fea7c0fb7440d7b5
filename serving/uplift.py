"""The per-customer uplift model as the service holds it: the registered ``churn-clv-uplift@champion``
loaded beside the churn model (:class:`serving.state.ServingState`), with its uplift for every customer
of the served score table, computed once per model and table (at start or reload, or in a background
thread for a large table; never per request).

No model registered is the normal state before enough campaigns have finished: then nothing is served
and plans rank by the segments' save rates (:mod:`serving.targeting` says how many more outcomes the
model needs). A model that cannot be loaded, or that needs a column the score table lacks, is named in
one line (``uplift_problem``) and plans fall back to the segments' rates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnclv.contract import ChurnclvError, first_line
from churnclv.scoring.registry import StoreUnreachableError, resolve
from churnclv.scoring.uplift import UpliftScorer, load_registered
from churnclv.serving.table import ScoreTable

__all__ = ["SYNC_ROWS", "ServedUplift", "next_uplift", "predict_table"]

#: Score tables of up to this many customers get their uplift during the reload itself; larger ones in a
#: background thread (about 130 s for a million customers with 10 bags on 2 busy cores), while plans rank
#: by the segments' rates and say so.
SYNC_ROWS = 100_000
_executor: list[ThreadPoolExecutor] = []
_executor_lock = threading.Lock()


def _background() -> ThreadPoolExecutor:
    """One worker thread for the predictions, started on first use."""
    with _executor_lock:
        if not _executor:
            _executor.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="churnclv-uplift"))
        return _executor[0]


def predict_table(model: UpliftScorer, table: ScoreTable) -> pd.DataFrame:
    """Uplift, low and high per row of ``table`` from its score columns; ``ValueError`` naming the
    columns the model needs and the table lacks."""
    missing = [f for f in model.features if f not in table.numbers]
    if missing:
        raise ValueError(f"the uplift model needs column(s) {', '.join(missing)}, which the score table lacks")
    return model.predict(pd.DataFrame({f: table.numbers[f] for f in model.features}))


def _arrays(model: UpliftScorer, table: ScoreTable) -> tuple[np.ndarray, np.ndarray]:
    predicted = predict_table(model, table)
    return predicted["uplift"].to_numpy(), predicted["uplift_high"].to_numpy()


def _start(model: UpliftScorer, table: ScoreTable, *, background: bool) -> Future:
    if background and len(table) > SYNC_ROWS:
        return _background().submit(_arrays, model, table)
    done: Future = Future()
    try:
        done.set_result(_arrays(model, table))
    except Exception as exc:  # noqa: BLE001 - said by next_uplift and the plans
        done.set_exception(exc)
    return done


@dataclass(frozen=True)
class ServedUplift:
    """The loaded uplift model and its predictions for one score table (row order of the table), which may
    still be computing (:data:`SYNC_ROWS`)."""

    version: str
    model: UpliftScorer = field(repr=False)
    metrics: dict
    fingerprint: tuple | None = None  # of the score table predicted on
    future: Future | None = field(default=None, repr=False, compare=False)  # (uplift, uplift_high) per row

    def on(self, table: ScoreTable, *, background: bool = False) -> ServedUplift:
        """This if its predictions are (being) made for ``table``, else one whose predictions are started for it."""
        if self.future is not None and self.fingerprint == table.fingerprint:
            return self
        return ServedUplift(self.version, self.model, self.metrics, table.fingerprint,
                            _start(self.model, table, background=background))

    def predictions(self, table: ScoreTable) -> tuple[np.ndarray, np.ndarray] | None:
        """(uplift, uplift_high) per row of ``table``; None while they are computed; the error if they failed."""
        on = self.on(table)
        return on.future.result() if on.future.done() else None


def _load(client: Any, uri: str) -> tuple[UpliftScorer, dict, str]:
    model, mv = load_registered(client, uri)
    metrics = dict(client.get_run(mv.run_id).data.metrics) if getattr(mv, "run_id", None) else {}
    return model, metrics, str(mv.version)


def next_uplift(client: Callable[[], Any], uri: str, old: ServedUplift | None, table: ScoreTable | None, *,
                force: bool = False, background: bool = False) -> tuple[ServedUplift | None, str | None, bool]:
    """What to serve next: (uplift or None, a problem in one line or None, whether it changed).

    The registry is asked which version ``uri`` points at (one query); a new version is loaded, and
    predictions are started again when the model or the score table changed (``background``: in a thread
    for a table of over :data:`SYNC_ROWS` customers). No model registered: None, no problem. Whatever
    fails, the previous uplift keeps being served and the problem is said.
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
            current = current.on(table, background=background)
            if current.future.done() and current.future.exception() is not None:
                raise current.future.exception()
    except Exception as exc:  # noqa: BLE001 - whatever fails, the segments' rates rank the plans
        return old, f"cannot use the uplift model {uri} (v{version}): {first_line(exc)}", False
    return current, None, current is not old
