"""The last resort: an unexpected failure in a command is one line naming it, its traceback in a log file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from churnclv.crash import MAX_MESSAGE, describe, headline
from tests.conftest import SEED_CSV

ROOT = Path(__file__).resolve().parents[2]

#: A real ``features`` run whose feature build fails the way a defect would (not a ChurnclvError).
FAILING_RUN = """
import sys
from churnclv import features

def build_features(*args, **kwargs):
    raise ValueError("a defect's first line\\nits second line")

features.build_features = build_features
from churnclv.cli import main
sys.argv = ["churnclv", *sys.argv[1:]]
main()
"""


def _failing_features(home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FAILING_RUN, "features", "-t", str(SEED_CSV), "--as-of", "2025-06-30",
                           "--out", str(home / "f.parquet")], capture_output=True, text=True, timeout=120, cwd=home,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "CHURNCLV_HOME": str(home)})


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line, checked: exit code 1, no traceback, nothing after it."""
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stderr.endswith(errors[0] + "\n"), proc.stderr
    return errors[0]


def test_an_unexpected_error_is_one_line_and_its_trace_is_in_the_log(tmp_path):
    line = _error_line(_failing_features(tmp_path))
    logs = list((tmp_path / "logs").iterdir())
    assert len(logs) == 1 and logs[0].name.startswith("churnclv-") and logs[0].suffix == ".log"
    assert line == f"error: ValueError: a defect's first line (details in {logs[0]})"
    trace = logs[0].read_text()
    assert "command: churnclv features -t" in trace
    assert "Traceback (most recent call last)" in trace and "in build_features" in trace
    assert trace.rstrip().endswith("ValueError: a defect's first line\nits second line")
    assert not (tmp_path / "f.parquet").exists()


def test_a_log_folder_that_cannot_be_written_is_said_in_the_same_line(tmp_path):
    (tmp_path / "logs").write_text("a file where the folder should be\n")
    line = _error_line(_failing_features(tmp_path))
    assert line.startswith("error: ValueError: a defect's first line (the trace could not be saved in "
                           f"{tmp_path / 'logs'}: ")


def test_the_headline_survives_blank_long_and_broken_messages(tmp_path):
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    assert headline(KeyError()) == "KeyError" and headline(ValueError("\n  \nsecond")) == "ValueError: second"
    assert headline(Broken()) == "Broken"
    long = headline(RuntimeError("x" * 1000))
    assert len(long) == len("RuntimeError: ") + MAX_MESSAGE and long.endswith("…")
    assert describe(Broken(), tmp_path).startswith(f"Broken (details in {tmp_path}/churnclv-")
