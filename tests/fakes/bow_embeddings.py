"""A fake OpenAI embeddings server whose vectors mean something: bag-of-words, hashed.

Words are lower-cased, stripped of punctuation, stop words dropped and a trailing "s" removed; each
remaining word adds 1 to one of ``DIM`` hashed dimensions. So "What is the capital of France?" and
"what's the capital of france" embed identically, "capital city of France" is near, and "capital of
Germany" is far: the semantic cache can be tested for both hits and (more important) misses.
"""

from __future__ import annotations

import hashlib
import re

from aiohttp import web

DIM = 256
STOP = frozenset(["a", "an", "the", "of", "is", "are", "was", "what", "what's", "whats", "which", "who", "how", "do",
                  "does", "i", "me", "my", "you", "your", "to", "in", "on", "for", "and", "or", "please", "tell",
                  "can", "could", "would", "it", "its", "be"])
CALLS = web.AppKey("calls", list)


def words(text: str) -> list[str]:
    out = []
    for w in re.findall(r"[a-z0-9']+", text.lower()):
        w = w.strip("'")
        if not w or w in STOP:
            continue
        out.append(w[:-1] if len(w) > 3 and w.endswith("s") else w)
    return out


def vector(text: str) -> list[float]:
    v = [0.0] * DIM
    for w in words(text):
        v[int.from_bytes(hashlib.sha256(w.encode()).digest()[:4], "big") % DIM] += 1.0
    return v


async def embeddings(request: web.Request) -> web.Response:
    body = await request.json()
    inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
    request.app[CALLS].extend(inputs)
    return web.json_response({"object": "list", "model": body.get("model", "bow"),
                              "data": [{"object": "embedding", "index": i, "embedding": vector(t)}
                                       for i, t in enumerate(inputs)],
                              "usage": {"prompt_tokens": 1, "total_tokens": 1}})


def make_app() -> web.Application:
    app = web.Application()
    app[CALLS] = []
    app.router.add_post("/v1/embeddings", embeddings)
    return app
