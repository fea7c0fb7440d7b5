"""MLflow: log a training run, register the bundle as "churn-clv", and gate the champion alias."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path

import mlflow
import pandas as pd
import psutil
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

import churnclv
from churnclv import contract, features, scoring
from churnclv.contract import ChurnclvError, first_line
from churnclv.contract.columns import TRANSACTION_COLUMNS, TRANSACTION_REQUIRED
from churnclv.contract.dates import as_of_day
from churnclv.contract.defaults import CHAMPION, MODEL_NAME
from churnclv.contract.model_uri import version_uri
from churnclv.scoring.artifact import ARTIFACT, save_bundle
from churnclv.scoring.pyfunc import BundleModel
from churnclv.scoring.registry import NO_SUCH_MODEL, load_bundle, store_lock, using_store

#: The layers the registered model runs (shipped as its code/ folder; not training, serving or the CLI).
CODE_PACKAGES = (contract, features, scoring)
#: What those packages import (pyarrow: pandas' Parquet engine), pinned to the installed versions.
REQUIREMENTS = ("pandas", "numpy", "pyarrow", "scipy", "lightgbm", "mlflow", "pyyaml", "pydantic",
                "pydantic-settings", "filelock")
log = logging.getLogger("churnclv.training.registry")
#: Every experiment of ours is named "churn-clv/<dataset>".
EXPERIMENT_PREFIX = f"{MODEL_NAME}/"
#: Run tags naming the process that logs a run, so that a later command can tell it was killed.
#: The start time is in seconds after boot (:func:`process_start`); runs that an older churnclv tagged
#: "churnclv.process_start" (clock ticks) carry none, so only their pid's absence marks them gone.
PID_TAG, HOST_TAG, STARTED_TAG = "churnclv.pid", "churnclv.host", "churnclv.process_created"
#: The transaction contract as an MLflow schema: every column by name (optional ones must be declared, or
#: MLflow drops them), each of any type. ``features.validate_transactions`` parses and checks the values
#: inside the model, so a log read plainly (dates as text, whole-number quantities or amounts, numeric ids)
#: is taken as the command line takes it, and a bad one gets the contract's message, not MLflow's.
INPUT_SCHEMA = Schema([ColSpec(AnyType(), name, required=name in TRANSACTION_REQUIRED) for name in TRANSACTION_COLUMNS])


def code_paths(folder: Path) -> list[str]:
    """The code the registered model ships, laid out in ``folder`` as ``churnclv/`` with only the layers it
    runs (its ``code/churnclv/{contract,features,scoring}``, the package's ``__init__``)."""
    package = folder / "churnclv"
    package.mkdir(parents=True)
    shutil.copy2(churnclv.__file__, package / "__init__.py")
    for layer in CODE_PACKAGES:
        shutil.copytree(Path(layer.__file__).parent, package / layer.__name__.rsplit(".", 1)[1],
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return [str(package)]


def pip_requirements() -> list[str]:
    return [f"{name}=={installed_version(name)}" for name in REQUIREMENTS]


def signature(input_example: pd.DataFrame, output: pd.DataFrame, as_of: str) -> ModelSignature:
    return ModelSignature(
        inputs=INPUT_SCHEMA,
        outputs=infer_signature(input_example, output).outputs,
        params=ParamSchema([ParamSpec("as_of", "string", as_of)]),
    )


def experiment_id(client: MlflowClient, dataset: str, artifact_root: Path | None) -> str:
    """The experiment of one dataset ("churn-clv/<dataset>"), created on first use."""
    name = f"{EXPERIMENT_PREFIX}{dataset}"
    with store_lock(client.tracking_uri):  # two first trainings of a dataset: one creates it
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = str(artifact_root / dataset) if artifact_root is not None else None
        return client.create_experiment(name, artifact_location=location)


def _since_boot(process: psutil.Process) -> str:
    """When ``process`` started, in seconds after the machine booted (to 1/100 s): both of psutil's times
    follow the system clock, their difference does not, so a clock adjustment does not move it."""
    return f"{process.create_time() - psutil.boot_time():.2f}"


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (:func:`_since_boot`), or None where unknown (no such process, or one
    we may not inspect)."""
    try:
        return _since_boot(psutil.Process(pid))
    except (psutil.Error, OSError):
        return None


def process_tags() -> dict[str, str]:
    """The tags that name this process (pid, host, start time) on a run it logs."""
    started = process_start(os.getpid())
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(), **({STARTED_TAG: started} if started else {})}


def process_gone(tags: dict[str, str]) -> bool:
    """Is the process named by a run's tags certainly gone? False whenever unsure (no tags, another host,
    a process we may not inspect): only a run of this host whose process has exited (or is a zombie), or
    whose pid now belongs to a process started at another time, counts as gone."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return False
    pid = int(tags[PID_TAG])
    if pid == os.getpid():
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        now = _since_boot(process)
    except psutil.NoSuchProcess:
        return True
    except (psutil.Error, OSError):  # AccessDenied: alive, someone else's
        return False
    started = tags.get(STARTED_TAG)
    return started is not None and started != now


def fail_abandoned_runs(client: MlflowClient) -> list[str]:
    """Mark FAILED the RUNNING runs of our experiments whose training process is gone; their ids."""
    experiments = [e.experiment_id for e in client.search_experiments(filter_string=f"name LIKE '{EXPERIMENT_PREFIX}%'")]
    if not experiments:
        return []
    running = client.search_runs(experiments, filter_string="attributes.status = 'RUNNING'", max_results=1000)
    failed = []
    for run in running:
        if process_gone(run.data.tags):
            client.set_tag(run.info.run_id, "churnclv.failed", "its training process was gone")
            client.set_terminated(run.info.run_id, status="FAILED")
            failed.append(run.info.run_id)
    return failed


def flat_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """{"model": {"roc_auc": ..}} -> {"model.roc_auc": ..}, finite values only."""
    return {
        f"{model}.{name}": float(value)
        for model, values in metrics.items()
        for name, value in values.items()
        if pd.notna(value)
    }


def clv_params(clv) -> dict:
    """The fitted BG/NBD and Gamma-Gamma parameters and the method and path each fit took."""
    report = clv.fit_report_
    return {
        **{f"clv.bgnbd.{k}": round(v, 6) for k, v in clv.bgnbd_params_.items()},
        **{f"clv.gamma_gamma.{k}": round(v, 6) for k, v in clv.gg_params_.items()},
        **{f"clv.{m}.{k}": report[m][k] for m in ("bgnbd", "gamma_gamma") for k in ("method", "path")},
    }


@dataclass(frozen=True)
class Logged:
    run_id: str
    version: str
    experiment_id: str


def log_training(result, *, dataset: str, params: dict, figures: dict, client: MlflowClient,
                 artifact_root: Path | None, input_example: pd.DataFrame) -> Logged:
    """Log parameters, metrics, plots and the bundle in one run, and register the bundle.

    The model is :class:`scoring.pyfunc.BundleModel` with the bundle saved as data
    (:mod:`scoring.artifact`) and the packages it runs as its code, so it loads wherever its
    requirements install.
    """
    bundle = result.bundle
    meta = bundle.metadata
    exp = experiment_id(client, dataset, artifact_root)
    with using_store(client), store_lock(client.tracking_uri), \
            mlflow.start_run(experiment_id=exp, run_name=f"train as of {meta['as_of']}", tags=process_tags()) as run:
        mlflow.log_params({**params, "as_of": meta["as_of"], "purchases_method": meta["purchases_method"],
                           "purchases_level": meta.get("purchases_level", "bgnbd"),
                           "backtest_origin": meta["backtest_origin"], "dataset": dataset,
                           "n_cutoffs": len(meta["cutoffs"]), **clv_params(bundle.models.clv),
                           **{f"data.{k}": v for k, v in meta["data"].items()}})
        mlflow.log_metrics(flat_metrics(result.metrics))
        mlflow.log_metrics({f"population.{k}": v for k, v in meta.get("population", {}).items() if isinstance(v, float)})
        mlflow.set_tags({"dataset": dataset, "data.hash": meta["data"]["hash"]})
        mlflow.log_dict(meta, "metadata.json")
        mlflow.log_text("\n".join(meta["features"]), "features.txt")
        for name, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{name}.png")
        output = bundle.score(input_example, as_of=meta["as_of"])
        with tempfile.TemporaryDirectory(prefix="churnclv-bundle-") as tmp:
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=BundleModel(),
                artifacts={ARTIFACT: str(save_bundle(bundle, Path(tmp) / ARTIFACT))},
                code_paths=code_paths(Path(tmp) / "code"),
                pip_requirements=pip_requirements(),
                signature=signature(input_example, output, meta["as_of"]),
                input_example=(input_example, {"as_of": meta["as_of"]}),
                registered_model_name=MODEL_NAME,
            )
        version = str(info.registered_model_version)
        client.set_model_version_tag(MODEL_NAME, version, "as_of", meta["as_of"])
    return Logged(run_id=run.info.run_id, version=version, experiment_id=exp)


