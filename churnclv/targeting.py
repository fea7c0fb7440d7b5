"""The targeting commands: ``db upgrade``, ``plan``, ``campaigns list``, ``campaigns effect``, ``campaigns
uplift``, ``suppress`` and ``forget``, on the campaign store (``CHURNCLV_DB_URL``, default ``$CHURNCLV_HOME/churnclv.db``).

Each calls the functions the service calls (:mod:`serving.campaigns`, :mod:`campaigns`), so a plan made
here is the campaign ``POST /campaigns`` makes for the same request. Who asked is the command-line user
(``cli:<login>``), as the audit trail records it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import math
from pathlib import Path
from typing import Annotated

import typer

from churnclv.campaign_tables import effect_table, plan_table, receipt_lines
from churnclv.context import check_writable, command_settings, console
from churnclv.contract.errors import ChurnclvError
from churnclv.options import (
    AMOUNT_COL,
    BAD_ROWS,
    CUSTOMER_COL,
    TIMESTAMP_COL,
    AmountCol,
    AsOf,
    BadRows,
    CustomerCol,
    DateFormat,
    Rejected,
    TimestampCol,
    Transactions,
    parse_day,
)
from churnclv.source import Source

db = typer.Typer(help="The campaign store (CHURNCLV_DB_URL; default $CHURNCLV_HOME/churnclv.db).", no_args_is_help=True)
campaigns_app = typer.Typer(help="Recorded campaigns: their list and their measured effect.", no_args_is_help=True)


def who() -> str:
    """The audit trail's name for the command line's user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def store():
    """The campaign store of this command's settings, opened and migrated (one line when it cannot be)."""
    from churnclv.campaigns import open_store

    return open_store(command_settings().campaign_store)


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the campaign store's migrations (they also run on first use); says the store and its revision."""
    from churnclv.campaigns.migrate import head_revision
    from churnclv.campaigns.store import describe

    engine = store()
    console.print(f"The campaign store {describe(engine.url)} is at revision {head_revision()} (the newest).",
                  highlight=False, soft_wrap=True)


def plan(
    name: Annotated[str, typer.Argument(help="The campaign's name (unique in the store).")],
    limit: Annotated[int | None, typer.Option(min=1, max=10_000, help="Contact at most this many (as /prioritise's limit). Default: 100.")] = None,
    budget: Annotated[float | None, typer.Option(min=0, help="Spend at most this on contacts (limit = budget / contact cost).")] = None,
    contact_cost: Annotated[float, typer.Option(min=0, help="Cost of one contact, currency.")] = 1.0,
    save_rate: Annotated[float | None, typer.Option(min=0, max=1, help="Share of the value at risk a contact saves, for every segment. Default: each segment's rate learned from finished campaigns (the prior Beta(6, 14), mean 0.30, where none is measured).")] = None,
    segments: Annotated[list[str] | None, typer.Option("--segment", help="Only this segment (repeat for more). Default: every segment whose action is a contact.")] = None,
    control_share: Annotated[float, typer.Option(min=0, max=0.99, help="Share of each segment held out as control (not contacted). 0 only when asked for.")] = 0.1,
    window_days: Annotated[int, typer.Option(min=1, help="Days after the campaign date in which the effect is measured.")] = 90,
    holdout_share: Annotated[float, typer.Option(min=0, max=0.99, help="Global holdout: this share of all customers is kept out of every campaign.")] = 0.0,
    campaign_date: Annotated[dt.date | None, typer.Option(parser=parse_day, metavar="DATE", help="The day the contacts go out. Default: today (UTC).")] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Where contacts.csv and controls.csv go. Default: $CHURNCLV_HOME/out/campaigns/NAME/.")] = None,
    scores: Annotated[Path | None, typer.Option(help="Score table to plan on. Default: CHURNCLV_SCORES_PATH, else $CHURNCLV_HOME/scores/latest.parquet.")] = None,
) -> None:
    """Record a contact plan as an experiment in the campaign store and write its lists: contacts.csv (who the
    CRM contacts) and controls.csv (who it must NOT contact) in --out-dir. The same request again returns the
    campaign recorded before."""
    from churnclv.contract.files import write_atomic
    from churnclv.serving import campaigns
    from churnclv.serving.schemas import PrioritiseRequest
    from churnclv.serving.table import load_score_table
    from churnclv.serving.targeting import Targeting

    if "/" in name:
        raise ChurnclvError(f"a campaign name cannot hold '/' (it is part of its address, GET /campaigns/NAME): {name!r}")
    if limit is not None and budget is not None:
        raise ChurnclvError("give --limit or --budget, not both")
    if budget is not None:
        limit = 10_000 if contact_cost == 0 else max(1, min(10_000, math.floor(budget / contact_cost + 1e-9)))
    settings = command_settings()
    folder = out_dir or settings.out_dir / "campaigns" / name
    check_writable(folder / "contacts.csv")
    table = load_score_table(scores or settings.scores_path)
    request = PrioritiseRequest(limit=limit or 100, contact_cost=contact_cost, save_rate=save_rate,
                                segments=segments or None)
    engine = store()
    uplift = served_uplift(settings, table)
    targeting = Targeting(settings.campaign_store, engine=engine, served=lambda: uplift)
    try:
        made, summary = campaigns.create(engine, table, targeting.view(table), request, name=name,
                                         control_share=control_share, window_days=window_days,
                                         holdout_share=holdout_share, campaign_date=campaign_date, who=who())
    except ValueError as exc:  # pydantic or campaign input problems: one line
        raise ChurnclvError(str(exc).splitlines()[0]) from None
    paths = {}
    for label, members in (("contacts", made.contacts), ("controls", made.controls)):
        text = campaigns.members_csv(members)
        paths[label] = write_atomic(folder / f"{label}.csv", lambda tmp, t=text: tmp.write_text(t))
    info = made.campaign
    console.print(plan_table(summary))
    console.print(summary.uplift[:1].upper() + summary.uplift[1:] + ".", highlight=False, soft_wrap=True)
    console.print(("Recorded" if made.created else "Already recorded with the same request:") +
                  f" campaign {info.name!r}, sent {info.campaign_date}, measured to {info.window_end}; "
                  f"{info.n_treated:,} to contact, {info.n_control:,} held out ({info.control_share:.0%})"
                  + (f", {info.n_suppressed:,} suppressed left out" if info.n_suppressed else ""), highlight=False, soft_wrap=True)
    console.print(f"Wrote {paths['contacts']} (contact these) and {paths['controls']} (do NOT contact: the control "
                  "group)", highlight=False, soft_wrap=True)


