"""The serving commands: ``serve`` (the HTTP service) and ``bento`` (the deployable unit)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnclv.context import command_settings, console, mlflow_client, step
from churnclv.contract.defaults import MODEL_NAME, MODEL_URI
from churnclv.contract.errors import ChurnclvError
from churnclv.contract.model_uri import parse_model_uri, version_uri
from churnclv.options import ModelUri
from churnclv.quiet import uses_mlflow


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on; anything but loopback needs API keys.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 3000,
    model: ModelUri = MODEL_URI,
    scores: Annotated[Path | None, typer.Option(help="Score table to serve. Default: $CHURNCLV_HOME/scores/latest.parquet.")] = None,
    api_keys_file: Annotated[Path | None, typer.Option(help="File of API keys, one a line (or CHURNCLV_API_KEYS=k1,k2; default: $CHURNCLV_HOME/.churnclv_api_key if present).")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Serve without API keys (loopback host only).")] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes, each holding the model and the table. Default: 2.")] = None,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log a line per request.")] = False,
    ssl_certfile: Annotated[Path | None, typer.Option(help="Serve HTTPS with this PEM certificate (and chain); with --ssl-keyfile (or CHURNCLV_SSL_CERTFILE).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="The certificate's PEM key (or CHURNCLV_SSL_KEYFILE).")] = None,
    behind_proxy: Annotated[bool, typer.Option("--behind-proxy", help="Plain HTTP off loopback: a TLS-terminating proxy fronts the service (or CHURNCLV_BEHIND_PROXY=1).")] = False,
    grace_seconds: Annotated[int | None, typer.Option(min=1, max=3600, help="On SIGTERM or Ctrl-C, seconds the requests in flight get to finish. Default: 10 (CHURNCLV_GRACE_SECONDS).")] = None,
) -> None:
    """Start the HTTP service (BentoML): /score, /score_transactions, /prioritise, /model, /reload, /campaigns,
    /suppressions, DELETE /customers/{id} and the page at /app.

    SIGTERM or Ctrl-C drains: the requests in flight finish (--grace-seconds), then every process of the
    server is gone and the command exits with 0. Off loopback: HTTPS (--ssl-certfile, --ssl-keyfile) or --behind-proxy.
    """
    from churnclv.serving.cli_serve import serve as run_server

    check_served_model(model)
    run_server(host=host, port=port, model=model, scores=scores, api_keys_file=api_keys_file, open_=open_,
               workers=workers, access_log=access_log, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
               behind_proxy=behind_proxy, grace_seconds=grace_seconds)
    exit_now()


def exit_now(code: int = 0) -> None:
    """End the command's process at once after the server stopped cleanly: everything is written, and
    unwinding the interpreter with its libraries loaded takes 1.5 s (8 s seen under load), which a
    supervisor would count against the grace period."""
    import logging
    import os
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def check_served_model(model: str) -> None:
    """The service serves a registered version (pinned, with its backtest metrics): refuse anything else
    in one line, before the server starts (:func:`contract.model_uri.parse_model_uri` reads the URI)."""
    uri = parse_model_uri(model)  # blank text or a malformed models:/ URI: a ModelURIError, one line
    if uri.registered:
        return
    kind = {"runs": "a run's model (runs:/)", "file": "a file:// URI", "": "a path"}.get(
        uri.scheme, f"a {uri.scheme}: URI")
    raise ChurnclvError(
        f"--model {model!r} is {kind}, not a registered model: the service serves a registered version; pass "
        f"{MODEL_URI} or {version_uri(MODEL_NAME, '<version>')} (churnclv train registers one)"
    )


@uses_mlflow
def bento(
    model: ModelUri = MODEL_URI,
    project: Annotated[Path | None, typer.Option(help="Folder of bentofile.yaml and the code it packages. Default: this installation's source.")] = None,
) -> None:
    """Package the service with a registered model as a Bento (BentoML's deployable unit).

    The model's bundle is copied into BentoML's model store, then `bentoml build` runs on bentofile.yaml,
    which names it: the Bento serves that model, whatever the registry's champion becomes later.
    """
    from churnclv.serving.bento import SOURCE, build, import_model

    settings = command_settings()
    with step(f"Copying {model} into BentoML's model store"):
        packaged = import_model(mlflow_client(settings), model)
    with step("Building the Bento"):
        built = build(project or SOURCE)
    console.print(f"Built Bento [bold]{built.tag}[/] with model {packaged.tag} "
                  f"({MODEL_NAME} v{packaged.info.metadata['version']}). Serve it with:\n"
                  f"  CHURNCLV_API_KEYS=<key> CHURNCLV_SCORES_PATH={settings.scores_path} bentoml serve {built.tag}",
                  highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the serving commands to ``app``."""
    app.command()(serve)
    app.command()(bento)
