"""`fleetcare anomaly score` on files a user brings: any time column, any delimiter, one
or several value columns, a score and the engine's decision per row, and a message
that says what to fix when the file is not readable."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from fleetcare.cli import app
from models.anomaly import score_stream

runner = CliRunner()
START = datetime(2026, 3, 1, tzinfo=UTC)


def write(path: Path, rows: list[list[object]], header: list[str], delimiter: str = ",") -> Path:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh, delimiter=delimiter)
        out.writerow(header)
        out.writerows(rows)
    return path


def read(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def series(n: int = 2000, spike_at: int = 1500) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(1)
    stamps = [(START + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(n)]
    x = rng.normal(10, 1, n)
    x[spike_at] = 40
    return stamps, x


def test_every_row_gets_a_score_and_the_engines_decision(tmp_path: Path) -> None:
    stamps, x = series()
    src = write(
        tmp_path / "in.csv",
        [[t, f"{v:.4f}", "site-a"] for t, v in zip(stamps, x, strict=True)],
        ["timestamp", "value", "site"],
    )
    out = tmp_path / "out" / "scored.csv"
    result = runner.invoke(
        app, ["anomaly", "score", str(src), "--time-column", "timestamp", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = read(out)
    assert len(rows) == 2000
    assert list(rows[0]) == [
        "timestamp",
        "value",
        "site",
        "anomaly_score",
        "anomaly",
        "anomaly_kind",
    ]
    scores = np.array([float(r["anomaly_score"]) for r in rows])
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert rows[1500]["anomaly"] == "1" and rows[1500]["anomaly_kind"] == "spike"
    assert sum(r["anomaly"] == "1" for r in rows) <= 3
    # the same numbers the engine's own code path gives
    t = np.array([datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp() for s in stamps])
    expected = score_stream(t, np.round(x, 4)).score
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert "1 alarm(s)" in result.stderr


def test_several_columns_a_delimiter_epoch_times_and_known_normal_rows(tmp_path: Path) -> None:
    _, x = series(spike_at=300)
    epoch = [int((START + timedelta(minutes=5 * i)).timestamp() * 1000) for i in range(len(x))]
    rows = [[e, f"{v:.3f}", f"{2 * v:.3f}", "7"] for e, v in zip(epoch, x, strict=True)]
    rows[10][1] = ""  # a missing reading
    src = write(tmp_path / "in.csv", rows, ["ms", "fan", "current", "constant"], delimiter=";")
    out = tmp_path / "scored.csv"
    result = runner.invoke(
        app,
        [
            "anomaly",
            "score",
            str(src),
            "--time-column",
            "ms",
            "--delimiter",
            ";",
            "--columns",
            "fan,current",
            "--normal-rows",
            "500",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    scored = read(out, ";")
    assert len(scored) == 2000 and not any(r["anomaly"] == "1" for r in scored[:500])
    assert "2 column(s) (fan, current)" in result.stderr


def test_a_file_it_cannot_read_says_what_to_fix(tmp_path: Path) -> None:
    src = write(tmp_path / "in.csv", [["2026-01-01 00:00:00", "1"], ["yesterday", "2"]], ["t", "v"])
    out = str(tmp_path / "o.csv")
    wrong_column = runner.invoke(
        app, ["anomaly", "score", str(src), "--time-column", "time", "-o", out]
    )
    assert (
        wrong_column.exit_code == 2
        and "no column 'time'; the columns are t, v" in wrong_column.stderr
    )
    bad_time = runner.invoke(app, ["anomaly", "score", str(src), "--time-column", "t", "-o", out])
    assert bad_time.exit_code == 2 and "row 3: 'yesterday' in 't' is not a time" in bad_time.stderr
    no_values = write(tmp_path / "words.csv", [["2026-01-01 00:00:00", "x"]], ["t", "w"])
    none = runner.invoke(app, ["anomaly", "score", str(no_values), "--time-column", "t", "-o", out])
    assert none.exit_code == 2 and "no numeric column to score" in none.stderr
    missing_file = runner.invoke(
        app, ["anomaly", "score", str(tmp_path / "nope.csv"), "--time-column", "t", "-o", out]
    )
    assert missing_file.exit_code == 2 and "nope.csv" in missing_file.stderr


def test_a_condition_column_is_scored_with_the_others_but_never_alarmed_on(
    tmp_path: Path,
) -> None:
    stamps, x = series(spike_at=1500)
    setpoint = np.full(len(x), 22.0)  # the user's choice, changed now and then
    setpoint[700:], setpoint[1100:], setpoint[1800:] = 28.0, 17.0, 25.0
    rows = [[t, f"{v:.4f}", s] for t, v, s in zip(stamps, x, setpoint, strict=True)]
    src = write(tmp_path / "in.csv", rows, ["t", "room", "setpoint"])
    out = tmp_path / "scored.csv"

    def scored(*extra: str) -> list[dict[str, str]]:
        args = ["anomaly", "score", str(src), "--time-column", "t", "-o", str(out), *extra]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        return read(out)

    every = scored()
    assert any(r["anomaly"] == "1" for r in every[700:1500])  # the setpoint's steps
    quiet = scored("--conditions", "setpoint")
    alarms = [i for i, r in enumerate(quiet) if r["anomaly"] == "1"]
    assert alarms == [1500]  # only the room's own spike
    assert scored("--columns", "room", "--conditions", "setpoint") == quiet

    for bad, says in (("nope", "no column 'nope'"), ("room,setpoint", "leave at least one")):
        args = ["anomaly", "score", str(src), "--time-column", "t", "-o", str(out)]
        result = runner.invoke(app, [*args, "--conditions", bad])
        assert result.exit_code == 2 and says in result.stderr
