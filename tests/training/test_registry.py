
"""MLflow tracking and registry in a temporary store: what a run logs, the bundle, the champion gate."""

import ast
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import packages_distributions
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import mlflow
import pandas as pd
import pytest
import yaml

from churnclv.contract import ChurnclvError
from churnclv.contract.columns import TRANSACTION_REQUIRED
from churnclv.contract.defaults import CHAMPION, MODEL_NAME
from churnclv.features import validate_transactions
from churnclv.scoring.registry import connect, load_bundle, using_store
from churnclv.training.jobs import run_training
from churnclv.training.registry import (
    CODE_PACKAGES,
    EXPERIMENT_PREFIX,
    HOST_TAG,
    PID_TAG,
    REQUIREMENTS,
    STARTED_TAG,
    ChampionUnknownError,
    Logged,
    champion,
    compare,
    fail_abandoned_runs,
    gate,
    pip_requirements,
    process_gone,
    process_start,
    process_tags,
    promote,
    trained_by,
)
from tests.conftest import SEED_AS_OF, SEED_CSV, fast_config

ROOT = Path(__file__).resolve().parents[2]


def test_a_run_logs_params_metrics_plots_and_the_data_fingerprint(trained_home):
    client = connect(trained_home.tracking_uri)
    run = client.get_run(trained_home.run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["as_of"] == "2025-12-31" and params["horizon_days"] == "90"
    assert params["boost.seed"] == "42" and params["data.rows"] == "25057"
    assert params["clv.bgnbd.path"] in ("converged", "precision_loss_accepted") and float(params["clv.bgnbd.r"]) > 0
    assert {"model.roc_auc", "bgnbd.roc_auc", "rfm_logistic.roc_auc", "model.purchases_total_error_pct",
            "model.spend_spearman", "model.brier", "model.lift_top_decile", "model.roc_auc.bgnbd_expected"} <= set(metrics)
    names = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/calibration.png", "plots/lift_gain.png", "plots/feature_importance.png",
            "plots/purchases_by_frequency.png", "plots/p_alive.png"} <= names
    assert run.info.artifact_uri.startswith(str(trained_home.home / "mlruns" / "artifacts"))


def test_the_first_version_is_the_champion_with_its_as_of(trained_home):
    client = connect(trained_home.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    assert str(champion.version) == trained_home.version and champion.run_id == trained_home.run_id
    assert champion.tags["as_of"] == "2025-12-31"


def test_the_registered_bundle_scores_like_the_pyfunc_and_holds_no_customer_data(trained_home, seed_transactions):
    client = connect(trained_home.tracking_uri)
    bundle = load_bundle(client, "models:/churn-clv@champion")
    assert bundle.metadata["version"] == trained_home.version
    sample = seed_transactions.loc[seed_transactions["customer_id"].isin(["C00001", "C00002", "C00003"])]
    direct = bundle.score(sample, as_of=SEED_AS_OF)
    with using_store(client):
        via_pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{trained_home.version}").predict(
            sample, params={"as_of": "2025-12-31"})
        model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{trained_home.version}"))
    pd.testing.assert_frame_equal(direct, via_pyfunc, check_dtype=False)
    blob = b"".join(p.read_bytes() for p in model_dir.rglob("*") if p.is_file())
    assert len(blob) < 3_000_000
    assert b"C00001" not in blob and b"C01234" not in blob


def _plain_logs() -> dict[str, pd.DataFrame]:
    """Samples of the seed log as ``pandas.read_csv`` reads it (quantities are whole numbers: int64), with
    whole-number amounts and numeric customer ids, and with the required columns only."""
    plain = pd.read_csv(SEED_CSV)
    sample = plain.loc[plain["customer_id"].isin(plain["customer_id"].drop_duplicates().iloc[::40])]
    numeric_ids = sample["customer_id"].str.removeprefix("C").astype("int64")
    return {"as read": sample,
            "whole numbers": sample.assign(amount=sample["amount"].round().astype("int64"), customer_id=numeric_ids),
            "required only": sample[list(TRANSACTION_REQUIRED)]}


def test_the_registered_model_takes_a_log_read_plainly_with_or_without_optional_columns(trained_home):
    client = connect(trained_home.tracking_uri)
    with using_store(client):
        model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{trained_home.version}")
    bundle = load_bundle(client, f"models:/{MODEL_NAME}/{trained_home.version}")
    logs = _plain_logs()
    assert logs["as read"]["quantity"].dtype == "int64" and logs["whole numbers"]["amount"].dtype == "int64"
    for name, log in logs.items():
        scores = model.predict(log, params={"as_of": "2025-12-31"})
        expected = bundle.score(validate_transactions(log)[0], as_of=SEED_AS_OF)
        assert len(scores) == log["customer_id"].nunique(), name
        pd.testing.assert_frame_equal(scores, expected, check_dtype=False, obj=name)


