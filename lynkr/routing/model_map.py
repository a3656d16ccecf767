"""Client model names -> backend model names.

Claude Code asks for ``claude-*`` models; they map to the backend's configured model, and the
haiku-class small/fast model (title generation, quick side requests) to ``SMALL_FAST_MODEL`` when
set. Any other name is taken as a backend model the user chose on purpose and passes unchanged.
"""

from __future__ import annotations


def is_small_fast(model: str) -> bool:
    return "haiku" in model.lower()


def is_claude_model(model: str) -> bool:
    """A Claude model name (what Claude Code asks for), as opposed to a backend model chosen on purpose."""
    name = model.lower()
    return name.startswith(("claude", "anthropic/claude")) or name in {"opus", "sonnet", "haiku", "default"}


def upstream_model(requested: str, *, default: str, small_fast: str | None, passthrough: bool = False) -> str:
    """``passthrough``: the backend serves Claude models itself and has no model configured, so a
    claude-* name is the model to use (only the small/fast override still applies)."""
    if is_claude_model(requested):
        if small_fast and is_small_fast(requested):
            return small_fast
        return requested if passthrough else default
    return requested


def upstream_embeddings_model(requested: str | None, *, backend: str, default: str) -> str:
    """Embeddings: OpenAI's ``text-embedding-*`` names (what SDKs and editors send unasked) mean "this backend's
    embeddings model" on every backend but OpenAI itself; so does no model. Any other name passes unchanged."""
    if not requested or requested == "default":
        return default
    if requested.startswith("text-embedding-") and backend != "openai":
        return default
    return requested
