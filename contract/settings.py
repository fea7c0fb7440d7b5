"""Every environment variable churnclv reads, in one pydantic-settings class, read by the entry points.

:meth:`Settings.load` is the one way to read them: the CLI calls it once per command, the service once
per process (never at import). An invalid value raises :class:`SettingsError`, whose one-line message
names the variable, the value and what is allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, FilePath, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, SettingsConfigDict

from churnclv.contract.defaults import MODEL_URI
from churnclv.contract.errors import ChurnclvError
from churnclv.contract.model_uri import ModelURIError, parse_model_uri

#: Request bodies over this many bytes get 413 (CHURNCLV_MAX_BODY_BYTES); its bounds.
MAX_BODY_BYTES = 8 * 1024 * 1024
BODY_BYTES_RANGE = (1024, 1024**3)
#: Seconds between the service's checks for a new champion or score table (CHURNCLV_REFRESH_SECONDS).
REFRESH_SECONDS = 5.0
LOCAL_KEY_NAME = ".churnclv_api_key"
#: Seconds the requests in flight get to finish when the service is stopped (CHURNCLV_GRACE_SECONDS).
GRACE_SECONDS = 10
#: Requests per API key (CHURNCLV_RATE_LIMIT) and failed authentications per client address
#: (CHURNCLV_AUTH_FAILURE_LIMIT) the service allows, in ``limits``' notation ("off": no limit); serving.limits.
RATE_LIMIT, AUTH_FAILURE_LIMIT = "600/minute", "10/minute"
#: Tracking URI schemes of databases MLflow writes to directly (no server to keep the artifacts).
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


class SettingsError(ChurnclvError, ValueError):
    """An environment variable has a value churnclv cannot use."""


def parse_keys(text: str) -> list[str]:
    """API keys separated by commas or new lines; blanks and ``#`` comment lines are ignored."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [k.strip() for line in lines for k in line.split(",") if k.strip()]


def _env(name: str, default: Any, allowed: str, **constraints: Any) -> Any:
    """A field read from the variable ``name``; ``allowed`` is what its error message says is allowed."""
    return Field(default, validation_alias=name, description=allowed, **constraints)


