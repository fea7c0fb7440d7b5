"""The real server: ``serving.cli_serve.serve`` (what ``churnclv serve`` runs) in a subprocess, over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from contract.settings import SettingsError
from serving.auth import AccessError
from serving.cli_serve import plan_server, serve

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(trained_home, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNCLV_", "MLFLOW_", "BENTOML_"))}
    env.update(CHURNCLV_HOME=str(trained_home.home), CHURNCLV_API_KEYS="real-key", BENTOML_DO_NOT_TRACK="true",
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    code = f"from serving.cli_serve import serve; serve(host='127.0.0.1', port={port})"
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
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
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_real_server_answers_with_a_key_only(server, trained_home):
    import pandas as pd

    cid = pd.read_parquet(trained_home.scores_path)["customer_id"].iloc[0]
    key = {"Authorization": "Bearer real-key"}
    r = httpx.post(f"{server}/score", json={"customer_ids": [cid, "nobody"]}, headers=key)
    assert r.status_code == 200 and r.json()["scores"][0]["customer_id"] == cid
    assert r.json()["unknown_ids"] == ["nobody"]
    r = httpx.post(f"{server}/score", json={"customer_ids": [cid]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = httpx.post(f"{server}/score", content=b"{oops", headers={**key, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    assert httpx.get(f"{server}/model", headers=key).json()["version"] == trained_home.version
    assert httpx.get(f"{server}/metrics").status_code == 200


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
    (tmp_path / "keys.txt").write_text("k\n")
    launch = plan_server(host="0.0.0.0", port=3002, model="models:/churn-clv@champion", scores=Path("s.parquet"),
                         api_keys_file=Path("keys.txt"), open_=False, workers=1,
                         environ={"CHURNCLV_OPEN": "1", "BENTOML_CONFIG_OPTIONS": "a=b"})
    env = launch.env
    assert "CHURNCLV_OPEN" not in env and launch.access.keys == (b"k",)
    assert env["CHURNCLV_SCORES_PATH"] == str(tmp_path / "s.parquet")
    assert env["CHURNCLV_API_KEYS_FILE"] == str(tmp_path / "keys.txt")
    assert env["BENTOML_CONFIG_OPTIONS"] == "a=b services.churnclv.workers=1" and env["BENTOML_PORT"] == "3002"


def test_bentoml_build_packages_the_service(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    done = subprocess.run([sys.executable, "-m", "bentoml", "build", str(REPO)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Successfully built" in done.stdout
    bento = next((tmp_path / "bentoml" / "bentos" / "churnclv").glob("*/bento.yaml")).parent
    assert (bento / "src" / "serving" / "service.py").is_file() and (bento / "src" / "features" / "io.py").is_file()
    assert not list((bento / "src").glob("tests*"))
    assert "bentoml==1.4.40" in (bento / "env" / "python" / "requirements.txt").read_text()
