"""Tuning of the ingest worker (a section of the engine's settings)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class IngestOptions(BaseModel):
    client_id: str | None = Field(
        None,
        description="Fixed MQTT client id (persistent session). Default fleetcare-ingest-{host}; "
        "give every worker its own.",
    )
    shared_group: str | None = Field(
        "fleetcare-ingest",
        description="Shared-subscription group so N workers split the load; empty for "
        "brokers without $share (amqtt).",
    )
    batch_size: int = Field(2000, ge=1, le=50_000, description="Flush when this many wait.")
    max_batch_age_ms: int = Field(200, ge=1, description="Flush when the oldest waited this long.")
    idle_flush_ms: int = Field(
        5,
        ge=1,
        description="Flush when nothing arrived for this long (the broker's in-flight "
        "window is full or the stream paused).",
    )
    receive_maximum: int = Field(
        10_000,
        ge=1,
        le=65_535,
        description="MQTT 5 Receive Maximum: unacknowledged messages "
        "the broker may send us (bounds memory during a store outage).",
    )
    dedupe_cache: int = Field(
        100_000,
        ge=0,
        description="Recent message ids remembered (at least the last half, at most all); "
        "the store's own key catches older repeats.",
    )
    key_ledger: bool | None = Field(
        None,
        description="Record each stored message key in the database, so that workers "
        "sharing the subscription store a repeat that reaches another worker once and count "
        "it as a duplicate. Needed only where the store keys points by time (InfluxDB); "
        "unset: on when the store is such and `shared_group` is set.",
    )
    key_ledger_s: float = Field(
        300,
        gt=0,
        description="Seconds a key stays in the ledger (rows: message rate x this). It "
        "covers a device's resend, a redelivery after a worker restart and the fleet-wide "
        "resend after a reconnect; an older repeat with the same device time is still "
        "stored once, by the store's key.",
    )
    max_payload_bytes: int = Field(16 * 1024, ge=64)
    max_future_s: float = Field(600, ge=0, description="Reject device time this far ahead.")
    max_past_s: float = Field(366 * 86400, ge=0, description="Reject device time this old.")
    require_registered: bool = Field(
        False,
        description="Accept only registered devices (others are dead letters); off: a "
        "device is registered on its first stored message, with the type its topic names.",
    )
    registry_cache_s: float = Field(
        30,
        ge=0,
        description="Seconds a worker trusts what it read of devices' registration and firmware.",
    )
    profiles_refresh_s: float = Field(
        10,
        gt=0,
        description="Seconds between looks for a newly imported product profile version "
        "(picked up without a restart).",
    )
    state_flush_s: float = Field(
        5.0,
        gt=0,
        description="Device state (latest values, last seen, online) is written "
        "this often; the telemetry itself is durable before every acknowledgement.",
    )
    offline_after_s: float = Field(
        900, gt=0, description="Silence after which a device is offline."
    )
    silence_check_s: float = Field(30, gt=0)
    resend_window_s: float = Field(
        120.0,
        ge=0,
        description="After a lost connection (a broker restart drops the shared "
        "subscription, and with it what devices send until it is back), ask every device to "
        "resend what it sent from this long before the loss (`resend` on the fleet-wide cmd "
        "topic; duplicates are stored once). 0 = off.",
    )
    rules_backlog: int = Field(
        64,
        ge=1,
        description="Stored batches that may wait for the per-message rules, which run "
        "after the acknowledgement; past that a batch is left to the evaluator's next pass.",
    )
    backoff_initial_s: float = Field(0.2, gt=0)
    backoff_max_s: float = Field(5.0, gt=0)
    shutdown_grace_s: float = Field(15.0, ge=0, description="How long SIGTERM waits for a flush.")
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics; 0 = off.")
    dead_letter_max_bytes: int = Field(256 * 1024, ge=1024)