def test_compare_needs_both_auc_and_purchase_error_at_least_as_good():
    old = {"model.roc_auc": 0.78, "model.purchases_total_error_pct": -5.0}
    assert compare({"model.roc_auc": 0.78, "model.purchases_total_error_pct": 5.0}, old)[0]
    assert not compare({"model.roc_auc": 0.79, "model.purchases_total_error_pct": -6.0}, old)[0]
    assert not compare({"model.roc_auc": 0.77, "model.purchases_total_error_pct": -1.0}, old)[0]
    # a champion logged before the shipped model's metrics were named "model.*" is still read
    legacy = {"lightgbm.roc_auc": 0.78, "lightgbm.purchases_total_error_pct": -5.0}
    assert compare({"model.roc_auc": 0.78, "model.purchases_total_error_pct": 5.0}, legacy)[0]
    assert not compare({"model.roc_auc": 0.77, "model.purchases_total_error_pct": 1.0}, legacy)[0]


def test_a_worse_model_is_registered_as_challenger_and_promote_overrides(tmp_path, seed_transactions):
    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    common = dict(as_of=SEED_AS_OF, dataset="seed", client=client, artifact_root=tmp_path / "artifacts",
                  plots_dir=tmp_path / "plots")
    first = run_training(seed_transactions, config=fast_config(), **common)
    # a CLV model in half-year time units ranks and forecasts worse (a one-tree LightGBM no longer does: the
    # choice on the judging window ships BG/NBD's ranking over it)
    weak = replace(fast_config(), time_unit_days=182.0)
    second = run_training(seed_transactions, config=weak, **common)
    assert first.promoted and not second.promoted
    assert f"kept v{first.logged.version} as champion" in second.reason and "challenger" in second.reason
    assert str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == first.logged.version
    promote(client, second.logged.version)
    assert str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version) == second.logged.version
    with pytest.raises(ChurnclvError, match="no version 99"):
        promote(client, "99")


def test_the_gate_scores_an_older_champion_on_the_challengers_window(tmp_path, seed_transactions):
    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    common = dict(dataset="seed", client=client, artifact_root=tmp_path / "artifacts", plots_dir=tmp_path / "plots",
                  config=fast_config())
    # trained before the challenger's judging window (the same season a year earlier) begins
    old = run_training(seed_transactions, as_of=SEED_AS_OF - pd.Timedelta(days=400), **common)
    new = run_training(seed_transactions, as_of=SEED_AS_OF, **common)
    assert old.promoted
    assert f"champion v{old.logged.version} re-scored on this backtest window" in new.reason
    # the re-scored champion saw nothing after its own as-of: its window metrics are an honest comparison
    from churnclv.training.pipeline import until, window_metrics

    champion = load_bundle(client, f"models:/{MODEL_NAME}/{old.logged.version}")
    origin = pd.Timestamp(new.result.bundle.metadata["backtest_origin"])
    measured = window_metrics(champion, until(seed_transactions, SEED_AS_OF), origin=origin, horizon_days=90)
    assert f"vs champion's {measured['model.roc_auc']:.4f}" in new.reason


@pytest.mark.slow
def test_a_champion_that_saw_the_challengers_window_is_judged_with_it_on_the_latest_window(tmp_path,
                                                                                          seed_transactions):
    """The challenger chose on the same season a year earlier, which a champion trained three months ago saw:
    both are measured on the latest horizon instead, the challenger refitted at its start."""
    from churnclv.training.pipeline import refitted, until, window_metrics

    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    common = dict(dataset="seed", client=client, artifact_root=tmp_path / "artifacts", plots_dir=tmp_path / "plots",
                  config=fast_config())
    old = run_training(seed_transactions, as_of=SEED_AS_OF - pd.Timedelta(days=92), **common)
    new = run_training(seed_transactions, as_of=SEED_AS_OF, **common)
    assert new.result.bundle.metadata["backtest_origin"] < old.result.bundle.metadata["as_of"]  # the season before
    origin = SEED_AS_OF - pd.Timedelta(days=90)
    assert f"both on {origin:%Y-%m-%d} + 90 days, which champion v{old.logged.version} had not seen" in new.reason
    seen = until(seed_transactions, SEED_AS_OF)
    champion = load_bundle(client, f"models:/{MODEL_NAME}/{old.logged.version}")
    challenger = refitted(new.result.bundle, seen, as_of=origin, config=fast_config())
    theirs = window_metrics(champion, seen, origin=origin, horizon_days=90)
    ours = window_metrics(challenger, seen, origin=origin, horizon_days=90)
    assert f"churn AUC {ours['model.roc_auc']:.4f} vs champion's {theirs['model.roc_auc']:.4f}" in new.reason


