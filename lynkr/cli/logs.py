"""Logging setup for the CLI (loguru, to stderr)."""

from __future__ import annotations

import sys

from loguru import logger


def setup_logging(level: str) -> None:
    logger.remove()
    logger.add(sys.stderr, level=level.upper(), format="{time:HH:mm:ss.SSS} {level: <7} {message}",
               backtrace=False, diagnose=False)
