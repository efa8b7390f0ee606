"""What every command module shares: the consoles, the settings the root options chose,
running until a signal, and a progress bar."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fleetcare import logs
from fleetcare.settings import Settings, load_settings

if TYPE_CHECKING:
    from db.database import Database

console = Console()
err = Console(stderr=True)


@dataclass(frozen=True)
class RootOptions:
    """What the root command's options said (`--config`, `--data-dir`, `--log-format`)."""

    config: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


# The running invocation's root options, set by the root callback before any command
# runs: a context variable, as click keeps its own context stack, so each invocation
# (a test runs many in one process) sees only its own.
root_options: ContextVar[RootOptions | None] = ContextVar("root_options", default=None)


def settings(**overrides: Any) -> Settings:
    """The settings for the running command: its root options over env, file, defaults.

    A bad setting is reported with what to fix and ends the command (exit 2)."""
    options = root_options.get() or RootOptions()
    try:
        s = load_settings(options.config, **{**options.overrides, **overrides})
    except Exception as exc:  # a bad setting: say which and stop
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    logs.configure(s.log.format, s.log.level)
    return s


def database() -> Database:
    """The service database the root options point at (opened, migrated on first use)."""
    from fleetcare.wiring import open_database

    return open_database(settings())


def run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run `main(stop)` until SIGINT/SIGTERM sets `stop`.

    The first signal asks `main` to stop cleanly (it removes what it started); a
    terminal's Ctrl-C and a supervisor's SIGTERM often arrive together, so only a second
    signal more than a second later gives up on the clean-up."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        first: list[float] = []

        def on_signal() -> None:
            now = loop.time()
            if first and now - first[0] > 1.0:
                err.print("second signal: exiting now, without cleaning up")
                raise SystemExit(130)
            if not first:
                first.append(now)
                err.print("stopping (a second Ctrl-C exits at once)")
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        await main(stop)

    asyncio.run(runner())


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A bar on stderr; the callable it yields takes how many of `total` are done."""
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def utc_days(start: str, end: str) -> tuple[datetime, datetime]:
    """`--from` and `--to` (YYYY-MM-DD, the day after the last) as UTC midnights; exits
    with a message saying what to fix."""
    try:
        a, b = (datetime.strptime(x, "%Y-%m-%d").replace(tzinfo=UTC) for x in (start, end))
    except ValueError:
        err.print("dates are YYYY-MM-DD, e.g. --from 2026-11-01 --to 2026-12-01")
        raise typer.Exit(2) from None
    if b <= a:
        err.print("--to must be after --from")
        raise typer.Exit(2)
    return a, b
