"""The server's processes start and stop together: signals drain, and nothing outlives its parent.

``churnclv serve`` stays the service's main process (the one a supervisor signals) and runs BentoML's
server (circus's arbiter, which runs the worker processes) under :func:`supervise`:

- **SIGTERM or SIGINT** to the main process is passed on once, as SIGTERM, to the arbiter, which stops
  its workers with SIGTERM; each worker (uvicorn) closes its listening socket, lets the requests in
  flight finish for up to the grace period (``--timeout-graceful-shutdown``) and exits. When the arbiter
  and every process it ran are gone (new connections are refused from the moment the workers stop
  accepting), the main process says ``stopped cleanly`` and exits with 0. What is
  still running ``grace + 0.5`` s after the signal is killed (SIGKILL) and the stop reported as forced,
  except the arbiter alone ``0.5`` s after its workers are gone: it has closed its socket by then and
  ends at once (:mod:`serving.arbiter`), so killing it cuts nothing. A second SIGINT (Ctrl-C twice) kills at once.
- **SIGKILL of the main process** cannot be caught, so each process watches its own parent instead:
  the arbiter is started with Linux's ``PR_SET_PDEATHSIG`` (SIGTERM when its parent dies), and each
  worker sets the same on itself when the service module is imported with ``CHURNCLV_WATCH_PARENT=1``
  (:func:`watch_parent`). The arbiter then drains as above; a worker whose arbiter was killed outright
  drains and exits on its own. No orphan keeps the port. A worker of a server run directly (``bentoml
  serve``, e.g. of a built Bento, without ``churnclv serve``) arms the same watch of its arbiter itself.

The arbiter runs in a session of its own (and circus gives each worker one), so a Ctrl-C in a terminal
reaches only the main process and the stop follows the one path above.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Seconds the requests in flight get to finish after SIGTERM or SIGINT (CHURNCLV_GRACE_SECONDS).
GRACE_SECONDS = 10
#: Beyond the grace period, what the server's processes get to exit; the main process then takes ~0.4 s.
EXIT_MARGIN = 0.5
#: The environment variable that makes the service's processes watch their parent (set by ``churnclv serve``).
WATCH_PARENT = "CHURNCLV_WATCH_PARENT"
#: The file whose existence tells the workers that the whole server is stopping (:func:`serving.connections.refuse_new`).
STOP_FILE = "CHURNCLV_STOP_FILE"
PR_SET_PDEATHSIG = 1
#: The module BentoML's arbiter runs each worker as.
BENTOML_WORKER = "_bentoml_impl.worker.service"


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A function (for ``preexec_fn``, or to call in the process itself) that asks Linux to send ``sig``
    to the calling process when its parent dies; a no-op elsewhere. The C function is looked up here,
    before any fork, so that the child runs no import."""
    prctl = _prctl()

    def arm() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return arm


def in_bentoml_worker() -> bool:
    """Whether this process is a BentoML worker (``python -m _bentoml_impl.worker.service``, as BentoML's
    arbiter starts them for ``bentoml serve`` and ``churnclv serve`` alike)."""
    return getattr(getattr(sys.modules.get("__main__"), "__spec__", None), "name", None) == BENTOML_WORKER


def watch_parent(environ: dict[str, str] | None = None) -> bool:
    """In a process of the service started by ``churnclv serve`` (``CHURNCLV_WATCH_PARENT=1``): SIGTERM to
    this process when its parent dies, and at once if the parent is already gone. In a worker of a server
    run directly (``bentoml serve`` of the service or of a built Bento): SIGTERM when its arbiter dies, so
    that a killed arbiter leaves no worker on the port (not at once when the parent looks gone: such an
    arbiter may be PID 1 itself, as a container's entry point). Whether it was armed."""
    if (os.environ if environ is None else environ).get(WATCH_PARENT) == "1":
        return stop_with_parent()
    if in_bentoml_worker() and _prctl() is not None:
        die_with_parent()()
        return True
    return False


def stop_with_parent() -> bool:
    """SIGTERM to this process when its parent dies (at once if it is already gone); whether Linux can."""
    if _prctl() is None:
        return False
    parent = os.getppid()
    die_with_parent()()
    if parent == 1 or os.getppid() != parent:  # the parent died before the watch began
        os.kill(os.getpid(), signal.SIGTERM)
    return True


@dataclass(frozen=True)
class Stopped:
    """How the server ended: ``signal`` the one that stopped it (None: it ended by itself), ``code`` the
    arbiter's exit status, ``forced`` whether processes had to be killed after the grace period."""

    code: int
    signal: int | None = None
    forced: bool = False
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return self.signal is not None and not self.forced


def descendants(pid: int) -> list:
    """The processes under ``pid`` (psutil, a dependency of BentoML), none when it is gone."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def supervise(command: Sequence[str], *, env: dict[str, str], grace: float, poll: float = 0.05) -> Stopped:
    """Run ``command`` (the server) until it ends, or until SIGTERM or SIGINT stops it as the module says."""
    import shutil
    import tempfile

    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    folder = tempfile.mkdtemp(prefix="churnclv-serve-")  # this user's only: the stop file cannot be planted
    stop_file = os.path.join(folder, "stopping")
    try:
        proc = subprocess.Popen(list(command), env={**env, STOP_FILE: stop_file}, start_new_session=True,
                                preexec_fn=die_with_parent())
        while proc.poll() is None and not received:
            time.sleep(poll)
        if not received:
            return Stopped(proc.returncode)
        open(stop_file, "w").close()  # the workers refuse new connections once they stop accepting
        return _drain(proc, received, grace=grace, poll=poll)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _drain(proc: subprocess.Popen, received: list[int], *, grace: float, poll: float) -> Stopped:
    """Pass the first signal on as SIGTERM, wait for every process, kill what outlives the grace period."""
    started = time.monotonic()
    deadline = started + grace + EXIT_MARGIN
    processes = descendants(proc.pid)  # circus puts each worker in a session of its own: named one by one
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    seen = len(received)
    workers_gone = None
    while time.monotonic() < deadline:
        processes = [p for p in processes if _alive(p)]
        if proc.poll() is not None and not processes:
            return Stopped(proc.returncode, received[0], seconds=time.monotonic() - started)
        if not processes:  # the arbiter alone: its socket is closed, it is unwinding its interpreter
            workers_gone = workers_gone or time.monotonic()
            if time.monotonic() - workers_gone > EXIT_MARGIN:
                break
        if received[seen:].count(signal.SIGINT) and received[0] == signal.SIGINT:  # Ctrl-C twice: no drain
            break
        time.sleep(poll)
    processes = [p for p in processes if _alive(p)]
    if proc.poll() is None:
        proc.kill()
    for p in processes:
        try:
            p.kill()
        except Exception:  # noqa: BLE001 - gone meanwhile
            pass
    proc.wait()
    drained = not processes and received.count(signal.SIGINT) < 2
    return Stopped(0 if drained else proc.returncode, received[0], forced=not drained,
                   seconds=time.monotonic() - started)


def _alive(process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
