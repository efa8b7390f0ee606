"""`fleetcare network …`: the outlet network (regions, outlets, technicians), the jobs
offered to outlets and their answers, moving a job to another outlet, and the outlets'
settlement statements."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.tree import Tree

from db.errors import DomainError
from fleetcare.cli.common import console, database, err, utc_days

app = typer.Typer()
network = typer.Typer(
    help=(
        "The outlet network: maker → region → outlet → technician (loaded with `fleetcare "
        "registry import`: regions, outlets with region_id and accept_hours, outlet_fees); "
        "the jobs offered to outlets; their statements."
    ),
    no_args_is_help=True,
)
app.add_typer(network, name="network")


@network.command("show")
def show() -> None:
    """The hierarchy: regions, their outlets (and hours to accept a job), technicians."""
    from service.network import Network

    root = Tree("maker")
    for region in Network(database()).tree():
        branch = root.add(f"{region.name} ({region.id or '-'})")
        for o in region.outlets:
            hours = f"accepts within {o.accept_hours} h" if o.accept_hours else "takes jobs at once"
            leaf = branch.add(f"{o.id} {o.name}, {hours}")
            for t in o.technicians:
                leaf.add(t)
    console.print(root)


@network.command("offers")
def offers(
    state: Annotated[
        str, typer.Option(help="offered (waiting), accepted, declined or expired.")
    ] = "offered",
    outlet: Annotated[str | None, typer.Option(help="One outlet's.")] = None,
) -> None:
    """Jobs offered to outlets, those due soonest first."""
    from service.network import Network

    found = Network(database()).offers(outlets_=[outlet] if outlet else None, state=state)
    table = Table()
    for col in ("job", "outlet", "offered", "answer by", "state", "by", "reason"):
        table.add_column(col)
    for o in found:
        table.add_row(
            str(o.order_id), o.outlet_id, f"{o.offered_at:%Y-%m-%d %H:%M}",
            f"{o.due_at:%Y-%m-%d %H:%M}", o.state, o.decided_by or "", o.reason or "",
        )  # fmt: skip
    console.print(table)


@network.command("answer")
def answer(
    order_id: Annotated[int, typer.Argument(help="The job offered to the outlet.")],
    accept: Annotated[
        bool, typer.Option("--accept/--decline", help="Take the job, or decline it.")
    ],
    reason: Annotated[str, typer.Option(help="Why not (required to decline).")] = "",
    by: Annotated[str, typer.Option(help="Who answers (the audit).")] = "cli",
) -> None:
    """The outlet's answer: accepted, one of its technicians is dispatched; declined, the
    job goes to another outlet of the region, or waits for the region's ops."""
    from service.dispatch import Dispatcher
    from service.network import Network

    db = database()
    try:
        if accept:
            Network(db).accept(order_id, by=by)
            Dispatcher(db).run([order_id])
        else:
            Network(db).decline(order_id, by=by, reason=reason)
    except DomainError as e:
        err.print(str(e))
        raise typer.Exit(1) from None
    o = Network(db).orders.get(order_id)
    console.print(
        f"#{o.id} {o.state.value} at outlet {o.outlet_id} ({o.outlet_state or 'taken'})"
        + (f": {o.unassignable_reason}" if o.unassignable_reason else "")
    )


@network.command("reroute")
def reroute(
    order_id: Annotated[int, typer.Argument(help="An open job.")],
    outlet: Annotated[str, typer.Argument(help="The outlet to take it.")],
    reason: Annotated[str, typer.Option(help="Why (the audit).")] = "",
    by: Annotated[str, typer.Option(help="Who moves it (the audit).")] = "cli",
) -> None:
    """Send an open job to another outlet: it is offered the job, or takes it at once."""
    from service.dispatch import Dispatcher
    from service.network import Network

    db = database()
    try:
        Network(db).reroute(order_id, outlet, by=by, reason=reason)
    except DomainError as e:
        err.print(str(e))
        raise typer.Exit(1) from None
    Dispatcher(db).run([order_id])
    o = Network(db).orders.get(order_id)
    console.print(f"#{o.id} now at outlet {o.outlet_id} ({o.outlet_state or 'taken'})")


@network.command("statement")
def statement(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--to", help="Day after the last, YYYY-MM-DD (UTC).")],
    items: Annotated[bool, typer.Option("--items", help="Every amount, with why.")] = False,
    outlet: Annotated[str | None, typer.Option(help="One outlet's.")] = None,
    output: Annotated[Path | None, typer.Option(help="Write CSV here (default: print).")] = None,
) -> None:
    """Each outlet's statement (CSV): fees payable, held, forfeit and awaiting the
    callback; warranty claims; deductions for SLA breaches, late answers and upheld
    complaints; and the net paid.

    e.g. fleetcare network statement --from 2026-11-01 --to 2026-12-01 --items"""
    from service.csvout import dataclass_csv
    from service.outlet_statements import OutletStatement, OutletStatements, StatementLine

    a, b = utc_days(start, end)
    s = OutletStatements(database())
    only = [outlet] if outlet else None
    if items:
        text = dataclass_csv(StatementLine, s.lines(a, b, only))
    else:
        text = dataclass_csv(OutletStatement, s.statements(a, b, only))
    if output is None:
        console.print(text, end="", markup=False, highlight=False)
    else:
        output.write_text(text)
        console.print(f"wrote {output}")
