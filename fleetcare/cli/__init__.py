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
    anomaly,
    api,
    db,
    deadletters,
    demo,
    devices,
    ingest,
    models,
    network,
    notify,
    orders,
    packages,
    profiles,
    registry,
    reports,
    rules,
    serve,
    sim,
    stock,
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

# `fleetcare --help` lists the commands in these panels, in this order
PANELS = {
    "Try it": ("demo", "sim", "sim-credentials"),
    "Run the engine": ("serve", "ingest", "evaluate-rules", "api", "send-commands", "db"),
    "Rules and models": ("rules", "alerts", "train", "evaluate", "models", "anomaly"),
    "Service": (
        "orders",
        "packages",
        "network",
        "stock",
        "notify",
        "reports",
        "registry",
        "users",
    ),
    "Devices and telemetry": ("profiles", "devices", "deadletters", "telemetry", "schema"),
}
PANEL_OF = {name: panel for panel, names in PANELS.items() for name in names}
GROUPS = (
    demo,
    sim,
    serve,
    ingest,
    rules,
    models,
    anomaly,
    api,
    orders,
    packages,
    network,
    stock,
    notify,
    reports,
    registry,
    profiles,
    devices,
    deadletters,
    telemetry,
    db,
)
for group in GROUPS:
    for command in group.app.registered_commands:
        name = command.name or getattr(command.callback, "__name__", "").replace("_", "-")
        command.rich_help_panel = PANEL_OF.get(name, "More")
    for sub in group.app.registered_groups:
        sub.rich_help_panel = PANEL_OF.get(sub.name or "", "More")
    app.add_typer(group.app)


def _plugins() -> None:
    """Command groups other packages add (`[project.entry-points."fleetcare.commands"]`)."""
    for entry in entry_points(group="fleetcare.commands"):
        try:
            app.add_typer(entry.load(), name=entry.name, rich_help_panel="More")
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
