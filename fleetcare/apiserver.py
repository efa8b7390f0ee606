"""The API app built from settings: in this process (`fleetcare api`, the demo) or in each
of `fleetcare api --workers N`'s processes, which uvicorn starts by importing
`app_from_env`."""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from fleetcare.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI


def build_api(settings: Settings) -> FastAPI:
    """The app for these settings: the database and telemetry store they name."""
    from api import ApiContext, create_app
    from api.auth import Tokens
    from fleet.profiles import LiveProfiles, ProfileRepository
    from fleetcare.wiring import catalog_from, make_decoder, model_registry, open_database
    from telemetry.backends import create_store

    a = settings.api
    ttl = timedelta(hours=a.token_hours)
    db = open_database(settings)
    live = LiveProfiles(ProfileRepository(db), ttl=0)
    profiles = live.get()
    ctx = ApiContext(
        db=db,
        store=create_store(settings.store, settings.data_dir, profiles.types),
        rate_per_minute=a.rate_per_minute,
        tokens=Tokens(a.jwt_secret, ttl) if a.jwt_secret else Tokens.ephemeral(ttl),
        photo_dir=Path(settings.data_dir) / "photos",
        decoder=make_decoder(settings, profiles),
        catalog=catalog_from(settings.rules, profiles),
        models=model_registry(settings),
        secure_cookies=a.secure_cookies,
        auth_cache_s=a.auth_cache_s,
        metrics_token=a.metrics_token,
        freeze_gc=True,
        profiles=live.get,
        profiles_refresh_s=settings.ingest.profiles_refresh_s,
    )
    return create_app(ctx)


WORKER_SETTINGS = "_FLEETCARE_API_WORKER_SETTINGS"  # not FLEETCARE_*: settings don't read it


def app_from_env() -> FastAPI:
    """The app in one of `fleetcare api --workers N`'s processes: uvicorn starts each by
    importing this, so the settings the command resolved travel in the environment."""
    from fleetcare import logs

    s = Settings.model_validate(json.loads(os.environ[WORKER_SETTINGS]))
    logs.configure(s.log.format, s.log.level)
    return build_api(s)


def settings_for_workers(s: Settings) -> str:
    """The settings as JSON for the worker processes, secrets included. Every worker must
    sign with one key, so a random one is chosen here when none is set."""
    if not s.api.jwt_secret:
        s = s.model_copy(
            update={"api": s.api.model_copy(update={"jwt_secret": secrets.token_urlsafe(32)})}
        )

    def plain(o: object) -> object:
        if isinstance(o, SecretStr):
            return o.get_secret_value()
        raise TypeError(f"cannot pass {type(o).__name__} to the workers")

    return json.dumps(s.model_dump(), default=plain)
