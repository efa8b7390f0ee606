"""`fleetcare registry …`: the service registry's import and a generated one for a
simulated fleet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fleetcare.cli.common import console, err, settings

app = typer.Typer()
registry = typer.Typer(
    help="The service registry: outlets, territories, customers, technicians, parts, "
    "stock, and where each device is.",
    no_args_is_help=True,
)
app.add_typer(registry, name="registry")


@registry.command("import")
def registry_import(
    files: Annotated[list[Path], typer.Argument(help=".json (all kinds) or .csv (one kind)")],
    kind: Annotated[
        str | None,
        typer.Option(help="For a CSV not named after its kind (customers.csv, technicians.csv…)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate only.")] = False,
) -> None:
    """Import registry rows, all or nothing: a bad row is named by file, line and field.

    JSON: {"outlets": [...], "territories": [...], "customers": [...], "technicians":
    [...], "parts": [...], "stock": [...], "devices": [...]}. CSV: one kind per file;
    lists are `;`-separated, skills `device_type:problem_kind`, working hours
    `mon=08:00-18:00;tue=08:00-18:00`. Rows that exist are updated. See
    docs/workorders.md for every field.
    """
    from fleetcare.wiring import open_database, profiles_in_force
    from service.registry import RegistryData, RegistryImportError, ServiceRegistry, read_file

    merged = RegistryData({})
    try:
        for f in files:
            if not f.exists():
                err.print(f"[red]{f}: no such file[/red]")
                raise typer.Exit(2)
            for k, rows in read_file(f, kind, profiles_in_force(settings())).rows.items():
                merged.rows.setdefault(k, []).extend(rows)
        if dry_run:
            console.print(f"valid: {merged.count()}")
            return
        for k in (
            "outlets",
            "territories",
            "customers",
            "technicians",
            "parts",
            "stock",
            "devices",
        ):
            merged.rows.setdefault(k, [])
        counts = ServiceRegistry(open_database(settings())).load(merged)
    except RegistryImportError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"imported {counts}")


@registry.command("generate")
def registry_generate(
    devices: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    seed: Annotated[int, typer.Option(help="The fleet's seed, as for `fleetcare sim`.")] = 1,
    output: Annotated[Path, typer.Option(help="Where to write the JSON.")] = Path("registry.json"),
    mix: Annotated[str | None, typer.Option(help="As for `fleetcare sim --mix`.")] = None,
    profile: Annotated[
        list[Path] | None, typer.Option(help="As for `fleetcare sim --profile`.")
    ] = None,
) -> None:
    """Write a registry consistent with `fleetcare sim --devices N --seed S` (and its --mix
    and --profile): the same device ids, with owners, territories, outlets, technicians
    (skilled for every family), parts and stock from the families' profiles."""
    from fleetcare.cli.sim import parse_mix
    from fleetcare.registry_gen import for_sim_fleet

    try:
        extra = tuple(f.read_text(encoding="utf-8") for f in profile or ())
        rows = for_sim_fleet(
            devices, seed, mix=parse_mix(mix) if mix else None, extra_profiles=extra
        )
    except (OSError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    output.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    console.print(
        f"wrote {output}: "
        + ", ".join(f"{len(v)} {k}" for k, v in rows.items())
        + f"; load it with `fleetcare registry import {output}`"
    )
