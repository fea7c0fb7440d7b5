"""The served model: the registered bundle pinned to a version, and scoring a posted history with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from churnclv.contract import ChurnclvError, first_line
from churnclv.contract.columns import EVENT_COLUMNS, TRANSACTION_COLUMNS, TRANSACTION_REQUIRED
from churnclv.contract.dates import on_or_before
from churnclv.features import (
    Encoded,
    EventsError,
    TransactionsError,
    encode,
    validate_events,
    validate_transactions,
)
from churnclv.features.online import encode_posted, events_posted, rows_until
from churnclv.scoring.registry import load_bundle, resolve
from churnclv.serving.errors import ApiError
from churnclv.serving.table import rows_of


@dataclass(frozen=True)
class ServedModel:
    bundle: Any
    metadata: dict

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", ""))


def load_model(client: Any, uri: str) -> ServedModel:
    """The bundle at ``uri`` pinned to a registered version (:func:`scoring.registry.load_bundle`)."""
    bundle = load_bundle(client, uri)
    return ServedModel(bundle, dict(bundle.metadata))


def resolve_version(client: Any, uri: str) -> str | None:
    """The registered version an alias or version URI points at now (one registry query)."""
    _, version = resolve(client, uri)
    return None if version is None else str(version.version)


def posted_columns(transactions: Sequence[Any]) -> dict[str, list]:
    """Posted transaction models as raw columns, one value per row (None = not given)."""
    return {n: [getattr(t, n) for t in transactions] for n in TRANSACTION_COLUMNS}


def frame_of(columns: dict[str, list]) -> pd.DataFrame:
    """Raw columns as a table for ``features.validate_transactions`` (unused optional columns left out, so
    that the contract sees what a file with those columns would hold)."""
    return pd.DataFrame({n: pd.Series(v, dtype=object) for n, v in columns.items()
                         if n in TRANSACTION_REQUIRED or any(x is not None for x in v)})


def validated(columns: dict[str, list], as_of) -> tuple[Encoded, int]:
    """The posted rows encoded for the features, and how many are on or before ``as_of``.

    Plain rows (``features.online``) are encoded as they are; any other goes through the contract like a
    file. Raises :class:`ApiError` 422 with the contract's problems when the rows break it.
    """
    enc = encode_posted(columns)
    if enc is not None:
        return enc, rows_until(enc, as_of)
    try:
        clean, _ = validate_transactions(frame_of(columns))
    except TransactionsError as exc:
        raise unprocessable(exc, "transactions") from None
    return encode(clean), int(on_or_before(clean["timestamp"], as_of).sum())


def unprocessable(exc: TransactionsError, noun: str) -> ApiError:
    """The contract's problems with posted rows as a 422 naming each field (``<noun>.<column>``)."""
    details = [{"field": f"{noun}.{p.column}", "issue": p.message(), "count": p.count} for p in exc.problems]
    message = first_line(exc) if not details else f"{len(details)} problem(s) in the {noun}"
    return ApiError(422, f"invalid_{noun}", message, details)


def validated_events(events: Sequence[Any]) -> pd.DataFrame:
    """Posted events in canonical form (the events contract, :func:`features.validate_events`; plain rows
    straight, by ``features.online``); :class:`ApiError` 422 naming each kind of bad row."""
    columns = {n: [getattr(e, n) for e in events] for n in EVENT_COLUMNS}
    plain = events_posted(columns)
    if plain is not None:
        return plain
    try:
        return validate_events(pd.DataFrame({n: pd.Series(v, dtype=object) for n, v in columns.items()}))[0]
    except EventsError as exc:
        raise unprocessable(exc, "events") from None


def score_encoded(model: ServedModel, enc: Encoded, *, as_of, explain: bool,
                  events: pd.DataFrame | None = None) -> pd.DataFrame:
    """The bundle's score table of encoded posted rows (and their canonical events, if any); :class:`ApiError`
    422 when the model cannot score them."""
    try:
        return model.bundle.score(enc, as_of=pd.Timestamp(as_of), explain=explain, events=events)
    except (ChurnclvError, ValueError) as exc:
        raise ApiError(422, "cannot_score", first_line(exc)) from None


def scored_rows(model: ServedModel, enc: Encoded, *, as_of, explain: bool,
                events: pd.DataFrame | None = None) -> list[dict]:
    """What :func:`score_encoded` scores, as the answer's rows (:func:`rows_of`) straight from the bundle's arrays,
    without the frame; :class:`ApiError` 422 when the model cannot score them."""
    try:
        bundle = model.bundle
        table = bundle.columns(enc, as_of=pd.Timestamp(as_of), events=events)
        return rows_of(bundle.score_values(table, explain=explain)) if len(table) else []
    except (ChurnclvError, ValueError) as exc:
        raise ApiError(422, "cannot_score", first_line(exc)) from None


def answer_rows(scored: pd.DataFrame, enc: Encoded) -> tuple[list[dict], list[str]]:
    """(one dict of plain Python values per scored customer, every field of the answer's
    :class:`serving.schemas.CustomerScore` in its order; ids posted but not scored, in posting order)."""
    rows = rows_of({c: scored[c].to_numpy() for c in scored.columns})
    return rows, unscored_ids(rows, enc)


def unscored_ids(rows: list[dict], enc: Encoded) -> list[str]:
    """The posted customers without a row, in posting order."""
    known = {row["customer_id"] for row in rows}
    return [c for c in enc.uniques.tolist() if c not in known]


def score_history(model: ServedModel, transactions: Sequence[Any], *, as_of, explain: bool) -> tuple[list[dict], list[str], int]:
    """Score posted transactions with the bundle (its batch code, on the rows encoded once).

    Returns (rows, ids of posted customers without a purchase by ``as_of``, transactions used).
    Raises :class:`ApiError` 422 with the contract's problems when the rows break it.
    """
    enc, used = validated(posted_columns(transactions), as_of)
    return (*answer_rows(score_encoded(model, enc, as_of=as_of, explain=explain), enc), used)
