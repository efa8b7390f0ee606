"""`fleetcare anomaly …`: the engine's general detector on any CSV file."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from fleetcare.cli.common import err, progress_bar

app = typer.Typer()
anomaly = typer.Typer(
    help="The engine's general streaming anomaly detector, on any time series you have.",
    no_args_is_help=True,
)
app.add_typer(anomaly, name="anomaly")

_MS_EPOCH = 1e11  # a number above this is an epoch in milliseconds, not seconds


class TableError(ValueError):
    """A row or a column the detector cannot read; says which and why."""


def parse_time(text: str) -> float:
    """ISO 8601 (naive times are UTC) or a Unix epoch in seconds or milliseconds."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number / 1000.0 if abs(number) > _MS_EPOCH else number
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _number(text: str) -> float:
    """A value; empty, NA, null or anything not a number is a missing value (NaN)."""
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def read_table(
    path: Path, time_column: str, columns: list[str] | None, delimiter: str
) -> tuple[list[str], list[list[str]], list[float], list[list[float]], list[str]]:
    """(header, rows, times, values, value columns). Every problem names its row."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise TableError(f"{path} is empty: the first row must name the columns")
        rows = [r for r in reader if r]
    if time_column not in header:
        raise TableError(f"no column {time_column!r}; the columns are {', '.join(header)}")
    missing = [c for c in columns or [] if c not in header]
    if missing:
        raise TableError(
            f"no column {', '.join(map(repr, missing))}; the columns are {', '.join(header)}"
        )
    at = header.index(time_column)
    if columns:
        names = list(columns)
    else:  # every column that holds a number somewhere, but the time
        names = [
            c
            for i, c in enumerate(header)
            if i != at and any(len(r) > i and not math.isnan(_number(r[i])) for r in rows[:1000])
        ]
    if not names:
        raise TableError("no numeric column to score: name them with --columns")
    idx = [header.index(c) for c in names]
    times: list[float] = []
    values: list[list[float]] = []
    for line, r in enumerate(rows, start=2):
        if len(r) != len(header):
            raise TableError(f"row {line} has {len(r)} fields, the header {len(header)}")
        try:
            times.append(parse_time(r[at]))
        except ValueError:
            raise TableError(
                f"row {line}: {r[at]!r} in {time_column!r} is not a time "
                "(ISO 8601 such as 2026-01-31 08:00:00, or a Unix epoch)"
            ) from None
        values.append([_number(r[i]) for i in idx])
    return header, rows, times, values, names


@anomaly.command("score")
def score(
    file: Annotated[Path, typer.Argument(help="A CSV file: a header row, then one row per time.")],
    time_column: Annotated[
        str,
        typer.Option("--time-column", help="The column with each row's time (ISO 8601 or epoch)."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the scored rows.")],
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--columns",
            help="Value columns to score (repeat the option or separate with commas; "
            "several are scored together, relations between them included). "
            "Default: every numeric column.",
        ),
    ] = None,
    conditions: Annotated[
        list[str] | None,
        typer.Option(
            "--conditions",
            help="Columns that are operating conditions, not health (a setpoint, the "
            "outdoor temperature, hours of use): scored with the others' relations, never "
            "alarmed on themselves. They are added to --columns.",
        ),
    ] = None,
    delimiter: Annotated[str, typer.Option(help="The field separator.")] = ",",
    normal_rows: Annotated[
        int,
        typer.Option(
            min=0,
            help="The first N rows are known to be normal: learned from, never alarmed on.",
        ),
    ] = 0,
) -> None:
    """Score every row of FILE, in order and causally (a row's score uses only the rows
    before it), with the same detector and the same configuration the engine uses on
    the fleet. --output gets the input's columns plus `anomaly_score` (0 to 1, on one scale
    for every series: 0.5 is a one-in-a-thousand surprise), `anomaly` (1 on the first
    row of each episode the engine would alarm on) and `anomaly_kind` (spike, shift,
    burst, stuck, dropout, novel or relation).

    Rows need not be evenly spaced; an empty or non-numeric value is a missing reading.

    Example: `fleetcare anomaly score speed.csv --time-column timestamp -o scored.csv`
    """
    from models.anomaly import StreamingDetector

    columns = [c.strip() for given in columns or [] for c in given.split(",") if c.strip()]
    given = [c.strip() for g in conditions or [] for c in g.split(",") if c.strip()]
    if columns:
        columns += [c for c in given if c not in columns]
    if len(delimiter) != 1:
        err.print(f"[red]--delimiter must be one character, got {delimiter!r}[/red]")
        raise typer.Exit(2)
    try:
        header, rows, times, values, names = read_table(file, time_column, columns, delimiter)
    except (OSError, TableError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    unknown = [c for c in given if c not in names]
    if unknown:
        what = "no column" if any(c not in header for c in unknown) else "no numbers in"
        err.print(f"[red]--conditions: {what} {', '.join(map(repr, unknown))}; the numeric "
                  f"columns are {', '.join(names)}[/red]")  # fmt: skip
        raise typer.Exit(2)
    watch = [c not in given for c in names]
    if not any(watch):
        err.print("[red]every column is a condition: leave at least one to watch[/red]")
        raise typer.Exit(2)
    det = StreamingDetector(len(names), normal_rows=normal_rows, watch=watch)
    alarms = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    with (
        output.open("w", newline="") as fh,
        progress_bar(f"scoring {file.name}", len(rows)) as done,
    ):
        out = csv.writer(fh, delimiter=delimiter)
        out.writerow([*header, "anomaly_score", "anomaly", "anomaly_kind"])
        for i, (row, t, xs) in enumerate(zip(rows, times, values, strict=True)):
            r = det.update(t, xs)
            alarms += r.alarm
            out.writerow([*row, f"{r.score:.6f}", int(r.alarm), r.kind])
            if i % 5000 == 0:
                done(i)
        done(len(rows))
    cols = ", ".join(names)
    err.print(f"{len(rows)} rows, {len(names)} column(s) ({cols}): {alarms} alarm(s) -> {output}")
