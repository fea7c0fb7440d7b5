"""The tables and lines the targeting commands print (rich): a plan's save rates, an effect, a receipt, an uplift fit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table


def plan_table(summary: Any) -> Table:
    """Per segment, the save rate the plan used and where it comes from (measured, assumed or set); what ranks the
    plan (``summary.uplift``) is printed below it by the command."""
    from rich.table import Table

    ranked = getattr(summary, "ranked_by", "save_rates") == "uplift"
    table = Table(title="Save rates per segment" + (" (the plan ranks by uplift)" if ranked else " (the plan ranks by them)"))
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


def uplift_lines(trained: Any) -> list[str]:
    """What ``churnclv campaigns uplift`` did (:class:`training.uplift.Trained`): learned from, judged on, registered."""
    lines = [f"Finished campaigns learned from: {', '.join(trained.campaigns) or 'none'}"
             + (f"; left out (window not over): {', '.join(trained.running)}" if trained.running else "") + "."]
    judged = trained.judged
    if judged is not None and judged.metrics:
        m = judged.metrics
        at = ", ".join(f"{p}% {m[f'uplift_at_{p}'] * 100:+.1f} pts" for p in (10, 20, 30) if m[f"uplift_at_{p}"] == m[f"uplift_at_{p}"])
        lines.append(f"On {', '.join(judged.held_out)} ({int(m['held_out_members']):,} members it did not see, fitted on "
                     f"the earlier campaigns): Qini {m['qini']:.4f} (0 = random targeting); retention contacted − "
                     f"control among the top by predicted uplift: {at or 'too few members to tell'}.")
    ready = trained.final.readiness
    lines.append(f"Fitted on every finished campaign: {ready.n_treated + ready.n_control:,} members ({ready.n_treated:,} "
                 f"contacted, {ready.n_control:,} controls)." if trained.final.model is not None else
                 trained.final.message[:1].upper() + trained.final.message[1:] + ".")
    if trained.version is not None:
        served = ("it is now churn-clv-uplift@champion: plans rank by clv × uplift − contact cost (the service "
                  "at its next reload)") if trained.promoted else f"not made champion: {trained.why_not_promoted}"
        lines.append(f"Registered churn-clv-uplift v{trained.version} (run {trained.run_id}); {served}.")
    return lines
