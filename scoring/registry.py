"""Loading the scoring artifact from the MLflow model registry, pinned to a version."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from contract import ChurnclvError
from scoring.artifact import ARTIFACT, BundleFormatError, load_bundle_dir
from scoring.bundle import ChurnCLVBundle


def connect(tracking_uri: str, artifact_root: Path | None = None) -> MlflowClient:
    """Point MLflow at ``tracking_uri`` (creating a local SQLite store's folder) and return a client."""
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    if artifact_root is not None:
        artifact_root.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri)


def resolve(client: MlflowClient, uri: str) -> tuple[str, object]:
    """Pin a models:/ URI (alias or version) to ``models:/churn-clv/<version>`` and return its version."""
    if not uri.startswith("models:/"):
        return uri, None
    name, _, ref = uri.removeprefix("models:/").partition("@")
    try:
        if ref:
            mv = client.get_model_version_by_alias(name, ref)
        else:
            name, _, number = name.partition("/")
            mv = client.get_model_version(name, number)
    except MlflowException:
        raise ChurnclvError(
            f"no model at {uri}: train one first (churnclv train ...) or pass --model with a registered version"
        ) from None
    return f"models:/{mv.name}/{mv.version}", mv


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


def load_bundle(client: MlflowClient, uri: str) -> ChurnCLVBundle:
    """The bundle at a models:/ URI, pinned to a version, with its registry facts in ``metadata``.

    The model's files are downloaded and its bundle directory read as data (:mod:`scoring.artifact`):
    nothing is unpickled.
    """
    pinned, mv = resolve(client, uri)
    with tempfile.TemporaryDirectory(prefix="churnclv-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=pinned, dst_path=tmp,
                                                    tracking_uri=client.tracking_uri,
                                                    registry_uri=getattr(client, "_registry_uri", None))
        bundle = read_bundle(pinned, Path(local))
    if mv is not None:
        bundle.metadata.update({"name": mv.name, "version": str(mv.version), "run_id": mv.run_id,
                                "uri": pinned})
    return bundle
