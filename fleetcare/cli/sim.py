"""`fleetcare sim` and `fleetcare sim-credentials`: a simulated fleet over MQTT."""

from __future__ import annotations

import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from device_sim.imperfection import Imperfection
from fleetcare.cli.common import console, err, settings

app = typer.Typer()
_IMP = Imperfection()  # the defaults the options show
_PANEL = "Imperfection (on by default; docs/simulator.md)"


class SimMode(StrEnum):
    accelerated = "accelerated"
    realtime = "realtime"
    backfill = "backfill"


@app.command()
def sim(
    devices: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    mode: Annotated[
        SimMode,
        typer.Option(
            help="accelerated: --speed times the wall clock, never ahead of now; realtime: "
            "x1; backfill: the history up to now as fast as the engine takes it, then stop."
        ),
    ] = SimMode.accelerated,
    speed: Annotated[
        float,
        typer.Option(min=1, help="Simulated seconds per wall second (3600: an hour a second)."),
    ] = 3600.0,
    report_interval: Annotated[
        float, typer.Option(min=1, help="Simulated seconds between a device's reports.")
    ] = 900.0,
    start_days_ago: Annotated[
        float, typer.Option(min=0, help="Simulated time starts this long ago.")
    ] = 180.0,
    seed: Annotated[int, typer.Option(help="Same seed, same fleet.")] = 1,
    duration: Annotated[float | None, typer.Option(help="Stop after N wall seconds.")] = None,
    broker: Annotated[
        str | None,
        typer.Option(help="mqtt://host:port; default: the running demo's broker, else settings."),
    ] = None,
    truth: Annotated[Path, typer.Option(help="Where to write the ground truth.")] = Path(
        "ground-truth.jsonl"
    ),
    processes: Annotated[
        int,
        typer.Option(
            min=1, max=64, help="Publisher processes, each owning a share of the devices."
        ),
    ] = 1,
    per_device: Annotated[
        bool,
        typer.Option(
            "--per-device",
            help="One MQTT connection per device (user = device id, password from "
            "--device-secret, a real Last Will); default: a few multiplexed connections.",
        ),
    ] = False,
    device_secret: Annotated[
        str,
        typer.Option(
            envvar="FLEETCARE_SIM_DEVICE_SECRET",
            help="Secret the per-device passwords derive from (see `fleetcare sim-credentials`).",
        ),
    ] = "fleetcare-sim",
    max_backlog: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Pause while the broker holds more than this for subscribers "
            "($SYS/broker/store/messages/count); backfill default 100000.",
        ),
    ] = None,
    duplicates: Annotated[
        float, typer.Option(min=0, max=1, help="Chaos: share of messages sent twice.")
    ] = 0.0,
    out_of_order: Annotated[
        float, typer.Option(min=0, max=1, help="Chaos: share sent after a later message.")
    ] = 0.0,
    malformed: Annotated[
        float, typer.Option(min=0, max=1, help="Chaos: share sent broken (dead letters).")
    ] = 0.0,
    outages_per_day: Annotated[
        float, typer.Option(min=0, help="Connection losses per device per simulated day.")
    ] = 0.0,
    outage_hours: Annotated[float, typer.Option(min=0.01, help="Mean outage length.")] = 4.0,
    buffer: Annotated[int, typer.Option(min=1, help="Readings a device keeps offline.")] = 500,
    faults_per_year: Annotated[
        float, typer.Option(min=0, help="Faults per device per year (ground truth records them).")
    ] = 0.0,
    clock_skew: Annotated[
        float, typer.Option(min=0, max=120, help="Std. dev. of device clock offsets, s.")
    ] = 0.0,
    mix: Annotated[
        str | None,
        typer.Option(
            help="Families and their shares, e.g. purifier=2,dehumidifier=1 (default: "
            "purifiers, water purifiers and air conditioners 4:3:3)."
        ),
    ] = None,
    profile: Annotated[
        list[Path] | None,
        typer.Option(
            help="A product profile file of a family to simulate (repeat for several); "
            "name it in --mix."
        ),
    ] = None,
    clean: Annotated[
        bool,
        typer.Option(
            "--clean",
            help="No imperfection at all (debugging only): every unit on its datasheet, "
            "every sensor true, every reading sent, every unit installed at the start.",
            rich_help_panel=_PANEL,
        ),
    ] = False,
    unit_variation: Annotated[
        float,
        typer.Option(
            min=0,
            max=0.3,
            help="σ of each unit's physical constants around its datasheet (share).",
            rich_help_panel=_PANEL,
        ),
    ] = _IMP.unit_variation,
    sensor_errors: Annotated[
        bool,
        typer.Option(
            help="Each sensor's gain, offset, noise, resolution and drift, from its "
            "profile's `sensor` figures.",
            rich_help_panel=_PANEL,
        ),
    ] = _IMP.sensors,
    gaps_per_year: Annotated[
        float,
        typer.Option(
            min=0,
            help="Telemetry gaps per device-year (Wi-Fi down, unplugged).",
            rich_help_panel=_PANEL,
        ),
    ] = _IMP.gaps_per_year,
    gap_median_hours: Annotated[
        float,
        typer.Option(
            min=0.01,
            help="Median gap length (log-normal; about 1 in 30 gaps lasts over two days).",
            rich_help_panel=_PANEL,
        ),
    ] = _IMP.gap_median_h,
    loss: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Share of single readings lost.",
            rich_help_panel=_PANEL,
        ),
    ] = _IMP.loss,
    unsynced: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Share of clocks never synced (up to 5 minutes off; the rest within ~1 s).",
            rich_help_panel=_PANEL,
        ),
    ] = _IMP.unsynced,
    home_changes_per_year: Annotated[
        float,
        typer.Option(
            min=0,
            help="Homes that change per device-year: a move, a new smoker, a renovation.",
            rich_help_panel=_PANEL,
        ),
    ] = _IMP.home_changes_per_year,
    late_installs: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help="Share of units installed during the run (silent until then).",
            rich_help_panel=_PANEL,
        ),
    ] = _IMP.late_installs,
) -> None:
    """Simulate a fleet of air purifiers, water purifiers, air conditioners, and any family
    a product profile describes.

    The shipped three wear and fail with real physics; any other family (the shipped
    dehumidifier, or one of yours with --profile) runs from its profile alone: usage with
    a daily and weekly rhythm, its consumables worn by their drivers, its fault codes,
    sensor noise and generic faults. Ground truth (capacities, exhaustion times, fault
    onsets) goes to --truth, never over MQTT. With `fleetcare demo` running, no --broker
    is needed.

    Examples:

      fleetcare sim --devices 1000 --speed 3600          # a fleet ages an hour a second

      fleetcare sim --mode backfill --start-days-ago 90  # three months of history, then stop

      fleetcare sim --devices 100000 --processes 2 --speed 86400

      fleetcare sim --profile kettle.yaml --mix kettle=1 --devices 50   # a new family

    The fleet is as imperfect as a real one unless told otherwise: units off their
    datasheet, sensor errors, telemetry gaps and lost readings, clocks off, homes that
    change, units installed during the run (each in the ground truth; the options below,
    docs/simulator.md for the figures). --clean turns all of it off, for debugging only.
    """
    import dataclasses
    import threading
    import time as _time

    from device_sim.fleet import Fleet, FleetSpec
    from device_sim.link import LinkRefused
    from device_sim.parallel import ShardFailed
    from device_sim.runner import Chaos, Connectivity, RunOptions, RunStats, run
    from device_sim.transport import PerDeviceOptions

    s = settings()
    demo_url = Path(s.data_dir) / "broker.url"
    url = broker or (demo_url.read_text().strip() if demo_url.exists() else s.mqtt.url)
    mqtt = s.mqtt.model_copy(update={"url": url})
    start = _time.time() - start_days_ago * 86400
    try:
        extra = tuple(f.read_text(encoding="utf-8") for f in profile or ())
        spec = FleetSpec(
            devices=devices,
            seed=seed,
            start=start,
            faults_per_device_year=faults_per_year,
            fault_window_days=max(start_days_ago, 1.0),
            extra_profiles=extra,
            imperfection=Imperfection.clean()
            if clean
            else Imperfection(
                unit_variation=unit_variation,
                sensors=sensor_errors,
                gaps_per_year=gaps_per_year,
                gap_median_h=gap_median_hours,
                loss=loss,
                unsynced=unsynced,
                home_changes_per_year=home_changes_per_year,
                late_installs=late_installs,
            ),
        )
        if mix:
            spec = dataclasses.replace(spec, mix=parse_mix(mix))
        fleet = Fleet.create(spec)
    except (OSError, ValueError) as exc:  # a bad --mix or --profile: say what to fix
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    options = RunOptions(
        mode=mode.value,
        speed=speed,
        report_interval_s=report_interval,
        duration_s=duration,
        processes=processes,
        per_device=PerDeviceOptions(secret=device_secret) if per_device else None,
        max_backlog=max_backlog,
        chaos=Chaos(duplicate=duplicates, out_of_order=out_of_order, malformed=malformed),
        connectivity=Connectivity(
            outages_per_day=outages_per_day,
            outage_hours=outage_hours,
            buffer=buffer,
            clock_skew_s=clock_skew,
        ),
    )
    pace = "" if mode is not SimMode.accelerated else f" at ×{speed:g}"
    console.print(
        f"simulating {devices} devices ({mode.value}{pace}) into {url}"
        f"{f' from {processes} processes' if processes > 1 else ''}; Ctrl-C to stop"
    )
    console.print(f"imperfection: {spec.imperfection.summary()}")
    stop = threading.Event()
    stats = RunStats()
    outcome: dict[str, object] = {}

    def on_signal(*_: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def work() -> None:
        try:
            run(fleet, mqtt, options, stop, stats)
        except (OSError, LinkRefused, ShardFailed) as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="sim")
    worker.start()
    _sim_progress(worker, stats, start, mode is SimMode.backfill)
    worker.join()
    error = outcome.get("error")
    if isinstance(error, LinkRefused):
        err.print(
            f"[red]{error}[/red]. Per-device passwords derive from --device-secret; "
            "provision the broker with `fleetcare sim-credentials`."
        )
        raise typer.Exit(1)
    if error is not None:
        err.print(
            f"[red]cannot run the fleet against {url}: {error}[/red] (start `fleetcare demo` "
            "or pass --broker)"
        )
        raise typer.Exit(1)
    fleet.truth.save(truth)
    exhausted = sum(len(d.exhaustions) for d in fleet.truth.devices.values())
    faults = sum(len(d.faults) for d in fleet.truth.devices.values())
    console.print(
        f"sent {stats.sent}, acknowledged {stats.acknowledged}; simulated up to "
        f"{_time.strftime('%Y-%m-%d %H:%M', _time.gmtime(stats.sim_time))} UTC; "
        f"{exhausted} filter stages exhausted, {faults} faults; ground truth in {truth}"
    )


