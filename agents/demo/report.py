"""Rich tables for the demo: the live view and the final accounting."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table

from agents.ops.hub_events import Takeover
from agents.sim.accounting import Accounting
from schemas.header import Precedence

__all__ = ["accounting_tables", "duties_table", "failover_table", "live_table"]


def _ms(value: float | int | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def live_table(
    books: Accounting, phase: str, elapsed: float, duties: dict[str, Any] | None = None
) -> RenderableType:
    """The messages' books, and (with ``duties``) the notices, teams and checks so far."""
    table = _messages_table(books, phase, elapsed)
    return table if duties is None else Group(table, duties_table(duties))


def _messages_table(books: Accounting, phase: str, elapsed: float) -> Table:
    table = Table(title=f"I-24/7 backbone — {phase} — {elapsed:5.1f} s", expand=False)
    columns = ("sent", "accepted", "refused", "undecided", "delivered", "outstanding", "dup. supp.")
    for column in columns:
        table.add_column(column, justify="right")
    latency = books.latency_summary()
    for precedence in Precedence:
        table.add_column(f"{precedence.value} p50/p99 ms", justify="right")
    table.add_row(
        str(sum(books.sent.values())),
        str(len(books.accepted)),
        str(sum(books.refused.values())),
        str(len(books.undecided())),
        str(len(books.delivered)),
        str(len(books.outstanding())),
        str(sum(books.duplicates_suppressed.values())),
        *(
            f"{_ms(latency[p.value]['p50_ms'])}/{_ms(latency[p.value]['p99_ms'])}"
            for p in Precedence
        ),
    )
    return table


def accounting_tables(summary: dict[str, Any]) -> list[Table]:
    """The end-of-run books: totals, refusals by reason, deliveries by hub and precedence."""
    totals = Table(title="Accounting")
    totals.add_column("what")
    totals.add_column("count", justify="right")
    totals.add_column("breakdown")
    offered = summary.get("offered") or {}
    if offered:
        totals.add_row(
            "offered",
            str(offered["sent"]),
            f"{offered['achieved_rate']}/s of {offered['rate']}/s asked over "
            f"{offered['seconds']} s (most behind: {offered['max_behind']} messages)",
        )
    totals.add_row(
        "sent",
        str(summary["sent"]["total"]),
        ", ".join(f"{k} {v}" for k, v in sorted(summary["sent"]["by_kind"].items())),
    )
    totals.add_row(
        "accepted",
        str(summary["accepted"]["total"]),
        ", ".join(f"{k} {v}" for k, v in sorted(summary["accepted"]["by_precedence"].items())),
    )
    rejected = summary["rejected"]
    totals.add_row(
        "rejected",
        str(rejected["total"]),
        ", ".join(f"{k} {v}" for k, v in sorted(rejected["by_reason"].items())),
    )
    totals.add_row(
        "delivered",
        str(summary["delivered"]["total"]),
        f"to the CCC {summary['delivered']['to_ccc']}, receipts {summary['delivered']['receipts']}",
    )
    totals.add_row("duplicates suppressed", str(summary["duplicates_suppressed"]["total"]), "")
    lost = summary["lost"]["total"]
    totals.add_row("[bold]lost[/]", f"[{'red' if lost else 'green'} bold]{lost}[/]", "")
    undecided = summary.get("undecided", {}).get("total", 0)
    totals.add_row(
        "undecided",
        f"[{'red' if undecided else 'green'}]{undecided}[/]",
        "sent, neither accepted nor refused by the CCC",
    )
    totals.add_row("handling breaches", str(summary["breaches"]), "")
    totals.add_row(
        "fenced deliveries",
        str(summary.get("fenced", 0)),
        "made out of a hub's lease term; refused",
    )

    delivered = Table(title="Delivered, by hub and precedence (latency: created → opened)")
    delivered.add_column("hub")
    for precedence in Precedence:
        delivered.add_column(precedence.value, justify="right")
    for hub, counts in summary["delivered"]["by_hub"].items():
        delivered.add_row(hub, *(str(counts.get(p.value, 0)) for p in Precedence))
    latency = summary["delivered"]["latency"]
    delivered.add_row("p50 ms", *(_ms(latency[p.value]["p50_ms"]) for p in Precedence))
    delivered.add_row("p99 ms", *(_ms(latency[p.value]["p99_ms"]) for p in Precedence))
    lag = summary["delivered"].get("reader_lag") or {}
    own = summary["delivered"].get("simulator_lag") or {}
    if lag.get("count") and own.get("count"):
        delivered.caption = (
            f"delivery produced → opened: p50 {_ms(lag['p50_ms'])} / p99 {_ms(lag['p99_ms'])}"
            f" ms, of which the simulator's own (fetched → opened): p50 {_ms(own['p50_ms'])}"
            f" / p99 {_ms(own['p99_ms'])} ms"
        )
    stages = summary["delivered"].get("stages") or {}
    if any(spread.get("measured") for spread in stages.values()):
        split = "; ".join(
            f"{name.replace('_to_', ' → ')} {_ms(spread['p50_ms'])} / {_ms(spread['p99_ms'])}"
            for name, spread in stages.items()
        )
        lead = f"{delivered.caption}\n" if delivered.caption else ""
        delivered.caption = f"{lead}stages, p50 / p99 ms: {split}"
    tables = [totals, delivered]
    if "notices" in summary:
        tables.append(duties_table(summary))
    return tables


