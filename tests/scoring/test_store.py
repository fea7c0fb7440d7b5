"""The MLflow store under concurrent commands, its URIs kept out of the environment, an unreachable server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest

from churnclv.contract.defaults import MODEL_NAME
from churnclv.scoring.registry import (
    StoreBusyError,
    StoreUnreachableError,
    connect,
    lock_file,
    resolve,
    store_lock,
    using_store,
)

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

CONNECT = textwrap.dedent("""
    import sys
    from churnclv.scoring.registry import connect
    client = connect(sys.argv[1])
    client.search_registered_models()
""")


def _together(commands: list[list[str]], cwd: Path, env: dict | None = None) -> list[subprocess.CompletedProcess]:
    """Start the commands at once, wait for all; their (returncode, stdout, stderr)."""
    procs = [subprocess.Popen(c, cwd=cwd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=600), *p.communicate()) for p in procs]


def _usable(uri: str) -> None:
    client = connect(uri)
    client.search_experiments()
    assert client.search_registered_models() is not None


def test_two_processes_creating_a_fresh_store_take_turns(tmp_path):
    for attempt in range(2):
        uri = f"sqlite:///{tmp_path / str(attempt) / 'mlflow.db'}"
        done = _together([[sys.executable, "-c", CONNECT, uri]] * 2, cwd=tmp_path)
        assert [d.returncode for d in done] == [0, 0], [d.stderr[-2000:] for d in done]
        _usable(uri)


def _one_line_or_clean(done: subprocess.CompletedProcess) -> None:
    text = done.stdout + done.stderr
    assert "Traceback" not in text, text[-3000:]
    if done.returncode != 0:
        assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, text


@pytest.mark.slow
def test_pairs_of_promote_on_a_fresh_store_end_cleanly(tmp_path):
    for attempt in range(5):
        home = tmp_path / str(attempt)
        env = {**ENV, "CHURNCLV_HOME": str(home)}
        env.pop("MLFLOW_TRACKING_URI", None)
        done = _together([[sys.executable, "-m", "churnclv", "promote", "1"]] * 2, cwd=tmp_path, env=env)
        for d in done:
            _one_line_or_clean(d)
            assert "has no version 1" in d.stderr
        _usable(f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")


@pytest.mark.slow
def test_pairs_of_train_on_a_fresh_store_both_register(tmp_path):
    train = [sys.executable, "-m", "churnclv", "train", "-t", str(ROOT / "seeds" / "transactions.csv"),
             "--cutoffs", "2", "--step-days", "28"]
    for attempt in range(2):
        home = tmp_path / str(attempt)
        env = {**ENV, "CHURNCLV_HOME": str(home)}
        env.pop("MLFLOW_TRACKING_URI", None)
        done = _together([train, train], cwd=tmp_path, env=env)
        for d in done:
            _one_line_or_clean(d)
            assert d.returncode == 0
        uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
        _usable(uri)
        client = connect(uri)
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{MODEL_NAME}'"))
        assert versions == [1, 2]
        assert resolve(client, "models:/churn-clv@champion")[0] in ("models:/churn-clv/1", "models:/churn-clv/2")


HOLD = textwrap.dedent("""
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
""")


def test_a_command_waits_for_the_store_and_gives_up_in_one_line(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_file(uri)), "30"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(StoreBusyError) as busy, store_lock(uri, timeout=0.5):
            pass
        assert 0.4 < time.monotonic() - started < 5
        message = str(busy.value)
        assert "\n" not in message and "another churnclv command has held the MLflow store" in message
    finally:
        holder.kill()
        holder.wait()
    with store_lock(uri, timeout=5), store_lock(uri, timeout=0):  # free again, and re-entrant in one process
        pass


def test_connect_leaves_mlflow_and_the_environment_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    before = mlflow.get_tracking_uri()
    client = connect(f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}", tmp_path / "a" / "artifacts")
    assert "MLFLOW_TRACKING_URI" not in os.environ and mlflow.get_tracking_uri() == before
    with using_store(client):
        assert mlflow.get_tracking_uri() == client.tracking_uri
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert mlflow.get_tracking_uri() == before
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://team-server:5000")
    with using_store(client):
        pass
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://team-server:5000"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_tracking_server_is_named():
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(StoreUnreachableError) as error:
        connect(uri)
    assert str(error.value).startswith(f"the MLflow tracking store at {uri} is unreachable")
    assert "train one first" not in str(error.value)
