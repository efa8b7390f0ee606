"""Structured logs: one JSON object per line with the event's fields, written to the
stderr of the moment (a command run inside another program keeps working after that
program swapped stderr back)."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from fleetcare import logs


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_event_and_its_fields(
    root_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    logs.configure("json")
    logging.getLogger("fleetcare.test").info("stored", extra={"kv": {"messages": 3}})
    line = json.loads(out.getvalue().splitlines()[-1])
    assert (line["event"], line["messages"], line["level"]) == ("stored", 3, "info")


def test_logs_follow_stderr_after_the_one_they_were_configured_with_is_closed(
    root_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logs.configure("json")
    first.close()  # what a test runner does with the stderr it lent a command
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    logging.getLogger("fleetcare.test").warning("still heard")
    assert json.loads(later.getvalue())["event"] == "still heard"
