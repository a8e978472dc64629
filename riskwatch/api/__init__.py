"""The HTTP API over the alert desk (FastAPI); `create_app` and `app_from_settings`."""

from riskwatch.api.app import create_app
from riskwatch.api.server import app_from_settings, serve

__all__ = ["app_from_settings", "create_app", "serve"]
