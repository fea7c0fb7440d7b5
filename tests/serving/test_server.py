"""The real server: ``serving.cli_serve.serve`` (what ``churnclv serve`` runs) in a subprocess, over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from churnclv.contract.settings import SettingsError
from churnclv.serving.auth import AccessError
from churnclv.serving.cli_serve import plan_server, serve
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]


KEY = "real-key-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {KEY}"}


#: Rate limits no test of another subject reaches (several servers of a session share a home and an address);
#: the limits' own tests set theirs.
UNLIMITED = {"CHURNCLV_RATE_LIMIT": "1000000/minute", "CHURNCLV_AUTH_FAILURE_LIMIT": "1000000/minute"}


def server_env(**changes: str) -> dict:
    """This process's environment without churnclv's, MLflow's and BentoML's settings, plus ``changes``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNCLV_", "MLFLOW_", "BENTOML_"))}
    return {**env, "BENTOML_DO_NOT_TRACK": "true", **UNLIMITED, **changes}


@contextlib.contextmanager
def until_ready(command: list[str], env: dict, tmp_path: Path, port: int, *, preexec_fn=None):
    """``command`` in its own process group until http://127.0.0.1:``port``/readyz answers 200; its URL.
    Stopped (SIGTERM, then SIGKILL) after the block; its output is in ``tmp_path/server.log``."""
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(command, env={**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec_fn)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("the server was not ready in 90 s:\n" + (tmp_path / "server.log").read_text())
        try:
            yield url
        except BaseException:  # a failing test shows what the server said (pytest prints captured output)
            print("server.log (last 8,000 characters):\n" + (tmp_path / "server.log").read_text()[-8000:])
            raise
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@contextlib.contextmanager
def running_server(home: Path, tmp_path: Path, *, nofile: int | None = None, workers: int | None = None, **env: str):
    """``serve()`` (what ``churnclv serve`` runs) until it answers /readyz; its URL. ``nofile``: the
    server's soft and hard open-file limit (as on a machine with the common default of 1,024); ``env``:
    more variables of the server."""
    port = free_port()
    code = f"from churnclv.serving.cli_serve import serve; serve(host='127.0.0.1', port={port}, workers={workers})"
    limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
    env = server_env(**{"CHURNCLV_HOME": str(home), "CHURNCLV_API_KEYS": KEY,
                        "CHURNCLV_RATE_LIMIT_STORE": str(tmp_path / "rate-limits.sqlite"), **env})
    with until_ready([sys.executable, "-c", code], env, tmp_path, port, preexec_fn=limit) as url:
        yield url


@pytest.fixture(scope="module")
def server(trained_home, tmp_path_factory):
    """One server for the tests that only ask it questions."""
    with running_server(trained_home.home, tmp_path_factory.mktemp("server")) as url:
        yield url


def test_real_server_answers_with_a_key_only(server, trained_home):
    import pandas as pd

    cid = pd.read_parquet(trained_home.scores_path)["customer_id"].iloc[0]
    key = BEARER
    r = httpx.post(f"{server}/score", json={"customer_ids": [cid, "nobody"]}, headers=key, timeout=30)
    assert r.status_code == 200 and r.json()["scores"][0]["customer_id"] == cid
    assert r.json()["unknown_ids"] == ["nobody"]
    r = httpx.post(f"{server}/score", json={"customer_ids": [cid]}, timeout=30)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = httpx.post(f"{server}/score", content=b"{oops", headers={**key, "Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    assert httpx.get(f"{server}/model", headers=key, timeout=30).json()["version"] == trained_home.version
    assert httpx.get(f"{server}/metrics", timeout=30).status_code == 200


def test_serve_refuses_to_start_without_a_key_or_open_off_loopback(monkeypatch, tmp_path):
    monkeypatch.delenv("CHURNCLV_API_KEYS", raising=False)
    monkeypatch.setenv("CHURNCLV_HOME", str(tmp_path))
    with pytest.raises(AccessError, match="no API key"):
        serve(host="127.0.0.1", port=3000)
    with pytest.raises(AccessError, match="loopback"):
        serve(host="0.0.0.0", port=3000, open_=True)
    launch = plan_server(host="127.0.0.1", port=3001, model="models:/churn-clv/1", scores=None,
                         api_keys_file=None, open_=True, environ={"CHURNCLV_HOME": str(tmp_path)})
    env = launch.env
    assert env["CHURNCLV_OPEN"] == "1" and env["BENTOML_HOST"] == "127.0.0.1" and launch.access.open
    assert env["CHURNCLV_SCORES_PATH"] == str(tmp_path.resolve() / "scores" / "latest.parquet")
    assert env["CHURNCLV_MODEL_URI"] == "models:/churn-clv/1" and env["CHURNCLV_HOME"] == str(tmp_path.resolve())


def test_serve_refuses_invalid_settings_before_starting(tmp_path):
    with pytest.raises(SettingsError, match=r"^CHURNCLV_MAX_BODY_BYTES='lots' is not allowed"):
        plan_server(host="127.0.0.1", port=3001, model="models:/churn-clv/1", scores=None, api_keys_file=None,
                    open_=True, environ={"CHURNCLV_MAX_BODY_BYTES": "lots"})
    with pytest.raises(SettingsError, match=r"^CHURNCLV_MODEL_URI='churn-clv' is not allowed"):
        plan_server(host="127.0.0.1", port=3001, model="churn-clv", scores=None, api_keys_file=None,
                    open_=True, environ={})
    with pytest.raises(SettingsError, match=r"^CHURNCLV_API_KEYS_FILE="):
        plan_server(host="127.0.0.1", port=3001, model="models:/churn-clv/1", scores=None,
                    api_keys_file=tmp_path / "none.txt", open_=False, environ={})


def test_serve_passes_options_and_absolute_paths_to_the_server(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keys.txt").write_text("k-0123456789abcdef\n")
    launch = plan_server(host="0.0.0.0", port=3002, model="models:/churn-clv@champion", scores=Path("s.parquet"),
                         api_keys_file=Path("keys.txt"), open_=False, workers=1, behind_proxy=True,
                         environ={"CHURNCLV_OPEN": "1", "BENTOML_CONFIG_OPTIONS": "a=b"})
    env = launch.env
    assert "CHURNCLV_OPEN" not in env and launch.access.keys == (b"k-0123456789abcdef",)
    assert env["CHURNCLV_SCORES_PATH"] == str(tmp_path / "s.parquet")
    assert env["CHURNCLV_API_KEYS_FILE"] == str(tmp_path / "keys.txt")
    assert env["BENTOML_CONFIG_OPTIONS"] == "a=b services.churnclv.workers=1" and env["BENTOML_PORT"] == "3002"


# --- idle and slow connections ----------------------------------------------------------------------

def open_idle(port: int, count: int) -> tuple[list[socket.socket], int]:
    """``count`` connections that send nothing; (the sockets, how many connects failed)."""
    sockets, failed = [], 0
    for _ in range(count):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            sockets.append(s)
        except OSError:
            failed += 1
            s.close()
    return sockets, failed


def closed_by_server(s: socket.socket) -> bool:
    s.settimeout(0.5)
    try:
        return s.recv(1024) == b""  # EOF: the server closed it
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.mark.slow
def test_idle_connections_do_not_lock_clients_out_and_are_closed(trained_home, tmp_path):
    """The issue's attack, at the common default of 1,024 open files: idle sockets beyond the cap
    close the oldest idle ones, /healthz and /score still answer, and idle sockets go after the
    head deadline."""
    from churnclv.serving.connections import HEAD_SECONDS

    with running_server(trained_home.home, tmp_path, nofile=1024) as url:
        port = int(url.rsplit(":", 1)[1])
        idle, failed = open_idle(port, 1500)  # over the 2 workers' 2 x 768 cap: the oldest are closed
        started = time.monotonic()
        try:
            for _ in range(3):
                assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
            r = httpx.post(f"{url}/score", json={"customer_ids": ["nobody"]}, headers=BEARER, timeout=5)
            assert r.status_code == 200 and r.json()["unknown_ids"] == ["nobody"]
            time.sleep(max(0.0, HEAD_SECONDS + 2 - (time.monotonic() - started)))
            still_open = [s for s in idle if not closed_by_server(s)]
            assert failed == 0 and still_open == [], (failed, len(still_open))
        finally:
            for s in idle:
                s.close()


@pytest.mark.slow
def test_a_slow_request_head_gets_408_in_our_format(server):
    from churnclv.serving.connections import HEAD_SECONDS

    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=HEAD_SECONDS + 5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"application/json" in head
    assert json.loads(body)["error"]["code"] == "request_timeout"


def test_malformed_http_gets_400_in_our_format(server):
    port = int(server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_the_file_limit_is_raised_and_the_cap_stays_below_it():
    from churnclv.serving.connections import FILES_RESERVED, MAX_CONNECTIONS, connection_cap, raise_file_limit

    soft = raise_file_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard == resource.RLIM_INFINITY or soft == hard
    assert connection_cap(1024) == 1024 - FILES_RESERVED == 768
    assert connection_cap(1 << 20) == MAX_CONNECTIONS and connection_cap(100) == 32
