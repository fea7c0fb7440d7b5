"""The arbiter's exit status follows BentoML's command's, as Python's own would."""

import subprocess
import sys

import pytest

from churnclv.serving.arbiter import exit_code


@pytest.mark.parametrize(("status", "code"), [(None, 0), (0, 0), (3, 3), ("usage text", 1)])
def test_a_system_exit_status_becomes_the_exit_code_python_gives(status, code):
    assert exit_code(status) == code


def test_bentoml_usage_errors_end_the_process_with_bentoml_code():
    done = subprocess.run([sys.executable, "-m", "churnclv.serving.arbiter", "serve", "--no-such-option"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no-such-option" in done.stderr
