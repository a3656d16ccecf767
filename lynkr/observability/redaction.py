"""Keeping secrets out of logs: every configured secret value, bearer tokens, API-key headers, key-like strings.

``Redactor.redact`` replaces, in any text:

* every registered secret value (``Settings.secrets()``: backend keys, inbound client keys...), wherever it
  appears — in an upstream error that echoes the key, a URL, a header dump;
* ``Bearer <token>`` (and ``Basic``), the values of ``x-api-key``, ``api-key``, ``x-goog-api-key``,
  ``authorization`` and ``anthropic-api-key`` header-like pairs, and ``key=`` / ``api_key=`` URL parameters;
* strings shaped like well-known keys: ``sk-...`` (OpenAI, Anthropic, OpenRouter), ``AIza...`` (Google),
  ``AKIA...`` (AWS access key ids).

The replacements contain no quotes or backslashes, so a JSON log line stays valid JSON.

``install`` puts one process-wide redactor in front of loguru as its patcher (the message and the bound
``extra`` values of every record, before any sink sees them); the CLI's sinks also pass their final text
through it, which covers tracebacks. Secrets are only ever added: several apps in one process (tests) share
the redactor, and redacting another app's secret too is harmless.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from loguru import logger

from lynkr.observability.record import current_record

MASK = "[REDACTED]"
_MIN_SECRET = 6  # shorter "secrets" (e.g. "lynkr", a placeholder key) would mangle ordinary words

_TOKEN = r"[A-Za-z0-9._~+/=:-]+"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization: Bearer xyz / Basic xyz
    (re.compile(r"\b(Bearer|Basic)(\s+)" + _TOKEN, re.IGNORECASE), r"\1\2" + MASK),
    # x-api-key: xyz, 'api-key': 'xyz', "x-goog-api-key"="xyz", authorization=xyz (not already masked)
    (re.compile(r"(?i)\b((?:x-)?(?:goog-)?api[-_]key|anthropic-api-key|authorization|api[-_]?token|"
                r"access[-_]token|secret[-_]access[-_]key)(\\?[\"']?\s*[:=]\s*\\?[\"']?)"
                r"(?!\[REDACTED\]|Bearer\b|Basic\b)([^\s\"'\\,;&)}\]]+)"), r"\1\2" + MASK),
    # ?key=xyz&... (Gemini's API key parameter)
    (re.compile(r"([?&](?:key|api_key|apikey|access_token)=)[^&\s\"'\\]+", re.IGNORECASE), r"\1" + MASK),
    # key-shaped strings
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), MASK),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), MASK),
]


class Redactor:
    def __init__(self, secrets: list[str] | tuple[str, ...] = ()) -> None:
        self._secrets: set[str] = set()
        self._literal: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        self.add(secrets)

    def add(self, secrets: list[str] | tuple[str, ...] | set[str]) -> None:
        new = {s for s in secrets if s and len(s) >= _MIN_SECRET} - self._secrets
        if not new:
            return
        with self._lock:
            self._secrets |= new
            # longest first, so a secret that contains another is masked whole
            alternation = "|".join(re.escape(s) for s in sorted(self._secrets, key=len, reverse=True))
            self._literal = re.compile(alternation)

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def redact(self, text: str) -> str:
        literal = self._literal
        if literal is not None:
            text = literal.sub(MASK, text)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text

    def patch(self, record: Any) -> None:
        """A loguru patcher: redact the message and string extras; add the request id when in a request."""
        record["message"] = self.redact(record["message"])
        extra = record["extra"]
        for key, value in extra.items():
            if isinstance(value, str):
                extra[key] = self.redact(value)
        if "request_id" not in extra:
            current = current_record.get()
            if current is not None:
                extra["request_id"] = current.request_id


REDACTOR = Redactor()
_installed = False


def install(secrets: list[str] | tuple[str, ...] = ()) -> Redactor:
    """Register ``secrets`` and make sure loguru redacts every record (idempotent)."""
    global _installed
    REDACTOR.add(secrets)
    if not _installed:
        logger.configure(patcher=REDACTOR.patch)
        _installed = True
    return REDACTOR
