"""`fleetcare stock …` as a planner uses it before a peak: the network from the
registry, the sales plan from a CSV, the plan, and moves on the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fleetcare.command_line import fleetcare_in
from tests.service.test_stock import NETWORK
from tests.world import WORLD


def test_a_planner_imports_the_sales_plan_reads_the_plan_and_moves_stock(tmp_path: Path) -> None:
    fc, _ = fleetcare_in(tmp_path / "data")
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps(WORLD))
    fc("registry", "import", str(registry))
    registry.write_text(json.dumps(NETWORK))
    fc("registry", "import", str(registry))

    peak = (datetime.now(UTC) + timedelta(days=21)).date()
    plan_csv = tmp_path / "sales.csv"
    plan_csv.write_text(f"region_id,model,week,units\neast,KFR-35GW,{peak},80\n")
    assert "saved 1 week(s)" in fc("stock", "import-sales-plan", str(plan_csv))
    plan_csv.write_text("region_id,model,week,units\nwest,KFR-35GW,2026-11-09,80\n")
    assert "no region 'west'" in fc("stock", "import-sales-plan", str(plan_csv), code=1)

    out = fc(
        "stock",
        "plan",
        "--weeks",
        "6",
        "--sku",
        "AC-INSTALL-KIT",
        "--output",
        str(tmp_path / "f.csv"),
    )
    assert "supplier" in out and "central:cn" in out and "van:tech-1" in out
    assert (tmp_path / "f.csv").read_text().startswith("location,level,sku,week,")

    assert "received: 100 AC-INSTALL-KIT" in fc(
        "stock", "receive", "AC-INSTALL-KIT", "100", "central:cn"
    )
    assert "moved: 30 AC-INSTALL-KIT" in fc(
        "stock", "transfer", "AC-INSTALL-KIT", "30", "central:cn", "distribution:dc-east"
    )
    refused = fc("stock", "transfer", "AC-INSTALL-KIT", "300", "central:cn", "outlet:o-1", code=1)
    assert "central:cn holds 70 of AC-INSTALL-KIT, not the 300" in refused
    assert "a difference of: -2" in fc("stock", "count", "AP-HEPA-01", "1", "outlet:o-1")
    held = fc("stock", "held", "--sku", "AC-INSTALL-KIT")
    assert "distribution:dc-east" in held and "70" in held
