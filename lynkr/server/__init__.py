"""The aiohttp application: middlewares and thin route handlers."""

from lynkr.server.app import create_app

__all__ = ["create_app"]
