"""`fleetcare train`, `fleetcare evaluate`, `fleetcare models …`: the filter-life and
health models' training, evaluation against the simulator, versions, and the daily
scoring pass."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fleetcare.cli.common import console, err, progress_bar, settings
from fleetcare.settings import Settings
from fleetcare.wiring import model_registry
from models.evaluation.defaults import EVAL_YEAR, FAULTS_PER_100_DEVICE_YEARS

if TYPE_CHECKING:
    from models.anomaly.naming import FaultNamer
    from models.evaluation.faults import FaultQuality
    from models.filter_life import FilterLife
    from models.health import HealthModel
    from models.registry import ModelVersion

# the models (scikit-learn, numpy, pandas) are imported by the commands that use them:
# every `fleetcare` process loads this module, and an ingest worker has no use for them

app = typer.Typer()


def load_health(s: Settings) -> tuple[HealthModel, ModelVersion] | None:
    """The active health version, or None when none is trained (scoring then writes no
    anomaly scores)."""
    from models.evaluation.training import HEALTH
    from models.health import full_schema as health_schema
    from models.registry import RegistryError

    try:
        model, meta = model_registry(s).load(HEALTH, features=health_schema())
    except RegistryError:
        return None
    return model, meta


def load_active(s: Settings) -> tuple[FilterLife, ModelVersion]:
    """The active filter-life version; without one, say how to get it and exit 1."""
    from models.evaluation.training import FILTER_LIFE
    from models.filter_life import schema
    from models.registry import RegistryError

    try:
        model, meta = model_registry(s).load(FILTER_LIFE, features=schema())
    except RegistryError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    return model, meta


models_app = typer.Typer(
    help="Trained models: versions on disk, the active one, the scoring pass (docs/models.md).",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")


@app.command("train")
def train(
    sim: Annotated[
        bool,
        typer.Option(
            "--sim/--no-sim",
            help="Train on a simulated fleet's history, labelled by its ground truth.",
        ),
    ] = True,
    devices: Annotated[int, typer.Option(min=10, help="Simulated devices.")] = 2000,
    days: Annotated[int, typer.Option(min=30, max=730, help="Simulated days.")] = 365,
    seed: Annotated[int, typer.Option(help="The training fleet's seed.")] = 11,
    health: Annotated[
        bool, typer.Option(help="Also train the health (fault and anomaly) model.")
    ] = True,
    health_devices: Annotated[
        int, typer.Option(min=50, help="Devices in the health model's faulty fleet.")
    ] = 1000,
    health_days: Annotated[int, typer.Option(min=30, max=730)] = 365,
    activate: Annotated[bool, typer.Option(help="Make the new versions active.")] = True,
) -> None:
    """Train the filter-life and health models and save each as a new version, on
    simulated fleets as imperfect as a real one (docs/simulator.md, "Imperfection").

    Filter life learns how worn each filter stage is from its wear features (captured
    dose, litres, run hours; motor current, flow, RO rejection) and how many days are
    left, with a band calibrated on held-out devices. The field's labels (filters that
    technicians replaced, with the state they found them in) join the training.

    Health learns, on a second simulated fleet with faults injected, each type's
    physical relations, the spreads of their deviations, the anomaly threshold and a
    fault classifier. Example: `fleetcare train --devices 2000 --days 365`.
    """
    if not sim:
        err.print(
            "[red]training from the store's history is not built yet[/]: use --sim "
            "(see docs/models.md, 'What is left')"
        )
        raise typer.Exit(2)
    from fleetcare.wiring import open_database
    from models.evaluation.training import (
        FILTER_LIFE,
        HEALTH,
        save_filter_life,
        save_health,
        train_filter_life,
        train_health,
    )
    from models.scoring import load_health_labels, load_labels

    s = settings()
    labels = load_labels(open_database(s))
    n_labels = sum(len(v.consumed) for v in labels.values())
    console.print(f"{n_labels} field labels (filters replaced, with the state they were found in)")
    with progress_bar(f"simulating {devices} devices (seed {seed})", days) as tick:
        model, metrics, run = train_filter_life(devices, days, seed, progress=tick, labels=labels)
    meta = save_filter_life(
        model_registry(s), model, metrics, devices=devices, days=days, seed=seed, activate=activate
    )
    console.print(
        f"saved {FILTER_LIFE} {meta.version}{' (active)' if activate else ''} "
        f"in {model_registry(s).root} — simulated in {run.seconds:.0f} s"
    )
    if health:
        verdicts = load_health_labels(open_database(s))
        console.print(
            f"{sum(len(v.kinds) for v in verdicts.values())} field labels for health "
            "(technicians' verdicts: the fault confirmed, or none found)"
        )
        label = f"simulating {health_devices} devices with faults (seed {seed + 1})"
        with progress_bar(label, health_days) as tick:
            h_model, h_metrics, h_run = train_health(
                health_devices, health_days, seed + 1, progress=tick, labels=verdicts
            )
        h_meta = save_health(
            model_registry(s), h_model, h_metrics, h_run, seed=seed + 1, activate=activate
        )
        console.print(
            f"saved {HEALTH} {h_meta.version}{' (active)' if activate else ''} "
            f"— simulated in {h_run.seconds:.0f} s"
        )


@app.command("evaluate")
def evaluate(
    sim: Annotated[
        bool, typer.Option("--sim/--no-sim", help="Evaluate on held-out simulated fleets.")
    ] = True,
    devices: Annotated[
        int, typer.Option(min=10, help="Devices in each case's filter-life fleet.")
    ] = 1000,
    days: Annotated[int, typer.Option(min=30, max=730, help="Days each case runs.")] = 365,
    fault_devices: Annotated[
        int, typer.Option(min=50, help="Devices in each case's faulty fleet (health model).")
    ] = 2000,
    fault_days: Annotated[int, typer.Option(min=30, max=730)] = 365,
    fault_rate: Annotated[
        float,
        typer.Option(min=0.1, max=100, help="Faults per 100 device-years in the faulty fleets."),
    ] = FAULTS_PER_100_DEVICE_YEARS,
    months: Annotated[
        str,
        typer.Option(
            help="Start months of the imperfect fleets, e.g. 1,4,7,10 (in --year; '' none)."
        ),
    ] = "1,4,7,10",
    clean_months: Annotated[
        str,
        typer.Option(
            help="Start months of clean fleets beside them (what imperfection costs; '' none)."
        ),
    ] = "1",
    year: Annotated[
        int, typer.Option(min=2000, max=2100, help="The cases' year (training is 2026's).")
    ] = EVAL_YEAR,
    seed: Annotated[int, typer.Option(help="The first case's seed (each case its own).")] = 22,
    train_seed: Annotated[int, typer.Option(help="Seed of the training fleets.")] = 11,
    train_devices: Annotated[
        int, typer.Option(min=10, help="Devices in the filter-life training fleet.")
    ] = 2000,
    train_health_devices: Annotated[
        int, typer.Option(min=50, help="Devices in the health training fleet.")
    ] = 1000,
    train_days: Annotated[int, typer.Option(min=30, max=730)] = 365,
    use_active: Annotated[
        bool,
        typer.Option(help="Judge the active versions instead of training fresh ones."),
    ] = False,
    jobs: Annotated[
        int, typer.Option(min=1, max=64, help="Cases simulated at once, one process each.")
    ] = 1,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Write the report here (e.g. docs/model-quality.md), with its "
            "time-to-detection chart beside it."
        ),
    ] = None,
    family_devices: Annotated[
        int,
        typer.Option(
            min=0, help="Devices of each family known only from its profile (0: skip them)."
        ),
    ] = 300,
    family_days: Annotated[int, typer.Option(min=30, max=730)] = 365,
    families_only: Annotated[
        bool, typer.Option(help="Only the families known from their profiles.")
    ] = False,
    general: Annotated[
        bool,
        typer.Option(
            help="Also judge the general streaming detector alone on the fault fleets "
            "(no physics, no labels: what a new product category gets).",
        ),
    ] = True,
    gate: Annotated[
        bool,
        typer.Option(
            "--gate",
            help="Run the suite's gate (a small imperfect July fleet) and compare it with "
            "the committed report, docs/model-gate.json.",
        ),
    ] = False,
    write: Annotated[
        bool,
        typer.Option("--write", help="With --gate: write the gate's report as the new baseline."),
    ] = False,
) -> None:
    """Measure the models against ground truth under the evaluation protocol
    (docs/model-quality.md): fleets that differ from the training fleet in seed, start
    month and year, each imperfect and clean, faults at a realistic rate.

    Trains as `fleetcare train` does (or takes the active versions), then per case
    simulates a filter-life fleet and a faulty fleet and reports: the date error 30, 14
    and 7 days before each exhaustion against rated life, the band's coverage, and the
    jobs a 14-day rule opens over every filter life (covered only with the visit before
    the filter is spent; premature over every job); for faults, precision, recall, the
    share named within 24 hours and 7 days, the median delay over every fault (misses
    never detected), and false alerts per 1,000 healthy device-days. Cases are
    independent: --jobs runs them side by side. Examples:

      fleetcare evaluate --jobs 2 --report docs/model-quality.md

      fleetcare evaluate --months 7 --clean-months '' --devices 300 --fault-devices 600

      fleetcare evaluate --gate           # the suite's gate, against docs/model-gate.json
    """
    if not sim:
        err.print("[red]only --sim is built[/]: the held-out fleets are simulated")
        raise typer.Exit(2)
    if gate:
        _gate(write)
        return
    from models.evaluation.protocol import cases

    try:
        the_cases = cases(
            months=[int(m) for m in months.split(",") if m.strip()],
            clean_months=[int(m) for m in clean_months.split(",") if m.strip()],
            year=year,
            seed=seed,
        )
    except ValueError as exc:
        err.print(f"[red]{exc}[/] (--months takes numbers 1 to 12, e.g. 1,4,7,10)")
        raise typer.Exit(2) from None
    families_md = _evaluate_families(family_devices, family_days, seed) if family_devices else ""
    if families_only:
        if report:
            command = (
                f"fleetcare evaluate --sim --families-only --family-devices {family_devices} "
                f"--family-days {family_days} --seed {seed} --report {report}"
            )
            report.write_text(f"<!-- {command} -->\n" + families_md)
            console.print(f"report written to {report}")
        return
    from models.evaluation.protocol import Sizes, run_cases
    from models.evaluation.report import Training, detection_chart, kept_sections, render
    from models.evaluation.training import START, train_filter_life, train_health

    s = settings()
    began = time.perf_counter()
    namers: dict[str, FaultNamer] = {}
    if use_active:
        model, meta = load_active(s)
        found = load_health(s)
        if found is None:
            err.print("[red]no active health version[/]: run `fleetcare train` first")
            raise typer.Exit(1)
        health_model = found[0]
        training = Training(
            f"the active version {meta.version}", f"the active version {found[1].version}", 0.0
        )
    else:
        label = f"training fleet: {train_devices} devices (seed {train_seed})"
        with progress_bar(label, train_days) as tick:
            model, _, _ = train_filter_life(train_devices, train_days, train_seed, progress=tick)
        label = f"health training fleet: {train_health_devices} devices (seed {train_seed + 1})"
        with progress_bar(label, train_days) as tick:
            health_model, _, health_run = train_health(
                train_health_devices, train_days, train_seed + 1, progress=tick
            )
        if general:
            from models.evaluation.protocol import train_general_namers

            with console.status("the general detector's fault namers: a fleet of new families"):
                namers = train_general_namers(
                    health_run, train_health_devices, train_days, train_seed + 2, START
                )
        training = Training(
            f"{train_devices:,} devices × {train_days} days from {START:%Y-%m-%d}, seed "
            f"{train_seed}, imperfect",
            f"{train_health_devices:,} devices × {train_days} days from {START:%Y-%m-%d}, seed "
            f"{train_seed + 1}, imperfect, half of them given a fault",
            time.perf_counter() - began,
        )
    sizes = Sizes(
        devices=devices,
        days=days,
        fault_devices=fault_devices,
        fault_days=fault_days,
        faults_per_100_device_years=fault_rate,
    )
    label = f"{len(the_cases)} cases ({jobs} at a time)"
    with progress_bar(label, len(the_cases)) as tick:
        results = run_cases(
            the_cases,
            sizes,
            model,
            health_model,
            jobs=jobs,
            progress=tick,
            general=general,
            namers=namers,
        )
    table = Table("case", "stage", "MAE 14 d (rated)", "covered", "premature", "late")
    for r in results:
        for q in r.stages:
            table.add_row(
                r.case.name,
                ".".join(q.key),
                f"{_f(q.mae[14])} ({_f(q.mae_rated[14])})",
                _pct(q.covered),
                _pct(q.premature),
                _pct(q.late),
            )
    console.print(table)
    console.print(_fault_table([(r.case.name, r.faults) for r in results]))
    if general:
        console.print("[bold]The general detector alone[/]")
        console.print(_fault_table([(r.case.name, r.general) for r in results if r.general]))
    if any(r.named for r in results):
        console.print("[bold]The general detector with its fault namer[/]")
        console.print(_fault_table([(r.case.name, r.named) for r in results if r.named]))
    if report:
        command = (
            f"fleetcare evaluate --devices {devices} --days {days} --fault-devices "
            f"{fault_devices} --fault-days {fault_days} --fault-rate {fault_rate:g} "
            f"--months '{months}' --clean-months '{clean_months}' --year {year}"
            + f" --seed {seed} --train-seed {train_seed} --train-devices {train_devices} "
            f"--train-health-devices {train_health_devices} --train-days {train_days}"
            f" --family-devices {family_devices} --family-days {family_days}"
            + (" --use-active" if use_active else "")
            + ("" if general else " --no-general")
            + f" --jobs {jobs} --report {report}"
        )
        # docs/model-quality.md draws docs/model-detection.svg; any other report, its own
        named = "model-detection" if report.stem == "model-quality" else f"{report.stem}-detection"
        chart = report.with_name(f"{named}.svg")
        chart.write_text(detection_chart(results))
        kept = kept_sections(report.read_text()) if report.exists() else ""
        report.write_text(
            render(results, sizes, command=command, training=training, chart=chart.name)
            + ("\n" + families_md if families_md else "")
            + kept
        )
        console.print(f"report written to {report}, its chart to {chart}")


def _fault_table(rows: list[tuple[str, FaultQuality]]) -> Table:
    table = Table("case", "faults", "precision", "recall", "≤ 24 h", "≤ 7 d", "false / 1,000 d")
    for name, q in rows:
        t = q.total()
        table.add_row(
            name,
            str(t.faults),
            _f(t.precision),
            _f(t.recall),
            _pct(t.within(24)),
            _pct(t.within(168)),
            f"{q.false_per_1000:.2f}",
        )
    return table


def _gate(write: bool) -> None:
    """`fleetcare evaluate --gate [--write]`: the suite's gate, by hand."""
    from models.evaluation import gate

    with console.status("the gate: training and judging on a small imperfect July fleet"):
        measured = gate.measure(*gate.train())
    if write:
        gate.BASELINE.write_text(gate.dumps(measured))
        console.print(f"wrote {gate.BASELINE}")
        return
    problems = gate.compare(measured, gate.load())
    for name, value in sorted(measured.items()):
        console.print(f"{name}: {value:.3f}")
    if problems:
        for line in problems:
            err.print(f"[red]worse[/]: {line}")
        raise typer.Exit(1)
    console.print("no figure worse than the committed report beyond its tolerance")


