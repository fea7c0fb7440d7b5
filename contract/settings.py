"""Settings read from the environment by the entry points (never at import)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where churnclv keeps its state and which MLflow store it talks to.

    ``CHURNCLV_HOME`` (default: the current directory) holds ``mlruns/``, ``scores/``, ``plots/`` and the
    local API key; ``MLFLOW_TRACKING_URI`` overrides the embedded SQLite store under ``mlruns/``.
    """

    model_config = SettingsConfigDict(env_prefix="CHURNCLV_", frozen=True, extra="ignore")

    home: Path = Path(".")
    tracking_uri: str | None = Field(default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI"))

    @property
    def root(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def mlflow_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.root / 'mlruns' / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path | None:
        """Artifacts of the embedded store; None with a tracking server (it decides where they go)."""
        return self.root / "mlruns" / "artifacts" if self.tracking_uri is None else None

    @property
    def scores_path(self) -> Path:
        return self.root / "scores" / "latest.parquet"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    @property
    def out_dir(self) -> Path:
        return self.root / "out"

    @property
    def api_key_file(self) -> Path:
        return self.root / ".churnclv_api_key"
