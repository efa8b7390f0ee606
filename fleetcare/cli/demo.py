"""`fleetcare demo`: the engine on embedded defaults with a simulated fleet."""

from __future__ import annotations

from typing import Annotated

import typer

from fleetcare.cli.common import err, run_until_signal, settings

app = typer.Typer()


@app.command()
def demo(
    devices: Annotated[int, typer.Option(min=1, max=1000, help="Devices to simulate.")] = 30,
    speed: Annotated[
        float, typer.Option(min=1, help="Simulated seconds per wall second.")
    ] = 3600.0,
    duration: Annotated[
        float | None, typer.Option(help="End by itself after N seconds (default: at Ctrl-C).")
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            help="Use this broker (mqtt://host:port) instead of starting one; "
            "`amqtt` forces the in-process fallback broker."
        ),
    ] = None,
    api_port: Annotated[
        int | None,
        typer.Option(help="Port of the ops console and API (default: api.port, else a free one)."),
    ] = None,
    approve_in_console: Annotated[
        bool,
        typer.Option(
            help="The walk-through's job waits for you: approve it in the ops console, then "
            "watch it dispatched, completed and rated (default: the demo approves it)."
        ),
    ] = False,
) -> None:
    """Run the whole engine on embedded defaults with a simulated fleet: no servers needed.

    Starts a broker of its own (Mosquitto on a free port if installed, else the
    in-process amqtt), ingest, the rules, the models and the API with the ops console
    (it prints the URL and a demo login, which the sign-in page shows too). A fleet of
    purifiers, water purifiers and air conditioners publishes its first days at once,
    then ages an hour a second. The demo says up front what comes when: the first jobs
    the rules propose (one walked through the whole service loop), the models (trained
    once in the background, then kept), and a fault only the health model catches, whose
    job waits for review in the console. Three malformed messages show dead letters.

    Each run starts afresh in its data directory (the previous demo's telemetry and jobs
    are cleared; trained models are kept). Ctrl-C stops everything within seconds;
    `--duration 300` ends it by itself. Example: `fleetcare --data-dir demo-data demo`.
    """
    from fleetcare.demo import DemoRefused, run_demo

    s = settings()
    try:
        run_until_signal(
            lambda stop: run_demo(
                s,
                stop,
                devices=devices,
                speed=speed,
                duration=duration,
                broker_url=broker,
                api_port=api_port,
                approve_in_console=approve_in_console,
            )
        )
    except DemoRefused as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
