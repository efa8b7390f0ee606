"""`fleetcare devices …` and `fleetcare send-commands`: the device registry, each
device's MQTT credentials, and commands to devices."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fleetcare.cli.common import console, err, run_until_signal, settings
from fleetcare.settings import Settings

app = typer.Typer()
devices = typer.Typer(help="The device registry.", no_args_is_help=True)
app.add_typer(devices, name="devices")


@devices.command("add")
def devices_add(
    device_id: str,
    device_type: Annotated[
        str, typer.Option("--type", help="Its family: `fleetcare profiles list` shows them.")
    ],
    model: Annotated[str | None, typer.Option()] = None,
    serial: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Register a device (needed when FLEETCARE_INGEST__REQUIRE_REGISTERED=true)."""
    from fleet.errors import RegistryError
    from fleet.registry import Device, DeviceRegistry
    from fleetcare.wiring import open_database

    reg = DeviceRegistry(open_database(settings()))
    try:
        reg.register([Device(device_id, device_type, model, serial)])
    except RegistryError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"registered {device_id} ({device_type})")


def _broker_auth(s: Settings) -> str:
    """Write Mosquitto's password and ACL files from the database and reload it; what was
    done, in words."""
    import os
    import signal as _signal

    from fleet.credentials import DeviceCredentials, EngineAccount, acl_file
    from fleetcare.wiring import open_database

    b = s.broker
    if not (b.password_file and b.acl_file):
        return (
            "broker files not written: set broker.password_file and broker.acl_file "
            "(FLEETCARE_BROKER__PASSWORD_FILE, FLEETCARE_BROKER__ACL_FILE)"
        )
    engine = (
        EngineAccount(s.mqtt.username, s.mqtt.password.get_secret_value())
        if s.mqtt.username and s.mqtt.password
        else None
    )
    for path, text in (
        (b.password_file, DeviceCredentials(open_database(s)).password_file(engine)),
        (b.acl_file, acl_file(s.mqtt.topic_prefix, engine.username if engine else None)),
    ):
        owner = _owner_for(Path(path), b.pid_file)
        tmp = Path(f"{path}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o600 if path == b.password_file else 0o644)
        if owner is not None:
            os.chown(tmp, *owner)
        tmp.replace(path)  # whole or not at all: the broker never reads half a file
    done = f"wrote {b.password_file} and {b.acl_file}"
    if b.pid_file:
        try:
            os.kill(int(Path(b.pid_file).read_text().strip()), _signal.SIGHUP)
        except (OSError, ValueError) as exc:
            return f"{done}; could not reload Mosquitto from {b.pid_file}: {exc}"
        return f"{done}; Mosquitto reloaded"
    return f"{done}; reload Mosquitto (SIGHUP) to apply them"


def _owner_for(path: Path, pid_file: str | None) -> tuple[int, int] | None:
    """Who must own the rewritten file, when we run as root: whoever owned it before,
    else the broker's own user. A file left root's (0600) is one a broker that dropped
    its privileges cannot read at its next reload, and then it refuses every client."""
    import os

    if os.geteuid() != 0:
        return None  # the file is ours, as it was
    if path.exists():
        before = path.stat()
        return before.st_uid, before.st_gid
    if not pid_file:
        return None
    try:
        broker = Path(f"/proc/{int(Path(pid_file).read_text().strip())}").stat()
    except (OSError, ValueError):  # no pid file, no such process
        return None
    return broker.st_uid, broker.st_gid


@devices.command("provision")
def devices_provision(
    device_ids: Annotated[list[str], typer.Argument(help="Registered device ids.")],
) -> None:
    """Give devices their own MQTT credentials: user name = device id, a random password
    shown this once (stored only as the broker's hash). Then writes Mosquitto's password
    and ACL files and reloads it: a device may publish only under its own topics and
    read only its own commands. Example: `fleetcare devices provision ap-0001`."""
    from db.errors import NotFound
    from fleet.credentials import CredentialError, DeviceCredentials
    from fleetcare.wiring import open_database

    s = settings()
    creds = DeviceCredentials(open_database(s))
    for device_id in device_ids:
        try:
            issued = creds.provision(device_id)
        except (CredentialError, NotFound) as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
        print(f"{issued.device_id} {issued.password}")
    console.print(_broker_auth(s))


@devices.command("import")
def devices_import(
    file: Annotated[
        Path,
        typer.Argument(help="`device_id:password` lines, e.g. from `fleetcare sim-credentials`."),
    ],
    skip_live: Annotated[
        bool, typer.Option(help="Skip devices that already have live credentials (re-runs).")
    ] = False,
) -> None:
    """Provision registered devices with passwords they already have (set in the factory,
    or derived by the simulator): only the hashes are kept. Then writes the broker's files
    and reloads it. A device that already has live credentials is an error, unless
    --skip-live."""
    from db.errors import NotFound
    from fleet.credentials import CredentialError, DeviceCredentials
    from fleetcare.wiring import open_database

    s = settings()
    creds = DeviceCredentials(open_database(s))
    try:
        lines = file.read_text().splitlines()
    except OSError as exc:
        err.print(f"[red]cannot read {file}: {exc.strerror}[/red]")
        raise typer.Exit(2) from None
    done = 0
    live = {device_id for device_id, _ in creds.live()} if skip_live else set()
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        device_id, sep, password = line.strip().partition(":")
        if device_id in live:
            continue
        try:
            if not sep:
                raise CredentialError("expected device_id:password")
            creds.provision(device_id, password)
        except (CredentialError, NotFound) as exc:
            err.print(f"[red]{file}:{n}: {exc}[/red] ({done} imported before it)")
            raise typer.Exit(1) from None
        done += 1
    console.print(f"imported {done} devices' credentials; " + _broker_auth(s))


@devices.command("sync-broker")
def devices_sync_broker() -> None:
    """Write Mosquitto's password and ACL files from the database and reload it, changing
    no credentials: for a new broker (its first files, with the engine's own account from
    mqtt.username / mqtt.password) or one whose files were lost. Idempotent."""
    console.print(_broker_auth(settings()))


@devices.command("rotate")
def devices_rotate(device_id: str) -> None:
    """A new password for a device (shown once); the old one stops at the broker's reload."""
    issued = _credentials_change(lambda creds: creds.rotate(device_id))
    print(f"{issued.device_id} {issued.password}")
    console.print(_broker_auth(settings()))


@devices.command("revoke")
def devices_revoke(device_id: str) -> None:
    """Take a device's credentials away: it cannot connect once the broker reloads."""
    _credentials_change(lambda creds: creds.revoke(device_id))
    console.print(f"{device_id} revoked; " + _broker_auth(settings()))


def _credentials_change(act: Any) -> Any:
    from fleet.credentials import CredentialError, DeviceCredentials
    from fleetcare.wiring import open_database

    try:
        return act(DeviceCredentials(open_database(settings())))
    except CredentialError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@devices.command("resend")
def devices_resend(
    since: Annotated[
        str,
        typer.Option(
            help="How far back: a duration before now (45s, 10m, 2h) or an ISO-8601 time "
            "(2026-11-25T09:30:00Z; without a zone it is UTC)."
        ),
    ] = "10m",
) -> None:
    """Ask every device to publish again what it sent since a moment (`resend` on the
    fleet-wide cmd topic, with the engine's MQTT account). Ingest asks for this by itself
    after it reconnects; use this for a loss no worker saw, such as the queue of a worker
    removed for good (docs/deploy.md). Repeats are stored once. A device keeps what it
    sent for a while only (the simulator: its last 200,000 messages)."""
    import time
    from datetime import UTC, datetime

    from rules.spec import parse_duration

    try:
        since_s = time.time() - parse_duration(since).total_seconds()
    except ValueError:
        try:
            at = datetime.fromisoformat(since)
        except ValueError:
            err.print(
                f"[red]--since {since!r}:[/red] give a duration (45s, 10m, 2h) "
                "or an ISO-8601 time (2026-11-25T09:30:00Z)"
            )
            raise typer.Exit(2) from None
        since_s = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    import aiomqtt

    from fleetcare.resend import ask_fleet_resend

    s = settings()
    try:
        topic = asyncio.run(ask_fleet_resend(s.mqtt, since_s))
    except ValueError as exc:
        err.print(f"[red]--since {since!r}:[/red] {exc}")
        raise typer.Exit(2) from None
    except aiomqtt.MqttError as exc:  # refused (credentials, ACL) or away
        err.print(f"[red]could not reach the broker at {s.mqtt.url}:[/red] {exc}")
        raise typer.Exit(1) from None
    at_text = datetime.fromtimestamp(since_s, UTC).isoformat(timespec="seconds")
    console.print(f"asked the fleet to resend what it sent since {at_text} (on {topic})")


@devices.command("list")
def devices_list(limit: Annotated[int, typer.Option(min=1)] = 100) -> None:
    """Registered devices with their state (online, last seen, firmware)."""
    from fleet.state import DeviceStateRepository
    from fleetcare.wiring import open_database

    db = open_database(settings())
    table = Table()
    for col in ("device", "type", "online", "via", "last seen (device time)", "firmware", "msgs"):
        table.add_column(col)
    from datetime import UTC, datetime

    for st in DeviceStateRepository(db).list(limit=limit):
        seen = (
            datetime.fromtimestamp(st.last_seen_ts / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
            if st.last_seen_ts
            else "-"
        )
        table.add_row(
            st.device_id,
            st.device_type,
            "yes" if st.online else "no",
            st.online_source,
            seen,
            st.firmware or "-",
            str(st.messages_total),
        )
    console.print(table)


@app.command("send-commands")
def send_commands(
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between outbox scans.")] = 1.0,
) -> None:
    """Send the device-command outbox (e.g. `filter_replaced` after a completed job) to
    each device's `cmd` topic, QoS 1, marking each sent once the broker acknowledged it.
    Runs until Ctrl-C."""
    from fleet.commands import CommandOutbox
    from fleetcare.commands import run_command_publisher
    from fleetcare.wiring import open_database

    s = settings()
    outbox = CommandOutbox(open_database(s))
    console.print(f"sending device commands to {s.mqtt.url}; Ctrl-C to stop")
    run_until_signal(lambda stop: run_command_publisher(outbox, s.mqtt, stop, interval_s=interval))
