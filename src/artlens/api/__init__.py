"""The REST API and web page over one collection: ``create_app(ApiSettings(collection=PATH))``."""

from artlens.api.app import create_app
from artlens.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
