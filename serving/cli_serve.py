"""``churnclv serve``: check the access settings, then run ``bentoml serve serving.service:ChurnCLV``.

The service is configured through environment variables only (the same ones a container sets):
CHURNCLV_MODEL_URI, CHURNCLV_SCORES_PATH, CHURNCLV_HOME, CHURNCLV_API_KEYS / CHURNCLV_API_KEYS_FILE,
CHURNCLV_OPEN, BENTOML_HOST and BENTOML_PORT.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from contract import ChurnclvError
from contract.defaults import MODEL_URI
from contract.settings import Settings
from serving.auth import load_access

SERVICE = "serving.service:ChurnCLV"


def serve_environment(*, host: str, port: int, model: str, scores: Path | None, api_keys_file: Path | None,
                      open_: bool, workers: int | None = None, access_log: bool = False,
                      environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the server process; raises :class:`serving.auth.AccessError` (a
    ``ChurnclvError``) when it must not start: no API key and not ``open_``, or open off loopback."""
    settings = Settings()
    env = dict(os.environ if environ is None else environ)
    env.update(CHURNCLV_HOME=str(settings.root), CHURNCLV_MODEL_URI=model,
               CHURNCLV_SCORES_PATH=str((scores or settings.scores_path).expanduser().resolve()),
               BENTOML_HOST=host, BENTOML_PORT=str(port))
    if api_keys_file is not None:
        env["CHURNCLV_API_KEYS_FILE"] = str(api_keys_file.expanduser().resolve())
    options = [env.get("BENTOML_CONFIG_OPTIONS", "")]
    if workers is not None:
        options.append(f"services.churnclv.workers={workers}")
    if access_log:
        options.append("services.churnclv.logging.access.enabled=true")
    if " ".join(options).strip():
        env["BENTOML_CONFIG_OPTIONS"] = " ".join(options).strip()
    if open_:
        env["CHURNCLV_OPEN"] = "1"
    else:
        env.pop("CHURNCLV_OPEN", None)
    load_access(env)
    return env


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
    env = serve_environment(host=host, port=port, model=model, scores=scores, api_keys_file=api_keys_file,
                            open_=open_, workers=workers, access_log=access_log)
    print(f"Serving {model} and {env['CHURNCLV_SCORES_PATH']} on http://{host}:{port} "
          f"({'open, no API key' if open_ and not load_access(env).keys else 'Authorization: Bearer <key>'}); "
          "GET /readyz says when it is ready.", file=sys.stderr)
    command = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port),
               "--working-dir", str(Path(__file__).resolve().parents[1])]
    try:
        code = subprocess.run(command, env=env, check=False).returncode
    except KeyboardInterrupt:
        return
    if code not in (0, -2, 130):
        raise ChurnclvError(f"the server stopped with exit code {code}; its log is above")
