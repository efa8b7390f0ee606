"""Every benchmark ends the same way: show the markdown, append it where asked."""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

console = Console()


def command() -> str:
    """The command line that produced a report, as docs/benchmarks.md quotes it."""
    return "fleetcare " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def heading(title: str) -> list[str]:
    """A report's first lines: its title with the day, the command that produced it,
    and the head of its measure | result | target table."""
    when = datetime.now(UTC)
    return [
        f"### {title} ({when:%Y-%m-%d})",
        "",
        "```",
        command(),
        "```",
        "",
        "| measure | result | target |",
        "|---|---:|---:|",
    ]


def emit(text: str, output: Path | None) -> str:
    console.print(text)
    if output is not None:
        with output.open("a") as f:
            f.write(text + "\n")
    return text
