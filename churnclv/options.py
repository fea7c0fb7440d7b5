"""The options several commands share, each declared once as a typer ``Annotated`` alias.

A command lists them in its own signature (``transactions: Transactions``, ``as_of: AsOf = None``, ...)
with the defaults below, and gathers the input options into a :class:`churnclv.source.Source`. The order
every data command keeps in ``--help``: --transactions and --as-of first, then its own options, then the
column and bad-row options (:data:`INPUT_OPTIONS` names them).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from churnclv.contract.columns import TRANSACTION_REQUIRED
from churnclv.contract.dates import as_of_day

#: The input's column names by default: the canonical ones (``contract.columns``).
CUSTOMER_COL, TIMESTAMP_COL, AMOUNT_COL = TRANSACTION_REQUIRED
#: ``--bad-rows`` by default: any bad row stops the command.
BAD_ROWS = "fail"


def parse_day(value: str | date | None) -> date | None:
    """An --as-of value as a :class:`datetime.date` (:func:`contract.dates.as_of_day`), at parse time."""
    if value is None or isinstance(value, date):
        return value
    try:
        return as_of_day(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 1997-09-30") from None


Transactions = Annotated[str, typer.Option(
    "--transactions", "-t", help="CSV or Parquet file of transactions, or 'cdnow' for the built-in CDNOW log.")]
AsOf = Annotated[date | None, typer.Option(
    parser=parse_day, metavar="DATE",
    help="Use transactions up to and including this day (YYYY-MM-DD). Default: the last day in the data.")]
CustomerCol = Annotated[str, typer.Option(help="Name of the customer id column in the input.")]
TimestampCol = Annotated[str, typer.Option(help="Name of the date/time column in the input.")]
AmountCol = Annotated[str, typer.Option(help="Name of the amount column (negative = return), or two columns "
                                             "multiplied: 'Quantity*Price' (a line's quantity and unit price).")]
DateFormat = Annotated[str | None, typer.Option(
    help="strftime format of the dates, e.g. %d/%m/%Y. Default: ISO 8601 or inferred.")]
BadRows = Annotated[str, typer.Option(
    "--bad-rows", help="'fail' stops on any bad row (default); 'drop' drops bad rows and writes them to --rejected.")]
Rejected = Annotated[Path | None, typer.Option(
    help="Where 'drop' writes the rejected rows. Default: $CHURNCLV_HOME/reports/rejected.csv.")]
Events = Annotated[str | None, typer.Option(
    "--events", metavar="FILE",
    help="CSV or Parquet file of touchpoints beside the transactions: customer_id, timestamp, kind (nps, csat, "
         "support_contact, complaint, email_sent, email_open, email_click, unsubscribe, visit, or any other), value "
         "(the answer, for nps 0-10 and csat 1-5). Customer and date columns and --bad-rows as for -t.")]
#: The options of the input, in the order of ``--help`` (each command declares them with these aliases).
INPUT_OPTIONS = ("--transactions", "--as-of", "--customer-col", "--timestamp-col", "--amount-col", "--date-format",
                 "--bad-rows", "--rejected")

DaskAddress = Annotated[str | None, typer.Option(
    "--dask", metavar="ADDRESS",
    help="Run on a Dask cluster: a scheduler's address (tcp://host:8786), or 'local' for 2 worker processes on "
         "this machine. -t is then a Parquet dataset (a folder, a glob like 'tx/*.parquet', or a file), read "
         "and shuffled by customer on the cluster; outputs are written as folders of Parquet parts.")]
ModelUri = Annotated[str, typer.Option("--model", help="Registered model URI (alias or version).")]
Cutoffs = Annotated[int, typer.Option(min=1, help="At most this many past snapshots are stacked.")]
StepDays = Annotated[int, typer.Option(min=1, help="Days between stacked snapshots.")]

