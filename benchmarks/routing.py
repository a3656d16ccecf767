"""What routing costs per request: the complexity score and the whole routing decision, in microseconds.

Issue 4 asks that scoring a Claude-Code-sized request cost well under a millisecond. Timed with ``timeit``
(best of ``--repeat`` runs of ``--number`` calls each, so other load on the machine inflates nothing):

* ``complexity.score``: the score alone;
* ``Router.decide``: the full decision with four tiers and a fallback configured (side-request checks,
  score, tier lookup, fallback chain);

on two requests: ``tests/transcripts/claude_code_request.json`` (a recorded Claude Code request, 3 kB) and
the benchmarks' large Claude Code request (``benchmarks.fixtures``, ~55 kB: 24 tools, long system prompt).

Run: ``python -m benchmarks.routing`` (``--json`` for machine output).
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path
from typing import Any

from benchmarks.fixtures import claude_code_request
from lynkr.config import Settings
from lynkr.routing.complexity import score
from lynkr.routing.router import Router

ROOT = Path(__file__).resolve().parent.parent
TRANSCRIPT = ROOT / "tests" / "transcripts" / "claude_code_request.json"
TIERS = {"tier_simple": "ollama:qwen2.5-coder:1.5b", "tier_medium": "ollama:qwen3:8b",
         "tier_complex": "openrouter:anthropic/claude-sonnet-4.5", "tier_reasoning": "openai:o3",
         "fallback_providers": "openai:gpt-4o"}


def requests() -> dict[str, dict[str, Any]]:
    return {"transcript": json.loads(TRANSCRIPT.read_text()), "large": claude_code_request("large")}


def per_call_us(fn: Any, number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def measure(number: int, repeat: int) -> list[dict[str, Any]]:
    values: dict[str, Any] = {"model_provider": "ollama", "openai_api_key": "k", "openrouter_api_key": "k", **TIERS}
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    router = Router(settings, dict.fromkeys(("ollama", "openai", "openrouter")))
    rows = []
    for name, req in requests().items():
        decision = router.decide(req, {})
        rows.append({
            "request": name,
            "bytes": len(json.dumps(req)),
            "tools": len(req.get("tools") or ()),
            "messages": len(req.get("messages") or ()),
            "score": decision.score.value if decision.score else None,
            "tier": decision.tier,
            "score_us": round(per_call_us(lambda r=req: score(r), number, repeat), 2),
            "decide_us": round(per_call_us(lambda r=req: router.decide(r, {}), number, repeat), 2),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.routing", description=__doc__.split("\n")[0])
    parser.add_argument("--number", "-n", type=int, default=2000, help="calls per timing run (default 2000)")
    parser.add_argument("--repeat", "-r", type=int, default=5, help="timing runs; the best counts (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = measure(args.number, args.repeat)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'request':<11} {'bytes':>7} {'tools':>5} {'msgs':>4} {'score':>5} {'tier':<9} "
          f"{'score() µs':>10} {'decide() µs':>11}")
    for r in rows:
        print(f"{r['request']:<11} {r['bytes']:>7} {r['tools']:>5} {r['messages']:>4} {r['score']:>5} "
              f"{r['tier']:<9} {r['score_us']:>10.1f} {r['decide_us']:>11.1f}")
    print(f"(best of {args.repeat} runs of {args.number} calls; 1 ms = 1000 µs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
