"""Typed application state."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from lynkr.config import Settings
from lynkr.providers import Provider

SETTINGS = web.AppKey("settings", Settings)
HTTP = web.AppKey("http", aiohttp.ClientSession)
PROVIDER = web.AppKey("provider", Provider)
STATE = web.AppKey("state", dict)

REQUEST_ID = web.RequestKey("request_id", str)
LOG_SUFFIX = web.RequestKey("log_suffix", str)