def test_the_gate_compares_days_not_their_text():
    """An older churnclv wrote as-of days as timestamps: as text "2025-10-01 00:00:00" > "2025-10-01"."""
    assert trained_by("2025-10-01 00:00:00", "2025-10-01") and trained_by("2025-09-30", "2025-10-01")
    assert not trained_by("2025-10-02", "2025-10-01 00:00:00")
    assert not trained_by(None, "2025-10-01") and not trained_by("not a day", "2025-10-01")


def _gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def test_runs_whose_training_process_is_gone_are_marked_failed(tmp_path):
    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    ours = client.create_experiment(f"{EXPERIMENT_PREFIX}seed", str(tmp_path / "artifacts" / "seed"))
    other = client.create_experiment("someone-else", str(tmp_path / "artifacts" / "other"))
    gone = {PID_TAG: str(_gone_pid()), HOST_TAG: process_tags()[HOST_TAG]}
    killed = client.create_run(ours, tags=gone).info.run_id
    alive = client.create_run(ours, tags=process_tags()).info.run_id
    elsewhere = client.create_run(ours, tags={**gone, HOST_TAG: "another-host"}).info.run_id
    untagged = client.create_run(ours).info.run_id
    not_ours = client.create_run(other, tags=gone).info.run_id
    assert fail_abandoned_runs(client) == [killed]
    status = {r: client.get_run(r).info.status for r in (killed, alive, elsewhere, untagged, not_ours)}
    assert status == {killed: "FAILED", alive: "RUNNING", elsewhere: "RUNNING", untagged: "RUNNING",
                      not_ours: "RUNNING"}
    assert fail_abandoned_runs(client) == []


def test_a_reused_pid_is_gone_and_a_live_process_is_not():
    parent = os.getppid()
    here = process_tags()[HOST_TAG]
    assert process_start(parent) is not None and process_start(_gone_pid()) is None
    assert not process_gone({PID_TAG: str(parent), HOST_TAG: here, STARTED_TAG: process_start(parent)})
    assert process_gone({PID_TAG: str(parent), HOST_TAG: here, STARTED_TAG: "1.00"})  # another process now
    assert not process_gone({PID_TAG: str(parent), HOST_TAG: here})  # no start time: unsure, so alive
    assert not process_gone({PID_TAG: str(parent), HOST_TAG: here, "churnclv.process_start": "123"})


# --- the champion when the store fails --------------------------------------------------------------

def _registry_with_champion(tmp_path: Path):
    """A real SQLite registry holding churn-clv v1 (champion) and v2."""
    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    client.create_registered_model(MODEL_NAME)
    for _ in range(2):
        client.create_model_version(MODEL_NAME, source=str(tmp_path / "artifacts" / "model"))
    promote(client, "1")
    return client


def _rename_table(database: Path, old: str, new: str) -> None:
    with sqlite3.connect(database) as db:
        db.execute(f"ALTER TABLE {old} RENAME TO {new}")


def test_no_registered_model_or_no_alias_means_no_champion(tmp_path):
    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    assert champion(client) is None
    client.create_registered_model(MODEL_NAME)
    client.create_model_version(MODEL_NAME, source=str(tmp_path / "artifacts" / "model"))
    assert champion(client) is None
    promote(client, "1")
    assert str(champion(client).version) == "1"


def test_a_store_that_fails_stops_the_gate_and_leaves_the_champion(tmp_path):
    """A store error that is not "no such alias" (here SQLite's own "no such table") is no empty registry."""
    client = _registry_with_champion(tmp_path)
    _rename_table(tmp_path / "mlflow.db", "registered_model_aliases", "aliases_away")
    try:
        with pytest.raises(ChampionUnknownError, match=r"^cannot read the champion of churn-clv from the MLflow "
                                                       r"store at sqlite:///.*no such table"):
            champion(client)
        with pytest.raises(ChampionUnknownError, match=r"alias was left as it was.*v2 is registered, not promoted "
                                                       r"\(churnclv promote 2 makes it champion\)$") as stopped:
            gate(client, Logged(run_id="unused", version="2", experiment_id="0"))
        assert "\n" not in str(stopped.value)
    finally:
        _rename_table(tmp_path / "mlflow.db", "aliases_away", "registered_model_aliases")
    assert str(champion(client).version) == "1"
    assert client.get_model_version(MODEL_NAME, "2").tags.get("role") is None


