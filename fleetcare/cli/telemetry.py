"""`fleetcare schema` and `fleetcare telemetry …`: the device contract and the telemetry store."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from fleetcare.cli.common import console, err, settings

app = typer.Typer()
telemetry = typer.Typer(help="Read the telemetry store.", no_args_is_help=True)
app.add_typer(telemetry, name="telemetry")


@app.command()
def schema(
    device_type: Annotated[
        str | None,
        typer.Argument(help="Only this type (purifier, water_purifier, air_conditioner)."),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
) -> None:
    """Print the JSON Schema of the device contract (topics and v1 payloads)."""
    from telemetry.errors import UnknownDeviceType
    from telemetry.schema import contract_schema, device_type_schema

    try:
        doc = device_type_schema(device_type) if device_type else contract_schema()
    except UnknownDeviceType as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if output:
        output.write_text(text)
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


@telemetry.command("count")
def telemetry_count(
    device: Annotated[str | None, typer.Option(help="Device id.")] = None,
    device_type: Annotated[str | None, typer.Option("--type")] = None,
) -> None:
    """How many telemetry messages the store holds."""
    from telemetry.backends import create_store

    s = settings()

    async def run() -> int:
        async with create_store(s.store, s.data_dir) as store:
            return await store.count(device_id=device, device_type=device_type)

    console.print(asyncio.run(run()))


@telemetry.command("latest")
def telemetry_latest(device_ids: list[str]) -> None:
    """The newest value of each metric of the given devices."""
    from telemetry.backends import create_store

    s = settings()

    async def run() -> None:
        async with create_store(s.store, s.data_dir) as store:
            latest = await store.latest(device_ids)
        for d in device_ids:
            if d in latest:
                sys.stdout.write(
                    json.dumps(
                        {
                            "device_id": d,
                            "type": latest[d].device_type,
                            "ts": latest[d].ts,
                            **latest[d].metrics,
                        }
                    )
                    + "\n"
                )
            else:
                err.print(f"{d}: no telemetry stored")

    asyncio.run(run())
