"""Publish one fleet from several processes.

Publishing, not physics, is what costs: a simulated day of 100k devices' physics takes a
couple of seconds, their 9.6M reports at a 15-minute interval take minutes. So every
process runs the *whole* fleet's physics from the same spec and seed (identical state),
and publishes only its share of the devices (index mod n). Each process has its own
connection(s); the parent gathers counts while they run and each device's ground truth
from the process that published it.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import queue
import threading
import time
from typing import Any

from device_sim.fleet import Fleet, FleetSpec
from device_sim.runner import RunOptions, RunStats, _summarise, run_shard
from telemetry.connection import MqttSettings

log = logging.getLogger("device_sim")


class ShardFailed(RuntimeError):
    """A publisher process died or raised; its message says which and why."""


def _child(
    spec: FleetSpec,
    t: float,
    mqtt: MqttSettings,
    options: RunOptions,
    shard: tuple[int, int],
    stop_flag: Any,
    out: Any,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    k = shard[0]
    try:
        fleet = Fleet.create(spec)
        fleet.advance(t)
        stats = RunStats()
        stop = threading.Event()

        def relay() -> None:  # the parent's stop, and our counts every second
            while not stop.wait(1.0):
                if stop_flag.value:
                    stop.set()
                out.put(("stats", k, stats))

        threading.Thread(target=relay, daemon=True).start()
        run_shard(fleet, mqtt, options, stop, stats, shard=shard)
        stop.set()
        owned = {d: fleet.truth.devices[d] for _i, _t, d in fleet.owned(shard)}
        out.put(("done", k, stats, owned))
    except BaseException as exc:  # the parent reports it; a child has no one else to tell
        out.put(("error", k, f"{type(exc).__name__}: {exc}"))


def run_parallel(
    fleet: Fleet,
    mqtt: MqttSettings,
    options: RunOptions,
    stop: threading.Event,
    stats: RunStats,
) -> RunStats:
    n = options.processes
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited threads or sockets
    spec = dataclasses.replace(fleet.spec, mix=dict(fleet.spec.mix))  # picklable
    # a shared flag, polled: an Event's condition hangs `set` once a waiter has exited
    stop_flag = ctx.Value("b", 0, lock=False)
    out: Any = ctx.Queue()
    procs = [
        ctx.Process(
            target=_child,
            args=(spec, fleet.t, mqtt, options, (k, n), stop_flag, out),
            name=f"sim-publisher-{k}",
            daemon=True,
        )
        for k in range(n)
    ]
    for p in procs:
        p.start()
    latest: dict[int, RunStats] = {}
    done: dict[int, RunStats] = {}
    errors: list[str] = []
    try:
        while len(done) + len(errors) < n:
            if stop.is_set():
                stop_flag.value = 1
            try:
                msg = out.get(timeout=0.2)
            except queue.Empty:
                dead = [p for k, p in enumerate(procs) if not p.is_alive() and k not in done]
                if dead and out.empty():
                    time.sleep(0.5)  # its last message may still be in the pipe
                    if out.empty():
                        errors += [f"{p.name} exited with code {p.exitcode}" for p in dead]
                        break
                continue
            if msg[0] == "stats":
                latest[msg[1]] = msg[2]
            elif msg[0] == "done":
                done[msg[1]] = latest[msg[1]] = msg[2]
                fleet.truth.devices.update(msg[3])
            else:
                errors.append(f"publisher {msg[1]}: {msg[2]}")
                stop_flag.value = 1
            _total(stats, latest)
    finally:
        stop_flag.value = 1
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    if errors:
        raise ShardFailed("; ".join(errors))
    _total(stats, done)
    _summarise(fleet, stats)
    return stats


def _total(stats: RunStats, parts: dict[int, RunStats]) -> None:
    total = RunStats()
    for part in parts.values():
        total.add(part)
    stats.__dict__.update(total.__dict__)
