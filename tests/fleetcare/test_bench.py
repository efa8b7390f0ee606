"""The benchmark commands run end to end on a tiny load (their figures live in docs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.ingest import run_bench


@pytest.mark.slow
def test_bench_ingest_measures_the_ceiling_and_fleetcare_storing_everything(
    tmp_path: Path,
) -> None:
    report = tmp_path / "bench.md"
    results = run_bench(
        messages=3000,
        devices=300,
        scenarios=["bare", "embedded"],
        naive_messages=100,
        rss_minutes=0,
        protocol="3.1.1",
        output=report,
    )
    bare, ingest = results
    assert bare.rate > 0 and ingest.rate > 0
    assert ingest.check == "stored 3000"  # every message durable exactly once
    assert "| (b) FleetCare ingest -> embedded (SQLite) | 3000 |" in report.read_text()
