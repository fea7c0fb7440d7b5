"""What every command runs in: the console, its settings, what it opened, its progress display.

Nothing here does work at import: the settings are read when a command asks for them, the MLflow client
is created when a command needs the store.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from rich.console import Console

from churnclv.contract.errors import ChurnclvError
from churnclv.contract.settings import Settings

#: Everything a command says goes to stderr (stdout stays free for data).
console = Console(stderr=True)
_SHARED_SETTINGS: ContextVar[Settings | None] = ContextVar("churnclv_settings", default=None)
#: What a command opened that must close when it ends (a Dask cluster): see :func:`closes_resources`.
_RESOURCES: ContextVar[ExitStack | None] = ContextVar("churnclv_resources", default=None)
P = ParamSpec("P")
R = TypeVar("R")


def command_settings() -> Settings:
    """The settings of this command, read from the environment by :meth:`Settings.load` (``quickstart``
    lends its own to the commands it runs). An invalid variable raises ``SettingsError``: one line."""
    return _SHARED_SETTINGS.get() or Settings.load()


@contextmanager
def sharing(settings: Settings) -> Iterator[None]:
    """Let the commands run inside (by ``quickstart``) use ``settings`` rather than read them again."""
    token = _SHARED_SETTINGS.set(settings)
    try:
        yield
    finally:
        _SHARED_SETTINGS.reset(token)


def closes_resources(command: Callable[P, R]) -> Callable[P, R]:
    """Close what a command opened while it ran (a Dask cluster: ``Source.load(dask=...)``), however it ends."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with ExitStack() as stack:
            token = _RESOURCES.set(stack)
            try:
                return command(*args, **kwargs)
            finally:
                _RESOURCES.reset(token)

    return wrapper


def resources() -> ExitStack:
    """The exit stack of the running command (:func:`closes_resources`), for what must close when it ends."""
    stack = _RESOURCES.get()
    if stack is None:
        raise RuntimeError("a command that opens resources must be wrapped in closes_resources")
    return stack


def mlflow_client(settings: Settings):
    """A client of the command's MLflow store (created, or migrated, under the store's lock)."""
    from churnclv.scoring.registry import connect

    return connect(settings.mlflow_uri, settings.artifact_root)


def default_out(name: str, settings: Settings) -> Path:
    """An output's default path: ``$CHURNCLV_HOME/out/<name>``."""
    return settings.out_dir / name


def check_writable(path: Path) -> None:
    """Refuse, in one line and before any work, an output path whose folder cannot be created or written."""
    folder = path.expanduser().absolute().parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ChurnclvError(f"cannot write {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ChurnclvError(f"cannot write {path}: no permission to write in {existing}")


@contextmanager
def step(message: str) -> Iterator[None]:
    """A spinner for a step that may take a few seconds."""
    with console.status(message):
        yield


def progress_bar() -> Any:
    """A live bar of a command's steps (rich's ``Progress``), left on screen when done."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


class StepLines:
    """The training steps one a line, where a live bar would fight Dask's own progress bars (``--dask``)."""

    def __enter__(self) -> StepLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: int) -> int:
        return 0

    def update(self, task: int, *, description: str, advance: int = 0, completed: int | None = None) -> None:
        console.print(description, highlight=False)
