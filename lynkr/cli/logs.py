"""Logging setup for the CLI (loguru, to stderr): text or JSON lines, request ids, secrets redacted.

* ``LOG_FORMAT=text``: ``12:00:01.234 INFO    [req_...] message`` (the request id when the line was logged
  while serving a request); ``LOG_FORMAT=json``: one JSON object per line (loguru's ``serialize``: the
  formatted ``text`` and the ``record`` with level, time, ``extra.request_id``, exception...).
* Secrets: the process-wide ``Redactor`` (``lynkr.observability.redaction``) patches every record, and the
  sink passes its final text through it once more, which also covers exception tracebacks.
"""

from __future__ import annotations

import sys
from typing import Any, Literal, TextIO

from loguru import logger

from lynkr.observability.redaction import Redactor, install


def _text_format(record: Any) -> str:
    rid = record["extra"].get("request_id")
    # the access line already ends with [request id]; say it once
    prefix = "[{extra[request_id]}] " if rid and rid not in record["message"] else ""
    return "{time:HH:mm:ss.SSS} {level: <7} " + prefix + "{message}\n{exception}"


class RedactingSink:
    """Writes each formatted line to ``stream`` with every secret masked."""

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        self.stream = stream
        self.redactor = redactor

    def write(self, message: str) -> None:
        self.stream.write(self.redactor.redact(str(message)))
        self.stream.flush()


def setup_logging(level: str, fmt: Literal["text", "json"] | str = "text", *, secrets: list[str] | None = None,
                  stream: TextIO | None = None) -> None:
    """Send lynkr's logs to ``stream`` (stderr) at ``level``, as text or JSON, never showing ``secrets``."""
    redactor = install(secrets or [])
    logger.remove()
    sink = RedactingSink(stream or sys.stderr, redactor).write
    if fmt == "json":
        logger.add(sink, level=level.upper(), serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(sink, level=level.upper(), format=_text_format, backtrace=False, diagnose=False)
