"""The one I/O seam to backends: POST JSON, map every foreign failure to lynkr's error tree. Streamed bodies
are read by ``lynkr.providers.readers``."""

from __future__ import annotations

import urllib.request
from contextlib import AbstractAsyncContextManager, nullcontext
from enum import Enum
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from lynkr.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    upstream_error_for_status,
)
from lynkr.wire.body import Serialized

_JSON = {"Content-Type": "application/json"}


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _upstream_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:500].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            # "Message": AWS answers IAM and signature failures so
            return str(err.get("message") or err.get("Message") or err.get("error") or err)
        return str(err)
    return str(data)[:500]


async def raise_for_status(resp: aiohttp.ClientResponse, provider: str) -> None:
    if resp.status < 300:
        return
    body = await resp.read()
    cls = upstream_error_for_status(resp.status)
    detail = _upstream_message(body)
    who = {401: f"{provider} rejected lynkr's API key for it (check the backend key in .env)",
           403: f"{provider} refused lynkr's API key for this request (check the backend key's permissions)"}
    prefix = who.get(resp.status, f"{provider} answered {resp.status}")
    raise cls(f"{prefix}: {detail}", provider=provider, upstream_status=resp.status,
              retry_after=_retry_after(resp))


@cache
def proxy_for(url: str) -> str | None:
    """The HTTP(S)_PROXY that applies to ``url`` per the environment (NO_PROXY honoured); looked up once per
    backend URL: the environment does not change while lynkr runs."""
    parts = urlsplit(url)
    return _proxy(parts.scheme, parts.hostname or "")


def _proxy(scheme: str, host: str) -> str | None:
    if not host or urllib.request.proxy_bypass_environment(host):  # type: ignore[attr-defined]
        return None
    proxies = urllib.request.getproxies_environment()
    return proxies.get(scheme) or proxies.get("all")


class _Call:
    """One backend call as an async context manager: the response once it is 2xx, else the typed error; and
    every foreign failure while it is open (connect, timeout, a drop mid-body) mapped to lynkr's error
    tree, naming the backend and URL. A class, not ``@asynccontextmanager``: it runs on every request, and
    each generator-based manager is an async generator to create, register and finalise."""

    __slots__ = ("_request", "_response", "provider", "url")

    def __init__(self, request: Any, provider: str, url: str) -> None:
        self._request = request  # aiohttp's _RequestContextManager, not yet entered
        self._response: aiohttp.ClientResponse | None = None
        self.provider = provider
        self.url = url

    async def __aenter__(self) -> aiohttp.ClientResponse:
        try:
            resp = self._response = await self._request.__aenter__()
            await raise_for_status(resp, self.provider)
        except BaseException as exc:
            if self._response is not None:
                await self._request.__aexit__(type(exc), exc, exc.__traceback__)
            if _foreign(exc):
                raise self._mapped(exc) from None
            raise
        return resp

    async def __aexit__(self, et: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        await self._request.__aexit__(et, exc, tb)
        if exc is not None and _foreign(exc):
            raise self._mapped(exc) from None

    def _mapped(self, exc: BaseException) -> BaseException:
        provider, url = self.provider, self.url
        if isinstance(exc, UpstreamError):
            exc.provider = exc.provider or provider
            return exc
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(f"{provider} at {url} did not answer in time", provider=provider)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return UpstreamUnavailable(f"cannot reach {provider} at {url}: {exc.os_error or exc}", provider=provider)
        if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
            return UpstreamBadResponse(f"{provider} closed the connection mid-answer ({exc})", provider=provider)
        return UpstreamUnavailable(f"request to {provider} at {url} failed: {exc}", provider=provider)


def _foreign(exc: BaseException) -> bool:
    """A failure ``_Call`` maps (the rest, like cancellation or lynkr's own errors, pass unchanged)."""
    return isinstance(exc, (TimeoutError, aiohttp.ClientError)) or (
        isinstance(exc, UpstreamError) and not exc.provider)


def _as_json(obj: Any) -> Any:
    """orjson's ``default`` under OPT_PASSTHROUGH_SUBCLASS: lists that carry their JSON (``Serialized``, tools
    lists) as that JSON; any other subclass of a JSON type as that type."""
    if isinstance(obj, Serialized):
        return orjson.Fragment(obj.json)
    if isinstance(obj, Enum):
        return obj.value
    for base in (dict, list, str, int, float):
        if isinstance(obj, base):
            return base(obj)  # type: ignore[arg-type]
    raise TypeError(f"{type(obj).__name__} is not JSON")


def dump_json(body: Any) -> bytes:
    """A backend request body as JSON bytes (what ``post`` sends, and what a signer must sign)."""
    return orjson.dumps(body, default=_as_json, option=orjson.OPT_PASSTHROUGH_SUBCLASS)


def post(
    http: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    *,
    provider: str,
    headers: dict[str, str] | None = None,
    timeout: aiohttp.ClientTimeout | None = None,
) -> _Call:
    """POST ``body`` as JSON: ``async with post(...) as resp`` gives the response once it is 2xx, else raises
    the typed error."""
    return _Call(http.post(url, data=dump_json(body), headers={**_JSON, **headers} if headers else _JSON,
                           timeout=timeout, proxy=proxy_for(url)), provider, url)


def get(
    http: aiohttp.ClientSession,
    url: str,
    *,
    provider: str,
    headers: dict[str, str] | None = None,
    timeout: aiohttp.ClientTimeout | None = None,
) -> _Call:
    """GET ``url``, as ``post``."""
    return _Call(http.get(url, headers=headers, timeout=timeout, proxy=proxy_for(url)), provider, url)


async def read_json(resp: aiohttp.ClientResponse, provider: str) -> Any:
    body = await resp.read()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamBadResponse(f"{provider} sent a body that is not JSON: {body[:200]!r}",
                                  provider=provider) from None


Answer = aiohttp.ClientResponse | _Call  # a response already open, or the call (``post(...)``) that opens one


def opened(answer: Answer) -> AbstractAsyncContextManager[aiohttp.ClientResponse]:
    """``async with opened(answer) as resp``: the response, opened by the call when it is one."""
    return answer if isinstance(answer, _Call) else nullcontext(answer)
