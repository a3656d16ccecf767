"""Embeddings between OpenAI's shape and Ollama's ``/api/embed``; base64 packing. Pure: no I/O.

OpenAI's ``encoding_format: "base64"`` is the little-endian float32 bytes of each vector, base64-encoded;
the official openai Python SDK asks for it by default and decodes it with numpy or ``array('f')``.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from lynkr.errors import UpstreamBadResponse


def pack_base64(vector: list[float]) -> str:
    """A vector as OpenAI sends it for ``encoding_format: "base64"`` (float32, little-endian)."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def unpack_base64(data: str) -> list[float]:
    raw = base64.b64decode(data)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def _vector(value: Any, where: str, provider: str) -> list[float]:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]  # llama.cpp's native /embeddings nests each vector once more
    if not isinstance(value, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        raise UpstreamBadResponse(f"{provider} sent an embedding that is not a list of numbers ({where})",
                                  provider=provider)
    return value


def _item(index: int, vector: Any, encoding: str, provider: str) -> dict[str, Any]:
    if isinstance(vector, str):  # already base64 (the backend honoured encoding_format)
        embedding: Any = vector if encoding == "base64" else unpack_base64(vector)
    else:
        floats = _vector(vector, f"item {index}", provider)
        embedding = pack_base64(floats) if encoding == "base64" else floats
    return {"object": "embedding", "index": index, "embedding": embedding}


def ollama_embed_request(texts: list[str], model: str, *, dimensions: int | None = None,
                         keep_alive: str | None = None) -> dict[str, Any]:
    """Ollama ``POST /api/embed``: every input in one batched call."""
    body: dict[str, Any] = {"model": model, "input": texts}
    if dimensions is not None:
        body["dimensions"] = dimensions
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    return body


def ollama_embed_to_openai(data: Any, *, model: str, count: int, encoding: str,
                           provider: str = "ollama") -> dict[str, Any]:
    """Ollama's ``{"embeddings": [[...], ...], "prompt_eval_count"}`` as an OpenAI embeddings list."""
    vectors = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(vectors, list) or len(vectors) != count:
        got = len(vectors) if isinstance(vectors, list) else "no"
        raise UpstreamBadResponse(f"{provider} answered /api/embed with {got} embeddings for {count} inputs",
                                  provider=provider)
    tokens = data.get("prompt_eval_count")
    tokens = tokens if isinstance(tokens, int) else 0
    return {
        "object": "list",
        "data": [_item(i, v, encoding, provider) for i, v in enumerate(vectors)],
        "model": data.get("model") or model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def normalize_openai_embeddings(data: Any, *, model: str, encoding: str, provider: str) -> dict[str, Any]:
    """An OpenAI-compatible backend's answer, made exactly what the client asked for: vectors in the
    requested encoding (some servers ignore ``encoding_format``), ``object``/``model``/``usage`` present.
    Also accepts llama.cpp's native ``/embeddings`` answer (a bare list of ``{index, embedding}``)."""
    items = data if isinstance(data, list) else data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(it, dict) and "embedding" in it for it in items):
        raise UpstreamBadResponse(f"{provider} sent an embeddings answer without a data list", provider=provider)
    out = dict(data) if isinstance(data, dict) else {}
    ordered = sorted(items, key=lambda it: it.get("index", 0) if isinstance(it.get("index"), int) else 0)
    out["object"] = "list"
    out["data"] = [_item(i, it["embedding"], encoding, provider) for i, it in enumerate(ordered)]
    out["model"] = out.get("model") or model
    usage = out.get("usage")
    if not isinstance(usage, dict):
        usage = {"prompt_tokens": 0, "total_tokens": 0}
    out["usage"] = {**usage, "prompt_tokens": usage.get("prompt_tokens") or 0,
                    "total_tokens": usage.get("total_tokens") or usage.get("prompt_tokens") or 0}
    return out
