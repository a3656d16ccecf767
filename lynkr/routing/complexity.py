"""A deterministic, explainable complexity score (0-100) for a hub request, and the tier it picks.

Every point comes from a named signal, so a decision can be shown to the user as-is. Scoring
reads the request once and does no tokenizing (sizes are estimated from characters): it has to
cost far less than a millisecond on a Claude-Code-sized request.

    signal          points  what
    size            0-20    estimated prompt tokens (characters / 4): 2k, 8k, 20k, 50k
    tools           0-20    tools offered; any agentic one (shell, edit, write, sub-agents) gives 20, so
                            an agent's request never lands in the simple tier
    tool_results    0-15    tool results already in the conversation (an agent at work)
    depth           0-10    conversation turns
    code            0-15    code and engineering cues in the latest user text
    reasoning       0-35    reasoning cues in the latest user text (8 each), thinking requested (6)
    agentic_loop    0-10    the request continues a run of tool calls (its last turn is tool results)

Tiers: SIMPLE 0-25, MEDIUM 26-50, COMPLEX 51-75, REASONING 76-100.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

TIERS = ("simple", "medium", "complex", "reasoning")

_AGENTIC_TOOLS = frozenset({
    "bash", "write", "edit", "multiedit", "notebookedit", "task", "agent", "exec_command", "apply_patch",
    "shell", "run_command", "write_file", "edit_file", "str_replace_based_edit_tool", "local_shell",
})
_CODE = re.compile(
    r"\b(refactor\w*|implement\w*|debug\w*|fix(es|ing)?|bug|stack ?trace|exception|compile\w*|test(s|ing)?|"
    r"function|class|module|api|endpoint|database|sql|migration|regex|async|concurren\w*|deploy\w*|"
    r"performance|optimi[sz]\w*|memory leak|security|vulnerab\w*)\b|```|\.(py|ts|js|go|rs|java|cpp|rb)\b",
    re.IGNORECASE,
)
_REASONING = re.compile(
    r"\b(architect\w*|design|trade-?offs?|step[- ]by[- ]step|prove|proof|analy[sz]\w*|root cause|"
    r"why does|compare|evaluate|plan|strategy|edge cases?|reason about|think (hard|carefully)|"
    r"complex|entire codebase|across the (code ?base|repo\w*))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Score:
    value: int
    signals: dict[str, int] = field(default_factory=dict)

    @property
    def tier(self) -> str:
        return tier_for(self.value)

    def explain(self) -> str:
        parts = [f"{k}+{v}" for k, v in self.signals.items() if v]
        return f"score {self.value} ({', '.join(parts) or 'no signals'})"


def tier_for(value: int) -> str:
    if value <= 25:
        return "simple"
    if value <= 50:
        return "medium"
    if value <= 75:
        return "complex"
    return "reasoning"


def _band(value: int, cuts: tuple[int, ...], points: tuple[int, ...]) -> int:
    for cut, pts in zip(cuts, points, strict=False):
        if value < cut:
            return pts
    return points[-1]


def _chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    n = 0
    for b in content or ():
        if not isinstance(b, dict):
            continue
        t = b.get("type")
        if t == "text":
            n += len(b.get("text", ""))
        elif t == "tool_result":
            n += _chars(b.get("content", ""))
        elif t == "tool_use":
            n += 40 + len(str(b.get("input", "")))
        elif t == "thinking":
            n += len(b.get("thinking", ""))
        elif t == "image":
            n += 6000  # ~1,500 tokens
    return n


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for msg in reversed(messages):
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content or () if isinstance(b, dict) and b.get("type") == "text"]
        texts = [t for t in texts if not t.lstrip().startswith("<system-reminder>")]
        if texts:
            return "\n".join(texts)
    return ""


def score(req: dict[str, Any]) -> Score:
    messages: list[dict[str, Any]] = req.get("messages") or []
    system = req.get("system") or ""
    chars = _chars(system) + sum(_chars(m.get("content")) for m in messages)
    tools = req.get("tools") or []
    agentic = sum(1 for t in tools if str(t.get("name", "")).lower() in _AGENTIC_TOOLS)
    tool_results = sum(
        1 for m in messages if isinstance(m.get("content"), list)
        for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_result"
    )
    text = _last_user_text(messages)[:4000]
    last = messages[-1] if messages else {}
    in_loop = isinstance(last.get("content"), list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last["content"])
    thinking = (req.get("thinking") or {}).get("type") in ("enabled", "adaptive")

    signals = {
        "size": _band(chars // 4, (2_000, 8_000, 20_000, 50_000), (0, 5, 10, 15, 20)),
        "tools": 20 if agentic else min(10, len(tools) // 2),
        "tool_results": _band(tool_results, (1, 3, 8, 20), (0, 5, 8, 12, 15)),
        "depth": _band(len(messages), (3, 7, 15, 30), (0, 3, 5, 8, 10)),
        "code": min(15, 5 * len(_CODE.findall(text))),
        "reasoning": min(35, 8 * len(_REASONING.findall(text)) + (6 if thinking else 0)),
        "agentic_loop": 10 if in_loop and tool_results >= 3 else (5 if in_loop else 0),
    }
    return Score(min(100, sum(signals.values())), signals)
