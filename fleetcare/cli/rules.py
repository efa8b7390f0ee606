"""`fleetcare rules …`, `fleetcare evaluate-rules` and `fleetcare alerts …`: the rule
catalog, the evaluator, and the alerts it raises."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from rich.table import Table

if TYPE_CHECKING:
    from rules.alerts import AlertStore

from fleetcare.cli.common import console, err, run_until_signal, settings

app = typer.Typer()

rules_app = typer.Typer(
    help="The rule catalog: built-in rules plus your YAML files (docs/rules.md).",
    no_args_is_help=True,
)
alerts_app = typer.Typer(
    help="Alerts raised by the rules, their history, and silences.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")
app.add_typer(alerts_app, name="alerts")


@rules_app.command("list")
def rules_list(
    device_type: Annotated[str | None, typer.Option(help="Only this device type.")] = None,
) -> None:
    """Every rule in force: the built-ins and those of FLEETCARE_RULES__FILES, with
    where each comes from. Bad rules are listed after, with file, line and reason."""
    from fleetcare.wiring import catalog_from

    catalog = catalog_from(settings().rules)
    table = Table()
    for col in ("rule", "device", "severity", "problem", "when", "for", "job", "from"):
        table.add_column(col)
    for rule in sorted(catalog.rules.values(), key=lambda r: (r.device_type, r.id)):
        if device_type and rule.device_type != device_type:
            continue
        table.add_row(
            rule.id + ("" if rule.enabled else " (off)"),
            rule.device_type,
            rule.severity,
            rule.problem_kind or "-",
            rule.when.kind + (" · ingest" if rule.per_message else ""),
            _dur(rule.for_.total_seconds()),
            rule.work_order.open,
            catalog.sources[rule.id],
        )
    console.print(table)
    for e in catalog.errors:
        err.print(f"[red]{e}[/red]")


@rules_app.command("check")
def rules_check(
    files: Annotated[list[Path], typer.Argument(help="Rule files to validate.")],
) -> None:
    """Validate rule files: every bad rule with its file, line and reason; exit 1 if
    any. The files are not installed by this; list them in FLEETCARE_RULES__FILES."""
    from fleetcare.wiring import profiles_in_force
    from rules.catalog import load_catalog

    catalog = load_catalog(files, profiles=profiles_in_force(settings()))
    good = sum(1 for src in catalog.sources.values() if src.startswith(tuple(map(str, files))))
    for e in catalog.errors:
        err.print(str(e))
    console.print(f"{good} rules OK, {len(catalog.errors)} problems")
    if catalog.errors:
        raise typer.Exit(1)


@rules_app.command("test")
def rules_test(
    files: Annotated[list[Path], typer.Argument(help="Rule test files (YAML).")],
) -> None:
    """Run rule unit tests: a device's samples in, the alerts that should be firing
    out, each in a scratch store and database. Exit 1 if any fails. The format is in
    docs/rules.md."""
    from rules.testing import RuleTestError, read_tests, run_case

    failed = 0
    for path in files:
        try:
            spec, catalog = read_tests(path)
        except RuleTestError as e:
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from None
        for case in spec.tests:
            outcome = asyncio.run(run_case(case, catalog))
            mark = "[green]ok[/green]  " if outcome.passed else "[red]FAIL[/red]"
            console.print(f"{mark} {path.name}: {outcome.name}: {outcome.detail}")
            failed += not outcome.passed
    if failed:
        err.print(f"{failed} failed")
        raise typer.Exit(1)


@rules_app.command("show")
def rules_show(rule_id: Annotated[str, typer.Argument(help="The rule's id.")]) -> None:
    """One rule in full, as YAML (copy it into your file to retune it)."""
    from fleetcare.wiring import catalog_from

    catalog = catalog_from(settings().rules)
    if rule_id not in catalog.rules:
        err.print(f"no rule {rule_id!r}; `fleetcare rules list` shows them")
        raise typer.Exit(1)
    doc = catalog.rules[rule_id].model_dump(mode="json", by_alias=True, exclude_none=True)
    console.print(yaml.safe_dump({"rules": [doc]}, sort_keys=False, allow_unicode=True))


@app.command("evaluate-rules")
def evaluate_rules(
    once: Annotated[bool, typer.Option(help="One pass, then exit.")] = False,
    interval: Annotated[float | None, typer.Option(min=1, help="Seconds between passes.")] = None,
    partition: Annotated[
        str | None, typer.Option(help="This replica's share, k/n (e.g. 0/2 and 1/2).")
    ] = None,
) -> None:
    """Run the rules evaluator: every rule on every device of this partition, each
    interval; alerts fire and resolve, and open work orders. Its state is kept in the
    database, so a restart loses no pending duration and fires nothing twice."""
    from fleetcare.rules_runner import run_evaluator
    from fleetcare.settings import SettingsError

    s = settings()
    over: dict[str, object] = {}
    if interval is not None:
        over["interval_s"] = interval
    if partition is not None:
        k, _, n = partition.partition("/")
        if not (k.isdigit() and n.isdigit() and int(k) < int(n)):
            err.print(f"--partition is k/n with 0 <= k < n, e.g. 0/2; not {partition!r}")
            raise typer.Exit(2)
        over["partition"] = partition
    if over:
        s = s.model_copy(update={"rules": s.rules.model_copy(update=over)})

    async def go(stop: asyncio.Event) -> None:
        try:
            last = await run_evaluator(s, stop, once=once)
        except SettingsError as e:
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from None
        if once and last is not None:
            console.print(
                f"{last.devices} devices, {last.evaluations} evaluations in "
                f"{last.seconds:.2f} s: fired {last.fired}, resolved {last.resolved}, "
                f"pending {last.pending}, jobs opened {last.orders_opened}"
            )

    run_until_signal(go)


# -- alerts ------------------------------------------------------------------------


def store() -> AlertStore:
    from fleetcare.wiring import open_database
    from rules.alerts import AlertStore

    return AlertStore(open_database(settings()))


@alerts_app.command("list")
def alerts_list(
    state: Annotated[str | None, typer.Option(help="firing or resolved.")] = "firing",
    device: Annotated[str | None, typer.Option(help="One device.")] = None,
    rule: Annotated[str | None, typer.Option(help="One rule.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """Alerts, newest first, with their job, silence or inhibition."""

    if state not in (None, "firing", "resolved", "all"):
        err.print("--state is firing, resolved or all")
        raise typer.Exit(2)
    alerts = store()
    rows = alerts.find(
        state=None if state == "all" else state, device_id=device, rule_id=rule, limit=limit
    )
    table = Table()
    for col in ("#", "rule", "device", "severity", "state", "fired", "value", "job", "note"):
        table.add_column(col)
    for a in rows:
        note = a.inhibited_by or (f"silenced by #{a.silenced_by}" if a.silenced_by else "")
        table.add_row(
            str(a.id), a.rule_id, a.device_id, a.severity, a.state,
            f"{a.fired_at:%Y-%m-%d %H:%M}", "-" if a.value is None else f"{a.value:g}",
            f"#{a.work_order_id}" if a.work_order_id else "-", note,
        )  # fmt: skip
    console.print(table)


@alerts_app.command("show")
def alerts_show(alert_id: Annotated[int, typer.Argument()]) -> None:
    """One alert with its history and evidence."""
    from db.errors import NotFound

    alerts = store()
    try:
        a = alerts.get(alert_id)
    except NotFound as e:
        err.print(str(e))
        raise typer.Exit(1) from None
    console.print(f"#{a.id} {a.rule_id} on {a.device_id}: {a.title} ({a.severity}, {a.state})")
    for h in alerts.history(alert_id):
        console.print(f"  {h['at']:%Y-%m-%d %H:%M:%S} {h['kind']:10} {h['data']}")


@alerts_app.command("silence")
def alerts_silence(
    hours: Annotated[float, typer.Option("--for", min=0.01, help="Hours it lasts.")],
    comment: Annotated[str, typer.Option(help="Why (required).")],
    rule: Annotated[str | None, typer.Option(help="Match this rule.")] = None,
    device: Annotated[str | None, typer.Option(help="Match this device.")] = None,
    customer: Annotated[str | None, typer.Option(help="Match this customer's devices.")] = None,
    by: Annotated[str, typer.Option(help="Who (audit).")] = "ops",
) -> None:
    """Mute alerts matching every matcher given: they still fire and are kept, but
    open no job until the silence ends."""
    from datetime import timedelta

    from rules.alerts import SilenceRefused

    alerts = store()
    now = datetime.now(UTC)
    try:
        s = alerts.add_silence(
            rule_id=rule, device_id=device, customer_id=customer, created_by=by,
            comment=comment, ends_at=now + timedelta(hours=hours), now=now,
        )  # fmt: skip
    except SilenceRefused as e:
        err.print(str(e))
        raise typer.Exit(2) from None
    console.print(f"silence #{s.id} until {s.ends_at:%Y-%m-%d %H:%M} UTC")


@alerts_app.command("silences")
def alerts_silences() -> None:
    """Silences in force."""

    alerts = store()
    for s in alerts.list_silences():
        match = ", ".join(
            f"{k}={v}"
            for k, v in (
                ("rule", s.rule_id),
                ("device", s.device_id),
                ("customer", s.customer_id),
            )
            if v
        )
        console.print(
            f"#{s.id} {match} until {s.ends_at:%Y-%m-%d %H:%M} by {s.created_by}: {s.comment}"
        )


@alerts_app.command("unsilence")
def alerts_unsilence(silence_id: Annotated[int, typer.Argument()]) -> None:
    """End a silence now."""
    from db.errors import NotFound

    alerts = store()
    try:
        alerts.expire_silence(silence_id)
    except NotFound as e:
        err.print(str(e))
        raise typer.Exit(1) from None
    console.print(f"silence #{silence_id} ended")


def _dur(seconds: float) -> str:
    if not seconds:
        return "-"
    from datetime import timedelta

    from rules.spec import format_duration

    return format_duration(timedelta(seconds=seconds))
