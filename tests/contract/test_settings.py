"""One settings object: every variable, its default, and a one-line error naming a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnclv.contract import ChurnclvError
from churnclv.contract.defaults import MODEL_URI
from churnclv.contract.settings import MAX_BODY_BYTES, Settings, SettingsError


def test_defaults(tmp_path):
    s = Settings.load({})
    assert s.home == Path(".") and s.root == Path.cwd().resolve()
    assert (s.tracking_uri, s.model_uri, s.scores_file, s.api_keys, s.api_keys_file) == (None, MODEL_URI, None, (), None)
    assert (s.refresh_seconds, s.open, s.host, s.max_body_bytes) == (5.0, False, "0.0.0.0", MAX_BODY_BYTES)
    home = Settings.load({"CHURNCLV_HOME": str(tmp_path)})
    assert home.mlflow_uri == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert home.artifact_root == tmp_path / "mlruns" / "artifacts"
    assert home.scores_path == tmp_path / "scores" / "latest.parquet"
    assert (home.plots_dir, home.out_dir) == (tmp_path / "plots", tmp_path / "out")
    assert home.local_key_file == tmp_path / ".churnclv_api_key" and home.keys_file is None


def test_blank_variables_count_as_unset():
    names = ["CHURNCLV_HOME", "MLFLOW_TRACKING_URI", "CHURNCLV_MODEL_URI", "CHURNCLV_SCORES_PATH",
             "CHURNCLV_REFRESH_SECONDS", "CHURNCLV_API_KEYS", "CHURNCLV_API_KEYS_FILE", "CHURNCLV_OPEN",
             "BENTOML_HOST", "CHURNCLV_MAX_BODY_BYTES"]
    assert Settings.load(dict.fromkeys(names, "")) == Settings.load({})


def test_every_variable_is_read(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("k3\n")
    s = Settings.load({
        "CHURNCLV_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "CHURNCLV_MODEL_URI": "models:/churn-clv/4", "CHURNCLV_SCORES_PATH": "~/s.parquet",
        "CHURNCLV_REFRESH_SECONDS": "0", "CHURNCLV_API_KEYS": " k1, k2 ,", "CHURNCLV_API_KEYS_FILE": str(keys),
        "CHURNCLV_OPEN": "yes", "BENTOML_HOST": "127.0.0.1", "CHURNCLV_MAX_BODY_BYTES": "4096",
    })
    assert (s.mlflow_uri, s.artifact_root, s.model_uri) == ("http://mlflow:5000", None, "models:/churn-clv/4")
    assert s.scores_path == Path.home() / "s.parquet" and s.refresh_seconds == 0
    assert s.api_keys == ("k1", "k2") and s.keys_file == keys
    assert (s.open, s.host, s.max_body_bytes) == (True, "127.0.0.1", 4096)
    for uri in ("models:/churn-clv@champion", "models:/other/12", "runs:/abc123/model"):
        assert Settings.load({"CHURNCLV_MODEL_URI": uri}).model_uri == uri
    for text, value in (("1", True), ("on", True), ("false", False), ("0", False), ("off", False)):
        assert Settings.load({"CHURNCLV_OPEN": text}).open is value


def test_load_reads_the_given_environment_only(monkeypatch, tmp_path):
    monkeypatch.setenv("CHURNCLV_MAX_BODY_BYTES", "nonsense")
    assert Settings.load({}).max_body_bytes == MAX_BODY_BYTES
    monkeypatch.setenv("CHURNCLV_HOME", str(tmp_path))
    monkeypatch.setenv("CHURNCLV_MAX_BODY_BYTES", "2048")
    assert (Settings.load().root, Settings.load().max_body_bytes) == (tmp_path.resolve(), 2048)


BAD = [
    ("CHURNCLV_HOME", "{file}", "a directory"),
    ("MLFLOW_TRACKING_URI", "http://a b", "an MLflow tracking URI"),
    ("CHURNCLV_MODEL_URI", "churn-clv", "models:/<name>@<alias>"),
    ("CHURNCLV_MODEL_URI", "models:/churn-clv", "models:/<name>/<version>"),
    ("CHURNCLV_REFRESH_SECONDS", "soon", "seconds from 0"),
    ("CHURNCLV_REFRESH_SECONDS", "-1", "seconds from 0"),
    ("CHURNCLV_REFRESH_SECONDS", "nan", "seconds from 0"),
    ("CHURNCLV_API_KEYS_FILE", "{missing}", "an existing file of API keys"),
    ("CHURNCLV_OPEN", "maybe", "1, true, yes or on"),
    ("BENTOML_HOST", "local host", "a host name or IP address"),
    ("CHURNCLV_MAX_BODY_BYTES", "8MB", "a whole number of bytes from 1,024 to 1,073,741,824"),
    ("CHURNCLV_MAX_BODY_BYTES", "0", "a whole number of bytes"),
    ("CHURNCLV_MAX_BODY_BYTES", "99999999999", "a whole number of bytes"),
]


@pytest.mark.parametrize(("name", "value", "allowed"), BAD)
def test_a_bad_value_is_one_line_naming_the_variable_the_value_and_what_is_allowed(tmp_path, name, value, allowed):
    (tmp_path / "file").write_text("")
    value = value.format(file=tmp_path / "file", missing=tmp_path / "missing")
    with pytest.raises(SettingsError) as caught:
        Settings.load({name: value})
    message = str(caught.value)
    assert isinstance(caught.value, ChurnclvError)
    assert message.startswith(f"{name}={value!r} is not allowed") and allowed in message
    assert "\n" not in message and "pydantic" not in message


def test_every_bad_value_is_named_at_once():
    with pytest.raises(SettingsError) as caught:
        Settings.load({"CHURNCLV_OPEN": "maybe", "CHURNCLV_MAX_BODY_BYTES": "lots"})
    assert "CHURNCLV_OPEN='maybe'" in str(caught.value) and "CHURNCLV_MAX_BODY_BYTES='lots'" in str(caught.value)


def test_artifacts_follow_the_store(tmp_path):
    """Never ./mlruns of wherever the command runs: beside a SQLite file, under the home, or the server's."""
    db = tmp_path / "elsewhere" / "team.db"
    assert Settings.load({"MLFLOW_TRACKING_URI": f"sqlite:///{db}"}).artifact_root == db.parent / "artifacts"
    relative = Settings.load({"MLFLOW_TRACKING_URI": "sqlite:///stores/m.db?timeout=20"})
    assert relative.artifact_root == Path.cwd() / "stores" / "artifacts"
    home = {"CHURNCLV_HOME": str(tmp_path)}
    assert Settings.load(home).artifact_root == tmp_path / "mlruns" / "artifacts"
    assert Settings.load({**home, "MLFLOW_TRACKING_URI": "postgresql://u@db/mlflow"}).artifact_root == \
        tmp_path / "mlruns" / "artifacts"
    assert Settings.load({**home, "MLFLOW_TRACKING_URI": "https://mlflow.example.com"}).artifact_root is None
