"""``quickstart``: the main job end to end on the seed data, as ``make run`` runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnclv.context import command_settings, console, mlflow_client, sharing
from churnclv.data import cohorts, features
from churnclv.models import score, train
from churnclv.quiet import uses_mlflow
from contract.defaults import MODEL_NAME, MODEL_URI
from contract.settings import Settings


def seed_path() -> Path:
    """The committed seed transactions shipped in ``seeds/``."""
    import importlib.resources

    return Path(str(importlib.resources.files("seeds") / "transactions.csv"))


def ensure_api_key(settings: Settings) -> str:
    """The local API key in $CHURNCLV_HOME (created once, readable by its owner only)."""
    import secrets

    from contract import write_atomic

    path = settings.local_key_file
    if not path.exists():
        key = secrets.token_urlsafe(32)
        write_atomic(path, lambda tmp: (tmp.write_text(key + "\n"), tmp.chmod(0o600)))
    return path.read_text().strip()


@uses_mlflow
def quickstart(
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the HTTP service at the end.")] = True,
    port: Annotated[int, typer.Option(help="Port of the HTTP service.")] = 3000,
) -> None:
    """The main job end to end on the seed data: features, cohorts, train (if no champion yet), score, serve."""
    from training.registry import champion

    settings = command_settings()
    source = str(seed_path())
    with sharing(settings):
        features(transactions=source)
        cohorts(transactions=source)
        current = champion(mlflow_client(settings))
        if current is None:
            train(transactions=source, dataset="seed")
        else:
            console.print(f"{MODEL_NAME} v{current.version} is the champion already (retrain with churnclv train).")
        score(transactions=source, explain=True)
    key = ensure_api_key(settings)
    _say_what_to_try(settings, key=key, port=port)
    if serve_after:
        from serving.cli_serve import serve as run_server

        run_server(host="127.0.0.1", port=port, model=MODEL_URI, scores=None,
                   api_keys_file=settings.local_key_file, open_=False)


def _say_what_to_try(settings: Settings, *, key: str, port: int) -> None:
    """Where everything went, the API key, a request to try and the marketers' page."""
    console.print(f"[green]Done.[/] Features and cohorts in {settings.out_dir}, scores in {settings.scores_path}, "
                  f"plots in {settings.plots_dir}, MLflow store at {settings.mlflow_uri}.")
    console.print(f"API key (kept in {settings.local_key_file}):\n  {key}")
    example = (f"curl -s -X POST http://127.0.0.1:{port}/prioritise -H 'Authorization: Bearer {key}' "
               "-H 'Content-Type: application/json' -d '{\"limit\": 5}'")
    console.print(f"Try:\n  {example}\nor open the marketers' page http://127.0.0.1:{port}/app (it asks for the key)",
                  highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``quickstart`` to ``app``."""
    app.command()(quickstart)
