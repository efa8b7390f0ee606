"""What the app is built from: passed in by whoever builds it (`fleetcare api`, the demo,
a test), never read from the environment here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from api.auth import Tokens
from db.database import Database
from ingest.decode import Decoder
from models.registry import ModelRegistry
from rules.catalog import Catalog, load_catalog
from telemetry.profile import ProfileSet
from telemetry.store import TelemetryStore
from telemetry.topics import TopicScheme


@dataclass(frozen=True)
class ApiContext:
    db: Database
    store: TelemetryStore
    rate_per_minute: int = 600  # per key; a burst may use a minute's worth at once
    tokens: Tokens = field(default_factory=Tokens.ephemeral)
    photo_dir: Path = Path("photos")  # technicians' completion photos
    # how dead letters are decoded again when ops replay them
    decoder: Decoder = field(default_factory=lambda: Decoder(TopicScheme("fleetcare")))
    catalog: Catalog = field(default_factory=load_catalog)  # for rule status
    models: ModelRegistry | None = None  # for model status
    secure_cookies: bool = False  # the console's cookie only over HTTPS (behind TLS: on)
    # seconds a credential's account is remembered (api/authcache.py); 0: read every time
    auth_cache_s: float = 0.0
    # a bearer token Prometheus may read /metrics with ("": ops and admin credentials only)
    metrics_token: str = ""
    freeze_gc: bool = False  # a serving process: keep startup's objects out of collections
    owns_store: bool = True  # open and close it with the app (not when shared: the demo)
    # (account, password) the sign-in page shows: the demo's login, while the demo runs
    sign_in_hint: tuple[str, str] | None = None
    # the product profiles in force (read again every `profiles_refresh_s`); None: the
    # shipped ones
    profiles: Callable[[], ProfileSet] | None = None
    profiles_refresh_s: float = 10.0