class _FlakyTrackingServer(BaseHTTPRequestHandler):
    """An MLflow tracking server's registry API whose first ``server.unavailable`` answers are 503.

    ``server.aliases`` is its state; ``server.writes`` records every write it accepted."""

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _version(self, version: str) -> dict:
        return {"model_version": {"name": MODEL_NAME, "version": version, "run_id": f"run{version}",
                                  "aliases": [a for a, v in self.server.aliases.items() if v == version]}}

    def do_GET(self) -> None:
        server, url = self.server, urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if server.unavailable > 0:
            server.unavailable -= 1
            return self._send(503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "Service Unavailable"})
        if url.path.endswith("/registered-models/get"):
            aliases = [{"alias": a, "version": v} for a, v in server.aliases.items()]
            return self._send(200, {"registered_model": {"name": MODEL_NAME, "aliases": aliases}})
        if url.path.endswith("/model-versions/get"):
            return self._send(200, self._version(query["version"]))
        if url.path.endswith("/registered-models/alias"):  # get_model_version_by_alias
            return self._send(200, self._version(server.aliases[query["alias"]]))
        return self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": url.path})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.writes.append((urlsplit(self.path).path, body))
        if self.path.endswith("/registered-models/alias"):
            self.server.aliases[body["alias"]] = body["version"]
        return self._send(200, {})


@pytest.fixture()
def flaky_server(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the 503 outlasts MLflow's own retries
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyTrackingServer)
    server.aliases, server.writes, server.unavailable = {CHAMPION: "1"}, [], 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_tracking_servers_503_does_not_replace_the_champion(flaky_server):
    from mlflow.tracking import MlflowClient

    uri = f"http://127.0.0.1:{flaky_server.server_port}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert str(champion(client).version) == "1"
    flaky_server.unavailable = 1  # the champion read fails once; the store answers again right after
    with pytest.raises(ChampionUnknownError, match=r"cannot read the champion of churn-clv from the MLflow store at "
                                                   rf"{uri} \(.*\); the champion alias was left as it was"):
        gate(client, Logged(run_id="unused", version="2", experiment_id="0"))
    assert flaky_server.aliases == {CHAMPION: "1"} and flaky_server.writes == []


def _model_dir(trained, dst: Path) -> Path:
    with using_store(connect(trained.tracking_uri)):  # MLflow resolves models:/ with the global registry URI
        return Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{trained.version}",
                                                        dst_path=str(dst)))


def test_the_registered_model_ships_its_code_and_pinned_requirements(trained_home, tmp_path):
    model_dir = _model_dir(trained_home, tmp_path)
    flavor = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["code"] == "code" and flavor["artifacts"]["bundle"]["path"] == "artifacts/bundle"
    assert sorted(p.name for p in (model_dir / "code").iterdir()) == ["churnclv"]
    shipped = sorted(p.name for p in (model_dir / "code" / "churnclv").iterdir())
    assert shipped == ["__init__.py", "contract", "features", "scoring"]
    assert (model_dir / "artifacts" / "bundle" / "bundle.json").is_file()
    requirements = (model_dir / "requirements.txt").read_text().split()
    assert requirements == pip_requirements() and "mlflow==3.17.2" in requirements
    assert not any(r.lower().startswith(("lifetimes", "scikit-learn")) for r in requirements)


def _third_party_imports(package: Path) -> set[str]:
    """Top-level names imported at module level by the modules of ``package`` (ours excluded)."""
    ours = {p.parent.name for p in ROOT.glob("*/__init__.py")} | {"churnclv"}
    names = set()
    for path in package.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in ours and n not in sys.stdlib_module_names}


def test_the_requirements_cover_what_the_shipped_code_imports():
    distributions, pinned = packages_distributions(), {r.lower() for r in REQUIREMENTS}
    imported = {name for package in CODE_PACKAGES for name in _third_party_imports(Path(package.__file__).parent)}
    assert imported >= {"pandas", "numpy", "scipy", "lightgbm", "mlflow"}
    uncovered = [name for name in imported if not {d.lower() for d in distributions[name]} & pinned]
    assert not uncovered


