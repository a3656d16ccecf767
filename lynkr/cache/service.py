"""The answer cache route handlers talk to: look up, replay, store.

Answers are kept in the hub shape (an Anthropic message) with the backend and model that produced
them; each dialect renders a hit its own way, as JSON or as a real event stream (``replay_events``
drives ``MessageStream``, so a replayed stream has exactly the grammar of a live one). A hit reports
its input as ``cache_read_input_tokens`` (nothing was sent to a backend) and is marked on the request
record (``extra["cache"] = "hit"``; ``"miss"`` when the request could have been served but was not).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson
from loguru import logger

from lynkr.cache.keys import canonical_key, last_question, nondeterministic, storable, tool_turn
from lynkr.cache.store import ExactStore, SemanticStore, cosine, normalize
from lynkr.config import Settings
from lynkr.convert.anthropic_stream import MessageStream, fold_events, new_message_id, usage_block
from lynkr.errors import LynkrError
from lynkr.observability.record import current_record
from lynkr.store.sessions import answer_sink, capture

Event = dict[str, Any]
Embed = Callable[[str], Awaitable[list[float]]]
REPLAYABLE = frozenset({"text", "thinking", "redacted_thinking", "tool_use"})
TEXT_PIECE = 48  # characters per replayed text delta


@dataclass
class Lookup:
    """One request's cache lookup: its key (None: not cacheable, ``skip`` says why) and the hit, if any."""

    key: str | None = None
    skip: str | None = None
    entry: dict[str, Any] | None = None
    kind: str | None = None  # exact | semantic
    similarity: float | None = None
    partition: str | None = None
    question: str | None = None
    vector: list[float] | None = None

    @property
    def hit(self) -> bool:
        return self.entry is not None

    def headers(self) -> dict[str, str]:
        if self.key is None:
            return {}
        h = {"X-Lynkr-Cache": f"hit; {self.kind}" if self.hit else "miss"}
        if self.similarity is not None and self.hit:
            h["X-Lynkr-Cache-Similarity"] = f"{self.similarity:.4f}"
        if self.entry is not None:
            h["X-Lynkr-Provider"] = str(self.entry.get("provider") or "")
            h["X-Lynkr-Model"] = str(self.entry.get("model") or "")
        return h


