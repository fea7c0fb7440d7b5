"""``churnclv serve``: check the settings, then run ``bentoml serve serving.service:ChurnCLV``.

The service is configured through environment variables only (the same ones a container sets):
CHURNCLV_MODEL_URI, CHURNCLV_SCORES_PATH, CHURNCLV_HOME, CHURNCLV_API_KEYS / CHURNCLV_API_KEYS_FILE,
CHURNCLV_OPEN, CHURNCLV_MAX_BODY_BYTES, CHURNCLV_REFRESH_SECONDS, CHURNCLV_SSL_CERTFILE, CHURNCLV_SSL_KEYFILE,
CHURNCLV_BEHIND_PROXY, CHURNCLV_GRACE_SECONDS, MLFLOW_TRACKING_URI, BENTOML_HOST and BENTOML_PORT (all in
:class:`contract.settings.Settings`). The options of ``serve`` set them for the server
process, which is refused here, before it starts, when they are invalid.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from churnclv.contract import ChurnclvError
from churnclv.contract.defaults import MODEL_URI
from churnclv.contract.settings import Settings
from churnclv.serving.auth import Access, is_loopback
from churnclv.serving.connections import raise_file_limit
from churnclv.serving.lifecycle import WATCH_PARENT, supervise

SERVICE = "churnclv.serving.service:ChurnCLV"


@dataclass(frozen=True)
class Launch:
    """The server process's environment, and the settings and access the service will read from it."""

    env: dict[str, str]
    settings: Settings
    access: Access

    @property
    def tls(self) -> bool:
        return self.settings.ssl_certfile is not None

    @property
    def url(self) -> str:
        host = self.settings.host
        return f"{'https' if self.tls else 'http'}://{f'[{host}]' if ':' in host else host}:{self.env['BENTOML_PORT']}"


#: Cipher suites offered over TLS 1.2 (TLS 1.3 has its own): forward-secret AEAD only, which also rules out
#: TLS 1.0 and 1.1. BentoML and uvicorn default to "TLSv1", the suites of TLS 1.0 (CBC and SHA-1).
SSL_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def plan_server(*, host: str, port: int, model: str, scores: Path | None, api_keys_file: Path | None,
                open_: bool, workers: int | None = None, access_log: bool = False,
                ssl_certfile: Path | None = None, ssl_keyfile: Path | None = None, behind_proxy: bool = False,
                grace_seconds: int | None = None, environ: Mapping[str, str] | None = None) -> Launch:
    """The options laid over ``environ`` (default: ``os.environ``), validated by :meth:`Settings.load`.

    Raises a ``ChurnclvError`` when the server must not start: an invalid setting
    (``SettingsError``), no API key and not ``open_``, open off loopback (``AccessError``), a certificate
    without its key or the other way round, or plain HTTP off loopback without ``behind_proxy``.
    """
    env = dict(os.environ if environ is None else environ)
    env.update(CHURNCLV_MODEL_URI=model, BENTOML_HOST=host, BENTOML_PORT=str(port))
    env.update({name: str(path) for name, path in (("CHURNCLV_SCORES_PATH", scores),
                                                    ("CHURNCLV_API_KEYS_FILE", api_keys_file),
                                                    ("CHURNCLV_SSL_CERTFILE", ssl_certfile),
                                                    ("CHURNCLV_SSL_KEYFILE", ssl_keyfile)) if path is not None})
    if grace_seconds is not None:
        env["CHURNCLV_GRACE_SECONDS"] = str(grace_seconds)
    if behind_proxy:
        env["CHURNCLV_BEHIND_PROXY"] = "1"
    if open_:
        env["CHURNCLV_OPEN"] = "1"
    else:
        env.pop("CHURNCLV_OPEN", None)
    settings = Settings.load(env)
    access = Access.from_settings(settings)
    check_transport(settings)
    # absolute paths: the server runs in another working directory
    env.update(CHURNCLV_HOME=str(settings.root), CHURNCLV_SCORES_PATH=str(settings.scores_path.resolve()))
    for name, path in (("CHURNCLV_API_KEYS_FILE", settings.api_keys_file), ("CHURNCLV_SSL_CERTFILE", settings.ssl_certfile),
                       ("CHURNCLV_SSL_KEYFILE", settings.ssl_keyfile), ("CHURNCLV_RATE_LIMIT_STORE", settings.rate_limit_file)):
        if path is not None:
            env[name] = str(path.expanduser().resolve())
    env[WATCH_PARENT] = "1"  # each process of the server stops when its parent dies (serving.lifecycle)
    options = [env.get("BENTOML_CONFIG_OPTIONS", "")]
    if workers is not None:
        options.append(f"services.churnclv.workers={workers}")
    if access_log:
        options.append("services.churnclv.logging.access.enabled=true")
    if settings.ssl_certfile is not None:
        options.append("services.churnclv.ssl.enabled=true")  # BentoML's own log line and URLs then say https
    if " ".join(options).strip():
        env["BENTOML_CONFIG_OPTIONS"] = " ".join(options).strip()
    return Launch(env, settings, access)