def served_uplift(settings, table):
    """The registered uplift model plans rank by (``churn-clv-uplift@champion``) with its uplift for ``table``,
    loaded as the service loads it (:func:`serving.uplift.next_uplift`), as a ``serving.state.Served``: its
    ``uplift`` is None when there is none, and ``uplift_problem`` says why when one could not be used."""
    from churnclv.scoring.registry import connect
    from churnclv.scoring.uplift import UPLIFT_URI
    from churnclv.serving.state import Served
    from churnclv.serving.uplift import next_uplift

    uplift, problem, _ = next_uplift(lambda: connect(settings.mlflow_uri, settings.artifact_root), UPLIFT_URI, None,
                                     table)
    return Served(table=table, uplift=uplift, uplift_problem=problem)


@campaigns_app.command("list")
def campaigns_list() -> None:
    """Every recorded campaign, newest first, with its status (running, to measure, measured, finished)."""
    from rich.table import Table

    from churnclv.serving.campaigns import summaries

    listed = summaries(store())
    if not listed:
        console.print("No campaign recorded yet: churnclv plan NAME records one.")
        return
    table = Table(title="Campaigns")
    for column in ("campaign", "status", "sent", "window ends", "contacts", "control", "by"):
        table.add_column(column, justify="right" if column in ("contacts", "control") else "left")
    for c in listed:
        table.add_row(c["name"], c["status"], c["campaign_date"], c["window_end"], f"{c['n_treated']:,}",
                      f"{c['n_control']:,}", c["requested_by"])
    console.print(table)


@campaigns_app.command("effect")
def campaigns_effect(
    name: Annotated[str, typer.Argument(help="The campaign.")],
    transactions: Transactions,
    as_of: AsOf = None,
    contact_cost: Annotated[float, typer.Option(min=0, help="Cost of one contact, taken off the value per contact.")] = 0.0,
    record: Annotated[bool, typer.Option("--record/--no-record", help="Record the measurement in the store (it feeds the learned save rates once the window is over).")] = True,
    customer_col: CustomerCol = CUSTOMER_COL,
    timestamp_col: TimestampCol = TIMESTAMP_COL,
    amount_col: AmountCol = AMOUNT_COL,
    date_format: DateFormat = None,
    bad_rows: BadRows = BAD_ROWS,
    rejected: Rejected = None,
) -> None:
    """Measure a campaign's effect from the transactions after it: retention and spend per member, contacted
    against control, per segment and overall, with 90% intervals; recorded in the store unless --no-record."""
    from churnclv.campaigns import campaign_members, get_campaign, measure_effect, record_effect

    engine = store()
    info = get_campaign(engine, name)
    source = Source(transactions, as_of, customer_col, timestamp_col, amount_col, date_format, bad_rows, rejected)
    settings = command_settings()
    tx = source.load(settings)
    if as_of is not None:  # measure as the data stood on that day
        tx = tx.loc[tx["timestamp"].dt.date <= as_of]
    effect = measure_effect(campaign_members(engine, name), tx, campaign_date=info.campaign_date,
                            window_days=info.window_days, contact_cost=contact_cost)
    console.print(effect_table(effect, name))
    state = "over: final figures" if effect.finished else f"not over until {effect.window_end}: interim figures"
    console.print(f"Data through {effect.data_through}; the window ({info.campaign_date} + {info.window_days} days) is "
                  f"{state}.", highlight=False, soft_wrap=True)
    if record:
        added = record_effect(engine, name, effect, who=who())
        console.print(f"Recorded ({added} segment(s))." if added else "Recorded before for this data date.")


