"""`fleetcare profiles …`: product profiles, the families the engine knows, as data."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fleet.profiles import ProfileRepository
from fleetcare.cli.common import console, err, settings
from telemetry.profile import Profile, ProfileDoc, ProfileError, ProfileSet

app = typer.Typer()
profiles = typer.Typer(
    help="Product profiles: each family's metrics, consumables, fault codes, health card and "
    "rules, as a YAML file (docs/profiles.md). Import one to onboard a new model or family.",
    no_args_is_help=True,
)
app.add_typer(profiles, name="profiles")


def _repository() -> ProfileRepository:
    from fleetcare.wiring import open_database

    return ProfileRepository(open_database(settings()))


def _read(files: list[Path], known: ProfileSet) -> list[Profile]:
    """Every file parsed and checked (its rules too, among `known` and the others read);
    all their problems printed, exit 1 if any."""
    from rules.profile_rules import check_profile_rules
    from telemetry.profile import parse_profile

    read: list[tuple[Path, Profile]] = []
    failed = False
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except OSError as e:
            err.print(f"[red]{f}: cannot read it: {e.strerror}[/red]")
            failed = True
            continue
        try:
            read.append((f, Profile(parse_profile(text, str(f)), str(f))))
        except ProfileError as e:
            err.print(f"[red]{e}[/red]")
            failed = True
    together = known.overlay(p for _, p in read)
    for f, p in read:
        problems = check_profile_rules(p, together)
        if problems:
            err.print(f"[red]{ProfileError(str(f), problems)}[/red]")
            failed = True
    if failed:
        raise typer.Exit(1)
    return [p for _, p in read]


def _summary(p: Profile) -> str:
    d = p.doc
    return (
        f"{p.label}: {len(d.models)} model(s), {len(d.metrics)} metrics, "
        f"{len(d.consumables)} consumable(s), {len(d.fault_codes)} fault code(s), "
        f"{len(d.rules)} rule(s) of its own"
    )


@profiles.command("validate")
def validate(
    files: Annotated[list[Path], typer.Argument(help="Profile files (YAML).")],
) -> None:
    """Check profile files without importing them: the shape (against the JSON Schema,
    `fleetcare profiles schema`), every name against what the file declares, and the
    rules it brings. Each problem is printed with its path in the file; exit 1 if any."""
    from telemetry.profile import shipped

    for p in _read(files, shipped()):
        console.print(f"ok: {_summary(p)}")


@profiles.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(help="Profile files (YAML).")],
    dry_run: Annotated[bool, typer.Option(help="Check only.")] = False,
) -> None:
    """Import profiles as new versions of their families: all or nothing. A running
    engine picks a new version up within seconds (ingest, rules, API), no restart.

    Versions only go up: change a file, raise its `version`. Example:
    `fleetcare profiles import dehumidifier.yaml`."""
    from fleet.profiles import ProfileRefused

    repo = _repository()
    read = _read(files, repo.current())
    if dry_run:
        for p in read:
            console.print(f"valid: {_summary(p)}")
        return
    try:
        done = repo.import_all([(p.doc, p.source) for p in read], actor="cli")
    except ProfileRefused as e:
        err.print(f"[red]{e}; nothing was imported[/red]")
        raise typer.Exit(1) from None
    for p, d in zip(read, done, strict=True):
        said = "imported" if d.created else "unchanged (already imported)"
        console.print(f"{said}: {_summary(p)}")


@profiles.command("list")
def list_() -> None:
    """The families the engine knows, each at the version in force."""
    table = Table("family", "version", "from", "title", "models", "metrics", "consumables")
    for p in _repository().current().values():
        table.add_row(
            p.name,
            str(p.version),
            p.source,
            p.doc.title,
            ", ".join(m.code for m in p.doc.models),
            str(len(p.doc.metrics)),
            ", ".join(c.stage for c in p.doc.consumables) or "-",
        )
    console.print(table)


@profiles.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The family (its device type).")],
    version: Annotated[int | None, typer.Option(help="A version (default: in force).")] = None,
    as_yaml: Annotated[bool, typer.Option("--yaml", help="The whole file, as YAML.")] = False,
) -> None:
    """One family's profile: metrics (with the firmware that added each), consumables,
    fault codes and the health card; `--yaml` prints the file."""
    from telemetry.profile import dump_profile

    p = _profile(name, version)
    if as_yaml:
        sys.stdout.write(dump_profile(p.doc))
        return
    d = p.doc
    console.print(f"[bold]{p.label}[/bold] ({p.source}): {d.title}. {d.description}")
    console.print(
        "models: " + ", ".join(f"{m.code} ({m.name})" if m.name else m.code for m in d.models)
    )
    metrics = Table("metric", "unit", "kind", "range", "since firmware", "description")
    for m in d.metrics:
        rng = f"{m.range[0]:g} – {m.range[1]:g}" if m.range else ", ".join(m.choices or ())
        metrics.add_row(m.name, m.unit, m.kind, rng, p.release_of(m.name) or "all", m.description)
    console.print(metrics)
    if d.consumables:
        table = Table("consumable", "part", "rated (first of)", "worn by", "job")
        for c in d.consumables:
            rated = ", ".join(f"{v:g} {k}" for k, v in c.rated.given().items())
            drivers = ", ".join(
                f"{x.unit}: "
                + (
                    x.counter
                    or (
                        f"{x.running.metric} running"
                        if x.running
                        else "∫ " + " × ".join(x.integral or ())
                    )
                )
                for x in c.drivers
            )
            table.add_row(f"{c.stage} ({c.name})", c.sku, rated, drivers or "-", c.problem)
        console.print(table)
    if d.fault_codes:
        table = Table("code", "title", "job", "opens")
        for f in d.fault_codes:
            table.add_row(f.code, f.title, f.problem_kind, f.open)
        console.print(table)
    if d.health_card:
        console.print("health card: " + ", ".join(i.label.en for i in d.health_card))


def _profile(name: str, version: int | None) -> Profile:
    from db.errors import NotFound

    try:
        return _repository().get(name, version)
    except NotFound as e:
        err.print(f"[red]{e}[/red]: `fleetcare profiles list` shows the families")
        raise typer.Exit(1) from None


@profiles.command("history")
def history(name: Annotated[str, typer.Argument(help="The family.")]) -> None:
    """Every version of a family: when, by whom, from which file; * is in force."""
    from db.errors import NotFound

    try:
        rows = _repository().history(name)
    except NotFound as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    table = Table("version", "", "imported", "by", "from", "checksum")
    for r in rows:
        when = r.imported_at.strftime("%Y-%m-%d %H:%M") if r.imported_at else "shipped"
        table.add_row(
            str(r.version), "*" if r.in_force else "", when, r.imported_by, r.source, r.checksum
        )
    console.print(table)


@profiles.command("diff")
def diff(
    name: Annotated[str, typer.Argument(help="The family.")],
    file: Annotated[Path | None, typer.Argument(help="A file to compare with it.")] = None,
    from_version: Annotated[int | None, typer.Option("--from", help="Old version.")] = None,
    to_version: Annotated[int | None, typer.Option("--to", help="New version.")] = None,
) -> None:
    """What changes between two versions, or between the version in force and a file:
    metrics, consumables and fault codes added, removed or changed, then the YAML lines.
    Example: `fleetcare profiles diff dehumidifier dehumidifier.yaml`."""
    from telemetry.profile import dump_profile, parse_profile

    old = _profile(name, from_version)
    if file is not None:
        try:
            new = Profile(parse_profile(file.read_text(encoding="utf-8"), str(file)), str(file))
        except (OSError, ProfileError) as e:
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from None
    else:
        new = _profile(name, to_version)
    for line in changes(old.doc, new.doc):
        console.print(line)
    lines = difflib.unified_diff(
        dump_profile(old.doc).splitlines(),
        dump_profile(new.doc).splitlines(),
        old.label,
        new.label if file is None else str(file),
        lineterm="",
    )
    text = "\n".join(lines)
    console.print(text or "the same profile", markup=False, highlight=False)


def changes(old: ProfileDoc, new: ProfileDoc) -> list[str]:
    """One line per metric, consumable or fault code added, removed or changed."""
    out = []
    for what, key, a, b in (
        ("metric", "name", old.metrics, new.metrics),
        ("consumable", "stage", old.consumables, new.consumables),
        ("fault code", "code", old.fault_codes, new.fault_codes),
    ):
        before = {getattr(x, key): x for x in a}
        after = {getattr(x, key): x for x in b}
        out += [f"+ {what} {k}" for k in after if k not in before]
        out += [f"- {what} {k}" for k in before if k not in after]
        out += [f"~ {what} {k}" for k in after if k in before and after[k] != before[k]]
    return out


@profiles.command("export")
def export(
    name: Annotated[str, typer.Argument(help="The family.")],
    version: Annotated[int | None, typer.Option(help="A version (default: in force).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
) -> None:
    """A profile as a YAML file, to edit and import as the next version."""
    from telemetry.profile import dump_profile

    text = dump_profile(_profile(name, version).doc)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")


@profiles.command("schema")
def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
) -> None:
    """The JSON Schema of a profile file (editors validate YAML against it)."""
    from telemetry.profile import profile_schema

    text = json.dumps(profile_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")
