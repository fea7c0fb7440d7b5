"""MLflow's entry point to the bundle: a stateless ``PythonModel`` that reads the bundle directory.

The registered model ships this package (and ``contract``, ``features``) as code and the bundle as
data (``artifacts={"bundle": <dir>}``), so ``mlflow.pyfunc.load_model(...)`` works wherever the model's
requirements install, without this checkout.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from churnclv.features import validate_transactions
from churnclv.scoring.artifact import ARTIFACT, load_bundle_dir
from churnclv.scoring.bundle import ChurnCLVBundle


class BundleModel(mlflow.pyfunc.PythonModel):
    """Transactions + ``params={"as_of": "YYYY-MM-DD"}`` -> the score table of :meth:`ChurnCLVBundle.score`."""

    bundle: ChurnCLVBundle | None = None

    def load_context(self, context) -> None:
        self.bundle = load_bundle_dir(context.artifacts[ARTIFACT])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Score ``model_input`` (the transaction contract) at ``params["as_of"]`` (required)."""
        params = params or {}
        if not params.get("as_of"):
            raise ValueError("params must include as_of, e.g. {'as_of': '1997-09-30'}")
        if self.bundle is None:
            raise RuntimeError("the bundle is not loaded: load this model with mlflow.pyfunc.load_model")
        transactions, _ = validate_transactions(model_input)
        return self.bundle.score(transactions, as_of=params["as_of"])