@models_app.command("list")
def models_list() -> None:
    """Every version of every model, newest last; * marks the active one."""
    reg = model_registry(settings())
    table = Table("model", "version", "active", "data", "trained on")
    for name in reg.names():
        active = reg.active(name)
        for v in reg.versions(name):
            table.add_row(
                name,
                v.version,
                "*" if active and active.version == v.version else "",
                f"{v.data_start[:10]} → {v.data_end[:10]}",
                _summary(v.metrics),
            )
    console.print(table)


@models_app.command("activate")
def models_activate(name: str, version: str) -> None:
    """Make a version the one the scoring pass uses (`fleetcare models list` shows them)."""
    from models.registry import RegistryError

    try:
        model_registry(settings()).activate(name, version)
    except RegistryError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(f"{name} {version} is active")


@models_app.command("score")
def models_score(
    partition: Annotated[str, typer.Option(help="k/n: score this share of the devices.")] = "0/1",
) -> None:
    """Run the scoring pass once: fold each complete day into every device's wear and
    health state and write the filter predictions and anomaly scores (rules, the parts
    forecast and the API read them). `fleetcare evaluate-rules` runs it once a day by itself."""
    from fleetcare.rules_runner import partition_of
    from fleetcare.wiring import open_database, profiles_in_force
    from models.evaluation.training import FILTER_LIFE, HEALTH
    from models.scoring import FilterLifeScoring
    from telemetry.backends import create_store

    s = settings()
    model, meta = load_active(s)
    health = load_health(s)
    profiles = profiles_in_force(s)

    async def go() -> Any:
        async with create_store(s.store, s.data_dir, profiles.types) as store:
            scoring = FilterLifeScoring(
                open_database(s),
                store,
                model,
                meta.version,
                partition=partition_of(partition),
                health=health[0] if health else None,
                health_version=health[1].version if health else None,
                profiles=profiles,
            )
            return await scoring.run()

    r = asyncio.run(go())
    console.print(
        f"scored {r.devices} devices with {FILTER_LIFE} {meta.version}: {r.predictions} "
        f"predictions, {r.days_folded} device-type days folded in {r.seconds:.1f} s"
    )
    if health:
        console.print(
            f"{HEALTH} {health[1].version}: {r.scores} devices judged, {r.anomalous} anomalous"
        )
    if r.general_devices:
        console.print(
            f"general detector: {r.general_devices} devices judged from their own data, "
            f"{r.general_alarms} alarms ({r.general_dismissed} dismissed by their family's "
            f"fault namer), {r.general_verdicts} technicians' verdicts stored for it"
        )
    else:
        console.print(f"no {HEALTH} version: no anomaly scores (run `fleetcare train`)")