def check_transport(settings: Settings) -> None:
    """TLS needs a certificate and its key; off loopback, plain HTTP only behind a TLS-terminating proxy."""
    if (settings.ssl_certfile is None) != (settings.ssl_keyfile is None):
        given, missing = (("--ssl-certfile", "--ssl-keyfile") if settings.ssl_keyfile is None
                          else ("--ssl-keyfile", "--ssl-certfile"))
        raise ChurnclvError(f"{given} needs {missing} too (or CHURNCLV_SSL_CERTFILE and CHURNCLV_SSL_KEYFILE together)")
    if settings.ssl_certfile is None and not settings.behind_proxy and not is_loopback(settings.host):
        raise ChurnclvError(
            f"refusing to serve plain HTTP on {settings.host}: API keys would cross the network in clear text; pass "
            "--ssl-certfile FILE --ssl-keyfile FILE (CHURNCLV_SSL_CERTFILE/CHURNCLV_SSL_KEYFILE), or --behind-proxy "
            "(CHURNCLV_BEHIND_PROXY=1) when a TLS-terminating proxy fronts it")


def server_command(launch: Launch) -> list[str]:
    """``bentoml serve`` of the service with the launch's TLS files and grace period, run by
    :mod:`serving.arbiter` (which ends the process as soon as the workers are gone)."""
    settings = launch.settings
    command = [sys.executable, "-m", "churnclv.serving.arbiter", "serve", SERVICE, "--host", settings.host,
               "--port", launch.env["BENTOML_PORT"], "--working-dir", str(Path(__file__).resolve().parents[1]),
               "--timeout-graceful-shutdown", str(settings.grace_seconds)]
    if launch.tls:
        command += ["--ssl-certfile", launch.env["CHURNCLV_SSL_CERTFILE"], "--ssl-keyfile",
                    launch.env["CHURNCLV_SSL_KEYFILE"], "--ssl-ciphers", SSL_CIPHERS]
    return command


def serve(host: str = "127.0.0.1", port: int = 3000, model: str = MODEL_URI, scores: Path | None = None,
          api_keys_file: Path | None = None, open_: bool = False, workers: int | None = None,
          access_log: bool = False, ssl_certfile: Path | None = None, ssl_keyfile: Path | None = None,
          behind_proxy: bool = False, grace_seconds: int | None = None) -> None:
    """Run the HTTP service in the foreground until SIGTERM or SIGINT (Ctrl-C) stops it (:mod:`serving.lifecycle`).

    ``workers`` processes each load the model and the score table (default: the service's 2);
    ``access_log`` logs a line per request (off by default: /metrics counts requests). Returns after a
    clean stop (``stopped cleanly`` on stderr); raises a ``ChurnclvError`` when the server ended by itself
    with an error, or had to be killed after the grace period.
    """
    if not 0 < port < 65536:
        raise ChurnclvError(f"--port must be between 1 and 65535, not {port}")
    if workers is not None and workers < 1:
        raise ChurnclvError(f"--workers must be at least 1, not {workers}")
    if grace_seconds is not None and not 1 <= grace_seconds <= 3600:
        raise ChurnclvError(f"--grace-seconds must be between 1 and 3600, not {grace_seconds}")
    launch = plan_server(host=host, port=port, model=model, scores=scores, api_keys_file=api_keys_file,
                         open_=open_, workers=workers, access_log=access_log, ssl_certfile=ssl_certfile,
                         ssl_keyfile=ssl_keyfile, behind_proxy=behind_proxy, grace_seconds=grace_seconds)
    grace = launch.settings.grace_seconds
    if not launch.tls and not is_loopback(host):
        print(f"Plain HTTP on {host}: a TLS-terminating proxy in front is expected (--behind-proxy).", file=sys.stderr)
    print(f"Serving {model} and {launch.env['CHURNCLV_SCORES_PATH']} on {launch.url} "
          f"({'open, no API key' if launch.access.open else 'Authorization: Bearer <key>'}); "
          f"GET /readyz says when it is ready; SIGTERM or Ctrl-C drains for up to {grace} s.", file=sys.stderr)
    if launch.access.limits is not None:
        print(f"Rate limits: {launch.access.limits.describe()} (429 with Retry-After beyond them).", file=sys.stderr)
    raise_file_limit()  # the server's processes inherit it: more room for connections (serving.connections)
    stopped = supervise(server_command(launch), env=launch.env, grace=grace)
    if stopped.signal is None:
        if stopped.code not in (0, -2, 130):
            raise ChurnclvError(f"the server stopped with exit code {stopped.code}; its log is above")
        return
    name = signal.Signals(stopped.signal).name
    if stopped.forced:
        raise ChurnclvError(f"{name}: the server was still running {grace} s after it (the grace period) and was "
                            "killed; requests still running were cut off")
    print(f"{name}: stopped cleanly in {stopped.seconds:.1f} s (requests in flight finished; "
          f"grace period {grace} s).", file=sys.stderr)
