"""The ``churnclv`` command: one thin sub-command per job, assembled from one module per command group.

Each command parses options, calls importable functions (the same ones the tests call) and prints
where its output went. Errors meant for the user are printed on one or two lines, without a traceback;
anything unexpected is named in one line, its traceback saved under ``$CHURNCLV_HOME/logs/``
(:mod:`churnclv.crash`).

A command group is a module with a ``register(app)`` function that adds its commands: flat ones with
``app.command()(function)``, a group of sub-commands (``campaigns list``) with ``app.add_typer(group,
name="campaigns")``. A new group is a new module and one line in :data:`GROUPS`. Shared options are in
:mod:`churnclv.options`, tables in :mod:`churnclv.tables`; heavy libraries are imported inside the
commands, so that ``churnclv --help`` answers at once.
"""

from __future__ import annotations

import inspect
import sys
from types import ModuleType

import typer
from rich.markup import escape

from churnclv import crash, data, models, monitor, quickstart, serve, targeting
from churnclv.context import console
from churnclv.contract.errors import ChurnclvError
from churnclv.quiet import quiet_logging

#: The command groups, in the order of ``churnclv --help``.
GROUPS: tuple[ModuleType, ...] = (
    data,  # features, cohorts
    models,  # train, backtest, score, promote
    serve,  # serve, bento
    quickstart,  # quickstart
    monitor,  # monitor, retrain
    targeting,  # plan, campaigns list|effect, suppress, forget, db upgrade
)


def build_app() -> typer.Typer:
    """The ``churnclv`` application: every group's commands on one typer app."""
    app = typer.Typer(
        help="Churn and customer-lifetime-value scoring: features, training, batch scores and an HTTP service.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for group in GROUPS:
        group.register(app)
    _reflowed_help(app)
    return app


def _reflowed_help(app: typer.Typer) -> None:
    """Each command's help is its docstring with every paragraph on one line, for rich to wrap to the terminal:
    typer's rich help keeps the docstring's own line breaks in a list of commands and in every paragraph after
    the first, which breaks them mid-sentence."""
    for info in app.registered_commands:
        if info.help is None:
            doc = inspect.getdoc(info.callback) or ""
            info.help = "\n\n".join(" ".join(paragraph.split()) for paragraph in doc.split("\n\n"))
    for group in app.registered_groups:
        _reflowed_help(group.typer_instance)


app = build_app()


def main() -> None:
    """Console entry point: user errors become a short message and exit code 2; an unexpected failure one
    line naming it and the log file that holds its traceback, and exit code 1."""
    quiet_logging()
    try:
        app()
    except ChurnclvError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)  # one line per line of the message
        sys.exit(2)
    except Exception as exc:  # the last resort: never a traceback on screen
        console.print(f"[red]error:[/] {escape(crash.describe(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
