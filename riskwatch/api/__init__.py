"""The HTTP API over the alert desk (FastAPI); `create_app` and `app_from_settings`.

Loaded on first use, so `riskwatch.api.auth` (tokens and roles, used by
`riskwatch run` before it serves anything) does not import FastAPI."""

from __future__ import annotations

__all__ = ["app_from_settings", "create_app", "serve"]


def __getattr__(name: str):
    if name == "create_app":
        from riskwatch.api.app import create_app
        return create_app
    if name in ("app_from_settings", "serve"):
        from riskwatch.api import server
        return getattr(server, name)
    raise AttributeError(f"module 'riskwatch.api' has no attribute {name!r}")
