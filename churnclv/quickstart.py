"""``quickstart``: the main job end to end on the seed data, as ``make run`` runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnclv.context import command_settings, console, mlflow_client, sharing
from churnclv.contract.defaults import MODEL_NAME, MODEL_URI
from churnclv.contract.settings import Settings
from churnclv.data import cohorts, features
from churnclv.models import score, train
from churnclv.quiet import uses_mlflow


def seed_path() -> Path:
    """The committed seed transactions shipped in ``seeds/``."""
    import importlib.resources

    return Path(str(importlib.resources.files("churnclv.seeds") / "transactions.csv"))


def seed_events(settings: Settings) -> Path:
    """The seed customers' touchpoints (``seeds.events``: NPS, CSAT, support, e-mail, visits, unsubscribes with
    known effects), generated once into ``$CHURNCLV_HOME/out/seed-events.csv``."""
    from churnclv.contract.files import write_table
    from churnclv.seeds.events import make_seed_events

    path = settings.out_dir / "seed-events.csv"
    return path if path.exists() else write_table(make_seed_events(), path)


def ensure_api_key(settings: Settings) -> str:
    """The local API key in $CHURNCLV_HOME (created once, readable by its owner only)."""
    import secrets

    from churnclv.contract import write_atomic

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
    """The main job end to end on the seed data and its events: features, cohorts, train (if no champion yet),
    score, serve."""
    from churnclv.training.registry import champion

    settings = command_settings()
    source = str(seed_path())
    with sharing(settings):
        events = str(seed_events(settings))
        features(transactions=source, events=events)
        cohorts(transactions=source)
        current = champion(mlflow_client(settings))
        if current is None:
            train(transactions=source, dataset="seed", events=events)
        else:
            console.print(f"{MODEL_NAME} v{current.version} is the champion already (retrain with churnclv train).")
        score(transactions=source, explain=True, events=events)
    seed_campaign(settings)
    key = ensure_api_key(settings)
    _say_what_to_try(settings, key=key, port=port)
    if serve_after:
        from churnclv.serve import exit_now
        from churnclv.serving.cli_serve import serve as run_server
        from churnclv.serving.lifecycle import stop_with_parent

        stop_with_parent()  # make run killed outright (or its terminal gone): drain and stop, never an orphan
        run_server(host="127.0.0.1", port=port, model=MODEL_URI, scores=None,
                   api_keys_file=settings.local_key_file, open_=False)
        exit_now()  # stopped cleanly: nothing is left to write


#: The past campaign ``quickstart`` records, so that the first page shows a measured effect and learned rates.
SEED_CAMPAIGN_NAME = "seed-autumn-2025"


def seed_campaign(settings: Settings) -> None:
    """Record the seed's finished past campaign once: 4,000 simulated members (``seeds.generate``, true save
    rates per segment, contacts harming the loyal), 20% held out, outcomes simulated from the groups the
    store drew; its transactions in ``out/seed-campaign/transactions.csv``, its effect measured and recorded."""
    import numpy as np

    from churnclv.campaigns import CampaignRequest, create_campaign, measure_effect, open_store, record_effect
    from churnclv.contract.files import write_table
    from churnclv.seeds.generate import SEED_CAMPAIGN, simulate_campaign, simulate_campaign_outcomes

    engine = open_store(settings.campaign_store)
    sim = simulate_campaign(seed=7)
    request = CampaignRequest(name=SEED_CAMPAIGN_NAME, control_share=0.2, window_days=sim.window_days,
                              parameters={"source": "churnclv.seeds.generate.simulate_campaign(seed=7)"})
    made = create_campaign(engine, request, sim.members, requested_by="seed", campaign_date=sim.campaign_date.date())
    tx = simulate_campaign_outcomes(made.members, effects=SEED_CAMPAIGN, campaign_date=sim.campaign_date,
                                    window_days=sim.window_days, rng=np.random.default_rng(2025))  # not 7: that stream drew the segments
    path = write_table(tx, settings.out_dir / "seed-campaign" / "transactions.csv")
    effect = measure_effect(made.members, tx, campaign_date=sim.campaign_date.date(), window_days=sim.window_days)
    record_effect(engine, SEED_CAMPAIGN_NAME, effect, who="seed")
    overall = effect.table.set_index("segment").loc["all"]
    console.print(f"Past campaign {SEED_CAMPAIGN_NAME!r} ({made.campaign.n_treated:,} contacted, "
                  f"{made.campaign.n_control:,} held out, sent {sim.campaign_date:%Y-%m-%d}): retention "
                  f"{overall['retention_diff'] * 100:+.1f} points, contacted vs control; save rates learned "
                  f"from it (its transactions: {path}).", highlight=False, soft_wrap=True)


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
