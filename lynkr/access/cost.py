"""Estimated US dollars for one request, for budgets.

``estimate_usd`` is the one function budgets call. It takes ``record.cost_usd`` when the metrics
observer has set it from lynkr.observability's price table (that observer runs before the budgets' one);
otherwise it falls back to the small table here: local backends cost nothing, a few well-known models
have list prices, anything else counts 0 (so a $ budget only bites on models with a known price; token
and request budgets work for every model).
"""

from __future__ import annotations

from lynkr.observability.record import RequestRecord

LOCAL_BACKENDS = frozenset({"ollama", "llamacpp", "lmstudio"})

# USD per million tokens: input, output (cache reads at 10% of input, cache writes at 125%)
_PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-haiku-4": (1.0, 5.0),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.0),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.0, 8.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5": (1.25, 10.0),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-pro": (1.25, 10.0),
}


def _price(model: str) -> tuple[float, float] | None:
    name = model.rsplit("/", 1)[-1].lower()
    best = max((p for p in _PRICES if p in name), key=len, default=None)
    return _PRICES[best] if best else None


def estimate_usd(record: RequestRecord) -> float:
    known = getattr(record, "cost_usd", None)
    if isinstance(known, int | float):
        return float(known)
    if record.provider in LOCAL_BACKENDS or not record.model:
        return 0.0
    price = _price(record.model)
    if price is None:
        return 0.0
    pin, pout = price
    return (record.input_tokens * pin + record.cache_read_tokens * pin * 0.1
            + record.cache_creation_tokens * pin * 1.25 + record.output_tokens * pout) / 1e6
