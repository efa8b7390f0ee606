"""`fleetcare reports …`: the households' monthly air reports."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from fleetcare.cli.common import console, err, settings

app = typer.Typer()
reports = typer.Typer(
    help="The households' monthly air reports (docs/air-report.md).", no_args_is_help=True
)
app.add_typer(reports, name="reports")


@reports.command("air")
def reports_air(
    device_id: Annotated[str, typer.Argument(help="A purifier or air conditioner.")],
    month: Annotated[
        str | None,
        typer.Option(help="YYYY-MM (default: the last month over in the customer's time zone)."),
    ] = None,
    language: Annotated[
        str | None, typer.Option(help="en or zh (default: the customer's).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The whole report as the app's API serves it.")
    ] = False,
) -> None:
    """One home's air report: hours and days outside the guideline, the neighbourhood,
    the filter's effect and the advice.

    e.g. fleetcare reports air ap-000123 --month 2026-11"""
    from db.errors import DomainError
    from fleetcare.wiring import open_database, profiles_in_force
    from service.air_report import AirReports, parse_month
    from telemetry.backends import create_store

    s = settings()
    profiles = profiles_in_force(s)

    async def go() -> Any:
        async with create_store(s.store, s.data_dir, profiles.types) as store:
            return await AirReports(open_database(s), store, profiles).report(
                device_id, parse_month(month) if month else None, language=language
            )

    try:
        r = asyncio.run(go())
    except DomainError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if as_json:
        console.print_json(json.dumps(dataclasses.asdict(r), default=str, ensure_ascii=False))
        return
    console.print(f"[bold]{r.device_id}[/bold] ({r.device_type}), {r.month}, {r.timezone}")
    table = Table()
    for col in ("metric", "mean", "hours out", "days out", "neighbourhood", "filter"):
        table.add_column(col)
    for m in r.metrics:
        hood = m.neighbourhood
        f = m.filter_effect
        table.add_row(
            f"{m.label} ({m.unit})",
            "-" if m.mean is None else f"{m.mean:.1f}",
            f"{m.hours_out} of {m.hours}",
            str(m.days_out),
            f"better than {100 * hood.better_than:.0f} % of {hood.homes} homes"
            if hood
            else m.neighbourhood_note,
            f"{100 * f.change:+.0f} % after {f.replaced_at:%Y-%m-%d}" if f else "-",
        )
    console.print(table)
    for a in r.advice:
        console.print(f"• {a.text}")


@reports.command("send-air")
def reports_send_air() -> None:
    """Queue "your air report is ready" for last month for every home that wants it
    (the customer's `air_reports` preference) and reported enough; the notifier sends
    them within quiet hours and the weekly cap. Once per device and month however often
    it runs; `fleetcare evaluate-rules` runs it once a day by itself."""
    from fleetcare.wiring import open_database, profiles_in_force
    from service.air_report import AirReports
    from telemetry.backends import create_store

    s = settings()
    profiles = profiles_in_force(s)

    async def go() -> int:
        async with create_store(s.store, s.data_dir, profiles.types) as store:
            return await AirReports(open_database(s), store, profiles).issue()

    console.print(f"queued {asyncio.run(go())} air report message(s)")
