"""The demo's models, trained in a process of their own while the demo runs.

Training simulates fleets for months (a minute of CPU or so): in the demo's process it
would fight the fleet, ingest and the API for one interpreter, and a thread cannot be
stopped. A separate process uses the other core, reports its progress, and is simply
ended when the demo stops (a version is saved only once it is complete).
"""

from __future__ import annotations

import multiprocessing as mp
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from pathlib import Path
from queue import Empty
from typing import Any

from models.evaluation.training import (
    FILTER_LIFE,
    HEALTH,
    save_filter_life,
    save_health,
    train_filter_life,
    train_health,
)
from models.filter_life import schema
from models.health import full_schema as health_schema
from models.registry import ModelRegistry, RegistryError

# small fleets: the demo needs working models soon, `fleetcare train` makes better ones
FILTER_FLEET = (300, 90, 11)  # devices, simulated days, seed
HEALTH_FLEET = (400, 90, 12)


@dataclass
class Progress:
    """What the training process last reported."""

    model: str = ""
    done: int = 0
    total: int = 0
    finished: bool = False
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"training failed: {self.error}"
        if self.finished:
            return "trained"
        share = 100 * self.done // max(self.total, 1)
        return f"training {self.model.replace('_', ' ')}: {share} % of its simulated fleet"


def missing(registry: ModelRegistry) -> list[str]:
    """The models the registry has no active, loadable version of."""
    out = []
    for name, features in ((FILTER_LIFE, schema()), (HEALTH, health_schema())):
        try:
            registry.load(name, features=features)
        except RegistryError:
            out.append(name)
    return out


def _train(root: str, names: list[str], season: float, out: Any) -> None:
    """The training process: each missing model, saved as the active version."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the demo's to handle
    registry = ModelRegistry(Path(root))

    def told(name: str, total: int) -> Callable[[int], None]:
        return lambda done: out.put((name, done, total))

    try:
        for name in names:
            if name == FILTER_LIFE:
                n, days, seed = FILTER_FLEET
                model, metrics, _ = train_filter_life(
                    n, days, seed, progress=told(FILTER_LIFE, days)
                )
                save_filter_life(registry, model, metrics, devices=n, days=days, seed=seed)
            else:
                n, days, seed = HEALTH_FLEET
                h_model, h_metrics, run = train_health(
                    n,
                    days,
                    seed,
                    start=datetime.fromtimestamp(season, UTC),
                    progress=told(HEALTH, days),
                )
                save_health(registry, h_model, h_metrics, run, seed=seed)
        out.put(("done", 0, 0))
    except Exception as exc:  # reported to the demo, which goes on without models
        out.put(("error", 0, str(exc)))


class BackgroundTraining:
    """Trains the models a registry lacks in a child process; `poll()` says how far."""

    def __init__(self, registry: ModelRegistry, names: list[str], season: datetime) -> None:
        ctx = mp.get_context("spawn")  # the demo runs threads: never fork them
        self._queue = ctx.Queue()
        self._proc: BaseProcess = ctx.Process(
            target=_train,
            args=(str(registry.root), names, season.timestamp(), self._queue),
            name="fleetcare-demo-training",
            daemon=True,
        )
        self.progress = Progress()
        self._proc.start()

    def poll(self) -> Progress:
        while True:
            try:
                what, done, total = self._queue.get_nowait()
            except Empty:
                break
            if what == "done":
                self.progress.finished = True
            elif what == "error":
                self.progress.error = str(total)
            else:
                self.progress.model, self.progress.done, self.progress.total = what, done, total
        if not (self.progress.finished or self.progress.error) and not self._proc.is_alive():
            self.progress.error = f"the training process ended (exit code {self._proc.exitcode})"
        return self.progress

    def stop(self) -> None:
        """End the training now (nothing half-trained is saved)."""
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(3)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        self._queue.close()
        self._queue.join_thread()
