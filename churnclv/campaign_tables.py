"""The tables and lines the targeting commands print (rich): a plan's save rates, an effect, a receipt."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


def plan_table(summary: Any) -> Table:
    """Per segment, the save rate the plan used and where it comes from (measured, assumed or set)."""
    from rich.table import Table

    table = Table(title=f"Save rates of the plan ({summary.uplift})")
    for column in ("segment", "save rate", "90% interval", "source"):
        table.add_column(column, justify="right" if column in ("save rate", "90% interval") else "left")
    for r in summary.save_rates:
        source = {"measured": f"measured: {r.campaigns} campaign(s), {r.n:,} members",
                  "set": "set (--save-rate)"}.get(r.source, "assumed: prior Beta(6, 14)")
        if r.harmful:
            source += "; contacts lowered retention: left out"
        table.add_row(r.segment, f"{r.rate:.1%}", f"{r.low:.0%} – {r.high:.0%}", source)
    return table


def effect_table(effect: Any, name: str) -> Table:
    """A measured effect per segment: members, retention of each group, the difference and its interval."""
    from rich.table import Table

    table = Table(title=f"Effect of {name} ({effect.interval:.0%} intervals)")
    for column in ("segment", "contacted", "control", "retention contacted", "retention control",
                   "difference (pts)", "interval (pts)", "spend / member diff", "value per contact"):
        table.add_column(column, justify="left" if column == "segment" else "right")

    def pts(v: float) -> str:
        return "–" if v != v else f"{v * 100:+.1f}"

    def share(v: float) -> str:
        return "–" if v != v else f"{v:.1%}"

    for r in effect.table.itertuples(index=False):
        table.add_row(r.segment, f"{r.n_treated:,}", f"{r.n_control:,}", share(r.retention_treated),
                      share(r.retention_control), pts(r.retention_diff),
                      f"{pts(r.retention_diff_low)} to {pts(r.retention_diff_high)}",
                      "–" if r.spend_diff != r.spend_diff else f"{r.spend_diff:+,.2f}",
                      "–" if r.value_per_contact != r.value_per_contact else f"{r.value_per_contact:+,.2f}")
    return table


def receipt_lines(receipt: Any) -> list[str]:
    """What an erasure removed where, one line each."""
    lines = [f"Erased {len(receipt.customer_ids):,} customer(s); {receipt.rows_removed:,} row(s) removed:"]
    lines += [f"  score table {path}: {n:,} row(s)" for path, n in receipt.score_files.items()]
    lines += [f"  campaign {name!r}: {n:,} member(s) (its measured effect stays)" for name, n in receipt.campaigns.items()]
    lines.append(f"  suppression list: {receipt.suppressed:,} id(s) added (reason: erased)")
    return lines
