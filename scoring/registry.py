"""Loading the scoring artifact from the MLflow model registry, pinned to a version."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from contract import ChurnclvError


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


def load_bundle(client: MlflowClient, uri: str):
    """The bundle at a models:/ URI, pinned to a version, with its registry facts in ``metadata``."""
    pinned, mv = resolve(client, uri)
    bundle = mlflow.pyfunc.load_model(pinned).unwrap_python_model()
    if mv is not None:
        bundle.metadata.update({"name": mv.name, "version": str(mv.version), "run_id": mv.run_id,
                                "uri": pinned})
    return bundle

