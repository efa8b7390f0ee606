"""The HTTP API (FastAPI): `create_app(ApiContext(db, store))`."""

from api.app import create_app
from api.context import ApiContext

__all__ = ["ApiContext", "create_app"]
