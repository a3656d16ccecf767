"""Estimated cost of a request, from a packaged price table (``prices.json``) and an optional override file.

Prices are US dollars per million tokens: ``input`` (uncached prompt tokens), ``output``, ``cached_input``
(prompt tokens read from the backend's cache; default: ``input``) and ``cache_write`` (tokens written to it;
default: ``input``). Token counts are Anthropic-shaped, as ``RequestRecord`` holds them: ``input_tokens``
excludes cached ones.

* A backend in ``free_providers`` (Ollama, llama.cpp, LM Studio: your own machine) costs 0.
* A model the table does not know has an **unknown** cost: ``None``, never 0, so a dashboard does not
  claim an expensive model was free.
* Names are matched after the usual decorations are taken off: a vendor prefix (``openai/gpt-4o`` on
  OpenRouter), Bedrock's region and version (``us.anthropic.claude-sonnet-4-5-20250929-v1:0``), a date
  (``gpt-4o-2024-08-06``, ``claude-sonnet-4-5-20250929``) or ``-latest``. A ``provider:model`` key in the
  table wins over the bare model name, for a backend that charges differently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from lynkr.errors import ConfigError

_BEDROCK_REGION = re.compile(r"^(?:us|eu|apac|au|ca|jp|global|us-gov)\.")
_VENDOR = re.compile(r"^(?:anthropic|openai|google|meta|mistral|amazon|cohere|deepseek|moonshotai|z-ai)\.")
_VERSION = re.compile(r"-v\d+(?::\d+)?$")
_DATE = re.compile(r"(?:-\d{8}|-\d{4}-\d{2}-\d{2}|@\d{8})$")


@dataclass(frozen=True, slots=True)
class Price:
    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0) -> float:
        cached = self.input if self.cached_input is None else self.cached_input
        written = self.input if self.cache_write is None else self.cache_write
        return (input_tokens * self.input + output_tokens * self.output + cache_read * cached
                + cache_write * written) / 1_000_000


FREE = Price(0.0, 0.0, 0.0, 0.0)


def candidates(model: str) -> list[str]:
    """The names ``model`` is looked up by, most specific first."""
    name = model.strip().lower()
    out = [name]

    def add(n: str) -> None:
        if n and n not in out:
            out.append(n)

    if "/" in name:  # OpenRouter's vendor/model, or a path-like deployment name
        name = name.rsplit("/", 1)[1]
        add(name)
    stripped = _VENDOR.sub("", _BEDROCK_REGION.sub("", name))
    add(stripped)
    stripped = _VERSION.sub("", stripped)
    add(stripped)
    for suffix in ("-latest", ":latest"):
        if stripped.endswith(suffix):
            stripped = stripped[: -len(suffix)]
            add(stripped)
    add(_DATE.sub("", stripped))
    return out


class PriceTable:
    def __init__(self, models: dict[str, Price], free_providers: set[str], *, updated: str | None = None) -> None:
        self.models = models
        self.free_providers = free_providers
        self.updated = updated
        self._cache: dict[tuple[str | None, str], Price | None] = {}

    def price(self, provider: str | None, model: str | None) -> Price | None:
        if provider in self.free_providers:
            return FREE
        if not model:
            return None
        key = (provider, model)
        if key in self._cache:
            return self._cache[key]
        found: Price | None = None
        for name in candidates(model):
            found = (self.models.get(f"{provider}:{name}") if provider else None) or self.models.get(name)
            if found is not None:
                break
        if len(self._cache) < 4096:  # bounded: model names come from clients
            self._cache[key] = found
        return found

    def cost(self, provider: str | None, model: str | None, *, input_tokens: int = 0, output_tokens: int = 0,
             cache_read: int = 0, cache_write: int = 0) -> float | None:
        """Estimated dollars, or None when the model's price is unknown."""
        price = self.price(provider, model)
        return None if price is None else price.cost(input_tokens, output_tokens, cache_read, cache_write)


def _parse(data: Any, source: str) -> tuple[dict[str, Price], set[str] | None, str | None]:
    if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
        raise ConfigError(f"{source}: expected an object with a \"models\" object")
    models: dict[str, Price] = {}
    for name, entry in data.get("models", {}).items():
        try:
            models[name.lower()] = Price(float(entry["input"]), float(entry["output"]),
                                         _opt(entry.get("cached_input")), _opt(entry.get("cache_write")))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{source}: model {name!r} needs numeric \"input\" and \"output\" prices "
                              "(dollars per million tokens)") from None
    free = data.get("free_providers")
    return models, set(free) if isinstance(free, list) else None, data.get("updated")


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


@lru_cache(maxsize=1)
def _packaged() -> tuple[dict[str, Price], set[str] | None, str | None]:
    text = resources.files("lynkr.observability").joinpath("prices.json").read_text("utf-8")
    return _parse(json.loads(text), "prices.json")


def load_prices(override: Path | None = None) -> PriceTable:
    """The packaged table, with ``override`` (MODEL_PRICES_FILE) laid over it."""
    models, free, updated = _packaged()
    models = dict(models)
    free_providers = set(free or ())
    if override is not None:
        try:
            data = json.loads(override.expanduser().read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"MODEL_PRICES_FILE: cannot read {override}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"MODEL_PRICES_FILE: {override} is not JSON ({exc})") from None
        extra, extra_free, extra_updated = _parse(data, str(override))
        models.update(extra)
        if extra_free is not None:
            free_providers = extra_free
        updated = extra_updated or updated
    return PriceTable(models, free_providers, updated=updated)
