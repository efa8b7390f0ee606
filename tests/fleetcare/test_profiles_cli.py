"""`fleetcare profiles …` as a maker's engineer uses it: export a family, change it, check
it, import it as the next version, and see what changed."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from fleetcare.cli import app

runner = CliRunner()


def test_export_edit_validate_import_and_diff_a_family(tmp_path: Path) -> None:
    d = ["--data-dir", str(tmp_path / "data")]
    exported = runner.invoke(app, [*d, "profiles", "export", "dehumidifier"])
    assert exported.exit_code == 0, exported.output
    doc = yaml.safe_load(exported.stdout)
    assert doc["name"] == "dehumidifier" and doc["version"] == 1

    doc["version"] = 2
    doc["metrics"].append({"name": "noise_db", "unit": "dB", "kind": "float", "range": [0, 120]})
    doc["health_card"].append({"metric": "noise_db", "label": {"en": "Noise", "zh": "噪音"}})
    f = tmp_path / "dehumidifier.yaml"
    f.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))

    checked = runner.invoke(app, [*d, "profiles", "validate", str(f)])
    assert checked.exit_code == 0, checked.output
    assert "ok: dehumidifier v2" in checked.stdout

    imported = runner.invoke(app, [*d, "profiles", "import", str(f)])
    assert imported.exit_code == 0, imported.output
    assert "imported: dehumidifier v2" in imported.stdout
    again = runner.invoke(app, [*d, "profiles", "import", str(f)])
    assert "unchanged" in again.stdout

    listed = runner.invoke(app, [*d, "profiles", "list"])
    row = next(line for line in listed.stdout.splitlines() if "dehumidifier" in line)
    assert "│ 2 " in row and "database" in row

    history = runner.invoke(app, [*d, "profiles", "history", "dehumidifier"])
    assert "shipped" in history.stdout and str(f) in history.stdout

    diff = runner.invoke(app, [*d, "profiles", "diff", "dehumidifier", "--from", "1", "--to", "2"])
    assert diff.exit_code == 0, diff.output
    assert "+ metric noise_db" in diff.stdout and "+- name: noise_db" in diff.stdout

    shown = runner.invoke(app, [*d, "profiles", "show", "dehumidifier", "--yaml"])
    assert yaml.safe_load(shown.stdout)["version"] == 2

    doc["version"] = 1
    f.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    older = runner.invoke(app, [*d, "profiles", "import", str(f)])
    assert older.exit_code == 1 and "give it version 3 or higher" in older.output


def test_a_file_with_mistakes_is_refused_with_every_path(tmp_path: Path) -> None:
    f = tmp_path / "kettle.yaml"
    f.write_text(
        "name: kettle\nversion: 1\ntitle: Kettle\nmodels: [{code: K-1}]\n"
        "metrics:\n- {name: temp_c, kind: float, ranges: [0, 110]}\n"
        "health_card:\n- {metric: temperature, label: {en: Water}}\n"
    )
    checked = runner.invoke(app, ["--data-dir", str(tmp_path), "profiles", "validate", str(f)])
    assert checked.exit_code == 1
    assert "metrics[0].ranges: unknown field 'ranges': did you mean 'range'?" in checked.output


def test_a_profile_whose_rule_names_a_metric_it_lacks_is_refused(tmp_path: Path) -> None:
    exported = runner.invoke(
        app, ["--data-dir", str(tmp_path / "data"), "profiles", "export", "dehumidifier"]
    )
    doc = yaml.safe_load(exported.stdout)
    doc["version"] = 2
    doc["rules"].append(
        {
            "id": "dehumidifier_loud",
            "title": "Too loud",
            "problem_kind": "compressor_fault",
            "when": {"threshold": {"metric": "noise_db", "above": 60}},
        }
    )
    f = tmp_path / "dehumidifier.yaml"
    f.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    refused = runner.invoke(
        app, ["--data-dir", str(tmp_path / "data"), "profiles", "import", str(f)]
    )
    assert refused.exit_code == 1
    assert "rule dehumidifier_loud" in refused.output
    assert "dehumidifier v2 has no metric noise_db" in refused.output


def test_the_profile_json_schema_is_published() -> None:
    shown = runner.invoke(app, ["profiles", "schema"])
    assert shown.exit_code == 0
    assert '"title": "FleetCare product profile v1"' in shown.stdout
