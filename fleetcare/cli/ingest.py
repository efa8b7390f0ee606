"""`fleetcare ingest`: one ingest worker."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetcare.cli.common import err, run_until_signal, settings

app = typer.Typer()


@app.command()
def ingest(
    client_id: Annotated[
        str | None,
        typer.Option(help="Fixed MQTT client id; give each worker its own (persistent session)."),
    ] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Prometheus port; 0 = off.")] = None,
) -> None:
    """Run one ingest worker: MQTT (shared subscription) into the telemetry store.

    Messages are acknowledged only once their batch is durable; rejects become dead
    letters. Stop with Ctrl-C or SIGTERM: it flushes, acknowledges and exits 0. Run more
    workers (each with its own --client-id) to split the load.
    """
    from fleetcare.wiring import run_ingest

    ingest_over: dict[str, Any] = {}
    if client_id:
        ingest_over["client_id"] = client_id
    if metrics_port is not None:
        ingest_over["metrics_port"] = metrics_port
    s = settings()
    if ingest_over:
        s = s.model_copy(update={"ingest": s.ingest.model_copy(update=ingest_over)})
    from fleetcare.settings import SettingsError

    try:
        run_until_signal(lambda stop: run_ingest(s, stop))
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
