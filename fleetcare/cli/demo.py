"""`fleetcare demo`: the engine on embedded defaults with a simulated fleet."""

from __future__ import annotations

from typing import Annotated

import typer

from fleetcare.cli.common import run_until_signal, settings

app = typer.Typer()


@app.command()
def demo(
    devices: Annotated[int, typer.Option(min=1, max=1000, help="Devices to simulate.")] = 30,
    speed: Annotated[
        float, typer.Option(min=1, help="Simulated seconds per wall second.")
    ] = 3600.0,
    duration: Annotated[float | None, typer.Option(help="Stop after N seconds.")] = None,
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
    """Run the engine on embedded defaults with a simulated fleet.

    Starts a broker of its own (Mosquitto on a free port if installed, else the
    in-process amqtt), the ingest worker and a simulated fleet of purifiers, water
    purifiers and air conditioners aging an hour a second; plus three malformed messages,
    to show dead letters. Serves the ops console and the API (it prints the URL and a
    demo login): review the jobs the rules and models raise, approve them into dispatch.
    Prints what flows; Ctrl-C stops cleanly.
    """
    from fleetcare.demo import run_demo

    s = settings()
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
