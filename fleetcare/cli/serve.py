"""`fleetcare serve`: the production process set under one supervisor."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from fleetcare.cli.common import console, err, run_until_signal, settings

app = typer.Typer()


@app.command()
def serve(
    ingest_workers: Annotated[
        int, typer.Option(min=0, help="Ingest workers on the shared subscription.")
    ] = 2,
    evaluators: Annotated[
        int, typer.Option(min=0, help="Rules evaluators, each a partition of the devices.")
    ] = 1,
    api_workers: Annotated[
        int | None, typer.Option(min=1, help="API processes (default: api.workers).")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            help="Run only these parts, comma-separated: ingest, rules, dispatch, commands, "
            "notify, api."
        ),
    ] = None,
    dispatch_every: Annotated[
        float, typer.Option(min=1, help="Seconds between the dispatcher's runs.")
    ] = 60.0,
    health_port: Annotated[
        int, typer.Option(min=0, help="The supervisor's /healthz and /readyz; 0 = off.")
    ] = 9470,
    grace: Annotated[
        float, typer.Option(min=1, help="Seconds the parts get to stop before SIGKILL.")
    ] = 30.0,
) -> None:
    """Run the production process set, supervised: ingest workers, rules evaluators (with
    the models' daily scoring), the dispatcher, the command and message senders, and the
    API with the ops console.

    Each part is its own process, started as its own command would start it (`fleetcare
    ingest`, `fleetcare evaluate-rules --partition k/n`, `fleetcare orders dispatch
    --every 60`, `fleetcare send-commands`, `fleetcare notify send`, `fleetcare api`), so
    any of them can also run alone. The database is migrated once first. A part that dies
    is restarted (1 s, then longer if it keeps dying). SIGTERM or Ctrl-C stops all
    gracefully. Example: `fleetcare serve --ingest-workers 2 --api-workers 2`; see
    docs/deploy.md.
    """
    from fleetcare.serve import PARTS, ServePlan, Supervisor, parts, serve_health
    from fleetcare.wiring import open_database

    s = settings()
    chosen = frozenset(PARTS)
    if only:
        chosen = frozenset(x.strip() for x in only.split(",") if x.strip())
        unknown = sorted(chosen - set(PARTS))
        if unknown or not chosen:
            err.print(f"[red]--only {only!r}[/]: choose from {', '.join(PARTS)}")
            raise typer.Exit(2)
    plan = ServePlan(
        ingest_workers=ingest_workers,
        evaluators=evaluators,
        api_workers=api_workers or s.api.workers,
        dispatch_every_s=dispatch_every,
        only=chosen,
    )
    try:
        open_database(s).dispose()  # migrate once, before the parts start
    except Exception as exc:  # the database is down or behind: say which and stop
        err.print(f"[red]database: {exc}[/red]")
        raise typer.Exit(1) from None
    supervisor = Supervisor(s, parts(s, plan), grace_s=grace)
    names = ", ".join(r.part.name for r in supervisor.running)
    console.print(f"serving: {names}" + (f"; health on :{health_port}" if health_port else ""))

    async def main(stop: asyncio.Event) -> None:
        server = await serve_health(supervisor, "0.0.0.0", health_port) if health_port else None
        try:
            await supervisor.run(stop)
        finally:
            if server is not None:
                server.close()
                await server.wait_closed()

    run_until_signal(main)
