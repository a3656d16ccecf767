"""Typed application state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from lynkr.config import Settings
from lynkr.dispatch import Dispatcher
from lynkr.resilience.shedding import LoadShedder
from lynkr.server.response_store import ResponseStore
from lynkr.store import Database

SETTINGS = web.AppKey("settings", Settings)
HTTP = web.AppKey("http", aiohttp.ClientSession)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
STATE = web.AppKey("state", dict)
RESPONSES = web.AppKey("responses", ResponseStore)
SHEDDER = web.AppKey("shedder", LoadShedder)
STORE = web.AppKey("store", Database)
OBSERVERS = web.AppKey("observers", list)  # list[lynkr.observability.record.Observer]
# who is calling and may they (lynkr.server.access), run by the request middleware before every handler
AUTHORIZE: web.AppKey[Callable[[web.Request], Awaitable[None]]] = web.AppKey("authorize")
ACCESS_LOG = web.AppKey("access_log", bool)  # one INFO line per request: only when LOG_LEVEL lets INFO through

REQUEST_ID = web.RequestKey("request_id", str)
LOG_SUFFIX = web.RequestKey("log_suffix", str)
