"""The last resort: an unexpected failure is named in one line; its traceback goes to a log file.

Errors meant for the user (``ChurnclvError``) and typer's usage errors have their own short messages.
Anything else is a defect: the command says which exception, points to the file under
``$CHURNCLV_HOME/logs/`` that holds the full traceback, and exits with code 1. Saving the trace never
raises: when the folder cannot be written, the line says so instead.
"""

from __future__ import annotations

import os
import platform
import sys
import traceback
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from churnclv.contract.errors import first_line

#: The longest first line of a message that is printed (the log file holds all of it).
MAX_MESSAGE = 300


def headline(exc: BaseException) -> str:
    """``Type: first line of the message`` (:func:`contract.errors.first_line`), shortened; the type alone
    when the message is blank, or when even ``str(exc)`` fails."""
    name = type(exc).__name__
    try:
        line = first_line(exc)
    except Exception:  # a broken __str__ must not hide the original failure
        return name
    if line == name:
        return name
    line = line if len(line) <= MAX_MESSAGE else line[:MAX_MESSAGE - 1] + "…"
    return f"{name}: {line}"


def logs_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$CHURNCLV_HOME/logs`` (the current directory's ``logs`` when CHURNCLV_HOME is not set).

    Read straight from the environment: the settings themselves may be what failed.
    """
    home = (os.environ if environ is None else environ).get("CHURNCLV_HOME") or "."
    return Path(home).expanduser().resolve() / "logs"


def log_text(exc: BaseException, *, now: datetime, argv: list[str]) -> str:
    """What the log file holds: when, which command, which Python, and the full traceback."""
    head = [f"time: {now.isoformat(timespec='seconds')}", f"command: {' '.join(argv)}",
            f"python: {platform.python_version()} ({sys.executable})", f"pid: {os.getpid()}", ""]
    return "\n".join(head) + "".join(traceback.format_exception(exc))


def save_trace(exc: BaseException, folder: Path, *, now: datetime | None = None) -> Path:
    """Write ``exc``'s traceback to ``folder/churnclv-YYYYmmdd-HHMMSS-<pid>.log`` (append-only, one write,
    readable by its owner only). Raises ``OSError`` when the folder cannot be created or written."""
    now = now or datetime.now()
    path = folder / f"churnclv-{now:%Y%m%d-%H%M%S}-{os.getpid()}.log"
    text = log_text(exc, now=now, argv=["churnclv", *sys.argv[1:]]).encode("utf-8", "replace")
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, text)
    finally:
        os.close(fd)
    return path


def describe(exc: BaseException, folder: Path | None = None) -> str:
    """The one line about an unexpected ``exc`` (after ``error: ``), its trace saved in ``folder``
    (default: :func:`logs_dir`); never raises."""
    name = headline(exc)
    try:
        folder = folder or logs_dir()
        where = f"details in {save_trace(exc, folder)}"
    except Exception as failure:  # a read-only home, a full disk, a file where the folder should be
        reason = getattr(failure, "strerror", None) or type(failure).__name__
        where = f"the trace could not be saved{f' in {folder}' if folder else ''}: {reason}"
    return f"{name} ({where})"
