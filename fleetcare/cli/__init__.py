"""The `fleetcare` command: one module per command group, mounted here.

Other packages add groups through the `fleetcare.commands` entry point (a Typer app per
name): this project's benchmarks come in that way, so the command never imports them.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Annotated, Any

import typer

from fleetcare.cli import (
    api,
    db,
    deadletters,
    demo,
    devices,
    ingest,
    models,
    notify,
    orders,
    registry,
    rules,
    serve,
    sim,
    telemetry,
)
from fleetcare.cli.common import RootOptions, err, root_options

log = logging.getLogger("fleetcare.cli")

app = typer.Typer(
    help=(
        "FleetCare: telemetry from connected appliances in, proactive service jobs out.\n\n"
        "Start with `fleetcare demo` (no servers needed). Configure with FLEETCARE_* "
        "environment variables (nested with __, e.g. FLEETCARE_STORE__BACKEND=influxdb) "
        "or a TOML file given with --config. See docs/configuration.md."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

# in the order `fleetcare --help` lists them: try it, run it, then each part of the engine
GROUPS = (
    demo,
    sim,
    serve,
    ingest,
    rules,
    models,
    api,
    orders,
    notify,
    registry,
    devices,
    deadletters,
    telemetry,
    db,
)
for group in GROUPS:
    app.add_typer(group.app)


def _plugins() -> None:
    """Command groups other packages add (`[project.entry-points."fleetcare.commands"]`)."""
    for entry in entry_points(group="fleetcare.commands"):
        try:
            app.add_typer(entry.load(), name=entry.name)
        except Exception as exc:  # a broken plugin must not take the whole command down
            err.print(f"[yellow]`fleetcare {entry.name}` is unavailable: {exc}[/yellow]")


_plugins()


@app.callback()
def _root(
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", envvar="FLEETCARE_CONFIG", help="TOML settings file."),
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option(help="Where embedded stores live (FLEETCARE_DATA_DIR).")
    ] = None,
    log_format: Annotated[str | None, typer.Option(help="console or json.")] = None,
) -> None:
    overrides: dict[str, Any] = {}
    if data_dir:
        overrides["data_dir"] = data_dir
    if log_format:
        overrides["log"] = {"format": log_format}
    root_options.set(RootOptions(config=config, overrides=overrides))


def main() -> None:
    app()


__all__ = ["app", "main"]