class _OldStyle(mlflow.pyfunc.PythonModel):
    """Stands in for a model registered before the bundle was data: a pickle, no bundle directory."""

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        return model_input


def test_a_version_registered_before_the_bundle_was_data_is_refused(tmp_path):
    client = connect(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    other_format = tmp_path / "bundle"
    other_format.mkdir()
    (other_format / "bundle.json").write_text(json.dumps({"format": "churnclv-bundle", "version": 0}))
    with using_store(client), mlflow.start_run(experiment_id=client.create_experiment("old", str(tmp_path / "artifacts"))):
        mlflow.pyfunc.log_model(name="model", python_model=_OldStyle(), registered_model_name=MODEL_NAME)
        mlflow.pyfunc.log_model(name="model2", python_model=_OldStyle(), artifacts={"bundle": str(other_format)},
                                registered_model_name=MODEL_NAME)
    promote(client, "1")
    with pytest.raises(ChurnclvError) as pickled:
        load_bundle(client, "models:/churn-clv@champion")
    assert str(pickled.value).startswith(
        "models:/churn-clv/1 was registered by an older churnclv (a pickled model); "
        "retrain it: churnclv train --transactions <file> (then churnclv promote")
    with pytest.raises(ChurnclvError, match=r"models:/churn-clv/2 was registered by an older churnclv "
                                            r"\(another bundle format: .* version 0; .*retrain it: churnclv train"):
        load_bundle(client, "models:/churn-clv/2")


LOAD_OUTSIDE = textwrap.dedent("""
    import sys
    import mlflow.pyfunc
    import pandas as pd

    try:
        from churnclv import training  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the checkout is importable: " + training.__file__)
    model_dir, as_of = sys.argv[1], sys.argv[2]
    model = mlflow.pyfunc.load_model(model_dir)
    scores = model.predict(pd.read_parquet("transactions.parquet"), params={"as_of": as_of})
    from churnclv import scoring
    assert scoring.__file__.startswith(model_dir), scoring.__file__
    scores.to_parquet("scores.parquet")
    plain = pd.read_csv("transactions.csv")  # as a data scientist reads a log: quantities are int64
    assert plain["quantity"].dtype == "int64", plain.dtypes
    model.predict(plain, params={"as_of": as_of}).to_parquet("scores_plain.parquet")
    required = pd.read_csv("transactions.csv", usecols=["customer_id", "timestamp", "amount"])
    model.predict(required, params={"as_of": as_of}).to_parquet("scores_required.parquet")
""")


@pytest.mark.slow
def test_a_registered_version_loads_in_a_fresh_environment_outside_the_checkout(trained_home, seed_transactions,
                                                                                 tmp_path):
    model_dir = _model_dir(trained_home, tmp_path / "model")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=300)
    python = tmp_path / "venv" / "bin" / "python"
    pip_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile", "-r",
                    str(model_dir / "requirements.txt")], check=True, timeout=1800, env=pip_env, cwd=tmp_path)
    sample = seed_transactions.loc[seed_transactions["customer_id"].isin(
        seed_transactions["customer_id"].drop_duplicates().iloc[::7])]
    sample.to_parquet(tmp_path / "transactions.parquet", index=False)
    lines = SEED_CSV.read_text().splitlines()
    chosen = set(sample["customer_id"])
    (tmp_path / "transactions.csv").write_text("\n".join(
        [lines[0], *(line for line in lines[1:] if line.partition(",")[0] in chosen)]) + "\n")
    (tmp_path / "load.py").write_text(LOAD_OUTSIDE)
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    done = subprocess.run([str(python), "load.py", str(model_dir), "2025-12-31"], cwd=tmp_path, env=clean,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    outside = pd.read_parquet(tmp_path / "scores.parquet")
    bundle = load_bundle(connect(trained_home.tracking_uri), f"models:/{MODEL_NAME}/{trained_home.version}")
    pd.testing.assert_frame_equal(outside, bundle.score(sample, as_of=SEED_AS_OF), check_dtype=False)
    plain = pd.read_parquet(tmp_path / "scores_plain.parquet")
    pd.testing.assert_frame_equal(plain, outside, check_dtype=False)  # the same log, read the plain way
    required = pd.read_parquet(tmp_path / "scores_required.parquet")
    expected = bundle.score(sample[list(TRANSACTION_REQUIRED)], as_of=SEED_AS_OF)
    pd.testing.assert_frame_equal(required, expected, check_dtype=False)
    assert len(required) == sample["customer_id"].nunique()