@campaigns_app.command("uplift")
def campaigns_uplift(
    transactions: Transactions,
    as_of: AsOf = None,
    holdout_campaigns: Annotated[int, typer.Option(min=1, help="Judge on the latest N finished campaigns (fitted without them).")] = 1,
    bags: Annotated[int, typer.Option(min=1, max=100, help="Bootstrap pairs of boosters (their spread is each customer's uplift interval).")] = 10,
    min_outcomes: Annotated[int, typer.Option(min=1, help="Members of finished campaigns needed before a model is fitted.")] = 20_000,
    min_per_group: Annotated[int, typer.Option(min=1, help="Of those, at least this many treated and this many controls.")] = 2_000,
    customer_col: CustomerCol = CUSTOMER_COL,
    timestamp_col: TimestampCol = TIMESTAMP_COL,
    amount_col: AmountCol = AMOUNT_COL,
    date_format: DateFormat = None,
    bad_rows: BadRows = BAD_ROWS,
    rejected: Rejected = None,
) -> None:
    """Fit the per-customer uplift model on every finished campaign of the store (outcomes from the
    transactions), judge it on the latest one(s) it did not see (Qini, uplift at 10/20/30%), and register it
    in MLflow as churn-clv-uplift; when it ranked the held-out campaigns better than chance it becomes
    @champion, and plans (/prioritise, /campaigns, churnclv plan, the page) rank by clv × uplift − contact cost."""
    from dataclasses import replace

    from churnclv.campaign_tables import uplift_lines
    from churnclv.scoring.registry import connect
    from churnclv.training.uplift import UpliftSettings, train_uplift

    engine = store()
    settings = command_settings()
    source = Source(transactions, as_of, customer_col, timestamp_col, amount_col, date_format, bad_rows, rejected)
    tx = source.load(settings)
    if as_of is not None:  # as the data stood on that day
        tx = tx.loc[tx["timestamp"].dt.date <= as_of]
    fit = replace(UpliftSettings(), bags=bags, min_outcomes=min_outcomes, min_per_group=min_per_group)
    client = connect(settings.mlflow_uri, settings.artifact_root)
    trained = train_uplift(engine, tx, client, settings=fit, holdout_campaigns=holdout_campaigns,
                           artifact_root=settings.artifact_root)
    for line in uplift_lines(trained):
        console.print(line, highlight=False, soft_wrap=True)


def suppress(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with a customer_id column (or one id a line).")],
    reason: Annotated[str, typer.Option(help="Why, as the suppression list keeps it.")] = "objected to marketing (GDPR Art. 21 / CCPA opt-out)",
) -> None:
    """Put customers on the suppression list in the campaign store: they appear in no plan, control group,
    CSV or preview from now on."""
    from churnclv.campaigns import suppress as add

    ids = read_ids(file)
    added = add(store(), ids, reason=reason, source=f"cli:{file.name}", who=who())
    console.print(f"Suppressed {len(set(ids)):,} customer(s) from {file} ({added:,} new on the list).", highlight=False,
                  soft_wrap=True)


def read_ids(file: Path) -> list[str]:
    """Customer ids of a file: its ``customer_id`` column, else one id a line (blank lines skipped)."""
    lines = [line.strip() for line in file.read_text().splitlines() if line.strip()]
    if lines and "customer_id" in [c.strip().strip('"') for c in lines[0].split(",")]:
        import pandas as pd

        return pd.read_csv(file, dtype={"customer_id": "str"})["customer_id"].dropna().str.strip().tolist()
    return lines


def forget(
    customer_ids: Annotated[list[str], typer.Argument(help="Customers to erase.")],
) -> None:
    """Erase customers (GDPR Art. 17): their rows leave the score tables (CHURNCLV_SCORES_PATH and
    $CHURNCLV_HOME/scores/, rewritten atomically) and the campaign members (measured effects stay), the ids go
    on the suppression list; a receipt of what was removed where is printed and written to
    $CHURNCLV_HOME/receipts/."""
    from churnclv.campaigns import forget as erase
    from churnclv.contract.files import write_atomic
    from churnclv.serving.targeting import score_files

    settings = command_settings()
    receipt = erase(store(), customer_ids, score_files=score_files(settings.scores_path, settings.root), who=who(),
                    source="cli")
    path = settings.root / "receipts" / f"forget-{receipt.at:%Y%m%dT%H%M%S%f}.json"
    body = json.dumps(receipt.to_dict(), indent=2)
    write_atomic(path, lambda tmp: tmp.write_text(body + "\n"))
    for line in receipt_lines(receipt):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"Receipt written to {path}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``plan``, ``suppress``, ``forget`` and the ``db`` and ``campaigns`` groups to ``app``."""
    app.command()(plan)
    app.add_typer(campaigns_app, name="campaigns")
    app.command()(suppress)
    app.command()(forget)
    app.add_typer(db, name="db")
