"""`fleetcare packages …`: filter-package plans, sales and renewals, renewal reminders,
and the shipping of do-it-yourself filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from db.errors import DomainError
from fleetcare.cli.common import console, database, err

app = typer.Typer()
packages = typer.Typer(
    help=(
        "Filter packages: the plans on sale (loaded with `fleetcare registry import`, kind "
        "package_plans), selling and renewing them for a device, renewal reminders, and "
        "shipping diy filters."
    ),
    no_args_is_help=True,
)
app.add_typer(packages, name="packages")


def _money(cents: int) -> str:
    return f"¥{cents / 100:,.2f}"


@packages.command("plans")
def plans(
    device: Annotated[str | None, typer.Option(help="Only the plans this device can have.")] = None,
    retired: Annotated[bool, typer.Option(help="Also plans no longer sold.")] = False,
) -> None:
    """The plans on sale: what each covers, how many replacements over how long, price."""
    from service.packages import Packages

    table = Table()
    for col in ("plan", "name", "for", "covers", "replacements", "months", "price", "diy"):
        table.add_column(col)
    try:
        found = Packages(database()).plans(device, retired=retired)
    except DomainError as e:
        err.print(str(e))
        raise typer.Exit(1) from None
    for p in found:
        table.add_row(
            p.id + ("" if p.active else " (retired)"), p.name, p.applies_to,
            ", ".join(p.covers) or "every filter",
            "as due" if p.replacements is None else str(p.replacements), str(p.months),
            _money(p.price_cents), "yes" if p.diy else "no",
        )  # fmt: skip
    console.print(table)


@packages.command("list")
def list_packages(
    device: Annotated[str | None, typer.Option(help="One device's packages.")] = None,
    customer: Annotated[str | None, typer.Option(help="One customer's packages.")] = None,
    ending_within: Annotated[
        int | None, typer.Option(min=0, help="Only those ending within this many days.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
) -> None:
    """Packages sold, newest first, with what is used and left."""
    from service.packages import Packages

    today = datetime.now(UTC).date()
    before = today + timedelta(days=ending_within) if ending_within is not None else None
    found = Packages(database()).find(
        device_ids=[device] if device else None, customer_id=customer, ending_before=before,
        limit=limit,
    )  # fmt: skip
    table = Table()
    for col in ("#", "sale", "device", "customer", "plan", "status", "from", "to", "left", "how"):
        table.add_column(col)
    for p in found:
        table.add_row(
            str(p.id), p.sale_id, p.device_id, p.customer_id, p.plan_id, p.status(today),
            str(p.starts_on), str(p.ends_on),
            "as due" if p.remaining is None else str(p.remaining), p.fulfilment.value,
        )  # fmt: skip
    console.print(table)


def _hours(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    start, sep, end = value.partition("-")
    if not sep:
        err.print(f"--hours {value!r}: give a local window as HH:MM-HH:MM, e.g. 09:00-12:00")
        raise typer.Exit(2)
    return start.strip(), end.strip()


@packages.command("sell")
def sell(
    device: Annotated[str, typer.Argument(help="The device it is for.")],
    plan: Annotated[str, typer.Argument(help="The plan (see `fleetcare packages plans`).")],
    sale_id: Annotated[
        str, typer.Option(help="Your own id for the sale: running it again is the same sale.")
    ],
    diy: Annotated[bool, typer.Option(help="Ship the filters; the customer fits them.")] = False,
    days: Annotated[str | None, typer.Option(help="Preferred visit days, e.g. sat,sun.")] = None,
    hours: Annotated[
        str | None, typer.Option(help="Preferred local visit hours, e.g. 09:00-12:00.")
    ] = None,
    by: Annotated[str, typer.Option(help="Who sold it (the audit).")] = "cli",
) -> None:
    """Sell a plan for a device. A device still covered gets it from the day its cover
    ends."""
    from service.packages import Fulfilment, Packages, Preferred

    start, end = _hours(hours)
    preferred = Preferred(
        tuple(d.strip() for d in (days or "").split(",") if d.strip()), start, end
    )
    try:
        p, created = Packages(database()).sell(
            device, plan, sale_id=sale_id, sold_by=by, channel="agent",
            fulfilment=Fulfilment.DIY if diy else Fulfilment.VISIT, preferred=preferred,
        )  # fmt: skip
    except DomainError as e:
        err.print(str(e))
        raise typer.Exit(1) from None
    what = "sold" if created else "already sold"
    console.print(
        f"package #{p.id} {what}: {p.plan_id} for {p.device_id}, {p.starts_on} → {p.ends_on}"
    )


@packages.command("renew")
def renew(
    package_id: Annotated[int, typer.Argument(help="The package to renew.")],
    sale_id: Annotated[str, typer.Option(help="Your own id for the renewal sale.")],
    plan: Annotated[str | None, typer.Option(help="Another plan; default the same.")] = None,
    by: Annotated[str, typer.Option(help="Who sold it (the audit).")] = "cli",
) -> None:
    """Renew a package: the next one starts the day it ends."""
    from service.packages import Packages

    try:
        p, created = Packages(database()).renew(
            package_id, sale_id=sale_id, sold_by=by, channel="agent", plan_id=plan
        )
    except DomainError as e:
        err.print(str(e))
        raise typer.Exit(1) from None
    what = "renewed" if created else "already renewed"
    console.print(f"{what}: package #{p.id}, {p.starts_on} → {p.ends_on}")


@packages.command("remind")
def remind() -> None:
    """Queue renewal reminders: once per package ending within a month or used up, and
    not renewed (sent within the customer's caps by `fleetcare notify`)."""
    from service.packages import Packages

    reminded = Packages(database()).remind_renewals()
    console.print(f"reminded {len(reminded)} package(s)")


@packages.command("ship")
def ship(
    order_id: Annotated[int, typer.Argument(help="The diy replacement's work order.")],
    carrier: Annotated[str, typer.Option(help="Who carries it.")],
    tracking: Annotated[str, typer.Option(help="The carrier's tracking number.")],
    by: Annotated[str, typer.Option(help="Who shipped it (the audit).")] = "cli",
) -> None:
    """Ship a diy replacement's filter from the outlet's stock; the customer is told,
    and the device's report of the new filter completes the job."""
    from service.diy import Diy

    try:
        o = Diy(database()).ship(order_id, carrier=carrier, tracking=tracking, by=by)
    except DomainError as e:
        err.print(str(e))
        raise typer.Exit(1) from None
    console.print(f"#{o.id} {o.state.value}: shipped with {carrier} {tracking}")