def parse_mix(text: str) -> dict[str, float]:
    """`purifier=2,dehumidifier=1` → shares by family."""
    out = {}
    for part in text.split(","):
        name, _, share = part.partition("=")
        try:
            out[name.strip()] = float(share) if share else 1.0
        except ValueError:
            raise ValueError(f"--mix {text!r}: give family=share, e.g. purifier=2") from None
    return out


def _sim_progress(worker: Any, stats: Any, start: float, backfill: bool) -> None:
    """A progress bar over simulated time while the fleet runs (to now, in a backfill)."""
    import time as _time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    total = max(_time.time() - start, 1.0)
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[sim]}  sent {task.fields[sent]:,}  {task.fields[rate]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(
            "backfill" if backfill else "simulated", total=total, sim="", sent=0, rate=""
        )
        last_sent, last_t = 0, _time.monotonic()
        while worker.is_alive():
            worker.join(timeout=1.0)
            now = _time.monotonic()
            rate = (stats.sent - last_sent) / max(now - last_t, 1e-6)
            last_sent, last_t = stats.sent, now
            sim_t = stats.sim_time or start
            bar.update(
                task,
                completed=min(sim_t - start, total),
                sim=_time.strftime("%Y-%m-%d %H:%M", _time.gmtime(sim_t)),
                sent=stats.sent,
                rate=f"{rate:,.0f} msg/s" + ("  waiting for the engine" if stats.waits else ""),
            )


@app.command("sim-credentials")
def sim_credentials(
    devices: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    seed: Annotated[int, typer.Option(help="The fleet's seed (device ids depend on it).")] = 1,
    device_secret: Annotated[
        str, typer.Option(envvar="FLEETCARE_SIM_DEVICE_SECRET", help="As for `fleetcare sim`.")
    ] = "fleetcare-sim",
    prefix: Annotated[str, typer.Option(help="Topic prefix.")] = "fleetcare",
    passwords: Annotated[
        Path, typer.Option(help="Write `device:password` lines here (for mosquitto_passwd -U).")
    ] = Path("sim-passwords.txt"),
    acl: Annotated[Path, typer.Option(help="Write a Mosquitto ACL file here.")] = Path(
        "sim-acl.conf"
    ),
) -> None:
    """Broker credentials for `fleetcare sim --per-device`: each device logs in as itself.

    Then: `mosquitto_passwd -U sim-passwords.txt` (hashes in place) and in mosquitto.conf
    `password_file sim-passwords.txt`, `acl_file sim-acl.conf`, `allow_anonymous false`.
    The ACL lets a device write only its own topics and read only its own commands.
    """
    import time as _time

    from device_sim.credentials import password_lines
    from device_sim.fleet import Fleet, FleetSpec

    fleet = Fleet.create(FleetSpec(devices=devices, seed=seed, start=_time.time()))
    passwords.write_text("\n".join(password_lines(device_secret, fleet.ids)) + "\n")
    passwords.chmod(0o600)
    from fleet.credentials import acl_file

    acl.write_text(acl_file(prefix, engine_user=None))
    console.print(f"{devices} devices' credentials in {passwords}; ACL in {acl}")
