"""The MLflow store: connecting to it safely, and loading the scoring artifact pinned to a version.

Two churnclv commands may start together on a fresh SQLite store: MLflow's schema migration is not
safe under concurrency (two processes creating its tables leave ``_alembic_tmp_*`` tables behind and
the store broken), so creating the store and every registry write hold :func:`store_lock`, an
inter-process lock (:mod:`filelock`) on a file beside the database. Nothing here calls ``mlflow.set_tracking_uri``: the
client carries its URIs (:func:`connect`) and :func:`using_store` points MLflow's fluent API at a store
for a block only, restoring the process's settings and environment after it.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import yaml
from filelock import FileLock, Timeout
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from churnclv.contract import ChurnclvError, first_line
from churnclv.contract.model_uri import parse_model_uri, version_uri
from churnclv.contract.settings import sqlite_path
from churnclv.scoring.artifact import ARTIFACT, BundleFormatError, load_bundle_dir
from churnclv.scoring.bundle import ChurnCLVBundle

#: How long a command waits for another one holding the store (creating it, registering, promoting).
LOCK_SECONDS = 600.0
#: How long connecting to a tracking server may take before it counts as unreachable.
CONNECT_SECONDS = 5.0
#: MLflow's error code for "no such registered model or version" (as opposed to a failing store).
NO_SUCH_MODEL = "RESOURCE_DOES_NOT_EXIST"
#: The codes meaning "no such model, version or alias" (MLflow answers a missing alias as an invalid value).
NOT_FOUND = (NO_SUCH_MODEL, "INVALID_PARAMETER_VALUE")


class StoreBusyError(ChurnclvError):
    """Another command held the store for longer than we were willing to wait."""


class StoreUnreachableError(ChurnclvError):
    """The tracking store cannot be reached (or opened)."""


def lock_file(tracking_uri: str) -> Path | None:
    """The lock file of a SQLite store (``<database>.lock`` beside it), or None for other stores."""
    database = sqlite_path(tracking_uri)
    return None if database is None else database.with_name(database.name + ".lock")


def _file_lock(path: Path) -> FileLock:
    """This process's one lock object for ``path``: re-entrant, and shared by the process's threads."""
    return FileLock(str(path), thread_local=False, is_singleton=True)


@contextmanager
def store_lock(tracking_uri: str, *, timeout: float | None = None) -> Iterator[None]:
    """Hold the store's inter-process lock (:mod:`filelock`, ``flock`` on the file of :func:`lock_file`) for a
    block; re-entrant within a process.

    A no-op for stores that are not SQLite files (a server or a database serialises its own writes).
    Waits up to ``timeout`` seconds (default :data:`LOCK_SECONDS`) for another process, then raises
    :class:`StoreBusyError` with a one-line message.
    """
    path = lock_file(tracking_uri)
    if path is None:
        yield
        return
    wait = LOCK_SECONDS if timeout is None else timeout
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = _file_lock(path)
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        raise StoreBusyError(
            f"another churnclv command has held the MLflow store for over {wait:g} s "
            f"(lock {path}); try again when it has finished"
        ) from None
    try:
        yield
    finally:
        lock.release()


def check_reachable(tracking_uri: str, *, timeout: float = CONNECT_SECONDS) -> None:
    """Raise :class:`StoreUnreachableError` naming the URI when an http(s) tracking server does not answer
    a TCP connection within ``timeout`` seconds (MLflow itself would retry for minutes)."""
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StoreUnreachableError(unreachable(tracking_uri, reason)) from None


def unreachable(tracking_uri: str, reason: str) -> str:
    return (f"the MLflow tracking store at {tracking_uri} is unreachable ({reason}); start it or point "
            "MLFLOW_TRACKING_URI at one that runs")


def connect(tracking_uri: str, artifact_root: Path | None = None) -> MlflowClient:
    """A client of the store at ``tracking_uri`` (tracking and registry), with the store ready to use.

    A local SQLite store's folder is created and its tables are created or migrated under
    :func:`store_lock`; a tracking server must answer (:func:`check_reachable`). MLflow's global
    tracking URI and the environment are left alone. Raises :class:`StoreUnreachableError` or
    :class:`StoreBusyError` (one line each).
    """
    database = sqlite_path(tracking_uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    check_reachable(tracking_uri)
    if artifact_root is not None:
        artifact_root.mkdir(parents=True, exist_ok=True)
    with store_lock(tracking_uri):
        try:  # the client's store, then the registry's, create (or migrate) the tables: one process at a time
            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        except MlflowException as exc:
            raise StoreUnreachableError(unreachable(tracking_uri, first_line(exc))) from None
    return client


@contextmanager
def using_store(client: MlflowClient) -> Iterator[None]:
    """Point MLflow's fluent API (``mlflow.start_run``, ``mlflow.pyfunc.log_model``, the resolution of
    ``models:/`` URIs) at the client's store for a block, then restore the tracking and registry URIs and
    the environment as they were. MLflow keeps them per process: blocks in two threads at once would mix."""
    from mlflow.tracking import _tracking_service
    from mlflow.tracking._model_registry import utils as registry_utils

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    environ = {name: os.environ.get(name) for name in names}
    tracking, registry = _tracking_service.utils._tracking_uri, registry_utils._registry_uri
    mlflow.set_tracking_uri(client.tracking_uri)
    mlflow.set_registry_uri(getattr(client, "_registry_uri", None) or client.tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry)
        for name, value in environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def resolve(client: MlflowClient, uri: str) -> tuple[str, object]:
    """Pin a models:/ URI (alias or version) to ``models:/<name>/<version>`` and return its model version;
    any other URI is returned as it is, with None."""
    ref = parse_model_uri(uri)
    if not ref.registered:
        return uri, None
    try:
        if ref.alias is not None:
            mv = client.get_model_version_by_alias(ref.name, ref.alias)
        else:
            mv = client.get_model_version(ref.name, ref.version)
    except MlflowException as exc:
        if exc.error_code not in NOT_FOUND:
            raise StoreUnreachableError(unreachable(client.tracking_uri, first_line(exc))) from None
        raise ChurnclvError(
            f"no model at {uri}: train one first (churnclv train ...) or pass --model with a registered version"
        ) from None
    return version_uri(mv.name, mv.version), mv


def bundle_dir(model_dir: Path) -> Path | None:
    """Where the bundle directory of a downloaded pyfunc model is (its MLmodel names it), or None."""
    mlmodel = model_dir / "MLmodel"
    if not mlmodel.is_file():
        return None
    flavor = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {}).get("python_function", {})
    entry = (flavor.get("artifacts") or {}).get(ARTIFACT)
    return model_dir / entry["path"] if entry else None


def _outdated(uri: str, why: str) -> ChurnclvError:
    return ChurnclvError(
        f"{uri} was registered by an older churnclv ({why}); retrain it: churnclv train --transactions <file> "
        "(then churnclv promote <new version> if the gate keeps the old champion)"
    )


def read_bundle(uri: str, model_dir: Path) -> ChurnCLVBundle:
    """The bundle of the model downloaded to ``model_dir``; a model without one of our format is refused."""
    where = bundle_dir(model_dir)
    if where is None:
        why = "a pickled model" if (model_dir / "python_model.pkl").exists() else "no bundle directory"
        raise _outdated(uri, why)
    try:
        return load_bundle_dir(where)
    except BundleFormatError as error:
        raise _outdated(uri, f"another bundle format: {error}") from None


def registry_facts(mv) -> dict:
    """What a served model says of where it comes from: the registered name, version, run and pinned URI."""
    return {"name": mv.name, "version": str(mv.version), "run_id": mv.run_id, "uri": version_uri(mv.name, mv.version)}


@contextmanager
def downloaded(client: MlflowClient, uri: str) -> Iterator[tuple[Path, ChurnCLVBundle, object]]:
    """The model at a models:/ URI, pinned to a version, downloaded to a temporary directory for a block:
    (its bundle directory, that bundle read as data and checked, its model version or None).

    Nothing is unpickled (:mod:`scoring.artifact`); the directory is removed after the block.
    """
    pinned, mv = resolve(client, uri)
    with tempfile.TemporaryDirectory(prefix="churnclv-model-") as tmp:
        with using_store(client):  # MLflow resolves models:/ URIs with the global registry URI only
            local = mlflow.artifacts.download_artifacts(artifact_uri=pinned, dst_path=tmp,
                                                        tracking_uri=client.tracking_uri,
                                                        registry_uri=client.tracking_uri)
        bundle = read_bundle(pinned, Path(local))
        yield bundle_dir(Path(local)), bundle, mv


def load_bundle(client: MlflowClient, uri: str) -> ChurnCLVBundle:
    """The bundle at a models:/ URI, pinned to a version, with its registry facts in ``metadata``."""
    with downloaded(client, uri) as (_, bundle, mv):
        if mv is not None:
            bundle.metadata.update(registry_facts(mv))
        return bundle