class ChampionUnknownError(ChurnclvError):
    """The registry did not answer which version is the champion: nothing may be promoted over it."""


def _unknown(client: MlflowClient, error: MlflowException) -> ChampionUnknownError:
    return ChampionUnknownError(
        f"cannot read the champion of {MODEL_NAME} from the MLflow store at {client.tracking_uri} "
        f"({first_line(error)}); the champion alias was left as it was: retry when the store answers"
    )


def champion(client: MlflowClient):
    """The model version holding the champion alias, or None when there is none.

    "None" is an answer of the registry: no model named :data:`MODEL_NAME`, or one without the alias.
    Any other failure (a locked SQLite file, a tracking server's 503) raises :class:`ChampionUnknownError`:
    a store that cannot be read is never taken for one without a champion.
    """
    try:
        registered = client.get_registered_model(MODEL_NAME)
    except MlflowException as error:
        if error.error_code == NO_SUCH_MODEL:
            return None
        raise _unknown(client, error) from None
    version = (registered.aliases or {}).get(CHAMPION)
    if version is None:
        return None
    try:
        return client.get_model_version(MODEL_NAME, str(version))
    except MlflowException as error:
        raise _unknown(client, error) from None


def shipped(metrics: dict[str, float], name: str, default: float) -> float:
    """The metric ``name`` of the shipped model in a run's flat metrics: ``model.<name>``, or ``lightgbm.<name>``
    in runs logged before the shipped model was named for what it is (whichever churn ranking it is)."""
    return metrics.get(f"model.{name}", metrics.get(f"lightgbm.{name}", default))