def _evaluate_families(devices: int, days: int, seed: int) -> str:
    """Consumable life of every shipped family known only from its profile: prints the
    table, returns the report's section."""
    from device_sim.faults import PHYSICS
    from models.evaluation.consumables import evaluate_family, render
    from models.evaluation.training import START
    from telemetry.profile import shipped

    results = []
    for name, p in shipped().items():
        if name in PHYSICS or not p.doc.consumables:
            continue
        with progress_bar(
            f"{name}: {devices} devices from its profile (seed {seed})", days
        ) as tick:
            results += evaluate_family(name, devices, days, seed, start=START, progress=tick)
    table = Table(
        "family", "stage", "judged", "MAE at 14 d", "rule of thumb", "band holds", "covered",
        "premature",
    )  # fmt: skip
    for q in results:
        table.add_row(
            q.family,
            q.stage,
            str(q.exhaustions),
            f"{_f(q.mae_days)} d",
            f"{_f(q.mae_rule_days)} d",
            _pct(q.band_coverage),
            _pct(q.covered),
            _pct(q.premature),
        )
    console.print(table)
    return render(results, seed)


def _summary(metrics: Mapping[str, float]) -> str:
    rows = sum(v for k, v in metrics.items() if k.endswith(".rows"))
    days = sum(v for k, v in metrics.items() if k.endswith(".device_days"))
    labels = sum(v for k, v in metrics.items() if k.endswith(".field_labels"))
    trained = f"{days:,.0f} device-days" if days else f"{rows:,.0f} rows"
    return f"{trained}, {labels:,.0f} field labels"


def _f(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.1f}"


def _pct(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.0f} %"
