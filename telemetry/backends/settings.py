"""Which time-series store to use and how to reach it (env `FLEETCARE_STORE__*`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class StoreSettings(BaseModel):
    """Which time-series store to use and how to reach it."""

    backend: Literal["embedded", "influxdb"] = Field(
        "embedded", description="embedded = SQLite file in the data dir; influxdb = v1 HTTP API."
    )
    path: str | None = Field(
        None, description="Embedded store file; default {data_dir}/telemetry.sqlite3."
    )
    durable: bool = Field(
        True,
        description="Embedded: fsync every batch (synchronous=FULL) before it is acknowledged.",
    )
    influx_url: str = "http://127.0.0.1:8086"
    influx_database: str = "fleetcare"
    influx_retention_policy: str = "fleetcare"
    influx_retention_duration: str = Field(
        "400d", description="InfluxQL duration; 0s keeps forever."
    )
    influx_shard_duration: str | None = Field(
        None,
        description="InfluxQL duration of a shard group of the retention policy we create "
        "(default: InfluxDB's, 7d for a retention over 6 months).",
    )
    influx_create: bool = Field(
        True, description="Create database and retention policy when missing (off for 2.x/3.x)."
    )
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_token: SecretStr | None = Field(None, description="InfluxDB 2.x/3.x token (v1 API).")
    influx_batch_points: int = Field(5000, ge=1, le=100_000)
    influx_timeout_s: float = Field(10.0, gt=0)
    influx_gzip: bool = True
