"""``churnclv serve``: check the access settings, then run ``bentoml serve serving.service:ChurnCLV``.

The service is configured through environment variables only (the same ones a container sets):
CHURNCLV_MODEL_URI, CHURNCLV_SCORES_PATH, CHURNCLV_HOME, CHURNCLV_API_KEYS / CHURNCLV_API_KEYS_FILE,
CHURNCLV_OPEN, BENTOML_HOST and BENTOML_PORT.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Mapping

from serving.auth import load_access
from serving.state import DEFAULT_MODEL

SERVICE = "serving.service:ChurnCLV"


def serve_environment(*, host: str, port: int, model: str, scores: Path | None, api_keys_file: Path | None,
                      open_: bool, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the server process; raises :class:`serving.auth.AccessError` (a
    ``ChurnclvError``) when it must not start: no API key and not ``open_``, or open off loopback."""
    from churnclv.settings import Settings

    settings = Settings()
    env = dict(os.environ if environ is None else environ)
    env.update(CHURNCLV_HOME=str(settings.root), CHURNCLV_MODEL_URI=model,
               CHURNCLV_SCORES_PATH=str((scores or settings.scores_path).expanduser().resolve()),
               BENTOML_HOST=host, BENTOML_PORT=str(port))
    if api_keys_file is not None:
        env["CHURNCLV_API_KEYS_FILE"] = str(api_keys_file.expanduser().resolve())
    if open_:
        env["CHURNCLV_OPEN"] = "1"
    else:
        env.pop("CHURNCLV_OPEN", None)
    load_access(env)
    return env


def serve(host: str = "127.0.0.1", port: int = 3000, model: str = DEFAULT_MODEL, scores: Path | None = None,
          api_keys_file: Path | None = None, open_: bool = False) -> None:
    """Run the HTTP service in the foreground until interrupted (Ctrl-C)."""
    from features import ChurnclvError

    if not 0 < port < 65536:
        raise ChurnclvError(f"--port must be between 1 and 65535, not {port}")
    env = serve_environment(host=host, port=port, model=model, scores=scores, api_keys_file=api_keys_file,
                            open_=open_)
    print(f"Serving {model} and {env['CHURNCLV_SCORES_PATH']} on http://{host}:{port} "
          f"({'open, no API key' if open_ and not load_access(env).keys else 'Authorization: Bearer <key>'}); "
          "GET /readyz says when it is ready.", file=sys.stderr)
    command = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port),
               "--working-dir", str(Path(__file__).resolve().parents[1])]
    try:
        code = subprocess.run(command, env=env).returncode
    except KeyboardInterrupt:
        return
    if code not in (0, -2, 130):
        raise ChurnclvError(f"the server stopped with exit code {code}; its log is above")