def duties_table(summary: dict[str, Any]) -> Table:
    """The CCC's duties at a glance, from ``DeskBooks.summary`` (live and at the end)."""
    n, d, t, c = (summary[k] for k in ("notices", "diffusions", "teams", "checks"))
    table = Table(title="The CCC's duties")
    table.add_column("duty")
    table.add_column("figures")
    states = ", ".join(f"{k} {v}" for k, v in sorted(n["states"].items()))
    table.add_row(
        "notices",
        f"requested {n['requested']}, published {n['published']}, refused {n['refused']}, "
        f"returned {n['returned']}; {n['broadcasts']} broadcasts ({states}) opened "
        f"{n['broadcast_deliveries']} times ({n['to_teams']} by teams); "
        f"renewal prompts {n['renewal_prompts']}",
    )
    table.add_row(
        "diffusions",
        f"sent {d['sent']}, recorded {d['recorded']}, copies opened {d['copies_opened']}; "
        f"recalls sent {d['recalls_sent']}, recalled {d['recalled']}, "
        f"recalls opened {d['recalls_opened']}",
    )
    table.add_row(
        "teams",
        f"requested {t['requested']}, deployed {t['deployed']}, declined {t['declined']}, "
        f"arrived {t['arrived']}, reports {t['reports']}, closed {t['closed']}; "
        f"notices opened {t['notices_opened']}; stolen vehicles reported "
        f"{t['vehicle_reports']}, circulated {t['vehicles_circulated']}, "
        f"updates opened by teams {t['vehicle_updates_opened']}",
    )
    mcq = c["multi_country"]
    table.add_row(
        "checks",
        f"asked {c['asked']} ({c['items_asked']} items), answered {c['answered']} "
        f"(p50 {_ms(c['answer_ms']['p50'])} / p99 {_ms(c['answer_ms']['p99'])} ms), "
        f"hits {c['hits']}, FLASH escalations {c['escalations']} "
        f"(opened {c['escalations_opened']}); confirmations {c['confirmations_requested']}: "
        f"confirmed {c['confirmed']}, reminders {c['reminders']}, breaches {c['breaches']}; "
        f"multi-country {mcq['asked']}, consolidated {mcq['consolidated']} "
        f"(not replied {mcq['not_replied']})",
    )
    return table


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def failover_table(rows: list[Takeover], duty: list[dict[str, str]]) -> Table:
    """Each failover and failback with its detection and takeover times, and duty changes."""
    table = Table(title="Hubs: failovers, failbacks and duty (times from the disturbance)")
    columns = ("what", "hub", "at s", "by", "detected s", "held s", "delivering s", "units")
    for column in columns:
        table.add_column(column, justify="right" if column.endswith(("s", "units")) else "left")
    for row in rows:
        table.add_row(
            row.kind,
            row.site,
            f"{row.at:.0f}",
            (row.by or "-").replace("hub:", ""),
            _s(row.detection_s),
            _s(row.claimed_s),
            _s(row.takeover_s),
            str(row.units),
        )
    for change in duty:
        table.add_row(
            "duty", change["hub"].replace("hub:", ""), change["at"][11:19], change["reason"]
        )
    return table
