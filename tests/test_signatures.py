"""Thinking-block signatures across vendors (lynkr/convert/signatures.py): tag and untag, what each vendor is
sent, tagging answers and streams, and a fallback across vendors never showing a backend a foreign signature."""

from __future__ import annotations

import copy
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, ClassVar

import pytest

from lynkr.convert.signatures import prepare_thinking, tag, tag_events, tag_message, vendor_of
from lynkr.dispatch import Dispatcher
from lynkr.errors import UpstreamServerError
from lynkr.providers.base import BackendSettings, Event, Provider
from tests.conftest import make_settings

CLAUDE_SIG = "ErUBCkYIBxgCIkBmYWtlLXNpZ25hdHVyZQ=="
GEMINI_SIG = "CiQB0e2Kb2Z0aG91Z2h0LXNpZ25hdHVyZQ=="
TAGGED = f"lynkr:gemini:{GEMINI_SIG}"


# --- tag / untag ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("signature", "vendor", "tagged"), [
    (GEMINI_SIG, "gemini", TAGGED),
    (CLAUDE_SIG, "anthropic", CLAUDE_SIG),  # Claude's own pass untouched: byte-for-byte passthrough
    ("", "gemini", ""),  # nothing to tag
    ("a:b:c", "gemini", "lynkr:gemini:a:b:c"),  # colons inside a signature survive
])
def test_tag_and_vendor_of_round_trip(signature: str, vendor: str, tagged: str) -> None:
    assert tag(signature, vendor) == tagged
    if signature:
        assert vendor_of(tagged) == (vendor, signature)


def test_vendor_of_reads_untagged_signatures_as_claudes() -> None:
    assert vendor_of("") == (None, "")
    assert vendor_of(CLAUDE_SIG) == ("anthropic", CLAUDE_SIG)
    assert vendor_of("lynkr:gemini:") == ("gemini", "")


# --- prepare_thinking: what each vendor is sent ------------------------------------------------------------


def thinking(signature: str, text: str = "pondering") -> dict[str, Any]:
    return {"type": "thinking", "thinking": text, "signature": signature}


REDACTED = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"}
TEXT = {"type": "text", "text": "Done."}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}


def conversation() -> dict[str, Any]:
    return {"model": "claude-opus-4-8", "max_tokens": 100, "messages": [
        {"role": "user", "content": "list the files"},
        {"role": "assistant", "content": [thinking(CLAUDE_SIG, "claude"), thinking(TAGGED, "gemini"),
                                          thinking("", "unsigned"), REDACTED, TEXT, TOOL_USE]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}]},
        {"role": "assistant", "content": "plain text turn"},
    ]}


def assistant_blocks(req: dict[str, Any]) -> list[dict[str, Any]]:
    return req["messages"][1]["content"]


@pytest.mark.parametrize(("vendor", "kept"), [
    # Anthropic: its own signatures and redacted blocks; never another vendor's, never an unsigned block
    ("anthropic", [thinking(CLAUDE_SIG, "claude"), REDACTED, TEXT, TOOL_USE]),
    # Gemini: its own, untagged back to the raw signature; unsigned reasoning text is harmless
    ("gemini", [thinking(GEMINI_SIG, "gemini"), thinking("", "unsigned"), TEXT, TOOL_USE]),
    # a vendor whose signatures it never made: only unsigned reasoning survives
    ("bedrock-mistral", [thinking("", "unsigned"), TEXT, TOOL_USE]),
])
def test_prepare_thinking_keeps_only_what_the_vendor_can_take(vendor: str, kept: list[dict[str, Any]]) -> None:
    req = conversation()
    before = copy.deepcopy(req)
    out = prepare_thinking(req, vendor)
    assert assistant_blocks(out) == kept
    assert req == before  # the client's request is never changed in place
    # only the changed message is a copy; the others are the same objects
    assert out["messages"][0] is req["messages"][0] and out["messages"][2] is req["messages"][2]
    assert out["messages"][3] is req["messages"][3]