class Settings(BaseSettings):
    """Where churnclv keeps its state, which model and score table the service serves, and who may call it.

    ``CHURNCLV_HOME`` (default: the current directory) holds ``mlruns/``, ``scores/``, ``plots/``, ``out/``
    and the local API key; ``MLFLOW_TRACKING_URI`` overrides the embedded SQLite store under ``mlruns/``.
    Blank variables count as unset.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True, env_ignore_empty=True,
                                      populate_by_name=True)

    home: Path = _env("CHURNCLV_HOME", Path("."), "a directory (created when needed)")
    tracking_uri: str | None = _env("MLFLOW_TRACKING_URI", None, "an MLflow tracking URI, e.g. http://host:5000")
    model_uri: str = _env("CHURNCLV_MODEL_URI", MODEL_URI, "a model URI: models:/<name>@<alias>, "
                          "models:/<name>/<version> or another MLflow URI such as runs:/<run id>/model")
    scores_file: Path | None = _env("CHURNCLV_SCORES_PATH", None, "the path of a score table (.parquet or .csv)")
    refresh_seconds: float = _env("CHURNCLV_REFRESH_SECONDS", REFRESH_SECONDS,
                                  "seconds from 0 (no periodic check) to 86400", ge=0, le=86_400, allow_inf_nan=False)
    api_keys: Annotated[tuple[str, ...], NoDecode] = _env("CHURNCLV_API_KEYS", (), "API keys separated by commas")
    api_keys_file: FilePath | None = _env("CHURNCLV_API_KEYS_FILE", None,
                                          "an existing file of API keys, one a line")
    open: bool = _env("CHURNCLV_OPEN", False, "1, true, yes or on to serve without keys; 0, false, no or off")
    host: str = _env("BENTOML_HOST", "0.0.0.0", "a host name or IP address")
    db_url: str | None = _env("CHURNCLV_DB_URL", None, "a SQLAlchemy URL of the campaign store, e.g. "
                              "sqlite:///path/churnclv.db or postgresql+psycopg://user@host/db")
    max_body_bytes: int = _env("CHURNCLV_MAX_BODY_BYTES", MAX_BODY_BYTES,
                               f"a whole number of bytes from {BODY_BYTES_RANGE[0]:,} to {BODY_BYTES_RANGE[1]:,}",
                               ge=BODY_BYTES_RANGE[0], le=BODY_BYTES_RANGE[1])

    ssl_certfile: FilePath | None = _env("CHURNCLV_SSL_CERTFILE", None,
                                         "an existing PEM file of the server's certificate (and its chain)")
    ssl_keyfile: FilePath | None = _env("CHURNCLV_SSL_KEYFILE", None, "an existing PEM file of the certificate's key")
    behind_proxy: bool = _env("CHURNCLV_BEHIND_PROXY", False, "1, true, yes or on when a TLS-terminating proxy "
                              "fronts the service; 0, false, no or off")
    rate_limit: str = _env("CHURNCLV_RATE_LIMIT", RATE_LIMIT, "a rate such as 600/minute or 50 per 10 seconds, or off")
    auth_failure_limit: str = _env("CHURNCLV_AUTH_FAILURE_LIMIT", AUTH_FAILURE_LIMIT,
                                   "a rate such as 10/minute or 5 per 30 seconds, or off")
    rate_limit_file: Path | None = _env("CHURNCLV_RATE_LIMIT_STORE", None, "a file path on a local disk (SQLite)")
    grace_seconds: int = _env("CHURNCLV_GRACE_SECONDS", GRACE_SECONDS, "whole seconds from 1 to 3600", ge=1, le=3600)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings in ``environ`` (default: ``os.environ``); raises :class:`SettingsError`."""
        source = _Environ(cls, os.environ if environ is None else environ)
        try:
            return cls(_build_sources=((source,), {}))
        except ValidationError as exc:
            raise SettingsError(explain(exc)) from None

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        return tuple(parse_keys(value)) if isinstance(value, str) else value

    @field_validator("tracking_uri", "host")
    @classmethod
    def _one_word(cls, value: str | None) -> str | None:
        if value is not None and any(c.isspace() for c in value):
            raise ValueError("it contains a space")
        return value

    @field_validator("db_url")
    @classmethod
    def _a_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme, sep, rest = value.partition("://")
        if not sep or not scheme or any(c.isspace() for c in value) or not all(
                part.isidentifier() for part in scheme.split("+")):
            raise ValueError("not a SQLAlchemy URL")
        return value

    @field_validator("rate_limit", "auth_failure_limit")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        from limits import parse  # the notation the service's limits read (serving.limits)

        if value.strip().lower() in ("off", "none", "0"):
            return value
        try:
            if parse(value).amount >= 1:
                return value
        except ValueError:
            pass
        raise ValueError("not a rate")

    @field_validator("home")
    @classmethod
    def _a_directory(cls, value: Path) -> Path:
        if value.expanduser().exists() and not value.expanduser().is_dir():
            raise ValueError("not a directory")
        return value

    @field_validator("model_uri")
    @classmethod
    def _a_model_uri(cls, value: str) -> str:
        try:
            uri = parse_model_uri(value)
        except ModelURIError:
            raise ValueError("not a model URI") from None
        if not uri.scheme:  # a plain path
            raise ValueError("not a model URI")
        return value

    @property
    def root(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def mlflow_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.root / 'mlruns' / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path | None:
        """Where run artifacts go: they follow the store, never the current directory.

        A SQLite store (the embedded default ``$CHURNCLV_HOME/mlruns/mlflow.db`` or a ``sqlite:///`` URI)
        keeps them in ``artifacts/`` beside its database file; another database URI (PostgreSQL, MySQL,
        ...) under ``$CHURNCLV_HOME/mlruns/artifacts``; a tracking server (http, https, databricks) or a
        file store decides itself: None.
        """
        database = sqlite_path(self.mlflow_uri)
        if database is not None:
            return database.parent / "artifacts"
        scheme = self.mlflow_uri.partition(":")[0].partition("+")[0].lower()
        return self.root / "mlruns" / "artifacts" if scheme in DATABASE_SCHEMES else None

    @property
    def scores_path(self) -> Path:
        """The score table: CHURNCLV_SCORES_PATH, else ``$CHURNCLV_HOME/scores/latest.parquet``."""
        return self.scores_file.expanduser() if self.scores_file else self.root / "scores" / "latest.parquet"

    @property
    def rate_limit_store(self) -> Path:
        """The counters of the rate limits, shared by the service's workers: CHURNCLV_RATE_LIMIT_STORE, else
        ``$CHURNCLV_HOME/run/rate-limits.sqlite``."""
        return self.rate_limit_file.expanduser() if self.rate_limit_file else self.root / "run" / "rate-limits.sqlite"

    @property
    def campaign_store(self) -> str:
        """The campaign store's URL: CHURNCLV_DB_URL, else ``sqlite:///$CHURNCLV_HOME/churnclv.db``."""
        return self.db_url or f"sqlite:///{self.root / 'churnclv.db'}"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    @property
    def out_dir(self) -> Path:
        return self.root / "out"

    @property
    def local_key_file(self) -> Path:
        """The local API key that ``churnclv quickstart`` creates: ``$CHURNCLV_HOME/.churnclv_api_key``."""
        return self.root / LOCAL_KEY_NAME

    @property
    def keys_file(self) -> Path | None:
        """The file of API keys the service reads: CHURNCLV_API_KEYS_FILE, else the local key if it exists."""
        if self.api_keys_file is not None:
            return self.api_keys_file.expanduser()
        return self.local_key_file if self.local_key_file.is_file() else None


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (relative to the current directory when the
    URI is, as SQLAlchemy reads it), or None for any other URI (and for an in-memory database)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").partition("?")[0]
    if not path or path == ":memory:":
        return None
    return Path(path).expanduser().absolute()


class _Environ(EnvSettingsSource):
    """pydantic-settings' environment source, over a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = dict(environ)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k: v for k, v in self._environ.items() if v != ""}


def explain(error: ValidationError) -> str:
    """One line per invalid variable, joined: ``NAME='value' is not allowed (pydantic's reason): allowed``."""
    fields = {f.validation_alias: f for f in Settings.model_fields.values()}
    problems = []
    for e in error.errors(include_url=False):
        name = str(e["loc"][0]) if e["loc"] else "settings"
        reason = e["msg"].removeprefix("Value error, ")
        reason = reason[:1].lower() + reason[1:]
        allowed = fields[name].description if name in fields else ""
        shown = re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", str(e["input"])) if name == "CHURNCLV_DB_URL" else e["input"]
        problems.append(f"{name}={shown!r} is not allowed ({reason}): use {allowed}")
    return "; ".join(problems)
