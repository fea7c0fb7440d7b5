"""The server's arbiter process: ``bentoml serve`` that ends as soon as its workers are gone.

``churnclv serve`` runs ``python -m churnclv.serving.arbiter <bentoml serve arguments>`` instead of ``python -m
bentoml serve``. BentoML's command returns once circus has stopped every worker; unwinding the
interpreter after that (BentoML's imports, its threads) took from one to more than five seconds on a
loaded machine, during which the process held nothing but still counted as running for a supervisor.
Its output is flushed, then the process ends with BentoML's exit status at once.
"""

from __future__ import annotations

import os
import sys


def exit_code(status: object) -> int:
    """A ``SystemExit`` status as a process's exit code (None: 0, text: 1, as Python does)."""
    if status is None:
        return 0
    return status if isinstance(status, int) else 1


def main(argv: list[str]) -> None:
    from bentoml_cli.cli import cli

    try:
        cli.main(args=argv, prog_name="bentoml")
        code = 0
    except SystemExit as stop:
        code = exit_code(stop.code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
