"""FleetCare's Prometheus alerts (deploy/prometheus): Prometheus's own checker accepts the
config and rules, each alert fires when its unit test says and not before, every alert
has a test and a runbook, every metric they name is one the engine exports, and the
compose stack scrapes each part where it listens."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from api.metrics import api_registry
from db.database import Database
from ingest.metrics import IngestMetrics
from rules.metrics import RulesMetrics
from tests.fleetcare.test_compose import config
from tests.services import missing

ROOT = Path(__file__).parents[2]
PROM = ROOT / "deploy/prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        missing("promtool (Debian's prometheus package; scripts/test.sh installs it)")
    return subprocess.run(
        [str(found), *args], capture_output=True, text=True, timeout=120, check=False
    )


def alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_prometheus_accepts_the_config_and_its_alert_rules(tmp_path: Path) -> None:
    # the API's token file is mounted by compose at run time: a stand-in here
    token = tmp_path / "api-metrics-token"
    token.write_text("t" * 32)
    config = (PROM / "prometheus.yml").read_text()
    assert "/run/secrets/api-metrics-token" in config
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/run/secrets/api-metrics-token", str(token))
    )
    shutil.copy(PROM / "alerts.yml", tmp_path / "alerts.yml")
    out = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in out.stdout + out.stderr


def test_each_alert_fires_when_it_should_and_not_before() -> None:
    out = promtool("test", "rules", str(PROM / "alerts.test.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout + out.stderr


def test_every_alert_has_a_firing_test_a_severity_and_a_runbook_in_the_docs() -> None:
    tests = yaml.safe_load((PROM / "alerts.test.yml").read_text())["tests"]
    fired = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c.get("exp_alerts")}
    quiet = {c["alertname"] for t in tests for c in t["alert_rule_test"] if not c.get("exp_alerts")}
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names))
    assert fired == set(names), "an alert without a test that makes it fire"
    # every alert with a `for` is also shown quiet just before it fires
    assert {a["alert"] for a in alerts() if "for" in a} <= quiet
    headings = {
        line.removeprefix("#### ").strip().lower()
        for line in (ROOT / "docs/deploy.md").read_text().splitlines()
        if line.startswith("#### ")
    }
    for a in alerts():
        assert a["labels"]["severity"] in {"info", "warning", "critical"}, a["alert"]
        assert a["annotations"]["summary"], a["alert"]
        anchor = a["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor == a["alert"].lower() and anchor in headings, a["alert"]


def _exported(db: Database) -> set[str]:
    """Every series name the ingest workers, evaluators and the API export (with _total,
    _bucket, _count and _sum where Prometheus's client adds them)."""
    names: set[str] = set()
    for registry in (IngestMetrics().registry, RulesMetrics().registry, api_registry(db)):
        for family in registry.collect():
            names.add(family.name)
            kinds = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
            names.update(family.name + s for s in kinds.get(family.type, []))
    return names


def test_the_alerts_name_only_metrics_the_engine_exports(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    db.upgrade()
    exported = _exported(db)
    named = {m for a in alerts() for m in re.findall(r"\bfleetcare_[a-z_]+\b", a["expr"])}
    assert named, "the alerts read the engine's metrics"
    assert named <= exported, sorted(named - exported)


def test_compose_scrapes_every_part_where_it_listens_with_the_alerts_mounted() -> None:
    services = config()["services"]
    prom = services["prometheus"]
    mounts = {v["target"]: v.get("source", "") for v in prom["volumes"]}
    assert mounts["/etc/prometheus"] == str(PROM)
    scrape = yaml.safe_load((PROM / "prometheus.yml").read_text())["scrape_configs"]
    jobs = {j["job_name"]: j for j in scrape}
    ingest = jobs["fleetcare-ingest"]["dns_sd_configs"][0]
    assert ingest["names"] == ["ingest"] and ingest["type"] == "A"
    assert services["ingest"]["command"][-2:] == ["--metrics-port", str(ingest["port"])]
    assert services["ingest"]["environment"]["FLEETCARE_INGEST__METRICS_HOST"] == "0.0.0.0"
    (rules,) = jobs["fleetcare-rules"]["static_configs"][0]["targets"]
    host, port = rules.split(":")
    assert host == "evaluator" and services[host]["environment"][
        "FLEETCARE_RULES__METRICS_PORT"
    ] == str(port)
    (api,) = jobs["fleetcare-api"]["static_configs"][0]["targets"]
    host, port = api.split(":")
    cmd = services[host]["command"]
    assert cmd[cmd.index("--port") + 1] == port
