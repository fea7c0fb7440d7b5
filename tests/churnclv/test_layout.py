"""The command line's shape: small modules, every command explains itself, --help imports nothing heavy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from churnclv.cli import app
from churnclv.contract.defaults import CUTOFF_STEP_DAYS, STACKED_CUTOFFS
from churnclv.options import INPUT_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 300
#: Libraries and layers a command imports when it runs, never to answer --help.
HEAVY = ("mlflow", "lightgbm", "sklearn", "bentoml", "dask", "distributed", "matplotlib", "lifetimes", "sqlalchemy",
         "features", "scoring", "training", "serving", "campaigns")

runner = CliRunner()


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of the app, sub-commands of groups included, as the words that call it."""
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


@pytest.mark.parametrize("module", sorted((ROOT / "churnclv").rglob("*.py")), ids=lambda p: p.name)
def test_no_module_of_the_command_line_is_over_300_lines(module):
    assert len(module.read_text().splitlines()) <= MAX_LINES


def test_the_commands_are_the_documented_ones_in_order():
    assert [c for c in COMMANDS if len(c) == 1][:9] == [
        ("features",), ("cohorts",), ("train",), ("backtest",), ("score",), ("promote",), ("serve",), ("bento",),
        ("quickstart",)]


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_every_command_explains_itself(words):
    result = runner.invoke(app, [*words, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "Traceback" not in result.output


def test_help_paragraphs_are_wrapped_by_the_terminal_not_broken_where_the_docstring_broke():
    """The list of commands and a command's later paragraphs flow as sentences: the docstring of ``backtest`` breaks
    its second paragraph after "up to and", which must not end a line of its help at 80 columns."""
    listing = runner.invoke(app, ["--help"], terminal_width=80).output
    assert "features    Build point-in-time customer features (RFM, behaviour windows," in listing
    assert "cohort; touchpoints with --events) and write them." in listing
    for words in COMMANDS:  # every paragraph one line; paragraphs apart
        command = typer.main.get_command(app)
        for word in words:
            command = command.commands[word]
        assert all(paragraph and "\n" not in paragraph for paragraph in (command.help or "x").split("\n\n"))


@pytest.mark.parametrize("command", ["features", "cohorts", "train", "backtest", "score"])
def test_the_input_options_come_first_and_last_in_one_order(command):
    params = [p.opts[0] for p in typer.main.get_command(app).commands[command].params if p.opts[0] != "--help"]
    assert params[:2] == list(INPUT_OPTIONS[:2]) and params[-6:] == list(INPUT_OPTIONS[2:])


def test_help_imports_no_heavy_library():
    code = ("import sys; from churnclv.cli import app; sys.argv = ['churnclv', 'train', '--help']\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\n"
            f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[-1] == ""


def test_the_stacked_cutoff_defaults_are_training_s():
    from churnclv.training.churn import CutoffPlan

    assert (CutoffPlan().n_cutoffs, CutoffPlan().step_days) == (STACKED_CUTOFFS, CUTOFF_STEP_DAYS)
