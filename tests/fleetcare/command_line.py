"""The command line as a test drives it: one data directory, wide output, and the exit
status each call must end with."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from fleetcare.cli import app


def fleetcare_in(data_dir: Path) -> tuple[Callable[..., str], dict[str, str]]:
    """`fc("orders", "list")` runs `fleetcare orders list` on `data_dir` and returns its
    output, failing the test unless it exits with `code` (0 by default); also the
    environment, for opening the same database from the test."""
    env = {"FLEETCARE_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    runner = CliRunner()

    def fc(*args: str, code: int = 0) -> str:
        r = runner.invoke(app, list(args), env=env)
        assert r.exit_code == code, r.output
        return r.output

    return fc, env