def compare(new: dict[str, float], old: dict[str, float]) -> tuple[bool, str]:
    """Is the new backtest at least as good as the old on churn AUC and on |total purchases error|?"""
    auc_new, auc_old = shipped(new, "roc_auc", float("nan")), shipped(old, "roc_auc", float("-inf"))
    err_new = abs(shipped(new, "purchases_total_error_pct", float("nan")))
    err_old = abs(shipped(old, "purchases_total_error_pct", float("inf")))
    verdict = auc_new >= auc_old and err_new <= err_old
    return verdict, (
        f"churn AUC {auc_new:.4f} vs champion's {auc_old:.4f}; "
        f"|total purchases error| {err_new:.1f}% vs {err_old:.1f}%"
    )


def trained_by(trained: str | None, origin: str | None) -> bool:
    """Was a model trained (as of ``trained``) no later than ``origin``? Compared as days, whatever their text
    ("2025-10-01" and "2025-10-01 00:00:00" are one day); False when either is missing or not a day."""
    try:
        return bool(trained and origin) and as_of_day(trained) <= as_of_day(origin)
    except ValueError:
        return False


def _measures(client: MlflowClient, current, new, rescore, latest) -> tuple[dict, dict, str]:
    """The challenger's and the champion's metrics on one window, and how they were obtained.

    When the champion was trained no later than the challenger's backtest window (with the same horizon), its
    bundle is scored on that very window (``rescore``): the same customers, the same outcomes. Otherwise, when
    ``latest(bundle, champion_as_of)`` can measure both on the latest window the champion has not seen (the
    challenger refitted there), those two are compared. Otherwise the champion's recorded backtest metrics are
    used, and the reason says whether they came from the same window.
    """
    old = client.get_run(current.run_id).data
    alike = old.params.get("horizon_days") == new.params.get("horizon_days")
    if rescore is not None and alike and trained_by(old.params.get("as_of"), new.params.get("backtest_origin")):
        bundle = load_bundle(client, version_uri(MODEL_NAME, current.version))
        return new.metrics, rescore(bundle), f" (champion v{current.version} re-scored on this backtest window)"
    if latest is not None and alike:
        bundle = load_bundle(client, version_uri(MODEL_NAME, current.version))
        both = latest(bundle, old.params.get("as_of"))
        if both is not None:
            challenger, champion, window = both
            return challenger, champion, (f" (both on {window}, which champion v{current.version} had not seen; "
                                          "the challenger refitted there)")
    same = new.params.get("backtest_origin") == old.params.get("backtest_origin") and \
        new.tags.get("data.hash") == old.tags.get("data.hash")
    note = "" if same else f" (champion v{current.version}'s recorded metrics come from another window or data)"
    return new.metrics, old.metrics, note


def gate(client: MlflowClient, logged: Logged, *, rescore=None, latest=None) -> tuple[bool, str]:
    """Give ``logged`` the champion alias if it is at least as good as the current champion.

    ``rescore(bundle) -> {"model.roc_auc": .., "model.purchases_total_error_pct": ..}`` measures
    a bundle on the challenger's backtest window; ``latest(bundle, champion_as_of) -> (challenger's, champion's,
    window) | None`` measures both on a later window the champion has not seen (see :func:`_measures`). When
    the registry cannot say which version is the champion, :class:`ChampionUnknownError` stops the gate and the
    alias stays.
    """
    with store_lock(client.tracking_uri):  # read the champion, compare, move the alias: one command at a time
        try:
            current = champion(client)
        except ChampionUnknownError as error:
            raise ChampionUnknownError(f"{error}; v{logged.version} is registered, not promoted "
                                       f"(churnclv promote {logged.version} makes it champion)") from None
        if current is None:
            promote(client, logged.version)
            return True, "the first registered version becomes champion"
        new = client.get_run(logged.run_id).data
        new_metrics, old_metrics, note = _measures(client, current, new, rescore, latest)
        better, reason = compare(new_metrics, old_metrics)
        reason += note
        if better:
            promote(client, logged.version)
            return True, f"promoted over v{current.version}: {reason}"
        client.set_model_version_tag(MODEL_NAME, logged.version, "role", "challenger")
        return False, f"kept v{current.version} as champion; v{logged.version} is a challenger: {reason}"


def promote(client: MlflowClient, version: str | int) -> None:
    """Point the champion alias at ``version`` (must exist)."""
    with store_lock(client.tracking_uri):
        try:
            client.get_model_version(MODEL_NAME, str(version))
        except MlflowException:
            raise ChurnclvError(f"model {MODEL_NAME} has no version {version}") from None
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
        client.set_model_version_tag(MODEL_NAME, str(version), "role", "champion")
