"""`fleetcare notify …`: the customer-message outbox and its delivery."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from fleetcare.cli.common import console, database, err, run_until_signal, settings

app = typer.Typer()
notify = typer.Typer(
    help="Customer messages: the outbox (channel by preference, quiet hours, weekly "
    "cap) and its delivery.",
    no_args_is_help=True,
)
app.add_typer(notify, name="notify")


@notify.command("send")
def notify_send(
    once: Annotated[bool, typer.Option(help="Send what is due now, then exit.")] = False,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between scans.")] = 5.0,
) -> None:
    """Deliver due messages through the webhook (FLEETCARE_NOTIFY__WEBHOOK_URL) or, without
    one, the log. Runs until Ctrl-C unless --once."""
    from fleetcare.notifier import make_outbox, run_notifier

    s = settings()
    db = database()

    async def go(stop: asyncio.Event) -> None:
        outbox, webhook = make_outbox(db, s.notify)
        try:
            if once:
                r = await outbox.deliver()
                console.print(
                    f"sent {r.sent}, held for quiet hours {r.held}, suppressed by the "
                    f"weekly cap {r.suppressed}, retrying {r.retrying}, failed {r.failed}"
                )
            else:
                where = s.notify.webhook_url or "the log"
                console.print(f"delivering customer messages to {where}; Ctrl-C to stop")
                await run_notifier(outbox, stop, interval_s=interval)
        finally:
            if webhook is not None:
                await webhook.aclose()

    run_until_signal(go)


@notify.command("list")
def notify_list(
    status: Annotated[str | None, typer.Option(help="pending, sent, suppressed or failed.")] = None,
    customer: Annotated[str | None, typer.Option(help="One customer.")] = None,
    order: Annotated[int | None, typer.Option(help="One work order.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """The outbox, newest first, with why a message is held, suppressed or failed."""
    from service.notifications import Outbox

    if status not in (None, "pending", "sent", "suppressed", "failed"):
        err.print("--status is one of pending, sent, suppressed, failed")
        raise typer.Exit(2)
    rows = Outbox(database(), {}).messages(
        customer_id=customer, order_id=order, status=status, limit=limit
    )
    table = Table()
    for col in ("#", "customer", "order", "kind", "status", "channel", "not before", "note"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["id"]), r["customer_id"], str(r["order_id"] or "-"), r["kind"],
            r["status"], r["channel"] or "-", f"{r['not_before']:%Y-%m-%d %H:%M}",
            r["note"] or "",
        )  # fmt: skip
    console.print(table)
