"""`fleetcare stock …`: parts stock at every level (central, distribution, outlet, van),
the sales plan and the plan for a peak."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fleetcare.cli.common import console, err, settings

if TYPE_CHECKING:
    from service.stock import Move

app = typer.Typer()
stock = typer.Typer(
    help="Parts stock at every level, the sales plan and the peak's stock plan "
    "(docs/parts.md). Locations are written level:id: central:cn, distribution:east, "
    "outlet:o-1, van:tech-1.",
    no_args_is_help=True,
)
app.add_typer(stock, name="stock")

Actor = Annotated[str, typer.Option(help="Who is making the move (the ledger keeps it).")]
Note = Annotated[str | None, typer.Option(help="Why, or the purchase order.")]


def _run(action: str, do: Callable[[], Move]) -> None:
    from db.errors import DomainError

    try:
        move = do()
    except DomainError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{action}: {move.qty} {move.sku} (ledger #{move.id})")


@stock.command("held")
def stock_held(
    location: Annotated[str | None, typer.Option(help="level:id")] = None,
    sku: Annotated[str | None, typer.Option()] = None,
) -> None:
    """What each location holds."""
    from fleetcare.wiring import open_database
    from service.stock import Location, Stock

    at = Location.parse(location) if location else None
    table = Table()
    for col in ("location", "sku", "qty"):
        table.add_column(col)
    for h in Stock(open_database(settings())).held(at, sku):
        table.add_row(str(h.location), h.sku, str(h.qty))
    console.print(table)


@stock.command("transfer")
def stock_transfer(
    sku: str,
    qty: int,
    source: Annotated[str, typer.Argument(help="level:id, e.g. central:cn")],
    destination: Annotated[str, typer.Argument(help="level:id, e.g. distribution:east")],
    actor: Actor = "cli",
    note: Note = None,
) -> None:
    """Move stock from one location to another, all or nothing.

    e.g. fleetcare stock transfer AC-INSTALL-KIT 120 central:cn distribution:east"""
    from fleetcare.wiring import open_database
    from service.stock import Location, Stock

    db = open_database(settings())
    _run(
        "moved",
        lambda: Stock(db).transfer(
            sku, qty, Location.parse(source), Location.parse(destination), actor=actor, note=note
        ),
    )


@stock.command("receive")
def stock_receive(
    sku: str,
    qty: int,
    location: Annotated[str, typer.Argument(help="level:id, usually central:…")],
    actor: Actor = "cli",
    note: Note = None,
    order: Annotated[
        int | None, typer.Option(help="The purchase order it delivers (closed when full).")
    ] = None,
) -> None:
    """Stock arriving from a supplier or the factory."""
    from fleetcare.wiring import open_database
    from service.stock import Location, Stock

    db = open_database(settings())
    _run(
        "received",
        lambda: Stock(db).receive(
            sku, qty, Location.parse(location), actor=actor, note=note, order_id=order
        ),
    )


@stock.command("order")
def stock_order(
    sku: str,
    qty: int,
    location: Annotated[str, typer.Argument(help="Where it will arrive, e.g. central:cn.")],
    expected: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="When the supplier delivers it.")
    ],
    reference: Annotated[str | None, typer.Option(help="The PO number.")] = None,
    actor: Actor = "cli",
) -> None:
    """Record a purchase from a supplier: the plan counts it as arriving on its date
    until it is received (`fleetcare stock receive … --order ID`)."""
    from db.errors import DomainError
    from fleetcare.wiring import open_database
    from service.stock import Location, Stock

    db = open_database(settings())
    try:
        po = Stock(db).order(
            sku, qty, Location.parse(location), expected.date(), actor=actor, reference=reference
        )
    except DomainError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(
        f"purchase order #{po.id}: {po.qty} {po.sku} to {po.destination} on {po.expected_on}"
    )


@stock.command("count")
def stock_count(
    sku: str,
    counted: int,
    location: Annotated[str, typer.Argument(help="level:id")],
    actor: Actor = "cli",
    note: Note = None,
) -> None:
    """Record a physical count: the location holds COUNTED from now (the ledger keeps
    the difference)."""
    from fleetcare.wiring import open_database
    from service.stock import Location, Stock

    db = open_database(settings())
    _run(
        "counted, a difference of",
        lambda: Stock(db).count(sku, counted, Location.parse(location), actor=actor, note=note),
    )


@stock.command("import-sales-plan")
def stock_import_sales_plan(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="CSV (region_id,model,week,units) or a JSON list."
        ),
    ],
) -> None:
    """Set the sales plan's weeks the file gives (any day of a week stands for its
    Monday); other weeks stay. All or nothing: every bad row is named."""
    from pydantic import TypeAdapter, ValidationError

    from fleetcare.wiring import open_database, profiles_in_force
    from service.stock_plan import SalesPlan, SalesPlanRefused, SalesPlanRow, parse_sales_plan_csv

    s = settings()
    text = file.read_text(encoding="utf-8-sig")
    try:
        if file.suffix.lower() == ".json":
            try:
                rows = TypeAdapter(list[SalesPlanRow]).validate_python(json.loads(text))
            except ValidationError as exc:
                raise SalesPlanRefused(
                    [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
                ) from None
        else:
            rows = parse_sales_plan_csv(text)
        saved = SalesPlan(open_database(s), profiles_in_force(s)).save(rows)
    except SalesPlanRefused as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"saved {saved} week(s) of the sales plan")


@stock.command("plan")
def stock_plan(
    weeks: Annotated[int, typer.Option(min=1, max=52)] = 12,
    sku: Annotated[str | None, typer.Option(help="Only this part's moves.")] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write the forecast (location × SKU × week) as CSV.")
    ] = None,
) -> None:
    """The transfers and purchases that keep every level stocked through the coming
    weeks (the sales plan's peak included), each with when to ship and when it arrives;
    late ones first."""
    from fleetcare.wiring import open_database, profiles_in_force
    from service.stock_plan import StockPlanner

    s = settings()
    plan = StockPlanner(open_database(s), profiles_in_force(s)).plan(weeks=weeks)
    if output:
        output.write_text(plan.csv())
        err.print(f"wrote {output}")
    table = Table(title=f"{weeks} weeks from {plan.start}")
    for col in ("ship", "part", "qty", "from", "to", "arrives", ""):
        table.add_column(col)
    for m in plan.moves:
        if sku is None or m.sku == sku:
            table.add_row(
                m.release.isoformat(), m.sku, str(m.qty), m.source or "supplier",
                m.destination, m.arrival.isoformat(), "LATE" if m.late else "",
            )  # fmt: skip
    console.print(table)
    for where in plan.unsupplied:
        err.print(f"[yellow]{where} has demand and no source: give it a depot[/yellow]")
