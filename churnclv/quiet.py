"""Other libraries' chatter off: MLflow's notices and progress bars, the root logger's INFO lines."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

#: MLflow's switch for its artifact download progress bars.
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
P = ParamSpec("P")
R = TypeVar("R")


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the time (a test runner may swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _DropNoise(logging.Filter):
    """MLflow's warning that pyfunc models are pickled: known and chosen (the bundle is our own class)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "CloudPickle" not in record.getMessage()


def quiet_logging() -> None:
    """Warnings and errors only, one line each (called by the entry point, never at import)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mlflow.pyfunc").addFilter(_DropNoise())


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's chatter off for a command: its printed notices ("Successfully registered model ...",
    "Created version ...") and download progress bars. Its warnings and errors still reach stderr."""
    # imports MLflow, which configures its loggers. MLflow's own counted switch for its event stream
    # (what autologging uses): setting the stream's flag directly does not last, inner blocks reset it.
    from mlflow.utils.autologging_utils.logging_and_warnings import MlflowEventsAndWarningsBehaviorGlobally

    logger = logging.getLogger("mlflow")
    handler = logging.StreamHandler(_Stderr())  # MLflow's own handler writes to the silenced stream
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_DropNoise())
    level, bar = logger.level, os.environ.get(PROGRESS_BAR)
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    os.environ[PROGRESS_BAR] = "false"
    try:
        with MlflowEventsAndWarningsBehaviorGlobally(disable_event_logs=True, disable_warnings=False,
                                                     reroute_warnings=False):
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        if bar is None:
            os.environ.pop(PROGRESS_BAR, None)
        else:
            os.environ[PROGRESS_BAR] = bar


def uses_mlflow(command: Callable[P, R]) -> Callable[P, R]:
    """Run a command with MLflow quiet (:func:`quiet_mlflow`)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with quiet_mlflow():
            return command(*args, **kwargs)

    return wrapper