def test_prepare_thinking_returns_the_request_itself_when_nothing_changes() -> None:
    req = conversation()
    assert prepare_thinking(req, None) is req  # a backend without signatures is not touched
    plain = {"model": "m", "messages": [{"role": "user", "content": [thinking(TAGGED)]},  # not an assistant turn
                                        {"role": "assistant", "content": [TEXT]}]}
    assert prepare_thinking(plain, "anthropic") is plain
    own = {"model": "m", "messages": [{"role": "assistant", "content": [thinking(CLAUDE_SIG), TEXT]}]}
    assert prepare_thinking(own, "anthropic") is own


# --- tagging what a backend answers ----------------------------------------------------------------------


def test_tag_message_tags_a_foreign_vendors_signatures_only() -> None:
    message = {"type": "message", "content": [thinking(GEMINI_SIG), thinking(""), TEXT]}
    assert tag_message(message, "gemini")["content"] == [thinking(TAGGED), thinking(""), TEXT]
    claude = {"type": "message", "content": [thinking(CLAUDE_SIG), TEXT]}
    for vendor in ("anthropic", None):
        assert tag_message(claude, vendor) is claude
        assert claude["content"] == [thinking(CLAUDE_SIG), TEXT]


async def events(*items: Event) -> AsyncIterator[Event]:
    for item in items:
        yield item


async def test_tag_events_tags_signature_deltas_and_signed_block_starts() -> None:
    start = {"type": "content_block_start", "index": 0, "content_block": thinking(GEMINI_SIG, "")}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": GEMINI_SIG}}
    text = {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "hi"}}
    unsigned = {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}}
    originals = copy.deepcopy([start, delta, text, unsigned])
    out = [ev async for ev in tag_events(events(start, delta, text, unsigned), "gemini")]
    assert out[0]["content_block"]["signature"] == TAGGED
    assert out[1]["delta"] == {"type": "signature_delta", "signature": TAGGED}
    assert out[2] is text and out[3] is unsigned  # nothing to tag: passed through as they are
    assert [start, delta, text, unsigned] == originals  # new events, the backend's are not changed


# --- a fallback across vendors -----------------------------------------------------------------------------


class Recording(Provider):
    """A backend that records what it was sent; fails when told to."""

    name: ClassVar[str] = "recording"

    def __init__(self, name: str, vendor: str | None, *, fail: bool) -> None:
        super().__init__(BackendSettings(name, "http://127.0.0.1:9", None, f"{name}-model", 5_000), None,  # type: ignore[arg-type]
                         make_settings())
        self.thinking_vendor = vendor  # type: ignore[misc]
        self.fail = fail
        self.seen: list[dict[str, Any]] = []

    async def create_message(self, req: dict[str, Any], model: str) -> dict[str, Any]:
        self.seen.append(req)
        if self.fail:
            raise UpstreamServerError(f"{self.backend.name} is down", provider=self.backend.name)
        return {"type": "message", "role": "assistant", "model": model, "stop_reason": "end_turn",
                "content": [thinking(GEMINI_SIG if self.thinking_vendor == "gemini" else CLAUDE_SIG), TEXT]}

    async def stream_message(self, req: dict[str, Any], model: str) -> AsyncGenerator[Event, None]:
        raise NotImplementedError
        yield {}


async def test_a_fallback_to_another_vendor_never_sees_a_foreign_signature() -> None:
    settings = make_settings(model_provider="anthropic", anthropic_upstream_api_key="k", vertex_api_key="k",
                             fallback_providers="gemini")
    claude = Recording("anthropic", "anthropic", fail=True)
    gemini = Recording("gemini", "gemini", fail=False)
    dispatcher = Dispatcher(settings, {"anthropic": claude, "gemini": gemini})
    route, message = await dispatcher.create_message(conversation())
    assert route.provider is gemini and route.reason.startswith("fallback 1 after anthropic: ")
    assert assistant_blocks(claude.seen[0])[:2] == [thinking(CLAUDE_SIG, "claude"), REDACTED]
    sent = assistant_blocks(gemini.seen[0])
    assert [b.get("signature") for b in sent if b["type"] == "thinking"] == [GEMINI_SIG, ""]
    assert all(b["type"] != "redacted_thinking" for b in sent)
    # and the answer comes back tagged, so a later turn to Claude drops it instead of failing on it
    assert message["content"][0]["signature"] == TAGGED
