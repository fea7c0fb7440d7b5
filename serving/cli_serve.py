"""``churnclv serve``: check the settings, then run ``bentoml serve serving.service:ChurnCLV``.

The service is configured through environment variables only (the same ones a container sets):
CHURNCLV_MODEL_URI, CHURNCLV_SCORES_PATH, CHURNCLV_HOME, CHURNCLV_API_KEYS / CHURNCLV_API_KEYS_FILE,
CHURNCLV_OPEN, CHURNCLV_MAX_BODY_BYTES, CHURNCLV_REFRESH_SECONDS, MLFLOW_TRACKING_URI, BENTOML_HOST and
BENTOML_PORT (all in :class:`contract.settings.Settings`). The options of ``serve`` set them for the server
process, which is refused here, before it starts, when they are invalid.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contract import ChurnclvError
from contract.defaults import MODEL_URI
from contract.settings import Settings
from serving.auth import Access
from serving.connections import raise_file_limit

SERVICE = "serving.service:ChurnCLV"


@dataclass(frozen=True)
class Launch:
    """The server process's environment, and the settings and access the service will read from it."""

    env: dict[str, str]
    settings: Settings
    access: Access


def plan_server(*, host: str, port: int, model: str, scores: Path | None, api_keys_file: Path | None,
                open_: bool, workers: int | None = None, access_log: bool = False,
                environ: Mapping[str, str] | None = None) -> Launch:
    """The options laid over ``environ`` (default: ``os.environ``), validated by :meth:`Settings.load`.

    Raises a ``ChurnclvError`` when the server must not start: an invalid setting
    (``SettingsError``), no API key and not ``open_``, or open off loopback (``AccessError``).
    """
    env = dict(os.environ if environ is None else environ)
    env.update(CHURNCLV_MODEL_URI=model, BENTOML_HOST=host, BENTOML_PORT=str(port))
    env.update({name: str(path) for name, path in (("CHURNCLV_SCORES_PATH", scores),
                                                    ("CHURNCLV_API_KEYS_FILE", api_keys_file)) if path is not None})
    if open_:
        env["CHURNCLV_OPEN"] = "1"
    else:
        env.pop("CHURNCLV_OPEN", None)
    settings = Settings.load(env)
    access = Access.from_settings(settings)
    # absolute paths: the server runs in another working directory
    env.update(CHURNCLV_HOME=str(settings.root), CHURNCLV_SCORES_PATH=str(settings.scores_path.resolve()))
    if settings.api_keys_file is not None:
        env["CHURNCLV_API_KEYS_FILE"] = str(settings.api_keys_file.expanduser().resolve())
    options = [env.get("BENTOML_CONFIG_OPTIONS", "")]
    if workers is not None:
        options.append(f"services.churnclv.workers={workers}")
    if access_log:
        options.append("services.churnclv.logging.access.enabled=true")
    if " ".join(options).strip():
        env["BENTOML_CONFIG_OPTIONS"] = " ".join(options).strip()
    return Launch(env, settings, access)


def serve(host: str = "127.0.0.1", port: int = 3000, model: str = MODEL_URI, scores: Path | None = None,
          api_keys_file: Path | None = None, open_: bool = False, workers: int | None = None,
          access_log: bool = False) -> None:
    """Run the HTTP service in the foreground until interrupted (Ctrl-C).

    ``workers`` processes each load the model and the score table (default: the service's 2);
    ``access_log`` logs a line per request (off by default: /metrics counts requests).
    """
    if not 0 < port < 65536:
        raise ChurnclvError(f"--port must be between 1 and 65535, not {port}")
    if workers is not None and workers < 1:
        raise ChurnclvError(f"--workers must be at least 1, not {workers}")
    launch = plan_server(host=host, port=port, model=model, scores=scores, api_keys_file=api_keys_file,
                         open_=open_, workers=workers, access_log=access_log)
    print(f"Serving {model} and {launch.env['CHURNCLV_SCORES_PATH']} on http://{host}:{port} "
          f"({'open, no API key' if launch.access.open else 'Authorization: Bearer <key>'}); "
          "GET /readyz says when it is ready.", file=sys.stderr)
    raise_file_limit()  # the server's processes inherit it: more room for connections (serving.connections)
    command = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port),
               "--working-dir", str(Path(__file__).resolve().parents[1])]
    try:
        code = subprocess.run(command, env=launch.env, check=False).returncode
    except KeyboardInterrupt:
        return
    if code not in (0, -2, 130):
        raise ChurnclvError(f"the server stopped with exit code {code}; its log is above")
