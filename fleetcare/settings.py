"""Engine settings: env vars `FLEETCARE_*` (nested with `__`), an optional TOML file.

    FLEETCARE_STORE__BACKEND=influxdb  FLEETCARE_MQTT__URL=mqtt://broker:1883
    fleetcare --config fleetcare.toml ingest

Precedence: command-line options > environment > config file > defaults.
Built in the entry point and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from db.database import DatabaseSettings
from ingest.options import IngestOptions
from telemetry.backends import StoreSettings
from telemetry.connection import MqttSettings


class SettingsError(Exception):
    """Settings that cannot work on this machine; the message says what to change."""


class LogSettings(BaseSettings):
    format: Literal["console", "json"] = "console"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class NotifySettings(BaseSettings):
    """Where customer messages go. Without a webhook they are written to the log."""

    webhook_url: str | None = Field(None, description="POST each message here as JSON.")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 signing key.")
    weekly_cap: int = Field(3, ge=0, description="Proactive messages per customer per 7 days.")
    max_attempts: int = Field(5, ge=1, description="Sends before a message is marked failed.")


class ApiSettings(BaseSettings):
    """The HTTP API (docs/api.md)."""

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8080, ge=0, le=65535, description="Port to listen on.")
    workers: int = Field(1, ge=1, description="API processes (one per core to use them all).")
    rate_per_minute: int = Field(600, ge=1, description="Requests a minute per API key.")
    jwt_secret: str = Field(
        "",
        description="Signs the console's and `/api/v1/auth/token`'s tokens. Empty: a random "
        "secret per process (sign-ins end at a restart; several API processes need one set).",
    )
    metrics_token: str = Field(
        "",
        description="A bearer token Prometheus may scrape the API's /metrics with (ops and "
        "admin credentials work too). Empty: only those.",
    )
    auth_cache_s: float = Field(
        5.0,
        ge=0,
        description="Seconds each API process remembers whose key or token it saw; a "
        "revoked key or disabled account stops within this. 0: read on every request.",
    )
    token_hours: float = Field(8.0, gt=0, description="How long a sign-in lasts.")
    secure_cookies: bool = Field(
        False, description="Send the console's cookie over HTTPS only (on behind TLS)."
    )


class BrokerAuthSettings(BaseSettings):
    """Where `fleetcare devices provision` writes Mosquitto's auth files (docs/deploy.md)."""

    password_file: str | None = Field(None, description="Mosquitto's password_file.")
    acl_file: str | None = Field(None, description="Mosquitto's acl_file.")
    pid_file: str | None = Field(
        None, description="Mosquitto's pid_file: it is sent SIGHUP to reload the files."
    )


class RulesSettings(BaseSettings):
    """The rules evaluator (docs/rules.md)."""

    files: list[str] = Field(
        default_factory=list, description="User rule files (YAML), globs allowed."
    )
    interval_s: float = Field(60.0, gt=0, description="Seconds between evaluation passes.")
    partition: str = Field(
        "0/1", pattern=r"^\d+/\d+$", description="This replica's share: k/n (0-based)."
    )
    device_time: bool = Field(
        False,
        description="Run on the devices' clock (replays, accelerated sims): a pass is at "
        "the newest reading stored, and silence is judged by the devices' timestamps.",
    )
    metrics_port: int = Field(9465, ge=0, description="Prometheus /metrics port; 0 = off.")
    at_ingest: bool = Field(
        True, description="Ingest workers fire per-message rules as each batch is stored."
    )
    at_ingest_memory_s: float = Field(
        60.0,
        ge=0,
        description="How long an ingest worker trusts its memory that an alert is firing "
        "before it reads the store again (forgotten at the first message that does not "
        "hit); 0 reads the store for every hit.",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLEETCARE_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: str = Field("./fleetcare-data", description="Embedded stores live here.")
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    ingest: IngestOptions = Field(default_factory=IngestOptions)
    log: LogSettings = Field(default_factory=LogSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    broker: BrokerAuthSettings = Field(default_factory=BrokerAuthSettings)

    toml_file: ClassVar[Path | None] = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_file))
        return tuple(sources)


def load_settings(config_file: str | None = None, **overrides: Any) -> Settings:
    """Settings from (in order of precedence) overrides, env, the TOML file, defaults."""
    if config_file is not None and not Path(config_file).is_file():
        raise FileNotFoundError(f"config file {config_file} does not exist")

    class _FromFile(Settings):
        toml_file: ClassVar[Path | None] = Path(config_file) if config_file else None

    loaded = _FromFile(**overrides)
    return Settings.model_validate(loaded.model_dump())