class AnswerCache:
    def __init__(self, settings: Settings, exact: ExactStore | None, semantic: SemanticStore | None = None,
                 embed: Embed | None = None) -> None:
        self.enabled = settings.prompt_cache_enabled and exact is not None
        self.exact = exact
        self.semantic = semantic if settings.semantic_cache_enabled and embed is not None else None
        self.embed = embed
        self.ttl = settings.prompt_cache_ttl_ms / 1000
        self.semantic_ttl = settings.semantic_cache_ttl_ms / 1000
        self.threshold = settings.semantic_cache_threshold
        self.tool_turns = settings.prompt_cache_tool_turns
        self.nondeterministic = settings.prompt_cache_nondeterministic
        self.stats = {"hits": 0, "semantic_hits": 0, "misses": 0, "stored": 0, "skipped": 0, "errors": 0}

    @property
    def active(self) -> bool:
        return self.enabled or self.semantic is not None

    # --- lookup ----------------------------------------------------------------------------------

    def _why_not(self, hub: dict[str, Any], keyed: dict[str, Any]) -> str | None:
        if not self.nondeterministic and (why := nondeterministic(keyed) or nondeterministic(hub)):
            return f"non-deterministic sampling ({why})"
        if not self.tool_turns and tool_turn(hub):
            return "tool-calling turn"
        return None

    async def lookup(self, keyed: dict[str, Any], hub: dict[str, Any],
                     scope_of: Callable[[], dict[str, Any]]) -> Lookup:
        """``keyed``: the request as the client sent it (every field is part of the key); ``hub``: the same
        request in the Anthropic shape (for the tool-turn check and the semantic question); ``scope_of()``:
        what else separates answers (dialect, caller's key id, anthropic-beta), built only when it is needed."""
        if not self.active:  # the default: nothing to key
            return Lookup(skip="cache disabled")
        if why := self._why_not(hub, keyed):
            self.stats["skipped"] += 1
            return Lookup(skip=why)
        scope = scope_of()
        key = canonical_key(scope, keyed)
        look = Lookup(key=key)
        record = current_record.get()
        try:
            if self.enabled and self.exact is not None and (entry := await self.exact.get(key)):
                look.entry, look.kind = entry, "exact"
            elif self.semantic is not None:
                await self._semantic_lookup(look, keyed, hub, scope)
        except LynkrError as err:  # an embeddings backend that fails makes a miss, never a failed request
            self.stats["errors"] += 1
            logger.warning("semantic cache: {}; treating as a miss", err.message)
        except Exception:
            self.stats["errors"] += 1
            logger.opt(exception=True).error("cache lookup failed; treating as a miss")
        if look.hit:
            self.stats["hits" if look.kind == "exact" else "semantic_hits"] += 1
        else:
            self.stats["misses"] += 1
        if record is not None:
            record.extra["cache"] = "hit" if look.hit else "miss"
            if look.hit:
                record.extra["cache_kind"] = look.kind
        return look

    async def _semantic_lookup(self, look: Lookup, keyed: dict[str, Any], hub: dict[str, Any],
                               scope: dict[str, Any]) -> None:
        assert self.semantic is not None and self.embed is not None
        q = last_question(hub)
        if q is None:
            return
        look.question, context = q
        params = {k: v for k, v in keyed.items() if k not in ("messages", "input")}
        look.partition = canonical_key({**scope, "semantic": 1}, {"params": params, "context": context})
        look.vector = normalize(await self.embed(look.question))
        best, best_score = None, -1.0
        for vector, entry in await self.semantic.candidates(look.partition):
            score = cosine(look.vector, vector)
            if score > best_score:
                best, best_score = entry, score
        if best is not None and best_score >= self.threshold:
            look.entry, look.kind, look.similarity = best, "semantic", best_score
        elif best is not None:
            look.similarity = best_score  # the nearest miss, for the log

    # --- hits ------------------------------------------------------------------------------------

    @staticmethod
    def hit_message(look: Lookup, model: str | None = None) -> dict[str, Any]:
        """The cached answer as a fresh message: new id, usage as a cache read."""
        assert look.entry is not None
        stored = look.entry["message"]
        u = stored.get("usage") or {}
        prompt = sum(int(u.get(k) or 0) for k in ("input_tokens", "cache_read_input_tokens",
                                                   "cache_creation_input_tokens"))
        message = {**stored, "id": new_message_id(), "model": model or stored.get("model", ""),
                   "usage": usage_block(0, int(u.get("output_tokens") or 0), cache_read=prompt)}
        if (record := current_record.get()) is not None:
            record.model = look.entry.get("model")
            record.add_usage(message["usage"])
        return message

    @staticmethod
    def replay_events(message: dict[str, Any]) -> list[Event]:
        """The events a live stream of ``message`` would have had."""
        ms = MessageStream(model=message["model"], message_id=message["id"])
        usage = message["usage"]
        out = ms.start({**usage, "output_tokens": 0})
        for i, block in enumerate(message["content"]):
            kind = block["type"]
            if kind == "text":
                text = block["text"]
                for n in range(0, max(len(text), 1), TEXT_PIECE):
                    out += ms.text(text[n:n + TEXT_PIECE])
                out += ms.end_block()
            elif kind == "thinking":
                out += ms.thinking(block.get("thinking", ""), block.get("signature") or None)
                out += ms.end_block()
            elif kind == "redacted_thinking":
                out += ms.redacted_thinking(block["data"])
            elif kind == "tool_use":
                out += ms.tool_call(i, id=block["id"], name=block["name"],
                                    arguments=orjson.dumps(block.get("input") or {}).decode())
                out += ms.end_block()
        out += ms.finish(message.get("stop_reason") or "end_turn", usage, message.get("stop_sequence"))
        return out

    @staticmethod
    async def replay_stream(message: dict[str, Any]) -> AsyncGenerator[Event, None]:
        for ev in AnswerCache.replay_events(message):
            yield ev

    # --- storing ---------------------------------------------------------------------------------

    def _storable(self, message: dict[str, Any]) -> bool:
        if not storable(message, tool_turns=self.tool_turns):
            return False
        for block in message.get("content") or ():
            if block.get("type") not in REPLAYABLE or (block.get("type") == "text" and block.get("citations")):
                return False
        return True

    async def store(self, look: Lookup, message: dict[str, Any], *, provider: str | None, model: str | None) -> None:
        """Keep a complete answer (a no-op for hits, uncacheable requests and answers not worth keeping)."""
        if look.key is None or look.hit or not self._storable(message):
            return
        entry = {"message": message, "provider": provider, "model": model, "created": time.time()}
        try:
            if self.enabled and self.exact is not None:
                await self.exact.put(look.key, entry, self.ttl)
            if self.semantic is not None and look.partition is not None and look.vector:
                await self.semantic.add(look.partition, look.vector, {**entry, "question": look.question},
                                        self.semantic_ttl)
            self.stats["stored"] += 1
        except Exception:
            self.stats["errors"] += 1
            logger.opt(exception=True).error("could not store an answer in the cache")

    def tap(self, look: Lookup, events: AsyncGenerator[Event, None], *, provider: str | None,
            model: str | None, first: Event | None = None) -> AsyncGenerator[Event, None]:
        """Pass a live stream's events through (``first``: one already taken from it); when the stream ends
        complete, store the answer. With nothing to store (cache off, no transcript) the stream is
        returned as it is: no extra step per event."""
        if answer_sink.get() is None and (look.key is None or look.hit):
            return events
        return self._tap(look, events, provider=provider, model=model, first=first)

    async def _tap(self, look: Lookup, events: AsyncGenerator[Event, None], *, provider: str | None,
                   model: str | None, first: Event | None) -> AsyncGenerator[Event, None]:
        wanted = True
        seen = [first] if first is not None else []
        complete = False
        async with aclosing(events):
            async for ev in events:
                if wanted:  # kept only for someone who will fold them
                    seen.append(ev)
                yield ev
                if ev["type"] == "message_stop":
                    complete = True
        if complete and wanted:
            try:
                message = fold_events(seen)
            except ValueError:
                return
            capture(message)  # for the session transcript
            await self.store(look, message, provider=provider, model=model)
