"""`fleetcare deadletters …`: messages ingest could not accept, and their replay."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from fleetcare.cli.common import console, err, settings
from fleetcare.settings import Settings

app = typer.Typer()
deadletters = typer.Typer(
    help="Messages ingest could not accept, each kept with its reason.", no_args_is_help=True
)
app.add_typer(deadletters, name="deadletters")


def _dead_letters(s: Settings) -> Any:
    from fleetcare.wiring import open_database
    from ingest.dead_letters import DeadLetterRepository

    return DeadLetterRepository(open_database(s))


@deadletters.command("list")
def dl_list(
    reason: Annotated[str | None, typer.Option(help="e.g. out_of_range, not_json.")] = None,
    device: Annotated[str | None, typer.Option(help="Device id.")] = None,
    status: Annotated[str, typer.Option(help="pending, replayed, discarded or all.")] = "pending",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List dead letters with their reasons (newest problems first to fix)."""
    s = settings()
    repo = _dead_letters(s)
    letters = repo.list(
        status=None if status == "all" else status, reason=reason, device_id=device, limit=limit
    )
    if as_json:
        for d in letters:
            sys.stdout.write(
                json.dumps(
                    {
                        "id": d.id,
                        "reason": d.reason,
                        "detail": d.detail,
                        "topic": d.topic,
                        "count": d.count,
                        "status": d.status,
                        "last_seen_at": d.last_seen_at.isoformat(),
                    }
                )
                + "\n"
            )
        return
    counts = repo.counts(None if status == "all" else status)
    table = Table(
        title=f"dead letters ({status}): "
        + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none")
    )
    for col in ("id", "reason", "topic", "count", "last seen", "detail"):
        table.add_column(col, overflow="fold")
    for d in letters:
        table.add_row(
            str(d.id),
            d.reason,
            d.topic,
            str(d.count),
            d.last_seen_at.strftime("%Y-%m-%d %H:%M:%S"),
            d.detail[:120],
        )
    console.print(table)


@deadletters.command("show")
def dl_show(letter_id: int) -> None:
    """Show one dead letter in full, with its raw payload."""
    from db.errors import NotFound

    repo = _dead_letters(settings())
    try:
        d = repo.get(letter_id)
    except NotFound as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    try:
        body = d.payload.decode("utf-8")
    except UnicodeDecodeError:
        body = "hex: " + d.payload.hex()
    console.print(
        f"id: {d.id}\nstatus: {d.status}\nreason: {d.reason}\ndetail: {d.detail}\n"
        f"topic: {d.topic}\ndevice: {d.device_type}/{d.device_id}\n"
        f"count: {d.count}\nfirst seen: {d.first_seen_at}\nlast seen: {d.last_seen_at}\n"
        f"size: {d.payload_size} bytes{' (truncated)' if d.truncated else ''}"
    )
    console.print("payload:", markup=False)
    sys.stdout.write(body + "\n")


@deadletters.command("replay")
def dl_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead-letter ids.")] = None,
    reason: Annotated[str | None, typer.Option(help="All pending with this reason.")] = None,
    all_pending: Annotated[bool, typer.Option("--all", help="All pending.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only say what would happen.")] = False,
) -> None:
    """Run dead letters through today's validation again (after fixing the cause).

    What passes is stored and marked replayed; what fails stays pending with its
    current reason.
    """
    if not ids and not reason and not all_pending:
        err.print("name dead-letter ids, --reason REASON or --all")
        raise typer.Exit(2)
    s = settings()
    asyncio.run(_replay(s, ids, reason, dry_run))


async def _replay(s: Settings, ids: list[int] | None, reason: str | None, dry_run: bool) -> None:
    from fleet.profiles import ProfileRepository
    from fleet.registry import DeviceRegistry
    from fleet.state import DeviceStateRepository
    from fleetcare.wiring import make_decoder, open_database
    from ingest.dead_letters import DeadLetterRepository
    from ingest.processor import RegistryCache
    from ingest.replay import replay
    from telemetry.backends import create_store

    db = open_database(s)
    repo = DeadLetterRepository(db)
    profiles = ProfileRepository(db).current()  # a new profile version may declare a metric
    store = create_store(s.store, s.data_dir, profiles.types)
    async with store:
        total_ok = total_bad = 0
        after = 0
        while True:
            batch = repo.list(status="pending", reason=reason, ids=ids, limit=1000, after_id=after)
            if not batch:
                break
            after = batch[-1].id
            registry = RegistryCache(DeviceRegistry(db), 0, required=s.ingest.require_registered)
            report = await replay(
                batch,
                decoder=make_decoder(s, profiles),
                store=store,
                dead_letters=repo,
                state=DeviceStateRepository(db),
                registry=registry,
                dry_run=dry_run,
            )
            total_ok += len(report.stored)
            total_bad += len(report.still_rejected)
            for letter_id, why, detail in report.still_rejected[:20]:
                console.print(f"  #{letter_id} still rejected: {why}: {detail}")
    verb = "would store" if dry_run else "stored"
    console.print(f"{verb} {total_ok}; still rejected {total_bad}")
